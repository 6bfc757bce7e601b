package work

import (
	"encoding/binary"
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
type WindowDedup struct {
	window int64 // nanoseconds
	now    func() time.Time
	shards [windowShards]windowShard
}

const windowShards = 16

type windowShard struct {
	mu      sync.Mutex
	height  int64
	rotated int64
	cur     map[uint64]struct{}
	prev    map[uint64]struct{}
	_       [24]byte
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
		d.shards[i].cur, d.shards[i].prev, d.shards[i].rotated = map[uint64]struct{}{}, map[uint64]struct{}{}, t
	}
	return d
}

// Seen implements Deduper. The hash covers the job, so shares of different
// heights never collide; a new height or the end of a window only retires
// the older set.
func (d *WindowDedup) Seen(height int64, h chainhash.Hash) bool {
	key := binary.LittleEndian.Uint64(h[:8])
	s := &d.shards[h[8]%windowShards]
	t := d.now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	if height > s.height || t-s.rotated > d.window {
		s.height = max(s.height, height)
		s.rotated = t
		clear(s.prev)
		s.prev, s.cur = s.cur, s.prev
	}
	if _, ok := s.cur[key]; ok {
		return true
	}
	if _, ok := s.prev[key]; ok {
		return true
	}
	s.cur[key] = struct{}{}
	return false
}
