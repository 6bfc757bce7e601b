package blockutil

import (
	"crypto/sha256"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// MerkleRoot returns the Bitcoin merkle root of hashes (internal byte order),
// duplicating the last hash of odd levels. An empty list gives the zero hash.
func MerkleRoot(hashes []chainhash.Hash) chainhash.Hash {
	if len(hashes) == 0 {
		return chainhash.Hash{}
	}
	level := append([]chainhash.Hash(nil), hashes...)
	for len(level) > 1 {
		if len(level)%2 == 1 {
			level = append(level, level[len(level)-1])
		}
		next := level[:0]
		for i := 0; i < len(level); i += 2 {
			next = append(next, hashPair(&level[i], &level[i+1]))
		}
		level = next
	}
	return level[0]
}

// MerkleBranch returns the Stratum merkle branch for a block whose
// non-coinbase transactions have the given txids: the sibling hashes on the
// path from the coinbase (leaf 0) to the root, lowest level first. An empty
// block gives an empty branch.
func MerkleBranch(txids []chainhash.Hash) []chainhash.Hash {
	// Level 0 with a placeholder for the coinbase; only index 0's path
	// matters, and it never reads the placeholder.
	level := make([]chainhash.Hash, 0, len(txids)+2)
	level = append(level, chainhash.Hash{})
	level = append(level, txids...)
	var branch []chainhash.Hash
	for len(level) > 1 {
		if len(level)%2 == 1 {
			level = append(level, level[len(level)-1])
		}
		branch = append(branch, level[1])
		next := level[:1]
		for i := 2; i < len(level); i += 2 {
			next = append(next, hashPair(&level[i], &level[i+1]))
		}
		level = next
	}
	return branch
}

// MerkleRootFromBranch folds a coinbase txid up a Stratum merkle branch. It
// does not allocate.
func MerkleRootFromBranch(coinbase chainhash.Hash, branch []chainhash.Hash) chainhash.Hash {
	root := coinbase
	for i := range branch {
		root = hashPair(&root, &branch[i])
	}
	return root
}

// hashPair returns sha256d(a || b) without allocating.
func hashPair(a, b *chainhash.Hash) chainhash.Hash {
	var buf [64]byte
	copy(buf[:32], a[:])
	copy(buf[32:], b[:])
	first := sha256.Sum256(buf[:])
	return chainhash.Hash(sha256.Sum256(first[:]))
}
