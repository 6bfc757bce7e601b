package app

import (
	"bytes"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/hashgate/hashgate/pkg/extranonce"
)

// grantedExtranonce implements session.Extranonce for miners behind the
// agent: every extranonce1 is the prefix the gateway granted followed by a
// per-miner suffix (extranonce.NewPlain), so the agent's miners never
// collide with each other or with any other miner of the pool. A miner
// resumes its extranonce1 (mining.subscribe with its previous session id)
// as on a gateway, while the prefix stays the same.
type grantedExtranonce struct {
	window time.Duration

	mu     sync.Mutex
	prefix []byte
	suffix *extranonce.Allocator // nil before the first Welcome
}

// set installs the layout of a new gateway session; moved reports that
// extranonce1 values handed out before are no longer valid.
func (g *grantedExtranonce) set(prefix []byte, suffixSize int) (moved bool, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.suffix != nil && bytes.Equal(prefix, g.prefix) && g.suffix.Size() == suffixSize {
		return false, nil
	}
	if suffixSize < 1 || suffixSize > 8 {
		return g.suffix != nil, errors.New("extranonce1 suffix size must be 1..8 bytes")
	}
	a, err := extranonce.NewPlain(suffixSize, g.window, nil)
	if err != nil {
		return g.suffix != nil, err
	}
	moved = g.suffix != nil
	g.prefix, g.suffix = append([]byte(nil), prefix...), a
	return moved, nil
}

// Size implements session.Extranonce.
func (g *grantedExtranonce) Size() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.suffix == nil {
		return 0
	}
	return len(g.prefix) + g.suffix.Size()
}

var errNoSpace = errors.New("no extranonce space granted by a gateway yet")

// Allocate implements session.Extranonce.
func (g *grantedExtranonce) Allocate(dst []byte, resume string) (bool, error) {
	g.mu.Lock()
	prefix, a := g.prefix, g.suffix
	g.mu.Unlock()
	if a == nil || len(dst) != len(prefix)+a.Size() {
		return false, errNoSpace
	}
	copy(dst, prefix)
	var sfx string
	if raw, err := hex.DecodeString(resume); err == nil && len(raw) == len(dst) && bytes.HasPrefix(raw, prefix) {
		sfx = hex.EncodeToString(raw[len(prefix):])
	}
	return a.Allocate(dst[len(prefix):], sfx)
}

// Release implements session.Extranonce.
func (g *grantedExtranonce) Release(en1 []byte) {
	g.mu.Lock()
	prefix, a := g.prefix, g.suffix
	g.mu.Unlock()
	if a != nil && len(en1) == len(prefix)+a.Size() && bytes.HasPrefix(en1, prefix) {
		a.Release(en1[len(prefix):])
	}
}

func (g *grantedExtranonce) sweep() {
	g.mu.Lock()
	a := g.suffix
	g.mu.Unlock()
	if a != nil {
		a.Sweep()
	}
}

func (g *grantedExtranonce) counts() (inUse, parked int) {
	g.mu.Lock()
	a := g.suffix
	g.mu.Unlock()
	if a == nil {
		return 0, 0
	}
	return a.Counts()
}
