// Package spool is a small durable FIFO on disk for messages that must not
// be lost while their destination is down (statistics batches and events on
// their way to JetStream). Each record is one file written to a temporary
// name, fsynced, renamed and the directory fsynced, so a record that Append
// returned for survives a crash or power loss; records carry a CRC so a torn
// or corrupt file is detected and moved aside, never half-read.
//
// The queue is bounded by total bytes: Append refuses (ErrFull) rather than
// filling the disk.
//
// Concurrency: a Spool is safe for concurrent use.
package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// ErrFull is returned by Append when the spool holds MaxBytes already.
var ErrFull = errors.New("spool: full")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Record is one queued message.
type Record struct {
	// Seq orders records (oldest first).
	Seq uint64
	// Data is the payload.
	Data []byte
}

// Spool is a directory of records.
type Spool struct {
	dir      string
	maxBytes int64

	mu    sync.Mutex
	next  uint64
	sizes map[uint64]int64
	total int64
}

// Open opens (creating) a spool in dir holding at most maxBytes of data.
// Corrupt files are moved to dir/corrupt and reported in the returned
// slice of problems (the spool still opens).
func Open(dir string, maxBytes int64) (*Spool, []error, error) {
	if err := os.MkdirAll(filepath.Join(dir, "corrupt"), 0o700); err != nil {
		return nil, nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	s := &Spool{dir: dir, maxBytes: maxBytes, sizes: map[uint64]int64{}}
	names, err := filepath.Glob(filepath.Join(dir, "*.rec"))
	if err != nil {
		return nil, nil, err
	}
	var problems []error
	for _, n := range names {
		seq, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(n), ".rec"), 10, 64)
		if err == nil {
			var b []byte
			if b, err = os.ReadFile(n); err == nil {
				_, err = decode(b)
			}
			if err == nil {
				s.sizes[seq] = int64(len(b))
				s.total += int64(len(b))
				if seq >= s.next {
					s.next = seq + 1
				}
				continue
			}
		}
		problems = append(problems, fmt.Errorf("spool file %s: %w (moved to corrupt/)", n, err))
		_ = os.Rename(n, filepath.Join(dir, "corrupt", filepath.Base(n)))
	}
	// Leftover temporary files never made it: Append never returned.
	tmps, _ := filepath.Glob(filepath.Join(dir, ".tmp-*"))
	for _, t := range tmps {
		_ = os.Remove(t)
	}
	return s, problems, nil
}

func encode(data []byte) []byte {
	b := make([]byte, 0, len(data)+8)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	b = append(b, data...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(data, castagnoli))
}

func decode(b []byte) ([]byte, error) {
	if len(b) < 8 {
		return nil, errors.New("truncated")
	}
	n := binary.LittleEndian.Uint32(b[:4])
	if int(n) != len(b)-8 {
		return nil, errors.New("length mismatch")
	}
	data := b[4 : 4+n]
	if crc32.Checksum(data, castagnoli) != binary.LittleEndian.Uint32(b[4+n:]) {
		return nil, errors.New("checksum mismatch")
	}
	return data, nil
}

func (s *Spool) path(seq uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d.rec", seq))
}

// Append stores data durably and returns its sequence number.
func (s *Spool) Append(data []byte) (uint64, error) {
	rec := encode(data)
	s.mu.Lock()
	if s.total+int64(len(rec)) > s.maxBytes {
		s.mu.Unlock()
		return 0, ErrFull
	}
	seq := s.next
	s.next++
	s.total += int64(len(rec))
	s.sizes[seq] = int64(len(rec))
	s.mu.Unlock()

	if err := s.write(seq, rec); err != nil {
		s.mu.Lock()
		delete(s.sizes, seq)
		s.total -= int64(len(rec))
		s.mu.Unlock()
		return 0, err
	}
	return seq, nil
}

func (s *Spool) write(seq uint64, rec []byte) error {
	if err := WriteDurable(s.dir, ".tmp-*", s.path(seq), rec); err != nil {
		return fmt.Errorf("spool write: %w", err)
	}
	return SyncDir(s.dir)
}

// WriteDurable writes data to a new temporary file in dir (named after
// pattern, as os.CreateTemp does), fsyncs it and renames it to final, so
// final holds either nothing or all of data after a crash. The rename is
// durable only once the directory is synced too (SyncDir); batch writers
// sync it once for many files.
func WriteDurable(dir, pattern, final string, data []byte) error {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		_ = os.Remove(tmp) // incomplete: never renamed into place
	}
	return err
}

// SyncDir fsyncs a directory so the renames in it survive a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Pending returns the sequence numbers held, oldest first.
func (s *Spool) Pending() []uint64 {
	s.mu.Lock()
	out := make([]uint64, 0, len(s.sizes))
	for seq := range s.sizes {
		out = append(out, seq)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Len returns the number of records held.
func (s *Spool) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sizes)
}

// Bytes returns the bytes held.
func (s *Spool) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Read returns a record's data.
func (s *Spool) Read(seq uint64) ([]byte, error) {
	b, err := os.ReadFile(s.path(seq))
	if err != nil {
		return nil, err
	}
	return decode(b)
}

// Remove deletes a delivered record.
func (s *Spool) Remove(seq uint64) error {
	s.mu.Lock()
	size, ok := s.sizes[seq]
	delete(s.sizes, seq)
	s.total -= size
	s.mu.Unlock()
	if !ok {
		return nil
	}
	if err := os.Remove(s.path(seq)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("spool remove: %w", err)
	}
	return nil
}
