package jobs

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/hashgate/hashgate/pkg/blockutil"
	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/noderpc"
)

// ErrBadTemplate wraps every reason a template is refused; the node that
// sent it is treated as answering garbage.
var ErrBadTemplate = errors.New("bad template")

// Record is a published job plus what block assembly needs.
type Record struct {
	// Job is the message published on the bus (immutable once published).
	Job *bus.Job
	// Coinbase is the split coinbase the job was built with.
	Coinbase *blockutil.Coinbase
	// Target is the network target of the job's bits.
	Target blockutil.Target
	// TxIDs are the template transactions' ids (block order).
	TxIDs []chainhash.Hash
	// Fees is the sum of the template's transaction fees.
	Fees int64
}

// Options configure a Builder.
type Options struct {
	Params          *chaincfg.Params
	Payouts         []blockutil.Payout
	Tag             []byte
	Extranonce1Size int
	Extranonce2Size int
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Builder builds jobs. It is safe for concurrent use.
type Builder struct {
	opts Options
	ids  *IDGen
}

// NewBuilder returns a Builder; job ids start from the current time so they
// stay unique across restarts.
func NewBuilder(opts Options) *Builder {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Builder{opts: opts, ids: NewIDGen(opts.Now())}
}

func badf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadTemplate, fmt.Sprintf(format, args...))
}

// FromTemplate builds a full job from a getblocktemplate answer.
func (b *Builder) FromTemplate(t *noderpc.Template, source string) (*Record, error) {
	prev, err := chainhash.NewHashFromStr(t.PreviousBlockHash)
	if err != nil || len(t.PreviousBlockHash) != 64 {
		return nil, badf("previousblockhash %q", t.PreviousBlockHash)
	}
	bits, err := strconv.ParseUint(t.Bits, 16, 32)
	if err != nil {
		return nil, badf("bits %q", t.Bits)
	}
	target := blockutil.TargetFromBits(uint32(bits))
	if target == (blockutil.Target{}) || target.Cmp(blockutil.TargetFromBig(b.opts.Params.PowLimit)) > 0 {
		return nil, badf("bits %08x outside the network's range", bits)
	}
	if t.Height <= 0 || t.Height > 1<<31 {
		return nil, badf("height %d", t.Height)
	}
	if t.CurTime <= 0 || t.CurTime > 1<<32-1 || t.MinTime < 0 || t.MinTime > t.CurTime {
		return nil, badf("curtime %d / mintime %d", t.CurTime, t.MinTime)
	}

	// Decode every transaction and recompute its ids; never trust the
	// node's ids, but refuse a template whose ids disagree with its data.
	n := len(t.Transactions)
	raws := make([][]byte, n)
	txids := make([]chainhash.Hash, n)
	wtxids := make([]chainhash.Hash, n)
	anyWitness := false
	var fees int64
	for i, tt := range t.Transactions {
		raw, err := hex.DecodeString(tt.Data)
		if err != nil {
			return nil, badf("transaction %d: data is not hex", i)
		}
		dec, err := blockutil.DecodeTemplateTx(raw)
		if err != nil {
			return nil, badf("transaction %d: %v", i, err)
		}
		if tt.TxID != "" && tt.TxID != dec.TxID.String() {
			return nil, badf("transaction %d: txid %s, data hashes to %s", i, tt.TxID, dec.TxID)
		}
		if tt.Hash != "" && tt.Hash != dec.WTxID.String() {
			return nil, badf("transaction %d: hash %s, data hashes to %s", i, tt.Hash, dec.WTxID)
		}
		if tt.Fee < 0 {
			return nil, badf("transaction %d: negative fee", i)
		}
		raws[i], txids[i], wtxids[i] = raw, dec.TxID, dec.WTxID
		anyWitness = anyWitness || dec.HasWitness
		fees += tt.Fee
	}

	subsidy := blockutil.Subsidy(t.Height, b.opts.Params)
	if t.CoinbaseValue < subsidy || t.CoinbaseValue > subsidy+fees {
		return nil, badf("coinbasevalue %d outside subsidy %d + fees %d", t.CoinbaseValue, subsidy, fees)
	}

	// Witness commitment: ours, from the transactions. btcd gives only the
	// 32-byte hash (or nothing), Bitcoin Core the whole output script.
	var commitment *chainhash.Hash
	if anyWitness || t.DefaultWitnessCommitment != "" {
		c := blockutil.WitnessCommitment(wtxids)
		commitment = &c
		if node := t.DefaultWitnessCommitment; node != "" {
			nb, err := hex.DecodeString(node)
			if err != nil {
				return nil, badf("default_witness_commitment is not hex")
			}
			var want []byte
			switch len(nb) {
			case 32:
				want = c[:]
			default:
				want = blockutil.WitnessCommitmentScript(c)
			}
			if hex.EncodeToString(want) != node {
				return nil, badf("witness commitment %s from the node, %x computed", node, want)
			}
		}
	}

	cb, err := blockutil.BuildCoinbase(blockutil.CoinbaseParams{
		Height:            t.Height,
		Value:             t.CoinbaseValue,
		Payouts:           b.opts.Payouts,
		Tag:               b.opts.Tag,
		Extranonce1Size:   b.opts.Extranonce1Size,
		Extranonce2Size:   b.opts.Extranonce2Size,
		WitnessCommitment: commitment,
	})
	if err != nil {
		return nil, fmt.Errorf("build coinbase: %w", err)
	}
	job := &bus.Job{
		ID:              b.ids.Next(),
		Height:          t.Height,
		PrevHash:        *prev,
		Version:         t.Version,
		Bits:            uint32(bits),
		CurTime:         uint32(t.CurTime),
		MinTime:         uint32(t.MinTime),
		Coinb1:          cb.Coinb1,
		Coinb2:          cb.Coinb2,
		Extranonce1Size: uint8(cb.Extranonce1Size),
		Extranonce2Size: uint8(cb.Extranonce2Size),
		MerkleBranch:    blockutil.MerkleBranch(txids),
		CoinbaseValue:   t.CoinbaseValue,
		HasWitness:      cb.HasWitness,
		CreatedUnixNano: b.opts.Now().UnixNano(),
		Source:          source,
		Txs:             raws,
	}
	return &Record{Job: job, Coinbase: cb, Target: target, TxIDs: txids, Fees: fees}, nil
}

