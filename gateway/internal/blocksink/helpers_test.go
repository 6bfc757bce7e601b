package blocksink

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/hashgate/hashgate/pkg/blockutil"
	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/noderpc"
	"github.com/hashgate/hashgate/pkg/testutil"
)

// subject is the found-block subject the tests use.
var subject = bus.Subject("hashgate", "btc", bus.TopicBlock)

// waitLong bounds every wait for something the sink does.
const waitLong = 15 * time.Second

// natsConn connects to url with endless fast reconnects, as bus.Connect
// does (but retrying the first connect too, so a test may start with the
// server down).
func natsConn(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
		nats.RetryOnFailedConnect(true))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

// jobmaster answers found blocks on the bus with status, like the real one,
// and hands every request it got to the test.
func jobmaster(t *testing.T, url string, status bus.BlockStatus) <-chan *bus.FoundBlock {
	t.Helper()
	nc := natsConn(t, url)
	got := make(chan *bus.FoundBlock, 1000)
	_, err := nc.Subscribe(subject, func(m *nats.Msg) {
		var fb bus.FoundBlock
		if err := fb.Unmarshal(m.Data); err != nil {
			t.Errorf("jobmaster got an undecodable found block: %v", err)
			return
		}
		select {
		case got <- &fb:
		default:
		}
		r := bus.BlockResult{Status: status, BlockHash: fb.BlockHash, JobID: fb.JobID, Height: 7,
			User: fb.User, Worker: fb.Worker}
		_ = m.Respond(r.Marshal())
	})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	return got
}

// logs records the sink's logs at Debug and above, and also prints them to
// the test log.
func logs(t *testing.T) (*zap.Logger, *observer.ObservedLogs) {
	core, obs := observer.New(zapcore.DebugLevel)
	lg := zap.New(zapcore.NewTee(core, zaptest.NewLogger(t).Core()))
	return lg, obs
}

// running is a Sink whose Run goroutine the test controls.
type running struct {
	*Sink
	stop func() // cancels Run and waits for it to return
}

// start makes a sink from o (filling in the subject and a test logger)
// and runs it until the test ends or stop is called.
func start(t *testing.T, o Options) running {
	t.Helper()
	if o.Subject == "" {
		o.Subject = subject
	}
	if o.Logger == nil {
		o.Logger = zaptest.NewLogger(t)
	}
	s, err := New(o)
	require.NoError(t, err)
	return runSink(t, s)
}

// runSink runs s until the test ends or stop is called.
func runSink(t *testing.T, s *Sink) running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(waitLong):
			t.Fatal("Run did not return after cancel")
		}
	}
	t.Cleanup(stop)
	return running{Sink: s, stop: stop}
}

// result waits for the next result.
func result(t *testing.T, s *Sink) Result {
	t.Helper()
	select {
	case r := <-s.Results():
		return r
	case <-time.After(waitLong):
		t.Fatalf("no result within %s (pending %d)", waitLong, s.Pending())
		return Result{}
	}
}

// spoolFiles lists the records in dir (not in failed/).
func spoolFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*"+spoolExt))
	require.NoError(t, err)
	return names
}

// failedFiles lists what was moved to dir/failed/.
func failedFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, failedDir, "*"))
	require.NoError(t, err)
	return names
}

// fakeBlock is a synthetic found block with distinct share data; its
// "block" is not a real block.
func fakeBlock(i int) (*bus.FoundBlock, []byte) {
	tag := []byte(strconv.Itoa(i))
	return &bus.FoundBlock{JobID: "job-" + strconv.Itoa(i), Extranonce1: []byte{1, 2, 3, 4},
		Extranonce2: []byte{0, 0, 0, 0, 0, 0, byte(i >> 8), byte(i)}, NTime: 1_700_000_000, Nonce: uint32(i),
		Version: 0x20000000, BlockHash: chainhash.DoubleHashH(tag), Source: "gw-test", User: "alice",
		Worker: "rig" + strconv.Itoa(i), FoundUnixNano: int64(1_700_000_000e9 + i)}, append([]byte("raw-"), tag...)
}

// realBlock mines a valid block on top of prev (the node's tip when nil)
// from the node's own template, as a miner behind the gateway would find
// it: coinbase from blockutil paying the node's regtest address, a nonce
// ground at regtest difficulty (0x207fffff, about two tries). The
// FoundBlock's share fields are synthetic; its hash is the real one.
func realBlock(t *testing.T, node *testutil.Btcd, prev *chainhash.Hash) (*bus.FoundBlock, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	tpl, err := node.Client.GetBlockTemplate(ctx, noderpc.TemplateRequest{})
	require.NoError(t, err)
	addr, err := blockutil.DecodeAddress(node.MiningAddr.EncodeAddress(), &chaincfg.RegressionNetParams)
	require.NoError(t, err)
	require.Empty(t, tpl.Transactions, "the test chain has no mempool")
	cb, err := blockutil.BuildCoinbase(blockutil.CoinbaseParams{Height: tpl.Height, Value: tpl.CoinbaseValue,
		Payouts: []blockutil.Payout{{Address: addr, Weight: 1}}, Tag: []byte("/hashgate-test/"),
		Extranonce1Size: 4, Extranonce2Size: 8})
	require.NoError(t, err)
	en1, en2 := []byte{0xde, 0xad, 0xbe, 0xef}, []byte{1, 2, 3, 4, 5, 6, 7, 8}
	tx, err := cb.MsgTx(en1, en2)
	require.NoError(t, err)
	if prev == nil {
		prev, err = chainhash.NewHashFromStr(tpl.PreviousBlockHash)
		require.NoError(t, err)
	}
	bits, err := strconv.ParseUint(tpl.Bits, 16, 32)
	require.NoError(t, err)
	target := blockutil.TargetFromBits(uint32(bits))
	root := tx.TxHash()
	ntime := uint32(tpl.CurTime)
	for nonce := uint32(0); nonce < 1<<20; nonce++ {
		h := blockutil.MakeHeader(tpl.Version, prev, &root, ntime, uint32(bits), nonce)
		hash := h.Hash()
		if !blockutil.HashMeets(&hash, &target) {
			continue
		}
		raw, err := blockutil.AssembleBlock(&h, tx, nil)
		require.NoError(t, err)
		return &bus.FoundBlock{JobID: "job-" + strconv.FormatInt(tpl.Height, 10), Extranonce1: en1,
			Extranonce2: en2, NTime: ntime, Nonce: nonce, Version: tpl.Version, BlockHash: hash,
			Source: "gw-test", User: "alice", Worker: "rig1", FoundUnixNano: time.Now().UnixNano()}, raw
	}
	t.Fatal("no nonce found")
	return nil, nil
}

// deadNode is a node client for a port nobody listens on.
func deadNode(t *testing.T) Node {
	t.Helper()
	c, err := noderpc.New(noderpc.Options{URL: "http://127.0.0.1:" + strconv.Itoa(testutil.FreePort(t)),
		Timeout: time.Second})
	require.NoError(t, err)
	return Node{Name: "dead", Client: c}
}
