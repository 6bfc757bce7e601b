package blockutil

import (
	"crypto/sha256"
	"sync"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

func TestHasherMatchesSum256(t *testing.T) {
	if !hasherWorks() {
		t.Fatal("the digest's AppendBinary layout changed: the Hasher falls back to sha256.Sum256 everywhere")
	}
	h := NewHasher()
	msg := make([]byte, 0, 400)
	for n := 0; n <= 300; n++ {
		msg = msg[:n]
		for i := range msg {
			msg[i] = byte(i*31 + n)
		}
		want := chainhash.DoubleHashH(msg)
		roomy := GrowForPadding(append([]byte(nil), msg...))
		if got := h.DoubleHash(roomy, n); got != want {
			t.Fatalf("DoubleHash of %d bytes with room: %s, want %s", n, got, want)
		}
		if string(roomy) != string(msg) {
			t.Fatalf("DoubleHash changed the message of %d bytes", n)
		}
		tight := append([]byte(nil), msg...)[:n:n]
		if got := h.DoubleHash(tight, n); got != want {
			t.Fatalf("DoubleHash of %d bytes without room: %s, want %s", n, got, want)
		}
	}
	var a, b chainhash.Hash
	branch := make([]chainhash.Hash, 12)
	for i := range branch {
		branch[i] = chainhash.HashH([]byte{byte(i)})
	}
	for i := 0; i < 50; i++ {
		a, b = chainhash.HashH(a[:]), chainhash.HashH(b[:1+i%5])
		if got, want := h.HashPair(&a, &b), hashPair(&a, &b); got != want {
			t.Fatalf("HashPair %d: %s, want %s", i, got, want)
		}
		hdr := MakeHeader(int32(i), &a, &b, uint32(i), 0x207fffff, uint32(i*7))
		if got, want := h.HeaderHash(&hdr), hdr.Hash(); got != want {
			t.Fatalf("HeaderHash %d: %s, want %s", i, got, want)
		}
		if got, want := h.MerkleRootFromBranch(a, branch[:i%13]), MerkleRootFromBranch(a, branch[:i%13]); got != want {
			t.Fatalf("MerkleRootFromBranch %d: %s, want %s", i, got, want)
		}
	}
}

func TestHasherFallback(t *testing.T) {
	h := NewHasher()
	h.app = nil // as if the digest did not offer its state
	msg := GrowForPadding([]byte("fallback"))
	if got, want := h.DoubleHash(msg, len(msg)), chainhash.DoubleHashH([]byte("fallback")); got != want {
		t.Fatalf("fallback DoubleHash %s, want %s", got, want)
	}
	var a, b chainhash.Hash
	b[0] = 1
	if h.HashPair(&a, &b) != hashPair(&a, &b) {
		t.Fatal("fallback HashPair")
	}
	hdr := MakeHeader(1, &a, &b, 2, 3, 4)
	if h.HeaderHash(&hdr) != hdr.Hash() {
		t.Fatal("fallback HeaderHash")
	}
}

func TestHasherPoolConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				h := GetHasher()
				var a, b chainhash.Hash
				a[0], b[0] = byte(g), byte(i)
				got := h.HashPair(&a, &b)
				PutHasher(h)
				if got != hashPair(&a, &b) {
					t.Errorf("goroutine %d pair %d differs", g, i)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}

func TestHasherDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's instrumentation allocates in crypto/sha256 AppendBinary")
	}
	h := NewHasher()
	msg := GrowForPadding(make([]byte, 167))
	var a, b chainhash.Hash
	hdr := MakeHeader(1, &a, &b, 2, 3, 4)
	allocs := testing.AllocsPerRun(100, func() {
		c := h.DoubleHash(msg, len(msg))
		r := h.HashPair(&c, &b)
		_ = h.HeaderHash(&hdr)
		_ = r
	})
	if allocs != 0 {
		t.Fatalf("Hasher allocates %v times", allocs)
	}
}

// BenchmarkPair compares a merkle node hashed with sha256.Sum256 twice and
// with the Hasher (message and padding in one block-function call).
func BenchmarkPair(b *testing.B) {
	var x, y chainhash.Hash
	b.Run("Sum256", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			x[0] = byte(i)
			x = hashPair(&x, &y)
		}
	})
	b.Run("Hasher", func(b *testing.B) {
		h := NewHasher()
		for i := 0; b.Loop(); i++ {
			x[0] = byte(i)
			x = h.HashPair(&x, &y)
		}
	})
	_ = sha256.Size
}