// EmptyParams describe the new tip an empty job mines on.
type EmptyParams struct {
	// Prev is the new tip's hash; Height is the height of the block being
	// mined (tip height + 1).
	Prev   chainhash.Hash
	Height int64
	// Bits is the new block's compact target (see NextBits).
	Bits uint32
	// Version is the block version to use.
	Version int32
	// MinTime is the earliest valid ntime (tip time + 1, or median time
	// past + 1 when known).
	MinTime uint32
	// Source names who announced the tip.
	Source string
}

// Empty builds an empty-block job on a new tip: subsidy only, no
// transactions, no witness commitment.
func (b *Builder) Empty(p EmptyParams) (*Record, error) {
	target := blockutil.TargetFromBits(p.Bits)
	if target == (blockutil.Target{}) {
		return nil, fmt.Errorf("empty job: bits %08x", p.Bits)
	}
	cb, err := blockutil.BuildCoinbase(blockutil.CoinbaseParams{
		Height:          p.Height,
		Value:           blockutil.Subsidy(p.Height, b.opts.Params),
		Payouts:         b.opts.Payouts,
		Tag:             b.opts.Tag,
		Extranonce1Size: b.opts.Extranonce1Size,
		Extranonce2Size: b.opts.Extranonce2Size,
	})
	if err != nil {
		return nil, fmt.Errorf("empty job coinbase: %w", err)
	}
	now := b.opts.Now()
	cur := uint32(now.Unix())
	if cur < p.MinTime {
		cur = p.MinTime
	}
	job := &bus.Job{
		ID:              b.ids.Next(),
		Height:          p.Height,
		PrevHash:        p.Prev,
		Version:         p.Version,
		Bits:            p.Bits,
		CurTime:         cur,
		MinTime:         p.MinTime,
		Coinb1:          cb.Coinb1,
		Coinb2:          cb.Coinb2,
		Extranonce1Size: uint8(cb.Extranonce1Size),
		Extranonce2Size: uint8(cb.Extranonce2Size),
		CoinbaseValue:   blockutil.Subsidy(p.Height, b.opts.Params),
		Empty:           true,
		CreatedUnixNano: now.UnixNano(),
		Source:          p.Source,
	}
	return &Record{Job: job, Coinbase: cb, Target: target}, nil
}

// NextBits returns the compact target of the block after a tip with the
// given height and bits, when it can be known from the tip alone: always on
// networks without retargeting that sit at their proof-of-work limit
// (regtest), and between retarget boundaries on networks without the
// minimum-difficulty exception (mainnet, signet). Elsewhere it returns false
// and callers wait for a full template rather than guess.
func NextBits(params *chaincfg.Params, tipHeight int64, tipBits uint32) (uint32, bool) {
	if params.PoWNoRetargeting {
		return tipBits, true
	}
	if params.ReduceMinDifficulty {
		return 0, false
	}
	interval := int64(params.TargetTimespan / params.TargetTimePerBlock)
	if interval <= 0 || (tipHeight+1)%interval == 0 {
		return 0, false
	}
	return tipBits, true
}

// IDGen issues job ids that are unique across restarts: a counter that
// starts at the start time in milliseconds shifted left 16 bits, printed in
// hex. A restart, even within the same second, starts above every id the
// previous run could have issued unless that run issued more than 65536 ids
// per millisecond of its life.
type IDGen struct {
	mu   sync.Mutex
	next uint64
}

// NewIDGen returns an IDGen seeded from now.
func NewIDGen(now time.Time) *IDGen {
	return &IDGen{next: uint64(now.UnixMilli()) << 16}
}

// Next returns the next id.
func (g *IDGen) Next() string {
	g.mu.Lock()
	id := g.next
	g.next++
	g.mu.Unlock()
	return strconv.FormatUint(id, 16)
}
