package work

import (
	"crypto/sha256"
	"slices"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/hashgate/hashgate/pkg/blockutil"
	"github.com/hashgate/hashgate/pkg/bus"
)

// benchJob is a job with a 12-level merkle branch (a block of up to 4096
// transactions) and a realistic coinbase (~160 bytes with a witness
// commitment).
func benchJob(b *testing.B) *Job {
	branch := make([]chainhash.Hash, 12)
	for i := range branch {
		branch[i] = chainhash.DoubleHashH([]byte{byte(i)})
	}
	coinb2 := make([]byte, 110)
	j, err := NewJob(&bus.Job{ID: "b", Height: 1, Bits: 0x17034219, Version: 0x20000000, CurTime: 1700000000,
		Coinb1: make([]byte, 45), Coinb2: coinb2, Extranonce1Size: 4, Extranonce2Size: 8, MerkleBranch: branch},
		time.Now())
	if err != nil {
		b.Fatal(err)
	}
	return j
}

// compressions counts the SHA-256 compression function calls one share
// needs: sha256d of the coinbase, 12 merkle levels (64-byte messages: 2
// compressions, then 1 for the second hash), sha256d of the 80-byte header.
func compressions(coinbaseLen, levels int) int {
	blocks := func(n int) int { return (n + 9 + 63) / 64 }
	return blocks(coinbaseLen) + 1 + levels*(blocks(64)+1) + blocks(80) + 1
}

// compressionCost measures one SHA-256 compression: a 64-byte Write into a
// running digest compresses exactly one block. The median of seven runs,
// so one disturbed run does not move the ratio.
func compressionCost() float64 {
	d := sha256.New()
	block := make([]byte, 64)
	runs := make([]float64, 7)
	for r := range runs {
		const reps = 100000
		start := time.Now()
		for i := 0; i < reps; i++ {
			block[0] = byte(i)
			d.Write(block)
		}
		runs[r] = float64(time.Since(start).Nanoseconds()) / reps
	}
	slices.Sort(runs)
	return runs[len(runs)/2]
}

// BenchmarkShareHash_12 measures share hashing (coinbase, 12-level merkle
// branch, header) and reports its cost relative to the bare SHA-256
// compressions it needs.
func BenchmarkShareHash_12(b *testing.B) {
	j := benchJob(b)
	en1, en2 := []byte{1, 2, 3, 4}, make([]byte, 8)
	scratch := make([]byte, 0, 256)
	n := compressions(len(j.Coinb1)+12+len(j.Coinb2), len(j.MerkleBranch))

	// The floor: 43 single-block compressions. blockutil.Hasher hands
	// message and padding blocks to the assembly together where it can,
	// which the floor does not get.
	perCompression := compressionCost()

	b.ReportAllocs()
	b.ResetTimer()
	var h chainhash.Hash
	for i := 0; b.Loop(); i++ {
		h, scratch = j.ShareHash(en1, en2, 1700000000, uint32(i), 0x20000000, scratch)
	}
	_ = h
	perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(float64(n), "compressions/op")
	b.ReportMetric(perOp/(float64(n)*perCompression), "x-sha256-floor")
}

func TestShareHashDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's instrumentation allocates in crypto/sha256")
	}
	j := benchJob(&testing.B{})
	en1, en2 := []byte{1, 2, 3, 4}, make([]byte, 8)
	scratch := make([]byte, 0, 256)
	allocs := testing.AllocsPerRun(100, func() {
		_, scratch = j.ShareHash(en1, en2, 1700000000, 7, 0x20000000, scratch)
	})
	if allocs != 0 {
		t.Fatalf("ShareHash allocates %v times", allocs)
	}
}

// BenchmarkShareHashSum256_12 is the same share hashed with sha256.Sum256
// at every step (no blockutil.Hasher): the reference the Hasher is
// measured against.
func BenchmarkShareHashSum256_12(b *testing.B) {
	j := benchJob(b)
	en1, en2 := []byte{1, 2, 3, 4}, make([]byte, 8)
	cb := make([]byte, 0, 256)
	b.ReportAllocs()
	var h chainhash.Hash
	for i := 0; b.Loop(); i++ {
		cb = append(append(append(append(cb[:0], j.Coinb1...), en1...), en2...), j.Coinb2...)
		first := sha256.Sum256(cb)
		root := blockutil.MerkleRootFromBranch(chainhash.Hash(sha256.Sum256(first[:])), j.MerkleBranch)
		hdr := blockutil.MakeHeader(0x20000000, &j.PrevHash, &root, 1700000000, j.Bits, uint32(i))
		h = hdr.Hash()
	}
	_ = h
}
