package noderpc_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/stretchr/testify/require"

	"github.com/hashgate/hashgate/pkg/noderpc"
	"github.com/hashgate/hashgate/pkg/testutil"
)

// These tests run the client against a real btcd v0.24.2 on regtest. One
// node is shared by the subtests, which run in order and build on each
// other's chain.
func TestBtcdIntegration(t *testing.T) {
	node := testutil.StartBtcd(t, testutil.BtcdOptions{})
	c := node.Client
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	regtestGenesis := *chaincfg.RegressionNetParams.GenesisHash

	t.Run("fresh chain template", func(t *testing.T) {
		tpl, err := c.GetBlockTemplate(ctx, noderpc.TemplateRequest{Rules: []string{"segwit"}})
		require.NoError(t, err)
		require.Equal(t, int64(1), tpl.Height)
		require.Equal(t, regtestGenesis.String(), tpl.PreviousBlockHash)
		require.Equal(t, int64(50e8), tpl.CoinbaseValue)
		require.Equal(t, "207fffff", tpl.Bits)
		require.Equal(t, "7fffff0000000000000000000000000000000000000000000000000000000000", tpl.Target)
		require.Empty(t, tpl.Transactions)
		require.Empty(t, tpl.Rules, "btcd sends no rules")
		require.NotEmpty(t, tpl.LongPollID)
		require.Equal(t, int64(4_000_000), tpl.WeightLimit)
		require.Equal(t, int64(80_000), tpl.SigOpLimit)
		require.Positive(t, tpl.CurTime)
		require.LessOrEqual(t, tpl.MinTime, tpl.CurTime)
		require.Contains(t, tpl.Mutable, "time")
	})

	t.Run("chain info", func(t *testing.T) {
		info, err := c.GetBlockChainInfo(ctx)
		require.NoError(t, err)
		require.Equal(t, &noderpc.ChainInfo{Chain: "regtest", BestBlockHash: regtestGenesis.String()}, info)
	})

	var mined []chainhash.Hash
	t.Run("generate then best hash and headers agree", func(t *testing.T) {
		strs, err := c.Generate(ctx, 3)
		require.NoError(t, err)
		require.Len(t, strs, 3)
		for _, s := range strs {
			h, err := chainhash.NewHashFromStr(s)
			require.NoError(t, err)
			mined = append(mined, *h)
		}

		best, err := c.GetBestBlockHash(ctx)
		require.NoError(t, err)
		require.Equal(t, mined[2], best)
		n, err := c.GetBlockCount(ctx)
		require.NoError(t, err)
		require.Equal(t, int64(3), n)

		info, err := c.GetBlockHeader(ctx, best)
		require.NoError(t, err)
		require.Equal(t, best.String(), info.Hash)
		require.Equal(t, int64(3), info.Height)
		require.Equal(t, int64(1), info.Confirmations)
		require.Equal(t, mined[1].String(), info.PreviousBlockHash)
		require.Empty(t, info.NextHash)
		require.Equal(t, "207fffff", info.Bits)
		require.Zero(t, info.MedianTime, "btcd has no mediantime")

		first, err := c.GetBlockHeader(ctx, mined[0])
		require.NoError(t, err)
		require.Equal(t, mined[1].String(), first.NextHash)
		require.Equal(t, int64(3), first.Confirmations)

		raw, err := c.GetRawBlockHeader(ctx, best)
		require.NoError(t, err)
		require.Equal(t, best, raw.BlockHash())
		require.Equal(t, mined[1], raw.PrevBlock)
		require.Equal(t, info.Nonce, raw.Nonce)
		require.Equal(t, info.Time, raw.Timestamp.Unix())
		require.Equal(t, info.MerkleRoot, raw.MerkleRoot.String())
		require.Equal(t, info.Version, raw.Version)

		blockHex, err := c.GetBlockHex(ctx, best)
		require.NoError(t, err)
		blk := decodeBlock(t, blockHex)
		require.Equal(t, best, blk.BlockHash())
		require.Len(t, blk.Transactions, 1)
	})

	t.Run("unknown hash", func(t *testing.T) {
		unknown := chainhash.DoubleHashH([]byte("no such block"))
		_, err := c.GetBlockHeader(ctx, unknown)
		require.True(t, noderpc.IsRPCCode(err, noderpc.CodeBlockNotFound), "%v", err)
		_, err = c.GetRawBlockHeader(ctx, unknown)
		require.True(t, noderpc.IsRPCCode(err, noderpc.CodeBlockNotFound), "%v", err)
		_, err = c.GetBlockHex(ctx, unknown)
		require.True(t, noderpc.IsRPCCode(err, noderpc.CodeBlockNotFound), "%v", err)
		require.False(t, noderpc.IsTransport(err))
	})

	t.Run("submitblock", func(t *testing.T) {
		tests := []struct {
			name       string
			blockHex   func(t *testing.T) string
			wantCode   int    // RPC error code; 0: no error
			wantReject string // prefix of the reject string
			wantOrphan bool   // accepted (null) but not connected to the chain
		}{
			{name: "garbage hex", blockHex: func(*testing.T) string { return "zz-not-hex" }, wantCode: noderpc.CodeDeserialization},
			{name: "undecodable block", blockHex: func(*testing.T) string { return "00" }, wantCode: noderpc.CodeDeserialization},
			{name: "high hash", blockHex: func(t *testing.T) string { return solveTemplateBlock(t, node, nil, false) },
				wantReject: "rejected: block hash of"},
			// btcd quirk: a block whose parent it doesn't know is kept as an
			// orphan and submitblock answers null, exactly as for a block
			// that became the tip. Callers must check the tip themselves.
			{name: "orphan answers null", blockHex: func(t *testing.T) string {
				unknown := chainhash.DoubleHashH([]byte("unknown parent"))
				return solveTemplateBlock(t, node, &unknown, true)
			}, wantOrphan: true},
			{name: "valid new block", blockHex: func(t *testing.T) string { return solveTemplateBlock(t, node, nil, true) }},
			{name: "duplicate", blockHex: func(t *testing.T) string {
				best, err := c.GetBestBlockHash(ctx)
				require.NoError(t, err)
				s, err := c.GetBlockHex(ctx, best)
				require.NoError(t, err)
				return s
			}, wantReject: "rejected: already have block"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				blockHex := tc.blockHex(t)
				reject, err := c.SubmitBlock(ctx, blockHex)
				if tc.wantCode != 0 {
					var re *noderpc.RPCError
					require.ErrorAs(t, err, &re)
					require.Equal(t, tc.wantCode, re.Code, "%v", err)
					require.Empty(t, reject)
					return
				}
				require.NoError(t, err)
				if tc.wantReject != "" {
					require.True(t, strings.HasPrefix(reject, tc.wantReject), "reject %q", reject)
					return
				}
				require.Empty(t, reject)
				best, err := c.GetBestBlockHash(ctx)
				require.NoError(t, err)
				submitted := decodeBlock(t, blockHex).BlockHash()
				if tc.wantOrphan {
					require.NotEqual(t, submitted, best)
					_, err := c.GetBlockHeader(ctx, submitted)
					require.True(t, noderpc.IsRPCCode(err, noderpc.CodeBlockNotFound), "%v", err)
					return
				}
				require.Equal(t, submitted, best, "submitted block is not the tip")
			})
		}
	})

	t.Run("long poll returns on new block", func(t *testing.T) {
		// A short default timeout must not cut a long poll whose context
		// has its own, longer deadline.
		lp, err := noderpc.New(noderpc.Options{URL: "http://" + node.RPCAddr, User: node.RPCUser, Password: node.RPCPass, Timeout: 100 * time.Millisecond})
		require.NoError(t, err)
		defer lp.Close()

		tpl, err := c.GetBlockTemplate(ctx, noderpc.TemplateRequest{})
		require.NoError(t, err)
		type result struct {
			tpl *noderpc.Template
			err error
		}
		done := make(chan result, 1)
		go func() {
			lpCtx, lpCancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer lpCancel()
			next, err := lp.GetBlockTemplate(lpCtx, noderpc.TemplateRequest{LongPollID: tpl.LongPollID})
			done <- result{next, err}
		}()
		time.Sleep(300 * time.Millisecond) // longer than the default timeout
		node.Generate(t, 1)
		select {
		case r := <-done:
			require.NoError(t, r.err)
			require.Equal(t, tpl.Height+1, r.tpl.Height)
			require.NotEqual(t, tpl.LongPollID, r.tpl.LongPollID)
		case <-time.After(40 * time.Second):
			require.Fail(t, "long poll did not return")
		}
	})

	t.Run("method and credential errors", func(t *testing.T) {
		_, err := c.GenerateToAddress(ctx, 1, node.MiningAddr.EncodeAddress())
		require.True(t, noderpc.IsRPCCode(err, noderpc.CodeMethodNotFound), "%v", err)

		_, err = c.SendRawTransaction(ctx, "00")
		var re *noderpc.RPCError
		require.ErrorAs(t, err, &re, "%v", err)

		bad, err := noderpc.New(noderpc.Options{URL: node.RPCAddr, User: node.RPCUser, Password: "wrong-" + node.RPCPass})
		require.NoError(t, err)
		_, err = bad.GetBlockCount(ctx)
		require.ErrorIs(t, err, noderpc.ErrUnauthorized)
		require.NotContains(t, err.Error(), node.RPCPass)
	})

	t.Run("stopped node is a transport error", func(t *testing.T) {
		node.Stop(t)
		_, err := c.GetBlockCount(ctx)
		require.True(t, noderpc.IsTransport(err), "%v", err)
		require.False(t, errors.Is(err, noderpc.ErrUnauthorized))
	})
}

