package work

import (
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// TestWindowDedup: a share is a duplicate within the window, whatever the
// shard; it is forgotten after two windows or two new heights.
func TestWindowDedup(t *testing.T) {
	now := time.Unix(1700000000, 0)
	d := NewWindowDedup(30*time.Second, func() time.Time { return now })
	hashes := make([]chainhash.Hash, 64)
	for i := range hashes {
		hashes[i] = chainhash.DoubleHashH([]byte{byte(i)})
	}
	for i := range hashes {
		if d.Seen(5, hashes[i]) {
			t.Fatalf("share %d is new", i)
		}
	}
	now = now.Add(20 * time.Second)
	for i := range hashes {
		if !d.Seen(5, hashes[i]) {
			t.Fatalf("share %d again within the window", i)
		}
	}
	now = now.Add(31 * time.Second) // one rotation: still remembered
	for i := range hashes {
		if !d.Seen(5, hashes[i]) {
			t.Fatalf("share %d after one window", i)
		}
	}
	now = now.Add(62 * time.Second) // two more rotations: forgotten
	d.Seen(5, chainhash.Hash{})
	forgotten := 0
	for i := range hashes {
		if !d.Seen(5, hashes[i]) {
			forgotten++
		}
	}
	if forgotten == 0 {
		t.Fatal("nothing forgotten after two windows")
	}
	// A new height retires the older set: after two, a share recorded at
	// the old height is new again (the hash covers the job, so it could
	// not really come back).
	h := hashes[0]
	if !d.Seen(5, h) {
		t.Fatal("just recorded")
	}
	if !d.Seen(6, h) {
		t.Fatal("one new height: the previous set is still checked")
	}
	if d.Seen(7, h) {
		t.Fatal("two new heights: forgotten")
	}
}
