package blockutil

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// MaxFutureBlockTime is how far ahead of the network-adjusted time a
// block's timestamp may be (consensus): shares and blocks with a later
// ntime are refused.
const MaxFutureBlockTime = 2 * time.Hour

// HeaderLen is the size of a serialised block header.
const HeaderLen = 80

// Header is a serialised 80-byte block header.
type Header [HeaderLen]byte

// MakeHeader assembles a header from its fields. Hashes are in internal byte
// order. It does not allocate.
func MakeHeader(version int32, prev, merkleRoot *chainhash.Hash, ntime, bits, nonce uint32) Header {
	var h Header
	binary.LittleEndian.PutUint32(h[0:4], uint32(version))
	copy(h[4:36], prev[:])
	copy(h[36:68], merkleRoot[:])
	binary.LittleEndian.PutUint32(h[68:72], ntime)
	binary.LittleEndian.PutUint32(h[72:76], bits)
	binary.LittleEndian.PutUint32(h[76:80], nonce)
	return h
}

// Hash returns the block hash (sha256d of the header, internal byte order).
func (h *Header) Hash() chainhash.Hash {
	return chainhash.DoubleHashH(h[:])
}

// Version returns the header's version field.
func (h *Header) Version() int32 { return int32(binary.LittleEndian.Uint32(h[0:4])) }

// PrevHash returns the previous block hash.
func (h *Header) PrevHash() chainhash.Hash {
	var p chainhash.Hash
	copy(p[:], h[4:36])
	return p
}

// MerkleRoot returns the merkle root field.
func (h *Header) MerkleRoot() chainhash.Hash {
	var p chainhash.Hash
	copy(p[:], h[36:68])
	return p
}

// Time returns the ntime field.
func (h *Header) Time() uint32 { return binary.LittleEndian.Uint32(h[68:72]) }

// Bits returns the compact target field.
func (h *Header) Bits() uint32 { return binary.LittleEndian.Uint32(h[72:76]) }

// Nonce returns the nonce field.
func (h *Header) Nonce() uint32 { return binary.LittleEndian.Uint32(h[76:80]) }

// CheckPoW reports whether the header's hash meets the target its own bits
// encode, and whether those bits are within powLimit.
func (h *Header) CheckPoW(powLimit Target) error {
	t := TargetFromBits(h.Bits())
	if t == (Target{}) || t.Cmp(powLimit) > 0 {
		return fmt.Errorf("blockutil: header bits %08x out of range", h.Bits())
	}
	hash := h.Hash()
	if !HashMeets(&hash, &t) {
		return fmt.Errorf("blockutil: header %s does not meet its target %08x", hash, h.Bits())
	}
	return nil
}

// StratumPrevHash returns a previous-block hash in the form mining.notify
// carries it: the internal byte order with each 4-byte word byte-swapped.
func StratumPrevHash(prev *chainhash.Hash) string {
	var b [32]byte
	for i := 0; i < 32; i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = prev[i+3], prev[i+2], prev[i+1], prev[i]
	}
	return hex.EncodeToString(b[:])
}
