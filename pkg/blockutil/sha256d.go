package blockutil

import (
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"hash"
	"sync"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// Hasher computes the double SHA-256 of the short messages a share needs
// (coinbase, merkle pairs, header) faster than sha256.Sum256.
//
// sha256.Sum256 of a 64-byte message compresses the message block and then
// the padding block in two calls of the block function; the amd64 assembly
// interleaves the message schedules of two blocks when it gets them in one
// call, and the padding of a 64-, 32- or 80-byte message is a constant. So
// the Hasher writes message and padding together into a running digest and
// reads the state out with AppendBinary instead of Sum (which would pad a
// second time). A 12-level merkle branch costs about a quarter less.
//
// A Hasher is not safe for concurrent use; GetHasher and PutHasher share a
// pool of them. It never allocates after construction. If the digest does
// not offer its state in the expected layout (checked once against
// sha256.Sum256), every method falls back to sha256.Sum256.
type Hasher struct {
	d     hash.Hash
	app   encoding.BinaryAppender
	state []byte    // AppendBinary output: "sha\x03" | h0..h7 big endian | block | length
	pair  [128]byte // 64-byte message | its padding
	one   [64]byte  // 32-byte message | its padding
	hdr   [128]byte // 80-byte header | its padding
}

// hasherWorks reports whether the running digest exposes its state as
// AppendBinary does in Go 1.24 and later ("sha\x03", then the eight state
// words big endian): one merkle pair hashed both ways must agree.
var hasherWorks = sync.OnceValue(func() bool {
	h := buildHasher()
	var m [64]byte
	for i := range m {
		m[i] = byte(i)
	}
	var b chainhash.Hash
	copy(b[:], m[32:])
	var a chainhash.Hash
	copy(a[:], m[:32])
	return h.HashPair(&a, &b) == chainhash.DoubleHashH(m[:])
})

func buildHasher() *Hasher {
	h := &Hasher{d: sha256.New(), state: make([]byte, 0, 128)}
	h.app, _ = h.d.(encoding.BinaryAppender)
	pad(h.pair[:], 64)
	pad(h.one[:], 32)
	pad(h.hdr[:], HeaderLen)
	return h
}

// NewHasher returns a Hasher.
func NewHasher() *Hasher {
	h := buildHasher()
	if !hasherWorks() {
		h.app = nil
	}
	return h
}

var hashers = sync.Pool{New: func() any { return NewHasher() }}

// GetHasher takes a Hasher from a shared pool; give it back with PutHasher.
func GetHasher() *Hasher { return hashers.Get().(*Hasher) }

// PutHasher returns h to the pool.
func PutHasher(h *Hasher) { hashers.Put(h) }

// pad writes the SHA-256 padding of an n-byte message into b[n:], which
// must end exactly at a block boundary.
func pad(b []byte, n int) {
	b[n] = 0x80
	clear(b[n+1 : len(b)-8])
	binary.BigEndian.PutUint64(b[len(b)-8:], uint64(n)*8)
}

// paddedLen is the length of an n-byte message with its padding.
func paddedLen(n int) int { return (n + 9 + 63) &^ 63 }

// sum hashes a message that already carries its padding.
func (h *Hasher) sum(padded []byte) (out [32]byte) {
	h.d.Reset()
	h.d.Write(padded)
	h.state, _ = h.app.AppendBinary(h.state[:0])
	copy(out[:], h.state[4:36])
	return out
}

// second returns sha256(first).
func (h *Hasher) second(first *[32]byte) chainhash.Hash {
	copy(h.one[:32], first[:])
	return h.sum(h.one[:])
}

// HashPair returns sha256d(a || b), a merkle tree node.
func (h *Hasher) HashPair(a, b *chainhash.Hash) chainhash.Hash {
	if h.app == nil {
		return hashPair(a, b)
	}
	copy(h.pair[:32], a[:])
	copy(h.pair[32:64], b[:])
	first := h.sum(h.pair[:])
	return h.second(&first)
}

// MerkleRootFromBranch folds a coinbase txid up a Stratum merkle branch
// (as the package function).
func (h *Hasher) MerkleRootFromBranch(coinbase chainhash.Hash, branch []chainhash.Hash) chainhash.Hash {
	root := coinbase
	for i := range branch {
		root = h.HashPair(&root, &branch[i])
	}
	return root
}

// HeaderHash returns the block hash of hdr (as Header.Hash).
func (h *Hasher) HeaderHash(hdr *Header) chainhash.Hash {
	if h.app == nil {
		return hdr.Hash()
	}
	copy(h.hdr[:HeaderLen], hdr[:])
	first := h.sum(h.hdr[:])
	return h.second(&first)
}

// DoubleHash returns sha256d(msg[:n]) where msg holds n message bytes and
// has capacity for its padding; scratch space beyond n is overwritten.
// AppendPadding prepares such a buffer. Without room it hashes with
// sha256.Sum256.
func (h *Hasher) DoubleHash(msg []byte, n int) chainhash.Hash {
	p := paddedLen(n)
	if h.app == nil || cap(msg) < p || len(msg) < n {
		first := sha256.Sum256(msg[:n])
		return chainhash.Hash(sha256.Sum256(first[:]))
	}
	buf := msg[:p]
	pad(buf, n)
	first := h.sum(buf)
	return h.second(&first)
}

// GrowForPadding returns b with capacity for the SHA-256 padding of its
// contents (DoubleHash(b, len(b)) then does not fall back).
func GrowForPadding(b []byte) []byte {
	if need := paddedLen(len(b)); cap(b) < need {
		b = append(b[:cap(b)], make([]byte, need-cap(b))...)[:len(b)]
	}
	return b
}
