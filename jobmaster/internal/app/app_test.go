package app

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/stretchr/testify/require"

	"github.com/hashgate/hashgate/jobmaster/internal/config"
	"github.com/hashgate/hashgate/pkg/blockutil"
	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/confutil"
	"github.com/hashgate/hashgate/pkg/testutil"
)

// TestFullBlockWithMempoolTransactions: with 100+ mempool transactions
// (segwit spends signed here from coinbases the test controls), the jobmaster
// publishes a job; we take it from NATS as a gateway would, grind a nonce at
// the regtest target and hand the block over on the bus; btcd's best block is
// then ours, holds every template transaction and the witness commitment, and
// pays the configured address.
func TestFullBlockWithMempoolTransactions(t *testing.T) {
	node := testutil.StartBtcd(t, testutil.BtcdOptions{})
	addrs := addresses(t)
	dests := []btcutil.Address{addrs["p2pkh"], addrs["p2sh"], addrs["p2wpkh"], addrs["p2wsh"], addrs["p2tr"]}
	spends := node.SpendMatureCoinbases(t, 110, dests, 20000)
	require.Len(t, spends, 110)
	for _, tx := range spends {
		require.True(t, tx.HasWitness(), "every spend is a segwit spend")
	}

	natsURL, _ := testutil.StartNATS(t, testutil.NATSOptions{User: natsUser, Pass: natsPass})
	payout := addrs["p2tr"]
	c := startCluster(t, baseConfig(t, natsURL, payout.EncodeAddress(), nodeConfig("btcd1", node)))

	job := c.nextJob(30*time.Second, "with the mempool", func(j *bus.Job) bool { return len(j.Txs) >= 110 })
	require.True(t, job.HasWitness)
	require.Equal(t, node.BestHash(t), job.PrevHash)
	// Readiness flips right after the first publish returns; the job can
	// reach a subscriber a moment earlier.
	testutil.Eventually(t, 5*time.Second, func() bool { code, _ := c.healthz(); return code == http.StatusOK },
		"ready once a job is out")

	fb := grind(t, job, []byte{0xde, 0xad, 0xbe, 0xef}, []byte{1, 2, 3, 4, 5, 6, 7, 8}, true)
	res := c.submit(fb)
	require.Equal(t, bus.BlockAccepted, res.Status, res.Reason)
	require.Equal(t, fb.BlockHash, res.BlockHash)
	require.Equal(t, job.Height, res.Height)

	// The node's best block is ours.
	require.Equal(t, fb.BlockHash, node.BestHash(t))
	blk := node.Block(t, fb.BlockHash)
	require.Len(t, blk.Transactions, len(job.Txs)+1)
	inBlock := map[chainhash.Hash]bool{}
	for _, tx := range blk.Transactions[1:] {
		inBlock[tx.TxHash()] = true
	}
	for _, tx := range spends {
		require.True(t, inBlock[tx.TxHash()], "spend %s is in the block", tx.TxHash())
	}
	// The coinbase pays the configured address the whole reward, carries
	// the witness commitment and the witness reserved value.
	cb := blk.Transactions[0]
	payScript, err := txscript.PayToAddrScript(payout)
	require.NoError(t, err)
	require.Equal(t, payScript, cb.TxOut[0].PkScript)
	require.Equal(t, job.CoinbaseValue, cb.TxOut[0].Value)
	require.Greater(t, job.CoinbaseValue, blockutil.Subsidy(job.Height, regtest), "fees are collected")
	last := cb.TxOut[len(cb.TxOut)-1].PkScript
	require.True(t, bytes.HasPrefix(last, []byte{0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed}), "witness commitment output")
	require.Equal(t, [][]byte{make([]byte, 32)}, [][]byte(cb.TxIn[0].Witness))
	require.NoError(t, blockchain.ValidateWitnessCommitment(btcutil.NewBlock(blk)))
	h, err := blockchain.ExtractCoinbaseHeight(btcutil.NewTx(cb))
	require.NoError(t, err)
	require.Equal(t, int32(job.Height), h)

	// Submitting the same share again is harmless and gives the same answer.
	again := c.submit(fb)
	require.Equal(t, bus.BlockAccepted, again.Status)
	require.Equal(t, fb.BlockHash, again.BlockHash)

	// A gateway that connects now gets the current job on request.
	m, err := c.nc.Request(bus.Subject("hashgate", "btc", bus.TopicJobCurrent), nil, 5*time.Second)
	require.NoError(t, err)
	var cur bus.Job
	require.NoError(t, cur.Unmarshal(m.Data))
	require.True(t, cur.Clean)
	require.Equal(t, fb.BlockHash, cur.PrevHash, "the current job builds on our block")
}

