package jobs

import (
	"bytes"
	"encoding/hex"
	"strconv"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/stretchr/testify/require"

	"github.com/hashgate/hashgate/pkg/blockutil"
	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/noderpc"
)

var regtest = &chaincfg.RegressionNetParams

func testBuilder(t *testing.T, now time.Time) *Builder {
	addr, err := blockutil.DecodeAddress("bcrt1ql7fk7lfuvazvrytsx4efz5pv75j23cfkmjfytk", regtest)
	require.NoError(t, err)
	return NewBuilder(Options{
		Params: regtest, Payouts: []blockutil.Payout{{Address: addr, Weight: 1}},
		Tag: []byte("/hashgate/"), Extranonce1Size: 4, Extranonce2Size: 8,
		Now: func() time.Time { return now },
	})
}

// templateTx makes a transaction (segwit when witness is true) and its
// template entry as Bitcoin Core would list it.
func templateTx(t *testing.T, i int, witness bool, fee int64) noderpc.TemplateTx {
	tx := wire.NewMsgTx(2)
	prev := chainhash.DoubleHashH([]byte{byte(i), byte(i >> 8)})
	in := wire.NewTxIn(wire.NewOutPoint(&prev, 0), nil, nil)
	if witness {
		in.Witness = wire.TxWitness{bytes.Repeat([]byte{1}, 71), bytes.Repeat([]byte{2}, 33)}
	} else {
		in.SignatureScript = []byte{0x51}
	}
	tx.AddTxIn(in)
	tx.AddTxOut(wire.NewTxOut(1000, []byte{0x51}))
	var buf bytes.Buffer
	require.NoError(t, tx.Serialize(&buf))
	return noderpc.TemplateTx{Data: hex.EncodeToString(buf.Bytes()), TxID: tx.TxHash().String(),
		Hash: tx.WitnessHash().String(), Fee: fee}
}

func sampleTemplate(t *testing.T, height int64, ntx int) *noderpc.Template {
	tmpl := &noderpc.Template{
		Version: 0x20000000, PreviousBlockHash: chainhash.DoubleHashH([]byte("tip")).String(),
		Bits: "207fffff", Height: height, CurTime: 1700000100, MinTime: 1700000000,
	}
	var fees int64
	for i := 0; i < ntx; i++ {
		tx := templateTx(t, i, i%2 == 0, int64(100+i))
		fees += tx.Fee
		tmpl.Transactions = append(tmpl.Transactions, tx)
	}
	tmpl.CoinbaseValue = blockutil.Subsidy(height, regtest) + fees
	return tmpl
}

func TestFromTemplate(t *testing.T) {
	b := testBuilder(t, time.Unix(1700000100, 0))
	tmpl := sampleTemplate(t, 300, 9)
	rec, err := b.FromTemplate(tmpl, "node1")
	require.NoError(t, err)
	j := rec.Job
	require.Equal(t, int64(300), j.Height)
	require.Equal(t, uint32(0x207fffff), j.Bits)
	require.Equal(t, tmpl.CoinbaseValue, j.CoinbaseValue)
	require.True(t, j.HasWitness)
	require.Len(t, j.Txs, 9)
	require.Len(t, j.MerkleBranch, 4) // 10 leaves: 4 levels
	require.Equal(t, "node1", j.Source)
	require.Equal(t, tmpl.PreviousBlockHash, j.PrevHash.String())

	// The job's pieces assemble into a block btcd's own rules accept.
	en1, en2 := []byte{0, 0, 0, 1}, make([]byte, 8)
	cbTx, err := rec.Coinbase.MsgTx(en1, en2)
	require.NoError(t, err)
	require.Equal(t, int64(1250000000)+rec.Fees, cbTx.TxOut[0].Value, "regtest subsidy at 300 is 12.5 BTC plus fees")
	cbid := cbTx.TxHash()
	root := blockutil.MerkleRootFromBranch(cbid, j.MerkleBranch)
	all := append([]chainhash.Hash{cbid}, rec.TxIDs...)
	require.Equal(t, blockutil.MerkleRoot(all), root)
}

func TestFromTemplateWitnessCommitmentCheck(t *testing.T) {
	b := testBuilder(t, time.Unix(1700000100, 0))
	tmpl := sampleTemplate(t, 10, 3)
	rec, err := b.FromTemplate(tmpl, "n")
	require.NoError(t, err)
	var wtxids []chainhash.Hash
	for _, tx := range tmpl.Transactions {
		h, _ := chainhash.NewHashFromStr(tx.Hash)
		wtxids = append(wtxids, *h)
	}
	c := blockutil.WitnessCommitment(wtxids)
	require.True(t, bytes.HasSuffix(rec.Coinbase.Coinb2[:len(rec.Coinbase.Coinb2)-4], blockutil.WitnessCommitmentScript(c)))

	// Core's full-script form and btcd's hash-only form are both accepted
	// when they match ours.
	tmpl.DefaultWitnessCommitment = hex.EncodeToString(blockutil.WitnessCommitmentScript(c))
	_, err = b.FromTemplate(tmpl, "core")
	require.NoError(t, err)
	tmpl.DefaultWitnessCommitment = hex.EncodeToString(c[:])
	_, err = b.FromTemplate(tmpl, "btcd")
	require.NoError(t, err)
	// A mismatch is a garbage template.
	tmpl.DefaultWitnessCommitment = hex.EncodeToString(make([]byte, 32))
	_, err = b.FromTemplate(tmpl, "liar")
	require.ErrorIs(t, err, ErrBadTemplate)
}

