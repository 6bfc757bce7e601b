package blockutil

import (
	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// witnessMagic is the BIP141 commitment header: OP_RETURN, push 36, aa21a9ed.
var witnessMagic = []byte{0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed}

// WitnessCommitment returns the BIP141 commitment for a block whose
// non-coinbase transactions have the given wtxids (in block order):
// sha256d(witness merkle root || witness reserved value), where the coinbase's
// wtxid counts as 32 zero bytes.
func WitnessCommitment(wtxids []chainhash.Hash) chainhash.Hash {
	leaves := make([]chainhash.Hash, 0, len(wtxids)+1)
	leaves = append(leaves, chainhash.Hash{})
	leaves = append(leaves, wtxids...)
	root := MerkleRoot(leaves)
	var buf [64]byte
	copy(buf[:32], root[:])
	copy(buf[32:], WitnessReservedValue[:])
	return chainhash.DoubleHashH(buf[:])
}

// WitnessCommitmentScript returns the OP_RETURN output script carrying a
// witness commitment.
func WitnessCommitmentScript(commitment chainhash.Hash) []byte {
	s := make([]byte, 0, len(witnessMagic)+32)
	s = append(s, witnessMagic...)
	return append(s, commitment[:]...)
}