// TestNewTipJobs: a block generated outside the jobmaster produces a clean
// job for the new height; when the template is slow, an empty-block job for
// the new tip comes first and the full job follows without cleaning it.
func TestNewTipJobs(t *testing.T) {
	node := testutil.StartBtcd(t, testutil.BtcdOptions{})
	node.Generate(t, 5)
	proxy := newSlowProxy(t, node.RPCAddr)
	natsURL, _ := testutil.StartNATS(t, testutil.NATSOptions{User: natsUser, Pass: natsPass})
	nc := nodeConfig("slow", node)
	nc.RPCURL = proxy.srv.URL
	nc.LongPoll = false
	cfg := baseConfig(t, natsURL, "bcrt1ql7fk7lfuvazvrytsx4efz5pv75j23cfkmjfytk", nc)
	c := startCluster(t, cfg)
	c.nextJob(20*time.Second, "at start", func(j *bus.Job) bool { return j.Height == 6 })

	t.Run("fast template: clean full job", func(t *testing.T) {
		c.drain()
		tip := node.Generate(t, 1)[0]
		j := c.nextJob(10*time.Second, "for height 7", func(j *bus.Job) bool { return j.Height == 7 })
		require.True(t, j.Clean, "the first job on a new tip is clean")
		require.Equal(t, tip, j.PrevHash)
		if j.Empty {
			full := c.nextJob(10*time.Second, "full for height 7", func(j *bus.Job) bool { return j.Height == 7 && !j.Empty })
			require.False(t, full.Clean)
		}
	})

	t.Run("slow template: empty job first", func(t *testing.T) {
		proxy.setDelay(4 * time.Second)
		defer proxy.setDelay(0)
		c.drain()
		tip := node.Generate(t, 1)[0]
		start := time.Now()
		empty := c.nextJob(10*time.Second, "for height 8", func(j *bus.Job) bool { return j.Height == 8 })
		require.True(t, empty.Empty, "the empty job comes first")
		require.True(t, empty.Clean)
		require.Equal(t, tip, empty.PrevHash)
		require.Equal(t, blockutil.Subsidy(8, regtest), empty.CoinbaseValue)
		require.Empty(t, empty.MerkleBranch)
		require.Less(t, time.Since(start), 4*time.Second, "empty job did not wait for the (4 s) template")
		full := c.nextJob(10*time.Second, "full for height 8", func(j *bus.Job) bool { return j.Height == 8 && !j.Empty })
		require.False(t, full.Clean, "the full job keeps the empty job's work")
		require.Equal(t, tip, full.PrevHash)

		// The empty job mines a valid block too.
		fb := grind(t, empty, []byte{0, 0, 0, 9}, make([]byte, 8), true)
		res := c.submit(fb)
		require.Equal(t, bus.BlockAccepted, res.Status, res.Reason)
		require.Equal(t, fb.BlockHash, node.BestHash(t))
	})
}

// TestZMQHashBlock proves the ZMQ path: polling is set to 10 s, long polls are
// off, and a real zmq4 PUB socket sends Bitcoin Core's multipart hashblock
// (topic, 32-byte hash in display order, 4-byte LE sequence). btcd has no
// ZMQ, so the test plays Core's publisher for a block btcd really mined: a
// job for the new height within a few seconds can only come from ZMQ.
func TestZMQHashBlock(t *testing.T) {
	node := testutil.StartBtcd(t, testutil.BtcdOptions{})
	node.Generate(t, 3)
	c, pub := startZMQCluster(t, node)

	c.drain()
	tip := node.Generate(t, 1)[0]
	sent := time.Now()
	// Garbage first: a short hash must be ignored, not crash anything.
	_, err := pub.sock.SendMessage("hashblock", []byte{1, 2, 3}, []byte{0, 0, 0, 0})
	require.NoError(t, err)
	pub.hashblock(t, tip)
	j := c.nextJob(5*time.Second, "after the ZMQ message", func(j *bus.Job) bool { return j.Height == 5 })
	require.Equal(t, tip, j.PrevHash)
	require.Less(t, time.Since(sent), 5*time.Second, "well under the 10 s poll")
}

