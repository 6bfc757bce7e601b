package blockutil

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// Diff1Bits is the compact form of the difficulty-1 target.
const Diff1Bits = 0x1d00ffff

// MinDifficulty is the smallest share difficulty a pool config may set (tiny
// ESP32 miners and test networks). Network difficulty itself can be lower
// (regtest is about 4.66e-10), so TargetFromDifficulty accepts any positive
// value.
const MinDifficulty = 1e-8

var (
	// diff1Big is the difficulty-1 target 0x00000000FFFF0000...0.
	diff1Big = blockchain.CompactToBig(Diff1Bits)
	// maxTargetBig is 2^256-1, the largest representable target.
	maxTargetBig = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	// diff1Float is diff1 as a float64 (exact: 0xffff * 2^208).
	diff1Float = math.Ldexp(0xffff, 208)
)

// ErrBadDifficulty is returned for a difficulty that is not a positive finite
// number.
var ErrBadDifficulty = errors.New("blockutil: difficulty must be a positive finite number")

// Target is a 256-bit unsigned proof-of-work target stored as four 64-bit
// limbs, least significant first. The zero value is a target no hash meets.
// Comparing a hash with a Target allocates nothing.
type Target [4]uint64

// TargetFromBig converts n to a Target. Negative values give the zero target
// and values above 2^256-1 saturate.
func TargetFromBig(n *big.Int) Target {
	var t Target
	if n.Sign() <= 0 {
		return t
	}
	if n.Cmp(maxTargetBig) > 0 {
		n = maxTargetBig
	}
	var buf [32]byte
	n.FillBytes(buf[:])
	for i := 0; i < 4; i++ {
		t[i] = binary.BigEndian.Uint64(buf[32-8*(i+1) : 32-8*i])
	}
	return t
}

// TargetFromBits expands compact bits (as found in a block header) to a
// Target. A negative or overflowing compact value gives the zero target.
func TargetFromBits(bits uint32) Target {
	return TargetFromBig(blockchain.CompactToBig(bits))
}

// TargetFromDifficulty returns floor(diff1 / d), the share target for a
// (possibly fractional) difficulty d, capped at 2^256-1.
func TargetFromDifficulty(d float64) (Target, error) {
	if math.IsNaN(d) || math.IsInf(d, 0) || d <= 0 {
		return Target{}, fmt.Errorf("%w: got %v", ErrBadDifficulty, d)
	}
	q := new(big.Float).SetPrec(512).SetInt(diff1Big)
	q.Quo(q, new(big.Float).SetPrec(512).SetFloat64(d))
	n, _ := q.Int(nil)
	return TargetFromBig(n), nil
}

// Big returns the target as a new big.Int.
func (t Target) Big() *big.Int {
	var buf [32]byte
	t.putBE(buf[:])
	return new(big.Int).SetBytes(buf[:])
}

// Hex returns the target as 64 big-endian hex digits (the form Bitcoin Core
// prints in getblocktemplate's "target").
func (t Target) Hex() string {
	var buf [32]byte
	t.putBE(buf[:])
	return fmt.Sprintf("%x", buf[:])
}

func (t Target) putBE(buf []byte) {
	for i := 0; i < 4; i++ {
		binary.BigEndian.PutUint64(buf[32-8*(i+1):32-8*i], t[i])
	}
}

// Difficulty returns diff1 / t. The zero target has infinite difficulty.
func (t Target) Difficulty() float64 {
	if t == (Target{}) {
		return math.Inf(1)
	}
	q := new(big.Float).SetPrec(256).SetInt(diff1Big)
	q.Quo(q, new(big.Float).SetPrec(256).SetInt(t.Big()))
	f, _ := q.Float64()
	return f
}

// Cmp compares two targets: -1 if t < o, 0 if equal, +1 if t > o.
func (t Target) Cmp(o Target) int {
	for i := 3; i >= 0; i-- {
		switch {
		case t[i] < o[i]:
			return -1
		case t[i] > o[i]:
			return 1
		}
	}
	return 0
}

// HashMeets reports whether the block hash h (internal byte order, as
// returned by chainhash.DoubleHashH) is at or below the target. It does not
// allocate.
func HashMeets(h *chainhash.Hash, t *Target) bool {
	for i := 3; i >= 0; i-- {
		v := binary.LittleEndian.Uint64(h[8*i : 8*i+8])
		switch {
		case v < t[i]:
			return true
		case v > t[i]:
			return false
		}
	}
	return true
}

// HashDifficulty returns the difficulty a hash achieves (diff1 / hash), the
// figure pools show as "share difficulty". It does not allocate. A zero hash
// gives +Inf.
func HashDifficulty(h *chainhash.Hash) float64 {
	v := 0.0
	for i := 3; i >= 0; i-- {
		v = v*18446744073709551616.0 + float64(binary.LittleEndian.Uint64(h[8*i:8*i+8]))
	}
	if v == 0 {
		return math.Inf(1)
	}
	return diff1Float / v
}

// BitsDifficulty returns the difficulty of compact bits (1.0 for 0x1d00ffff).
func BitsDifficulty(bits uint32) float64 {
	return TargetFromBits(bits).Difficulty()
}
