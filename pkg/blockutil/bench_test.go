package blockutil

import (
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// BenchmarkMerkleRootFromBranch_12 folds a coinbase txid up a 12-level
// branch (a block of up to 4096 transactions). Each level is sha256d of 64
// bytes: 3 SHA-256 compressions, 36 in all. It must not allocate.
func BenchmarkMerkleRootFromBranch_12(b *testing.B) {
	branch := make([]chainhash.Hash, 12)
	for i := range branch {
		branch[i] = chainhash.DoubleHashH([]byte{byte(i)})
	}
	cb := chainhash.DoubleHashH([]byte("coinbase"))
	b.ReportAllocs()
	var root chainhash.Hash
	for b.Loop() {
		root = MerkleRootFromBranch(cb, branch)
	}
	_ = root
}

// BenchmarkHeaderCheck assembles an 80-byte header, hashes it and compares
// it with a target: the tail of every share validation.
func BenchmarkHeaderCheck(b *testing.B) {
	prev := chainhash.DoubleHashH([]byte("prev"))
	root := chainhash.DoubleHashH([]byte("root"))
	tgt := TargetFromBits(0x1d00ffff)
	b.ReportAllocs()
	n := uint32(0)
	for b.Loop() {
		h := MakeHeader(0x20000000, &prev, &root, 1700000000, 0x17034219, n)
		hash := h.Hash()
		_ = HashMeets(&hash, &tgt)
		_ = HashDifficulty(&hash)
		n++
	}
}

func TestHotPathsDoNotAllocate(t *testing.T) {
	branch := make([]chainhash.Hash, 12)
	cb := chainhash.DoubleHashH([]byte("coinbase"))
	prev := chainhash.DoubleHashH([]byte("prev"))
	tgt := TargetFromBits(0x1d00ffff)
	allocs := testing.AllocsPerRun(100, func() {
		root := MerkleRootFromBranch(cb, branch)
		h := MakeHeader(0x20000000, &prev, &root, 1700000000, 0x17034219, 7)
		hash := h.Hash()
		_ = HashMeets(&hash, &tgt)
		_ = HashDifficulty(&hash)
	})
	if allocs != 0 {
		t.Fatalf("share hot path allocates %v times", allocs)
	}
}