// TestFailoverToSecondNode: two connected btcd nodes; stopping the first
// keeps jobs flowing from the second, and a found block is accepted through
// the second.
func TestFailoverToSecondNode(t *testing.T) {
	n1 := testutil.StartBtcd(t, testutil.BtcdOptions{})
	n1.Generate(t, 3)
	n2 := testutil.StartBtcd(t, testutil.BtcdOptions{ConnectTo: []string{n1.P2PAddr}})
	testutil.Eventually(t, 30*time.Second, func() bool { return n2.Height(t) == 3 }, "second node syncs")

	natsURL, _ := testutil.StartNATS(t, testutil.NATSOptions{User: natsUser, Pass: natsPass})
	cfg := baseConfig(t, natsURL, "bcrt1ql7fk7lfuvazvrytsx4efz5pv75j23cfkmjfytk",
		nodeConfig("first", n1), nodeConfig("second", n2))
	for i := range cfg.Nodes {
		cfg.Nodes[i].Timeout = confutil.Duration(2 * time.Second)
	}
	c := startCluster(t, cfg)
	j := c.nextJob(20*time.Second, "from the first node", func(j *bus.Job) bool { return j.Height == 4 })
	require.Equal(t, "first", j.Source)

	n1.Stop(t)
	tip := n2.Generate(t, 1)[0]
	j = c.nextJob(30*time.Second, "from the second node", func(j *bus.Job) bool { return j.Height == 5 && !j.Empty })
	require.Equal(t, "second", j.Source)
	require.Equal(t, tip, j.PrevHash)

	code, body := c.healthz()
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "degraded", body["status"], "a node is down: degraded, still alive")

	fb := grind(t, j, []byte{1, 1, 1, 1}, make([]byte, 8), true)
	res := c.submit(fb)
	require.Equal(t, bus.BlockAccepted, res.Status, res.Reason)
	require.Equal(t, fb.BlockHash, n2.BestHash(t))
	require.Contains(t, res.Reason, "first", "the dead node's failure is reported")
}

