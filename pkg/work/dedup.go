package work

import (
	"encoding/binary"
	"math/bits"
	"slices"
	"sync"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

const dedupShards = 64

// Dedup detects duplicate shares. The key is the share's block hash, which
// covers the job, extranonce1, extranonce2, ntime, nonce and the rolled
// version bits, so ASICBoost miners never see false duplicates. Sets are
// kept per height: the current one and the previous (for the grace period);
// a new height retires the older set in O(1). Safe for concurrent use.
type Dedup struct {
	shards [dedupShards]dedupShard
}

type dedupShard struct {
	mu     sync.Mutex
	height int64
	cur    map[[16]byte]struct{}
	prev   map[[16]byte]struct{}
	_      [32]byte // keep shards on separate cache lines
}

// NewDedup returns an empty set.
func NewDedup() *Dedup {
	d := &Dedup{}
	for i := range d.shards {
		d.shards[i].cur = make(map[[16]byte]struct{})
	}
	return d
}

// Seen records the share hash for height and reports whether it was already
// there.
func (d *Dedup) Seen(height int64, h chainhash.Hash) bool {
	var key [16]byte
	copy(key[:], h[:16])
	s := &d.shards[binary.LittleEndian.Uint32(h[16:20])%dedupShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case height > s.height:
		s.prev, s.cur, s.height = s.cur, make(map[[16]byte]struct{}), height
	case height < s.height:
		if s.prev == nil {
			s.prev = make(map[[16]byte]struct{})
		}
		if _, ok := s.prev[key]; ok {
			return true
		}
		s.prev[key] = struct{}{}
		return false
	}
	if _, ok := s.cur[key]; ok {
		return true
	}
	s.cur[key] = struct{}{}
	return false
}

// Deduper is a duplicate-share filter: Seen records a share's hash (of a
// job at height) and reports whether it was recorded before.
type Deduper interface {
	Seen(height int64, h chainhash.Hash) bool
}

var (
	_ Deduper = (*Dedup)(nil)
	_ Deduper = (*WindowDedup)(nil)
)

// WindowDedup is a duplicate filter with bounded memory, for the
// mineragent: it remembers the shares of the last one to two windows (and
// forgets them sooner on a new height), under 64-bit keys. A duplicate sent
// later than that is not caught here but by the gateway, which checks every
// share again against its per-height Dedup. With at most a few hundred
// thousand shares remembered, a false duplicate from a 64-bit key
// collision is rarer than once in a billion windows. Safe for concurrent
// use.
//
// Memory: each shard keeps its keys in sorted runs (a generation is a
// sorted slice plus a short unsorted tail of the newest keys, merged into
// it when full), 8 to 10 bytes per key where a map[uint64]struct{} takes
// 20 to 40. A lookup is a search in each run (the keys are hash bits, so
// it starts close to the place) and a scan of the tail.
type WindowDedup struct {
	window int64 // nanoseconds
	now    func() time.Time
	shards [windowShards]windowShard
}

const (
	windowShards = 16
	// windowTail bounds the unsorted tail of a shard's current generation:
	// a lookup scans it, and every windowTail new keys it is merged into
	// the sorted run.
	windowTail = 128
)

type windowShard struct {
	mu      sync.Mutex
	height  int64
	rotated int64
	// The current generation is cur (sorted) and tail (unsorted, at most
	// windowTail); the previous one is prev (sorted). Every key is in one
	// of them at most once.
	tail []uint64
	cur  []uint64
	prev []uint64
	_    [32]byte // keep shards on separate cache lines
}

// NewWindowDedup returns an empty filter remembering shares for window (at
// least; at most twice that). now is the clock (nil: time.Now).
func NewWindowDedup(window time.Duration, now func() time.Time) *WindowDedup {
	if now == nil {
		now = time.Now
	}
	d := &WindowDedup{window: int64(window), now: now}
	t := now().UnixNano()
	for i := range d.shards {
		d.shards[i].tail, d.shards[i].rotated = make([]uint64, 0, windowTail), t
	}
	return d
}

// Seen implements Deduper. The hash covers the job, so shares of different
// heights never collide; a new height or the end of a window only retires
// the older generation.
func (d *WindowDedup) Seen(height int64, h chainhash.Hash) bool {
	key := binary.LittleEndian.Uint64(h[:8])
	s := &d.shards[h[8]%windowShards]
	t := d.now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	if height > s.height || t-s.rotated > d.window {
		s.height = max(s.height, height)
		s.rotated = t
		s.mergeTail()
		s.prev, s.cur = s.cur, s.prev[:0]
	}
	if sortedHas(s.cur, key) || sortedHas(s.prev, key) || slices.Contains(s.tail, key) {
		return true
	}
	s.tail = append(s.tail, key)
	if len(s.tail) == windowTail {
		s.mergeTail()
	}
	return false
}

// mergeTail sorts the tail and merges it into cur (in place, from the
// back: both hold distinct keys, and none of the tail's is in cur).
func (s *windowShard) mergeTail() {
	if len(s.tail) == 0 {
		return
	}
	slices.Sort(s.tail)
	n, m := len(s.cur), len(s.tail)
	s.cur = slices.Grow(s.cur, m)[:n+m]
	i, j := n-1, m-1
	for k := n + m - 1; j >= 0; k-- {
		if i >= 0 && s.cur[i] > s.tail[j] {
			s.cur[k] = s.cur[i]
			i--
		} else {
			s.cur[k] = s.tail[j]
			j--
		}
	}
	s.tail = s.tail[:0]
}

// sortedHas reports whether the sorted keys hold key. The keys are hash
// bits, spread evenly: the search starts where key would be in an even
// spread (a few dozen places off, typically) and walks from there; it
// falls back to a binary search when the walk is long (keys not spread
// evenly).
func sortedHas(keys []uint64, key uint64) bool {
	n := len(keys)
	if n == 0 {
		return false
	}
	guess, _ := bits.Mul64(key, uint64(n))
	i := int(guess)
	const walk = 64
	lo, hi := 0, n // the first index whose key is >= key is in [lo, hi]
	if keys[i] < key {
		for end := min(i+walk, n); ; {
			i++
			if i == end {
				lo = i
				break
			}
			if keys[i] >= key {
				return keys[i] == key
			}
		}
	} else {
		for end := max(i-walk, 0); ; {
			if i == end {
				hi = i
				break
			}
			if keys[i-1] < key {
				return keys[i] == key
			}
			i--
		}
	}
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if keys[mid] < key {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo < n && keys[lo] == key
}