// solveTemplateBlock builds a block from the node's current template (a
// coinbase only, paying to the node's mining address), optionally on another
// parent, grinds the nonce until its hash meets the regtest target (or, with
// valid false, until it misses it) and returns it as hex.
func solveTemplateBlock(t *testing.T, node *testutil.Btcd, parent *chainhash.Hash, valid bool) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tpl, err := node.Client.GetBlockTemplate(ctx, noderpc.TemplateRequest{})
	require.NoError(t, err)
	require.Empty(t, tpl.Transactions, "mempool must be empty for this coinbase-only block")

	prev, err := chainhash.NewHashFromStr(tpl.PreviousBlockHash)
	require.NoError(t, err)
	if parent != nil {
		prev = parent
	}
	bits, err := strconv.ParseUint(tpl.Bits, 16, 32)
	require.NoError(t, err)
	target, ok := new(big.Int).SetString(tpl.Target, 16)
	require.True(t, ok)

	sigScript, err := txscript.NewScriptBuilder().AddInt64(tpl.Height).AddData([]byte("/hashgate/")).Script()
	require.NoError(t, err)
	payTo, err := txscript.PayToAddrScript(node.MiningAddr)
	require.NoError(t, err)
	coinbase := wire.NewMsgTx(1)
	coinbase.AddTxIn(&wire.TxIn{
		PreviousOutPoint: wire.OutPoint{Index: wire.MaxPrevOutIndex},
		SignatureScript:  sigScript,
		Sequence:         wire.MaxTxInSequenceNum,
	})
	coinbase.AddTxOut(wire.NewTxOut(tpl.CoinbaseValue, payTo))

	blk := wire.MsgBlock{
		Header: wire.BlockHeader{
			Version:    tpl.Version,
			PrevBlock:  *prev,
			MerkleRoot: coinbase.TxHash(), // one transaction: the root is its txid
			Timestamp:  time.Unix(tpl.CurTime, 0),
			Bits:       uint32(bits),
		},
		Transactions: []*wire.MsgTx{coinbase},
	}
	for {
		h := blk.Header.BlockHash()
		if meets := blockchain.HashToBig(&h).Cmp(target) <= 0; meets == valid {
			break
		}
		blk.Header.Nonce++
		require.NotZero(t, blk.Header.Nonce, "nonce space exhausted")
	}
	var buf bytes.Buffer
	require.NoError(t, blk.Serialize(&buf))
	return hex.EncodeToString(buf.Bytes())
}

// decodeBlock parses a hex-serialized block.
func decodeBlock(t *testing.T, s string) *wire.MsgBlock {
	t.Helper()
	raw, err := hex.DecodeString(s)
	require.NoError(t, err)
	var blk wire.MsgBlock
	require.NoError(t, blk.Deserialize(bytes.NewReader(raw)))
	return &blk
}