func TestFromTemplateRejectsGarbage(t *testing.T) {
	b := testBuilder(t, time.Unix(1700000100, 0))
	mutate := map[string]func(*noderpc.Template){
		"bad prev":            func(m *noderpc.Template) { m.PreviousBlockHash = "zz" },
		"bad bits":            func(m *noderpc.Template) { m.Bits = "nope" },
		"bits above powlimit": func(m *noderpc.Template) { m.Bits = "2100ffff" },
		"zero height":         func(m *noderpc.Template) { m.Height = 0 },
		"mintime > curtime":   func(m *noderpc.Template) { m.MinTime = m.CurTime + 1 },
		"tx not hex":          func(m *noderpc.Template) { m.Transactions[0].Data = "xx" },
		"tx garbage":          func(m *noderpc.Template) { m.Transactions[0].Data = "0100" },
		"txid mismatch":       func(m *noderpc.Template) { m.Transactions[1].TxID = m.Transactions[0].TxID },
		"wtxid mismatch":      func(m *noderpc.Template) { m.Transactions[1].Hash = m.Transactions[0].Hash },
		"coinbase too rich":   func(m *noderpc.Template) { m.CoinbaseValue++ },
		"coinbase too poor":   func(m *noderpc.Template) { m.CoinbaseValue = 1 },
		"negative fee":        func(m *noderpc.Template) { m.Transactions[0].Fee = -5 },
	}
	for name, fn := range mutate {
		t.Run(name, func(t *testing.T) {
			tmpl := sampleTemplate(t, 10, 3)
			fn(tmpl)
			_, err := b.FromTemplate(tmpl, "n")
			require.ErrorIs(t, err, ErrBadTemplate)
		})
	}
}

func TestEmptyJob(t *testing.T) {
	now := time.Unix(1700000500, 0)
	b := testBuilder(t, now)
	prev := chainhash.DoubleHashH([]byte("newtip"))
	for _, tc := range []struct {
		height  int64
		subsidy int64
	}{{149, 5000000000}, {150, 2500000000}, {300, 1250000000}} {
		rec, err := b.Empty(EmptyParams{Prev: prev, Height: tc.height, Bits: 0x207fffff, Version: 0x20000000,
			MinTime: 1700000600, Source: "zmq"})
		require.NoError(t, err)
		j := rec.Job
		require.True(t, j.Empty)
		require.False(t, j.HasWitness)
		require.Empty(t, j.MerkleBranch)
		require.Empty(t, j.Txs)
		require.Equal(t, tc.subsidy, j.CoinbaseValue, "height %d", tc.height)
		require.Equal(t, uint32(1700000600), j.CurTime, "curtime never before mintime")
		cb, err := rec.Coinbase.MsgTx(make([]byte, 4), make([]byte, 8))
		require.NoError(t, err)
		require.Equal(t, tc.subsidy, cb.TxOut[0].Value)
	}
}

func TestNextBits(t *testing.T) {
	bits, ok := NextBits(&chaincfg.RegressionNetParams, 2015, 0x207fffff)
	require.True(t, ok)
	require.Equal(t, uint32(0x207fffff), bits)
	bits, ok = NextBits(&chaincfg.MainNetParams, 840000, 0x17034219)
	require.True(t, ok)
	require.Equal(t, uint32(0x17034219), bits)
	_, ok = NextBits(&chaincfg.MainNetParams, 2015, 0x17034219)
	require.False(t, ok, "height 2016 retargets")
	_, ok = NextBits(&chaincfg.TestNet3Params, 100, 0x1d00ffff)
	require.False(t, ok, "testnet's 20-minute rule depends on the new block's time")
	_, ok = NextBits(&chaincfg.SigNetParams, 100, 0x1e0377ae)
	require.True(t, ok)
}

func TestIDGenUniqueAcrossRestarts(t *testing.T) {
	start := time.Unix(1700000000, 0)
	seen := map[string]bool{}
	g := NewIDGen(start)
	var last uint64
	for i := 0; i < 5000; i++ {
		id := g.Next()
		require.False(t, seen[id])
		seen[id] = true
		last, _ = strconv.ParseUint(id, 16, 64)
	}
	// A restart one millisecond later starts above everything issued.
	g2 := NewIDGen(start.Add(time.Millisecond))
	first, err := strconv.ParseUint(g2.Next(), 16, 64)
	require.NoError(t, err)
	require.Greater(t, first, last)
}

func TestStoreGrace(t *testing.T) {
	now := time.Unix(1000, 0)
	s := NewStore(10*time.Second, func() time.Time { return now })
	rec := func(id string, h int64) *Record { return &Record{Job: &bus.Job{ID: id, Height: h}} }
	s.Add(rec("a", 100))
	s.Add(rec("b", 100))
	_, ok := s.Get("a")
	require.True(t, ok)

	now = now.Add(time.Hour) // same height: never expires
	_, ok = s.Get("a")
	require.True(t, ok)

	s.Add(rec("c", 101)) // new height: a and b enter their grace period
	now = now.Add(9 * time.Second)
	_, ok = s.Get("b")
	require.True(t, ok, "inside the grace period")
	s.Add(rec("stale", 100)) // a late template for the old height
	now = now.Add(2 * time.Second)
	_, ok = s.Get("a")
	require.False(t, ok, "after the grace period")
	_, ok = s.Get("c")
	require.True(t, ok)
	_, ok = s.Get("stale")
	require.True(t, ok, "a stale record gets its own grace period")
	s.Sweep()
	require.Equal(t, 2, s.Len())
	_, ok = s.Get("nope")
	require.False(t, ok)
}
