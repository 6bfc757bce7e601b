package work

import (
	"encoding/binary"
	"sync"

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
func (d *Dedup) Seen(height int64, h *chainhash.Hash) bool {
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
