package blocksink

import (
	durable "github.com/hashgate/hashgate/pkg/spool"

	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/hashgate/hashgate/pkg/bus"
)

// A spool record (one file, SpoolDir/<block hash>.blk) is
//
//	offset  size  field
//	0       4     magic "HGBS"
//	4       1     format version (1)
//	5       3     reserved, zero
//	8       8     queued: when Submit took the block, unix ns, little-endian
//	16      4     n: length of the FoundBlock message, little-endian
//	20      n     the FoundBlock message (pkg/bus codec)
//	20+n    4     m: length of the raw block (0 when unknown), little-endian
//	24+n    m     the raw block
//	24+n+m  4     CRC-32C (Castagnoli) of every preceding byte, little-endian
//
// It is written to a temporary file (.<hash>.<random>.tmp), fsynced,
// renamed into place and the directory fsynced, so a crash leaves either
// the complete record or a temporary file, which New checks and adopts.
const (
	spoolMagic   = "HGBS"
	spoolVersion = 1
	spoolExt     = ".blk"
	tmpExt       = ".tmp"
	failedDir    = "failed"

	headerLen   = 20
	maxFoundMsg = 64 << 10 // a FoundBlock message is a few hundred bytes
	maxRawBlock = 32 << 20 // consensus caps blocks at 4 MB of weight
)

// castagnoli is the CRC-32C table.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Spool errors; a record failing to decode is moved to failed/.
var (
	errNotSpool    = errors.New("blocksink: not a spool record")
	errSpoolVer    = errors.New("blocksink: unknown spool record version")
	errTruncated   = errors.New("blocksink: truncated spool record")
	errChecksum    = errors.New("blocksink: spool record checksum mismatch")
	errSpoolLength = errors.New("blocksink: spool record length out of range")
)

// record is a decoded spool record.
type record struct {
	queued time.Time
	msg    []byte // FoundBlock message
	fb     bus.FoundBlock
	raw    []byte
}

// encodeRecord frames msg and raw with the queued time and a checksum.
func encodeRecord(queued time.Time, msg, raw []byte) []byte {
	b := make([]byte, 0, headerLen+len(msg)+4+len(raw)+4)
	b = append(b, spoolMagic...)
	b = append(b, spoolVersion, 0, 0, 0)
	b = binary.LittleEndian.AppendUint64(b, uint64(queued.UnixNano()))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(msg)))
	b = append(b, msg...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(raw)))
	b = append(b, raw...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeRecord checks and decodes a spool record. The result does not
// alias b.
func decodeRecord(b []byte) (*record, error) {
	if len(b) < 4 || string(b[:4]) != spoolMagic {
		return nil, errNotSpool
	}
	if len(b) < headerLen+4+4 {
		return nil, errTruncated
	}
	if b[4] != spoolVersion {
		return nil, fmt.Errorf("%w %d", errSpoolVer, b[4])
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, errChecksum
	}
	n := int(binary.LittleEndian.Uint32(body[16:20]))
	if n > maxFoundMsg || headerLen+n+4 > len(body) {
		return nil, errSpoolLength
	}
	msg := body[headerLen : headerLen+n]
	rest := body[headerLen+n:]
	m := int(binary.LittleEndian.Uint32(rest[:4]))
	if m > maxRawBlock || 4+m != len(rest) {
		return nil, errSpoolLength
	}
	r := &record{
		queued: time.Unix(0, int64(binary.LittleEndian.Uint64(body[8:16]))),
		msg:    slices.Clone(msg),
	}
	if err := r.fb.Unmarshal(r.msg); err != nil {
		return nil, fmt.Errorf("blocksink: spooled found block: %w", err)
	}
	if m > 0 {
		r.raw = slices.Clone(rest[4:])
	}
	return r, nil
}

// spool is the spool directory.
type spool struct {
	dir string
}

// path is where the record of block h lives.
func (sp spool) path(h chainhash.Hash) string {
	return filepath.Join(sp.dir, h.String()+spoolExt)
}

// open creates the directory and failed/ (0700).
func (sp spool) open() error {
	if sp.dir == "" {
		return errors.New("blocksink: no spool directory")
	}
	if err := os.MkdirAll(filepath.Join(sp.dir, failedDir), 0o700); err != nil {
		return fmt.Errorf("blocksink: spool directory: %w", err)
	}
	return nil
}

// write stores the record of block h durably. An existing record for the
// same block is replaced (it holds the same block).
func (sp spool) write(h chainhash.Hash, data []byte) error {
	if err := sp.writeFile(h, data); err != nil {
		return err
	}
	if err := durable.SyncDir(sp.dir); err != nil {
		return fmt.Errorf("spool block %s: %w", h, err)
	}
	return nil
}

// writeFile is write without the directory fsync, for batches: the caller
// syncs the directory before relying on the records.
func (sp spool) writeFile(h chainhash.Hash, data []byte) error {
	if err := durable.WriteDurable(sp.dir, "."+h.String()+".*"+tmpExt, sp.path(h), data); err != nil {
		return fmt.Errorf("spool block %s: %w", h, err)
	}
	return nil
}

// remove deletes the record of block h once it has a final outcome.
func (sp spool) remove(h chainhash.Hash) error {
	if err := os.Remove(sp.path(h)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove spooled block %s: %w", h, err)
	}
	return nil
}

// moveToFailed moves a spool file into failed/, never overwriting an
// earlier one, and returns its new path.
func (sp spool) moveToFailed(path string) (string, error) {
	base := filepath.Base(path)
	dst := filepath.Join(sp.dir, failedDir, base)
	if _, err := os.Lstat(dst); err == nil {
		dst += "." + strconv.FormatInt(time.Now().UnixNano(), 10)
	}
	if err := os.Rename(path, dst); err != nil {
		return "", fmt.Errorf("move %s to %s: %w", base, failedDir, err)
	}
	if err := durable.SyncDir(filepath.Join(sp.dir, failedDir)); err != nil {
		return dst, err
	}
	return dst, durable.SyncDir(sp.dir)
}

// failRecord writes a record straight into failed/ (for a block given up
// on whose spool write had failed), so that it is never lost silently.
func (sp spool) failRecord(h chainhash.Hash, data []byte) (string, error) {
	dst := filepath.Join(sp.dir, failedDir, h.String()+spoolExt)
	if _, err := os.Lstat(dst); err == nil {
		dst += "." + strconv.FormatInt(time.Now().UnixNano(), 10)
	}
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		return "", fmt.Errorf("write failed block %s: %w", h, err)
	}
	return dst, nil
}

