package blocksink

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/hashgate/hashgate/pkg/blockutil"
	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/noderpc"
	"github.com/hashgate/hashgate/pkg/testutil"
)

const subject = "hashgate.btc.block"

// realBlock builds a valid next block for node from its own template, the
// way a miner behind the gateway would find it.
func realBlock(t *testing.T, node *testutil.Btcd) (*bus.FoundBlock, []byte) {
	t.Helper()
	tmpl, err := node.Client.GetBlockTemplate(t.Context(), noderpc.TemplateRequest{Rules: []string{"segwit"}})
	require.NoError(t, err)
	params := &chaincfg.RegressionNetParams
	addr, err := blockutil.DecodeAddress("bcrt1ql7fk7lfuvazvrytsx4efz5pv75j23cfkmjfytk", params)
	require.NoError(t, err)
	cb, err := blockutil.BuildCoinbase(blockutil.CoinbaseParams{Height: tmpl.Height, Value: tmpl.CoinbaseValue,
		Payouts: []blockutil.Payout{{Address: addr, Weight: 1}}, Extranonce1Size: 4, Extranonce2Size: 8})
	require.NoError(t, err)
	en1, en2 := []byte{1, 2, 3, 4}, make([]byte, 8)
	tx, err := cb.MsgTx(en1, en2)
	require.NoError(t, err)
	prev, err := chainhash.NewHashFromStr(tmpl.PreviousBlockHash)
	require.NoError(t, err)
	bits, err := strconv.ParseUint(tmpl.Bits, 16, 32)
	require.NoError(t, err)
	root := tx.TxHash()
	target := blockutil.TargetFromBits(uint32(bits))
	for n := uint32(0); ; n++ {
		h := blockutil.MakeHeader(tmpl.Version, prev, &root, uint32(tmpl.CurTime), uint32(bits), n)
		hash := h.Hash()
		if blockutil.HashMeets(&hash, &target) {
			raw, err := blockutil.AssembleBlock(&h, tx, nil)
			require.NoError(t, err)
			return &bus.FoundBlock{JobID: "job1", Extranonce1: en1, Extranonce2: en2, NTime: uint32(tmpl.CurTime),
				Nonce: n, Version: tmpl.Version, BlockHash: hash, Source: "gw", User: "alice", Worker: "w",
				FoundUnixNano: time.Now().UnixNano()}, raw
		}
	}
}

func fakeBlock(i int) (*bus.FoundBlock, []byte) {
	return &bus.FoundBlock{JobID: "j", BlockHash: chainhash.DoubleHashH([]byte{byte(i), byte(i >> 8)}),
		Extranonce1: []byte{1, 2, 3, 4}, Extranonce2: make([]byte, 8), FoundUnixNano: int64(i + 1)}, []byte{0xde, 0xad, byte(i)}
}