// TestGarbageNodeFallsThrough: a node that answers garbage is taken out of
// rotation with a clear reason while jobs come from the next node.
func TestGarbageNodeFallsThrough(t *testing.T) {
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"result": {"previousblockhash": 42`))
	}))
	defer garbage.Close()
	node := testutil.StartBtcd(t, testutil.BtcdOptions{})
	natsURL, _ := testutil.StartNATS(t, testutil.NATSOptions{User: natsUser, Pass: natsPass})
	bad := config.NodeConfig{Name: "garbage", RPCURL: garbage.URL, RPCUser: "u", RPCPass: "p", Timeout: confutil.Duration(time.Second)}
	c := startCluster(t, baseConfig(t, natsURL, "bcrt1ql7fk7lfuvazvrytsx4efz5pv75j23cfkmjfytk", bad, nodeConfig("good", node)))
	j := c.nextJob(20*time.Second, "from the good node", func(j *bus.Job) bool { return true })
	require.Equal(t, "good", j.Source)
	var code int
	var body map[string]any
	testutil.Eventually(t, 5*time.Second, func() bool { code, body = c.healthz(); return code == http.StatusOK },
		"ready once a job is out")
	require.Equal(t, "degraded", body["status"])
	checks := body["checks"].(map[string]any)
	require.Contains(t, checks["nodes"], "garbage")
}

// TestStaleTipBlockAndBadShares: a block found on the previous tip within the
// grace period is still submitted; shares that do not qualify are refused
// with a clear reason.
func TestStaleTipBlockAndBadShares(t *testing.T) {
	node := testutil.StartBtcd(t, testutil.BtcdOptions{})
	node.Generate(t, 2)
	natsURL, _ := testutil.StartNATS(t, testutil.NATSOptions{User: natsUser, Pass: natsPass})
	c := startCluster(t, baseConfig(t, natsURL, "bcrt1ql7fk7lfuvazvrytsx4efz5pv75j23cfkmjfytk", nodeConfig("btcd", node)))
	old := c.nextJob(20*time.Second, "at start", func(j *bus.Job) bool { return j.Height == 3 })

	t.Run("low difficulty share refused", func(t *testing.T) {
		fb := grind(t, old, []byte{2, 2, 2, 2}, make([]byte, 8), false)
		res := c.submit(fb)
		require.Equal(t, bus.BlockInvalid, res.Status)
		require.Contains(t, res.Reason, "high-hash")
		require.Equal(t, int64(2), node.Height(t), "nothing was submitted")
	})
	t.Run("unknown job", func(t *testing.T) {
		fb := grind(t, old, []byte{2, 2, 2, 2}, make([]byte, 8), true)
		fb.JobID = "nope"
		require.Equal(t, bus.BlockUnknownJob, c.submit(fb).Status)
	})
	t.Run("version bits outside the mask", func(t *testing.T) {
		fb := grind(t, old, []byte{2, 2, 2, 2}, make([]byte, 8), true)
		fb.Version ^= 0x00000001
		res := c.submit(fb)
		require.Equal(t, bus.BlockInvalid, res.Status)
		require.Contains(t, res.Reason, "rolling mask")
	})
	t.Run("bad extranonce size", func(t *testing.T) {
		fb := grind(t, old, []byte{2, 2, 2, 2}, make([]byte, 8), true)
		fb.Extranonce2 = fb.Extranonce2[:4]
		require.Contains(t, c.submit(fb).Reason, "extranonce sizes")
	})
	t.Run("ntime before mintime", func(t *testing.T) {
		fb := grind(t, old, []byte{2, 2, 2, 2}, make([]byte, 8), true)
		fb.NTime = old.MinTime - 1
		require.Contains(t, c.submit(fb).Reason, "mintime")
	})
	t.Run("garbage message", func(t *testing.T) {
		m, err := c.nc.Request(bus.Subject("hashgate", "btc", bus.TopicBlock), []byte("garbage"), 5*time.Second)
		require.NoError(t, err)
		var res bus.BlockResult
		require.NoError(t, res.Unmarshal(m.Data))
		require.Equal(t, bus.BlockInvalid, res.Status)
	})

	t.Run("block on the previous tip is still submitted", func(t *testing.T) {
		c.drain()
		newTip := node.Generate(t, 1)[0]
		c.nextJob(10*time.Second, "for the new tip", func(j *bus.Job) bool { return j.PrevHash == newTip })
		fb := grind(t, old, []byte{3, 3, 3, 3}, make([]byte, 8), true)
		res := c.submit(fb)
		require.Equal(t, bus.BlockSideChain, res.Status, res.Reason)
		_, err := node.Client.GetBlockHex(t.Context(), fb.BlockHash)
		require.NoError(t, err, "btcd stored the competing block")
		require.Equal(t, newTip, node.BestHash(t))
	})
}

// TestBusTip: a PoW-checked header on the bus that extends our tip makes the
// jobmaster mine an empty block on it at once; a header with bad proof of
// work is ignored; when no node follows the announced tip, the jobmaster goes
// back to the nodes' chain after empty_timeout.
func TestBusTip(t *testing.T) {
	node := testutil.StartBtcd(t, testutil.BtcdOptions{})
	node.Generate(t, 2)
	natsURL, _ := testutil.StartNATS(t, testutil.NATSOptions{User: natsUser, Pass: natsPass})
	cfg := baseConfig(t, natsURL, "bcrt1ql7fk7lfuvazvrytsx4efz5pv75j23cfkmjfytk", nodeConfig("btcd", node))
	cfg.EmptyTimeout = confutil.Duration(2 * time.Second)
	c := startCluster(t, cfg)
	cur := c.nextJob(20*time.Second, "at start", func(j *bus.Job) bool { return j.Height == 3 })
	subj := bus.Subject("hashgate", "btc", bus.TopicTip)

	// A foreign block on top of our tip, with real proof of work.
	root := chainhash.DoubleHashH([]byte("someone else's block"))
	target := blockutil.TargetFromBits(cur.Bits)
	var hdr, bad blockutil.Header
	var haveGood, haveBad bool
	for n := uint32(0); !haveGood || !haveBad; n++ {
		h := blockutil.MakeHeader(cur.Version, &cur.PrevHash, &root, cur.CurTime+1, cur.Bits, n)
		hash := h.Hash()
		if blockutil.HashMeets(&hash, &target) {
			hdr, haveGood = h, true
		} else {
			bad, haveBad = h, true
		}
	}
	c.drain()
	badTip := bus.Tip{Header: bad, Source: "liar"}
	require.NoError(t, c.nc.Publish(subj, badTip.Marshal()))
	tip := bus.Tip{Header: hdr, Source: "bitpeer-test", SeenUnixNano: time.Now().UnixNano()}
	require.NoError(t, c.nc.Publish(subj, tip.Marshal()))
	empty := c.nextJob(5*time.Second, "on the announced tip", func(j *bus.Job) bool { return j.Height == 4 })
	require.True(t, empty.Empty)
	require.True(t, empty.Clean)
	require.Equal(t, hdr.Hash(), empty.PrevHash, "the empty job builds on the announced header, not the bad one")
	require.Equal(t, "bitpeer-test", empty.Source)

	// btcd never sees that block: after empty_timeout the nodes' chain wins.
	back := c.nextJob(15*time.Second, "back on the node's tip", func(j *bus.Job) bool { return j.Height == 3 && !j.Empty })
	require.True(t, back.Clean)
	require.Equal(t, cur.PrevHash, back.PrevHash)
}