// loadProblem is a spool file that could not be loaded.
type loadProblem struct {
	file    string // base name
	movedTo string // path in failed/, or "" if the move failed too
	err     error
}

// load reads every record in the directory, oldest found first. Complete
// temporary files (a crash between fsync and rename) are adopted;
// undecodable files are moved to failed/ and reported.
func (sp spool) load() ([]*record, []loadProblem, error) {
	des, err := os.ReadDir(sp.dir)
	if err != nil {
		return nil, nil, fmt.Errorf("blocksink: read spool directory: %w", err)
	}
	var recs []*record
	var problems []loadProblem
	seen := map[chainhash.Hash]bool{}
	fail := func(name string, err error) {
		p := loadProblem{file: name, err: err}
		p.movedTo, _ = sp.moveToFailed(filepath.Join(sp.dir, name))
		problems = append(problems, p)
	}
	// Complete records first, so that an adopted temporary file never
	// shadows one.
	names := make([]string, 0, len(des))
	for _, de := range des {
		if de.Type().IsRegular() {
			names = append(names, de.Name())
		}
	}
	slices.SortStableFunc(names, func(a, b string) int {
		return boolCmp(strings.HasSuffix(a, tmpExt), strings.HasSuffix(b, tmpExt))
	})
	for _, name := range names {
		isTmp := strings.HasPrefix(name, ".") && strings.HasSuffix(name, tmpExt)
		if !isTmp && !strings.HasSuffix(name, spoolExt) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(sp.dir, name))
		if err != nil {
			fail(name, err)
			continue
		}
		r, err := decodeRecord(b)
		if err != nil {
			fail(name, err)
			continue
		}
		h := r.fb.BlockHash
		if !isTmp && name != h.String()+spoolExt {
			fail(name, fmt.Errorf("blocksink: spool file name does not match block %s", h))
			continue
		}
		if seen[h] {
			// A temporary copy of a record already loaded: redundant.
			_ = os.Remove(filepath.Join(sp.dir, name))
			continue
		}
		if isTmp {
			if err := os.Rename(filepath.Join(sp.dir, name), sp.path(h)); err != nil {
				fail(name, err)
				continue
			}
			_ = durable.SyncDir(sp.dir)
		}
		seen[h] = true
		recs = append(recs, r)
	}
	slices.SortStableFunc(recs, func(a, b *record) int {
		if c := cmpInt64(a.fb.FoundUnixNano, b.fb.FoundUnixNano); c != 0 {
			return c
		}
		return a.queued.Compare(b.queued)
	})
	return recs, problems, nil
}

// syncDir fsyncs a directory so that renames and new names in it persist.
func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
