package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/stretchr/testify/require"

	"github.com/hashgate/hashgate/pkg/blockutil"
	"github.com/hashgate/hashgate/pkg/testutil"
	"github.com/hashgate/hashgate/tools/internal/load"
)

// decodeBlock fetches a block through noderpc and decodes it with btcd's
// wire package.
func decodeBlock(t *testing.T, c *cluster, hash chainhash.Hash) *wire.MsgBlock {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	raw, err := c.btcd.Client.GetBlockHex(ctx, hash)
	require.NoError(t, err)
	b, err := hex.DecodeString(raw)
	require.NoError(t, err)
	var blk wire.MsgBlock
	require.NoError(t, blk.Deserialize(bytes.NewReader(b)))
	return &blk
}

// paysPayout reports whether the block's coinbase pays the jobmaster's
// payout address, i.e. it was mined through the pool (btcd's generate pays
// its own mining address).
func paysPayout(t *testing.T, blk *wire.MsgBlock) bool {
	addr, err := blockutil.DecodeAddress(payoutAddr, &chaincfg.RegressionNetParams)
	require.NoError(t, err)
	for _, out := range blk.Transactions[0].TxOut {
		if bytes.Equal(out.PkScript, addr.Script) && out.Value > 0 {
			return true
		}
	}
	return false
}

func TestMineFindsBlocks(t *testing.T) {
	c := startCluster(t, 1e-8)
	ctx := context.Background()
	start, err := c.btcd.Client.GetBlockCount(ctx)
	require.NoError(t, err)

	// The miner dials through a proxy that can cut its connection.
	proxy := startCutProxy(t, c.stratum)
	miner := startProc(t, "hgminer-mine", hgminerBin, nil, "mine", "-url", "stratum+tcp://"+proxy.addr(),
		"-user", "alice.cpu1", "-version-rolling", "-suggest-diff", "1e-12", "-share-rate", "4",
		"-stats-every", "1s")

	// waitBlocks waits until the tip is at least n blocks above from and
	// pays the pool's address; it returns the tip.
	waitBlocks := func(from int64, n int64) (chainhash.Hash, int64) {
		t.Helper()
		var tip chainhash.Hash
		var height int64
		testutil.Eventually(t, 20*time.Second, func() bool {
			require.True(t, miner.alive(), "miner exited:\n%s", miner.tail(30))
			h, err := c.btcd.Client.GetBlockCount(ctx)
			if err != nil || h < from+n {
				return false
			}
			best, err := c.btcd.Client.GetBestBlockHash(ctx)
			if err != nil || !paysPayout(t, decodeBlock(t, c, best)) {
				return false
			}
			tip, height = best, h
			return true
		}, "no blocks mined through the gateway above height %d", from)
		return tip, height
	}
	found, height := waitBlocks(start, 3)

	// A cut connection: the miner reconnects, resumes its session (same
	// extranonce1) and keeps finding blocks.
	proxy.cut()
	testutil.Eventually(t, 10*time.Second, func() bool {
		return strings.Contains(miner.tail(1000), `"resumed":true`)
	}, "miner did not resume its session:\n%s", miner.tail(20))
	waitBlocks(height, 2)

	blk := decodeBlock(t, c, found)
	require.Contains(t, string(blk.Transactions[0].TxIn[0].SignatureScript), "/hashgate/")
	// Version rolling keeps the BIP9 top bits.
	require.Equal(t, uint32(1), uint32(blk.Header.Version)>>29, "version %08x", blk.Header.Version)

	testutil.Eventually(t, 5*time.Second, func() bool {
		return strings.Contains(miner.tail(1000), `"msg":"miner stats"`)
	}, "no statistics line")

	// SIGINT stops it cleanly, with a final line.
	require.NoError(t, miner.cmd.Process.Signal(syscall.SIGINT))
	select {
	case <-miner.done:
		require.NoError(t, miner.err, "miner exit status")
	case <-time.After(10 * time.Second):
		t.Fatal("miner did not exit within 10s of SIGINT")
	}
	logs := miner.tail(1000)
	require.Contains(t, logs, `"msg":"block candidate found"`)
	require.Contains(t, logs, `"msg":"miner stats"`)
	require.Contains(t, logs, `"msg":"miner stopped"`)
}

func TestLoadReport(t *testing.T) {
	// Load shares must not be blocks, so the gateway runs with a vardiff.min
	// below regtest's network difficulty (about 4.66e-10, which caps every
	// share difficulty). A gateway that refuses 1e-10 fails here, at its
	// config check.
	c := startCluster(t, 1e-10)
	out, stderr := runTool(t, 90*time.Second, "load", "-url", "stratum+tcp://"+c.stratum,
		"-conns", "200", "-procs", "2", "-share-rate", "1", "-duration", "5s",
		"-admin", c.gwAdmin, "-pid", "@"+c.runDir+"/gateway.pid",
		"-generate-url", c.generateURL, "-generate-every", "2s", "-report", "json")
	var rep load.Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep), "report:\n%s\nstderr:\n%s", out, tailString(stderr, 20))
	t.Logf("load report: %s", out)

	require.Equal(t, 200, rep.Connect.Connected)
	require.Zero(t, rep.Connect.Failed)
	require.Positive(t, rep.Connect.TotalS)
	require.Equal(t, 2, rep.Procs)
	require.Equal(t, 8, rep.Sources)

	s := rep.Submit
	require.Positive(t, s.Accepted)
	// 200 connections × 1/s × 5 s, give or take the schedule edges.
	require.InDelta(t, 1000, float64(s.Submitted), 250)
	for reason := range s.Rejected {
		require.True(t, strings.HasPrefix(reason, "21 "), "unexpected reject %q", reason)
	}
	require.LessOrEqual(t, s.RejectedTotal, s.Submitted/10, "too many stale shares")
	require.Zero(t, s.BlockShares, "load shares must not be blocks")
	require.Positive(t, s.P50)
	require.GreaterOrEqual(t, s.P99, s.P50)
	require.Zero(t, rep.Dropped)

	// generate 1 every 2 s: clean jobs reach all 200 clients.
	require.Positive(t, rep.Blocks.Generated)
	require.Positive(t, rep.FanoutClean.Jobs)
	require.Equal(t, 200, rep.FanoutClean.ClientsMin)
	require.GreaterOrEqual(t, rep.FanoutClean.MaxSpread, rep.FanoutClean.P99)

	g := rep.Gateway
	require.NotNil(t, g)
	require.Equal(t, "proc", g.Source)
	require.Positive(t, g.RSSEndMB)
	require.Positive(t, g.CPUPerShareUs)
	require.Positive(t, g.Shares["accepted"])
}
