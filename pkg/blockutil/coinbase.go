package blockutil

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// Coinbase limits.
const (
	// MaxScriptSigLen is the consensus limit on a coinbase scriptSig.
	MaxScriptSigLen = 100
	// MinScriptSigLen is the consensus minimum for a coinbase scriptSig.
	MinScriptSigLen = 2
	// MaxPayouts bounds the payout outputs so the coinbase stays inside the
	// weight and sigop room nodes reserve for it (4000 WU, 400 sigop cost).
	MaxPayouts = 16
	// MaxExtranonceLen bounds extranonce1+extranonce2 so they fit one direct
	// push opcode.
	MaxExtranonceLen = 32
)

// WitnessReservedValue is the 32-byte coinbase witness reserved value we use
// (all zero, as every pool does).
var WitnessReservedValue [32]byte

// Payout is one coinbase output paid in proportion to Weight.
type Payout struct {
	Address Address
	Weight  uint64
}

// CoinbaseParams describes the coinbase a job needs.
type CoinbaseParams struct {
	// Height is the height of the block being mined (BIP34).
	Height int64
	// Value is the total output value: subsidy plus template fees.
	Value int64
	// Payouts receive Value in proportion to their weights; the rounding
	// remainder goes to the first. At least one, at most MaxPayouts.
	Payouts []Payout
	// Tag is the pool tag placed after the extranonces; it is truncated so
	// the scriptSig never exceeds 100 bytes.
	Tag []byte
	// Extranonce1Size and Extranonce2Size are the byte sizes of the two
	// extranonce parts (commonly 4 and 8).
	Extranonce1Size, Extranonce2Size int
	// WitnessCommitment, when non-nil, is the 32-byte BIP141 commitment; an
	// OP_RETURN output carrying it is added last and the coinbase must be
	// serialised in blocks with the witness reserved value.
	WitnessCommitment *chainhash.Hash
}

// Coinbase is a coinbase transaction split for Stratum: the full legacy
// serialisation is Coinb1 || extranonce1 || extranonce2 || Coinb2.
// A Coinbase is immutable and safe for concurrent use.
type Coinbase struct {
	// Coinb1 runs from the tx version to the push opcode before extranonce1.
	Coinb1 []byte
	// Coinb2 runs from after extranonce2 to the locktime.
	Coinb2 []byte
	// Extranonce1Size and Extranonce2Size repeat the sizes it was built for.
	Extranonce1Size, Extranonce2Size int
	// ScriptSigLen is the scriptSig length in bytes (2..100).
	ScriptSigLen int
	// Tag is the part of the requested tag that fitted.
	Tag []byte
	// HasWitness is true when the coinbase carries a witness commitment and
	// must be serialised in blocks with the witness reserved value.
	HasWitness bool
	// Values are the payout output values, in payout order.
	Values []int64
}

// BIP34HeightPush returns the minimal script push of height required by
// BIP34 (OP_1..OP_16 for 1..16, a minimal little-endian CScriptNum above).
func BIP34HeightPush(height int64) ([]byte, error) {
	if height < 0 {
		return nil, fmt.Errorf("blockutil: negative height %d", height)
	}
	return txscript.NewScriptBuilder().AddInt64(height).Script()
}

// SplitValue divides value among weights: floor(value*w/sum) each, with the
// remainder added to the first entry. It never overflows.
func SplitValue(value int64, weights []uint64) ([]int64, error) {
	if value < 0 {
		return nil, fmt.Errorf("blockutil: negative coinbase value %d", value)
	}
	var sum uint64
	for _, w := range weights {
		if w == 0 {
			return nil, errors.New("blockutil: payout weight must be positive")
		}
		s, carry := bits.Add64(sum, w, 0)
		if carry != 0 {
			return nil, errors.New("blockutil: payout weights overflow")
		}
		sum = s
	}
	if sum == 0 {
		return nil, errors.New("blockutil: no payouts")
	}
	out := make([]int64, len(weights))
	var given int64
	for i, w := range weights {
		hi, lo := bits.Mul64(uint64(value), w)
		q, _ := bits.Div64(hi, lo, sum)
		out[i] = int64(q)
		given += out[i]
	}
	out[0] += value - given
	return out, nil
}

