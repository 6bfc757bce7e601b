// Package extranonce hands out extranonce1 values that are unique across
// every gateway of the cluster and lets a reconnecting miner resume its old
// one.
//
// An extranonce1 is the gateway id (first byte) followed by a counter, so
// two gateways never collide without talking to each other. Released values
// are parked for the resume window: a client that subscribes again with its
// previous session id (the hex of its extranonce1) within that window gets
// it back, so its in-flight work stays valid. Parked values are not reused
// before the window ends.
//
// Safe for concurrent use.
package extranonce

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"sync"
	"time"
)

// ErrExhausted means every value is in use or parked.
var ErrExhausted = errors.New("extranonce: no free extranonce1")

// Allocator allocates extranonce1 values of a fixed size (1..8 bytes).
type Allocator struct {
	size   int
	id     byte
	noID   bool // every byte is counter (NewPlain)
	window time.Duration
	now    func() time.Time

	mu   sync.Mutex
	next uint64
	// The values in use: a bitmap (used, nUsed values) for a small space
	// (small), 8 KB for the mineragent's two-byte suffixes where a map
	// takes some 36 bytes per value; a map otherwise.
	small  bool
	used   []uint64
	nUsed  int
	inUse  map[uint64]struct{}
	parked map[uint64]time.Time
	space  uint64 // number of counter values
}

// bitmapSpace is the largest space whose values in use are a bitmap.
const bitmapSpace = 1 << 16

// busy reports whether v is in use.
func (a *Allocator) busy(v uint64) bool {
	if a.small {
		return a.used != nil && a.used[v/64]&(1<<(v%64)) != 0
	}
	_, ok := a.inUse[v]
	return ok
}

// take marks v, not in use, as in use.
func (a *Allocator) take(v uint64) {
	if a.small {
		if a.used == nil {
			a.used = make([]uint64, (a.space+63)/64)
		}
		a.used[v/64] |= 1 << (v % 64)
		a.nUsed++
		return
	}
	a.inUse[v] = struct{}{}
}

// free marks v as not in use.
func (a *Allocator) free(v uint64) {
	if !a.small {
		delete(a.inUse, v)
		return
	}
	if a.busy(v) {
		a.used[v/64] &^= 1 << (v % 64)
		a.nUsed--
	}
}

// New returns an allocator for a gateway id. size is the extranonce1 size
// in bytes; with one byte there is no room for the id and only the counter
// is used.
func New(size int, gatewayID byte, window time.Duration, now func() time.Time) (*Allocator, error) {
	if size < 1 || size > 8 {
		return nil, errors.New("extranonce: size must be 1..8 bytes")
	}
	if now == nil {
		now = time.Now
	}
	bits := uint(8 * (size - 1))
	if size == 1 {
		bits = 8
	}
	a := &Allocator{size: size, id: gatewayID, window: window, now: now,
		inUse: map[uint64]struct{}{}, parked: map[uint64]time.Time{}}
	if bits >= 64 {
		a.space = 1<<63 - 1
	} else {
		a.space = 1 << bits
	}
	// Start from a time-derived point so a restarted gateway does not hand
	// out the values its previous run gave to miners still holding work.
	a.next = uint64(now().UnixNano()/int64(time.Millisecond)) % a.space
	a.small = a.space <= bitmapSpace
	return a, nil
}

// NewPlain returns an allocator whose values are all counter, with no
// gateway id byte: the mineragent's per-miner extranonce1 suffixes, which
// follow a prefix the gateway granted. size is 1..8 bytes.
func NewPlain(size int, window time.Duration, now func() time.Time) (*Allocator, error) {
	a, err := New(size, 0, window, now)
	if err != nil {
		return nil, err
	}
	a.noID = true
	if size < 8 {
		a.space = 1 << (8 * uint(size))
	}
	a.next %= a.space
	a.small = a.space <= bitmapSpace
	return a, nil
}

// Size returns the extranonce1 size in bytes.
func (a *Allocator) Size() int { return a.size }

func (a *Allocator) encode(v uint64, dst []byte) {
	var buf [8]byte
	if a.noID {
		binary.BigEndian.PutUint64(buf[:], v)
		copy(dst, buf[8-a.size:])
		return
	}
	if a.size == 1 {
		dst[0] = byte(v)
		return
	}
	binary.BigEndian.PutUint64(buf[:], v)
	dst[0] = a.id
	copy(dst[1:], buf[8-(a.size-1):])
}

func (a *Allocator) decode(b []byte) (uint64, bool) {
	if len(b) != a.size {
		return 0, false
	}
	if a.noID {
		var buf [8]byte
		copy(buf[8-a.size:], b)
		return binary.BigEndian.Uint64(buf[:]), true
	}
	if a.size == 1 {
		return uint64(b[0]), true
	}
	if b[0] != a.id {
		return 0, false
	}
	var buf [8]byte
	copy(buf[8-(a.size-1):], b[1:])
	return binary.BigEndian.Uint64(buf[:]), true
}

// Allocate returns a fresh extranonce1 written into dst (len(dst) == Size).
// If resume is the session id of a value parked within the window (or one
// never seen by this process but carrying our gateway id, after a restart),
// that value is returned and resumed is true.
func (a *Allocator) Allocate(dst []byte, resume string) (resumed bool, err error) {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if resume != "" {
		if raw, err := hex.DecodeString(resume); err == nil {
			if v, ok := a.decode(raw); ok {
				if !a.busy(v) {
					if at, parked := a.parked[v]; parked && now.Sub(at) <= a.window {
						delete(a.parked, v)
						a.take(v)
						a.encode(v, dst)
						return true, nil
					}
				}
			}
		}
	}
	for tries := uint64(0); tries < a.space; tries++ {
		v := a.next
		a.next = (a.next + 1) % a.space
		if a.busy(v) {
			continue
		}
		if at, parked := a.parked[v]; parked {
			if now.Sub(at) <= a.window {
				continue
			}
			delete(a.parked, v)
		}
		a.take(v)
		a.encode(v, dst)
		return false, nil
	}
	return false, ErrExhausted
}

// Release parks a value for the resume window.
func (a *Allocator) Release(en1 []byte) {
	v, ok := a.decode(en1)
	if !ok {
		return
	}
	now := a.now()
	a.mu.Lock()
	a.free(v)
	if a.window > 0 {
		a.parked[v] = now
	}
	a.mu.Unlock()
}

// Sweep forgets parked values whose window has passed.
func (a *Allocator) Sweep() {
	now := a.now()
	a.mu.Lock()
	for v, at := range a.parked {
		if now.Sub(at) > a.window {
			delete(a.parked, v)
		}
	}
	a.mu.Unlock()
}

// Counts returns the values in use and parked.
func (a *Allocator) Counts() (inUse, parked int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.small {
		return a.nUsed, len(a.parked)
	}
	return len(a.inUse), len(a.parked)
}