func natsConn(t *testing.T, url string) *nats.Conn {
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

// jobmaster answers found blocks on the bus like the real one and records
// what it got.
func jobmaster(t *testing.T, nc *nats.Conn, status bus.BlockStatus) chan *bus.FoundBlock {
	got := make(chan *bus.FoundBlock, 100)
	_, err := nc.Subscribe(subject, func(m *nats.Msg) {
		var fb bus.FoundBlock
		require.NoError(t, fb.Unmarshal(m.Data))
		got <- &fb
		r := bus.BlockResult{Status: status, BlockHash: fb.BlockHash}
		_ = m.Respond(r.Marshal())
	})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	return got
}

func runSink(t *testing.T, o Options) (*Sink, context.CancelFunc) {
	if o.Logger == nil {
		o.Logger = zaptest.NewLogger(t)
	}
	if o.Subject == "" {
		o.Subject = subject
	}
	s, err := New(o)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return s, stop
}

func spoolFiles(t *testing.T, dir string) []string {
	names, err := filepath.Glob(filepath.Join(dir, "*.blk"))
	require.NoError(t, err)
	return names
}

func TestDeliveredToJobmaster(t *testing.T) {
	url, _ := testutil.StartNATS(t, testutil.NATSOptions{})
	got := jobmaster(t, natsConn(t, url), bus.BlockAccepted)
	dir := t.TempDir()
	s, _ := runSink(t, Options{Conn: natsConn(t, url), SpoolDir: dir})
	fb, raw := fakeBlock(1)
	s.Submit(fb, raw)
	select {
	case r := <-s.Results():
		require.Equal(t, bus.BlockAccepted, r.Status)
		require.Equal(t, "jobmaster", r.Via)
		require.Equal(t, fb.BlockHash, r.Hash)
	case <-time.After(10 * time.Second):
		t.Fatal("no result")
	}
	require.Equal(t, fb.BlockHash, (<-got).BlockHash)
	require.Zero(t, s.Pending())
	require.Empty(t, spoolFiles(t, dir), "spool emptied once final")
}

// TestFallbackToNode: the jobmaster is silent; after FallbackAfter the
// gateway submits a real block to btcd itself and confirms it.
func TestFallbackToNode(t *testing.T) {
	node := testutil.StartBtcd(t, testutil.BtcdOptions{})
	node.Generate(t, 1)
	url, _ := testutil.StartNATS(t, testutil.NATSOptions{})
	dir := t.TempDir()
	s, _ := runSink(t, Options{Conn: natsConn(t, url), SpoolDir: dir, AckTimeout: 200 * time.Millisecond,
		FallbackAfter: 500 * time.Millisecond, Nodes: []Node{{Name: "btcd", Client: node.Client}}})
	fb, raw := realBlock(t, node)
	s.Submit(fb, raw)
	select {
	case r := <-s.Results():
		require.Equal(t, bus.BlockAccepted, r.Status, r.Reason)
		require.Equal(t, "fallback", r.Via)
	case <-time.After(15 * time.Second):
		t.Fatal("no result")
	}
	require.Equal(t, fb.BlockHash, node.BestHash(t), "the gateway's own submission made the chain")
	require.Empty(t, spoolFiles(t, dir))
}

// TestSpoolSurvivesRestart: with NATS down and no node reachable the block
// stays in the spool; a new sink on the same spool delivers it once the
// jobmaster is reachable.
func TestSpoolSurvivesRestart(t *testing.T) {
	port := testutil.FreePort(t)
	dead, err := noderpc.New(noderpc.Options{URL: fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePort(t)), Timeout: 200 * time.Millisecond})
	require.NoError(t, err)
	dir := t.TempDir()
	s, stop := runSink(t, Options{Conn: nil, SpoolDir: dir, FallbackAfter: 100 * time.Millisecond,
		Nodes: []Node{{Name: "dead", Client: dead}}})
	fb, raw := fakeBlock(7)
	s.Submit(fb, raw)
	testutil.Eventually(t, 5*time.Second, func() bool { return len(spoolFiles(t, dir)) == 1 }, "spooled")
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, 1, s.Pending(), "nothing could take it: still pending")
	stop() // the gateway dies

	url, _ := testutil.StartNATSOnPort(t, port, testutil.NATSOptions{})
	got := jobmaster(t, natsConn(t, url), bus.BlockAccepted)
	s2, _ := runSink(t, Options{Conn: natsConn(t, url), SpoolDir: dir})
	require.Equal(t, 1, s2.Pending(), "replayed from the spool")
	select {
	case b := <-got:
		require.Equal(t, fb.BlockHash, b.BlockHash)
		require.Equal(t, fb.Extranonce1, b.Extranonce1)
	case <-time.After(10 * time.Second):
		t.Fatal("spooled block never delivered")
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return s2.Pending() == 0 && len(spoolFiles(t, dir)) == 0 }, "final")
}

// TestNATSOutage: NATS restarts while a block is pending; it is delivered
// when NATS is back.
func TestNATSOutage(t *testing.T) {
	port := testutil.FreePort(t)
	url, srv := testutil.StartNATSOnPort(t, port, testutil.NATSOptions{})
	nc := natsConn(t, url)
	dir := t.TempDir()
	s, _ := runSink(t, Options{Conn: nc, SpoolDir: dir, AckTimeout: 200 * time.Millisecond,
		FallbackAfter: 300 * time.Millisecond, Retry: 200 * time.Millisecond})
	srv.Shutdown()
	srv.WaitForShutdown()
	fb, raw := fakeBlock(9)
	s.Submit(fb, raw)
	time.Sleep(time.Second)
	require.Equal(t, 1, s.Pending())
	url2, _ := testutil.StartNATSOnPort(t, port, testutil.NATSOptions{})
	got := jobmaster(t, natsConn(t, url2), bus.BlockSubmitted)
	select {
	case b := <-got:
		require.Equal(t, fb.BlockHash, b.BlockHash)
	case <-time.After(15 * time.Second):
		t.Fatal("not delivered after NATS came back")
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return s.Pending() == 0 }, "final")
}

func TestCorruptSpoolMovedAside(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.blk"), []byte("HGBK garbage garbage"), 0o600))
	fb, raw := fakeBlock(3)
	good := encodeSpool(fb, raw)
	flipped := bytes.Clone(good)
	flipped[10] ^= 0xff
	require.NoError(t, os.WriteFile(filepath.Join(dir, "flipped.blk"), flipped, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, hex.EncodeToString(fb.BlockHash[:])+".blk"), good, 0o600))
	s, err := New(Options{SpoolDir: dir, Logger: zaptest.NewLogger(t)})
	require.NoError(t, err)
	require.Equal(t, 1, s.Pending(), "the good file is loaded")
	failed, _ := filepath.Glob(filepath.Join(dir, "failed", "*.blk"))
	require.Len(t, failed, 2, "corrupt files moved to failed/, never deleted")

	gotFB, gotRaw, err := decodeSpool(good)
	require.NoError(t, err)
	require.Equal(t, fb, gotFB)
	require.Equal(t, raw, gotRaw)
}

func TestSubmitNeverBlocks(t *testing.T) {
	s, err := New(Options{SpoolDir: t.TempDir(), Logger: zaptest.NewLogger(t)})
	require.NoError(t, err)
	start := time.Now()
	for i := 0; i < 5000; i++ {
		fb, raw := fakeBlock(i)
		s.Submit(fb, raw)
	}
	require.Less(t, time.Since(start), 2*time.Second, "Submit returns at once with no worker running")
	require.Equal(t, 5000, s.Pending())
}
