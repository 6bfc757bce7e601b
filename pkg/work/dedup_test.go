package work

import (
	"encoding/binary"
	"math/rand/v2"
	"runtime"
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

// windowLoad feeds d with distinct shares at rate per second for secs
// seconds of the fake clock *now.
func windowLoad(d *WindowDedup, now *time.Time, seed uint64, rate, secs int) {
	for s := 0; s < secs; s++ {
		for i := 0; i < rate; i++ {
			seed++
			var h chainhash.Hash
			binary.LittleEndian.PutUint64(h[:8], seed*0x9e3779b97f4a7c15)
			binary.LittleEndian.PutUint64(h[8:16], seed*0xc2b2ae3d27d4eb4f)
			if d.Seen(5, h) {
				panic("false duplicate")
			}
			*now = now.Add(time.Second / time.Duration(rate))
		}
	}
}

// TestWindowDedupMemory reports the live heap of the mineragent's
// duplicate filter at 10,000 miners × 0.2 shares/s (2,000 shares/s, a 30 s
// window): after a steady minute and a half, per share of one window. It
// prints the figure (run with -v); it judges nothing.
func TestWindowDedupMemory(t *testing.T) {
	const rate, window = 2000, 30
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	now := time.Unix(1700000000, 0)
	h0 := heap()
	d := NewWindowDedup(window*time.Second, func() time.Time { return now })
	windowLoad(d, &now, 0, rate, 3*window)
	h1 := heap()
	t.Logf("window dedup at %d shares/s, %d s window: %.0f kB, %.1f B per share of a window",
		rate, window, float64(h1-h0)/1e3, float64(h1-h0)/(rate*window))
	runtime.KeepAlive(d)
}

// BenchmarkWindowDedup: one new share in a steady window (2,000 shares/s,
// 30 s), rotations included.
func BenchmarkWindowDedup(b *testing.B) {
	now := time.Unix(1700000000, 0)
	d := NewWindowDedup(30*time.Second, func() time.Time { return now })
	windowLoad(d, &now, 0, 2000, 60)
	hs := make([]chainhash.Hash, 1<<16)
	for i := range hs {
		hs[i] = chainhash.DoubleHashH(binary.LittleEndian.AppendUint64(nil, uint64(i)))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		h := hs[i&(len(hs)-1)]
		binary.LittleEndian.PutUint64(h[24:], uint64(i)) // distinct shares, the same spread
		binary.LittleEndian.PutUint64(h[:8], binary.LittleEndian.Uint64(h[:8])^uint64(i>>16))
		d.Seen(5, h)
		now = now.Add(time.Second / 2000)
	}
}

// refWindowDedup is the filter's rule with maps: the reference the sorted
// runs must answer exactly like.
type refWindowDedup struct {
	window          int64
	height, rotated [windowShards]int64
	cur, prev       [windowShards]map[uint64]bool
}

func (r *refWindowDedup) seen(t, height int64, h chainhash.Hash) bool {
	key, i := binary.LittleEndian.Uint64(h[:8]), h[8]%windowShards
	if r.cur[i] == nil {
		r.cur[i], r.prev[i], r.rotated[i] = map[uint64]bool{}, map[uint64]bool{}, t
	}
	if height > r.height[i] || t-r.rotated[i] > r.window {
		r.height[i], r.rotated[i] = max(r.height[i], height), t
		r.prev[i], r.cur[i] = r.cur[i], map[uint64]bool{}
	}
	if r.cur[i][key] || r.prev[i][key] {
		return true
	}
	r.cur[i][key] = true
	return false
}

// TestWindowDedupMatchesMaps: over a long random run (repeats near and
// far, new heights, idle gaps, keys crowded in a narrow range), the filter
// answers exactly as the map-based rule: no false duplicate, none missed.
func TestWindowDedupMatchesMaps(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Unix(1700000000, 0)
	d := NewWindowDedup(30*time.Second, func() time.Time { return now })
	ref := &refWindowDedup{window: int64(30 * time.Second)}
	t0 := now.UnixNano()
	for i := range ref.rotated {
		ref.cur[i], ref.prev[i], ref.rotated[i] = map[uint64]bool{}, map[uint64]bool{}, t0
	}
	var sent []chainhash.Hash
	height := int64(5)
	dups := 0
	for n := 0; n < 300000; n++ {
		var h chainhash.Hash
		switch r := rng.IntN(100); {
		case r < 10 && len(sent) > 0: // a repeat, recent or old
			h = sent[len(sent)-1-rng.IntN(min(len(sent), 1+rng.IntN(100000)))]
		case r < 20: // keys crowded together (not spread like hash bits)
			binary.LittleEndian.PutUint64(h[:8], 1<<40+rng.Uint64N(5000))
			h[8] = byte(rng.IntN(3))
		default:
			binary.LittleEndian.PutUint64(h[:8], rng.Uint64())
			h[8] = byte(rng.IntN(256))
		}
		sent = append(sent, h)
		switch r := rng.IntN(100000); {
		case r < 3:
			height++
		case r < 6:
			now = now.Add(time.Duration(rng.IntN(90)) * time.Second)
		}
		now = now.Add(time.Duration(rng.IntN(1000)) * time.Microsecond)
		got, want := d.Seen(height, h), ref.seen(now.UnixNano(), height, h)
		if got != want {
			t.Fatalf("share %d: Seen %v, want %v", n, got, want)
		}
		if got {
			dups++
		}
	}
	if dups < 1000 {
		t.Fatalf("only %d duplicates exercised", dups)
	}
}

func TestSortedHas(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 5, 8, 63, 64, 65, 100, 1000} {
		for _, spread := range []uint64{1, 3, 1 << 20, 1 << 50, 1<<64/1001 + 1} {
			keys := make([]uint64, n)
			set := map[uint64]bool{}
			for i := range keys {
				keys[i] = uint64(i)*spread + 7
				set[keys[i]] = true
			}
			probes := []uint64{0, 1, 6, 7, 8, 1<<64 - 1, 1 << 63}
			for _, k := range keys {
				probes = append(probes, k, k-1, k+1)
			}
			for _, p := range probes {
				if sortedHas(keys, p) != set[p] {
					t.Fatalf("n %d spread %d key %d: got %v", n, spread, p, !set[p])
				}
			}
		}
	}
}
