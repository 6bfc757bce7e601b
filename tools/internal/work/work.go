// Package work turns a mining.notify job into block headers and grinds
// nonces against a share target, for the test miner and the load
// generator.
//
// Byte orders follow pkg/stratum: ParseNotify has already turned the
// word-swapped previous hash back into internal order, and the merkle
// branch is in internal order. The coinbase is coinb1 || extranonce1 ||
// extranonce2 || coinb2 (the non-witness serialisation, so its double
// SHA-256 is the txid), folded up the branch into the merkle root.
//
// Concurrency: a Job is immutable once built and may be shared by any
// number of goroutines; a Grinder belongs to one goroutine.
package work

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/hashgate/hashgate/pkg/blockutil"
	"github.com/hashgate/hashgate/pkg/stratum"
)

// ErrNoShare is returned by Grinder.Find when the tries ran out.
var ErrNoShare = errors.New("work: no share found within the tries")

// Job is a mining.notify job prepared for hashing.
type Job struct {
	*stratum.Notify
	// Branch is MerkleBranch as chainhash values.
	Branch []chainhash.Hash
	// NetTarget is the network target from nbits; NetDiff its difficulty.
	NetTarget blockutil.Target
	NetDiff   float64
	// Height is the BIP34 height read from coinb1 (0 if unreadable).
	Height int64
}

// NewJob prepares n. It fails for nbits that expand to a zero target.
func NewJob(n *stratum.Notify) (*Job, error) {
	t := blockutil.TargetFromBits(n.Bits)
	if t == (blockutil.Target{}) {
		return nil, fmt.Errorf("job %s: bits %08x give no target", n.JobID, n.Bits)
	}
	j := &Job{Notify: n, NetTarget: t, NetDiff: t.Difficulty(), Branch: make([]chainhash.Hash, len(n.MerkleBranch))}
	for i := range n.MerkleBranch {
		j.Branch[i] = chainhash.Hash(n.MerkleBranch[i])
	}
	j.Height = CoinbaseHeight(n.Coinb1)
	return j, nil
}

// CoinbaseHeight reads the BIP34 height push at the start of the coinbase
// scriptSig in coinb1 (version, one input, null prevout, script length,
// push). It returns 0 when coinb1 does not have that shape.
func CoinbaseHeight(coinb1 []byte) int64 {
	// 4 version + 1 input count + 32 hash + 4 index + script length varint.
	const off = 4 + 1 + 32 + 4
	if len(coinb1) < off+2 || coinb1[4] != 1 {
		return 0
	}
	p := off + 1 // script length < 0xfd: scriptSig is at most 100 bytes
	if coinb1[off] >= 0xfd {
		return 0
	}
	op := coinb1[p]
	switch {
	case op >= 0x51 && op <= 0x60: // OP_1..OP_16
		return int64(op - 0x50)
	case op >= 1 && op <= 8 && len(coinb1) >= p+1+int(op):
		var h int64
		for i := int(op) - 1; i >= 0; i-- {
			h = h<<8 | int64(coinb1[p+1+i])
		}
		return h
	}
	return 0
}

// ShareTarget returns the target of a share difficulty: diff1 / d, capped
// at 2^256-1, so that any positive difficulty works (regtest needs 1e-10).
func ShareTarget(d float64) (blockutil.Target, error) {
	if math.IsNaN(d) || math.IsInf(d, 0) || d <= 0 {
		return blockutil.Target{}, fmt.Errorf("work: bad share difficulty %v", d)
	}
	return blockutil.TargetFromDifficulty(d)
}

// Coinbase returns coinb1 || en1 || en2 || coinb2 appended to dst.
func (j *Job) Coinbase(dst, en1, en2 []byte) []byte {
	dst = append(dst, j.Coinb1...)
	dst = append(dst, en1...)
	dst = append(dst, en2...)
	return append(dst, j.Coinb2...)
}

// MerkleRoot returns the merkle root for a coinbase made with en1 and en2;
// scratch is reused for the coinbase bytes and returned grown.
func (j *Job) MerkleRoot(en1, en2, scratch []byte) (chainhash.Hash, []byte) {
	cb := j.Coinbase(scratch[:0], en1, en2)
	first := sha256.Sum256(cb)
	txid := chainhash.Hash(sha256.Sum256(first[:]))
	return blockutil.MerkleRootFromBranch(txid, j.Branch), cb
}

// Version returns the header version with versionBits rolled in under mask
// (BIP310: bits outside the mask come from the job).
func (j *Job) Version(versionBits, mask uint32) int32 {
	return int32(uint32(j.Notify.Version)&^mask | versionBits&mask)
}

// Share is a found share: what mining.submit carries plus its hash.
type Share struct {
	JobID       string
	EN2         []byte
	NTime       uint32
	Nonce       uint32
	VersionBits uint32
	Hash        chainhash.Hash
	// Block reports that the hash meets the network target.
	Block bool
}

// Grinder hashes one header template (job, extranonces, ntime, version)
// over a nonce range. It belongs to one goroutine.
type Grinder struct {
	job    *Job
	header blockutil.Header
	en2    []byte
	vbits  uint32
	nonce  uint32
	done   bool // the nonce space is exhausted
	// Hashes counts the headers hashed.
	Hashes uint64
}

// Reset prepares g for job with the given extranonces, version bits
// (already masked) and ntime, starting at nonce 0. scratch is reused for
// the coinbase and returned grown.
func (g *Grinder) Reset(job *Job, en1, en2 []byte, versionBits, mask, ntime uint32, scratch []byte) []byte {
	root, cb := job.MerkleRoot(en1, en2, scratch)
	g.job = job
	g.en2 = append(g.en2[:0], en2...)
	g.vbits = versionBits & mask
	g.header = blockutil.MakeHeader(job.Version(versionBits, mask), (*chainhash.Hash)(&job.PrevHash), &root, ntime, job.Bits, 0)
	g.nonce = 0
	g.done = false
	return cb
}

// Exhausted reports whether every nonce of this template was tried.
func (g *Grinder) Exhausted() bool { return g.done }

// Find hashes up to tries nonces and returns the first share meeting
// target. With avoidBlock, hashes that also meet the network target are
// skipped (the load generator must not flood the node with blocks). It
// returns ErrNoShare when the tries or the nonce space ran out.
func (g *Grinder) Find(target *blockutil.Target, tries int, avoidBlock bool) (Share, error) {
	for ; tries > 0 && !g.done; tries-- {
		nonce := g.nonce
		binary.LittleEndian.PutUint32(g.header[76:80], nonce)
		h := chainhash.DoubleHashH(g.header[:])
		g.Hashes++
		if g.nonce == math.MaxUint32 {
			g.done = true
		} else {
			g.nonce++
		}
		if !blockutil.HashMeets(&h, target) {
			continue
		}
		block := blockutil.HashMeets(&h, &g.job.NetTarget)
		if block && avoidBlock {
			continue
		}
		return Share{JobID: g.job.JobID, EN2: append([]byte(nil), g.en2...), NTime: g.header.Time(),
			Nonce: nonce, VersionBits: g.vbits, Hash: h, Block: block}, nil
	}
	return Share{}, ErrNoShare
}

// PutEN2 writes counter into en2 big-endian, truncated to len(en2).
func PutEN2(en2 []byte, counter uint64) {
	for i := len(en2) - 1; i >= 0; i-- {
		en2[i] = byte(counter)
		counter >>= 8
	}
}