// BuildCoinbase builds the split coinbase for p. The scriptSig is
//
//	<BIP34 height push> <push(en1||en2)> [<push(tag)>]
//
// and its length is kept within 2..100 bytes by truncating the tag.
func BuildCoinbase(p CoinbaseParams) (*Coinbase, error) {
	if p.Extranonce1Size < 0 || p.Extranonce2Size < 1 ||
		p.Extranonce1Size+p.Extranonce2Size > MaxExtranonceLen {
		return nil, fmt.Errorf("blockutil: bad extranonce sizes %d+%d (extranonce2 >= 1, total <= %d)",
			p.Extranonce1Size, p.Extranonce2Size, MaxExtranonceLen)
	}
	if len(p.Payouts) == 0 || len(p.Payouts) > MaxPayouts {
		return nil, fmt.Errorf("blockutil: need 1..%d payouts, got %d", MaxPayouts, len(p.Payouts))
	}
	heightPush, err := BIP34HeightPush(p.Height)
	if err != nil {
		return nil, err
	}
	weights := make([]uint64, len(p.Payouts))
	for i, po := range p.Payouts {
		if len(po.Address.Script) == 0 {
			return nil, fmt.Errorf("blockutil: payout %d has no script", i)
		}
		weights[i] = po.Weight
	}
	values, err := SplitValue(p.Value, weights)
	if err != nil {
		return nil, err
	}

	// Fit the tag: whatever room the height and extranonces leave.
	en := p.Extranonce1Size + p.Extranonce2Size
	fixed := len(heightPush) + 1 + en
	tag := fitTag(p.Tag, MaxScriptSigLen-fixed)
	var tagPush []byte
	if len(tag) > 0 {
		tagPush, err = txscript.NewScriptBuilder().AddData(tag).Script()
		if err != nil {
			return nil, fmt.Errorf("blockutil: tag push: %w", err)
		}
	}
	scriptLen := fixed + len(tagPush)
	if scriptLen > MaxScriptSigLen || scriptLen < MinScriptSigLen {
		return nil, fmt.Errorf("blockutil: coinbase scriptSig length %d outside %d..%d",
			scriptLen, MinScriptSigLen, MaxScriptSigLen)
	}

	// coinb1: version, one input with the null outpoint, scriptSig length,
	// height push, and the push opcode announcing the extranonces.
	var b1 bytes.Buffer
	var u32 [4]byte
	binary.LittleEndian.PutUint32(u32[:], 1)
	b1.Write(u32[:])
	b1.WriteByte(1)
	b1.Write(make([]byte, 32))
	b1.Write([]byte{0xff, 0xff, 0xff, 0xff})
	if err := wire.WriteVarInt(&b1, 0, uint64(scriptLen)); err != nil {
		return nil, err
	}
	b1.Write(heightPush)
	b1.WriteByte(byte(en)) // direct push of en bytes (en <= 75)

	// coinb2: the tag, sequence, outputs and locktime.
	var b2 bytes.Buffer
	b2.Write(tagPush)
	b2.Write([]byte{0xff, 0xff, 0xff, 0xff})
	nOut := len(p.Payouts)
	if p.WitnessCommitment != nil {
		nOut++
	}
	if err := wire.WriteVarInt(&b2, 0, uint64(nOut)); err != nil {
		return nil, err
	}
	for i, po := range p.Payouts {
		if err := wire.WriteTxOut(&b2, 0, 0, wire.NewTxOut(values[i], po.Address.Script)); err != nil {
			return nil, err
		}
	}
	if p.WitnessCommitment != nil {
		if err := wire.WriteTxOut(&b2, 0, 0, wire.NewTxOut(0, WitnessCommitmentScript(*p.WitnessCommitment))); err != nil {
			return nil, err
		}
	}
	b2.Write([]byte{0, 0, 0, 0}) // locktime

	return &Coinbase{
		Coinb1:          b1.Bytes(),
		Coinb2:          b2.Bytes(),
		Extranonce1Size: p.Extranonce1Size,
		Extranonce2Size: p.Extranonce2Size,
		ScriptSigLen:    scriptLen,
		Tag:             tag,
		HasWitness:      p.WitnessCommitment != nil,
		Values:          values,
	}, nil
}

// fitTag returns the longest prefix of tag whose push (opcode plus data)
// fits in room bytes.
func fitTag(tag []byte, room int) []byte {
	switch {
	case len(tag) == 0 || room < 2:
		return nil
	case room-1 <= 75:
		// A direct push: one opcode byte.
		return tag[:min(len(tag), room-1)]
	case len(tag) <= 75:
		return tag
	default:
		// OP_PUSHDATA1 costs two bytes.
		return tag[:min(len(tag), room-2)]
	}
}

// checkExtranonces verifies the extranonce lengths match the coinbase.
func (c *Coinbase) checkExtranonces(en1, en2 []byte) error {
	if len(en1) != c.Extranonce1Size || len(en2) != c.Extranonce2Size {
		return fmt.Errorf("blockutil: extranonce sizes %d+%d, coinbase wants %d+%d",
			len(en1), len(en2), c.Extranonce1Size, c.Extranonce2Size)
	}
	return nil
}

// Bytes returns the legacy (txid) serialisation with the given extranonces.
func (c *Coinbase) Bytes(en1, en2 []byte) ([]byte, error) {
	if err := c.checkExtranonces(en1, en2); err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(c.Coinb1)+len(en1)+len(en2)+len(c.Coinb2))
	out = append(out, c.Coinb1...)
	out = append(out, en1...)
	out = append(out, en2...)
	return append(out, c.Coinb2...), nil
}

// TxID returns the coinbase txid for the given extranonces.
func (c *Coinbase) TxID(en1, en2 []byte) (chainhash.Hash, error) {
	raw, err := c.Bytes(en1, en2)
	if err != nil {
		return chainhash.Hash{}, err
	}
	return chainhash.DoubleHashH(raw), nil
}

// MsgTx returns the coinbase as a transaction, with the witness reserved
// value attached when the coinbase carries a witness commitment, i.e. exactly
// as it must appear in a block relayed to segwit peers.
func (c *Coinbase) MsgTx(en1, en2 []byte) (*wire.MsgTx, error) {
	raw, err := c.Bytes(en1, en2)
	if err != nil {
		return nil, err
	}
	tx := wire.NewMsgTx(1)
	if err := tx.DeserializeNoWitness(bytes.NewReader(raw)); err != nil {
		return nil, fmt.Errorf("blockutil: decode coinbase: %w", err)
	}
	if c.HasWitness {
		tx.TxIn[0].Witness = wire.TxWitness{WitnessReservedValue[:]}
	}
	return tx, nil
}
