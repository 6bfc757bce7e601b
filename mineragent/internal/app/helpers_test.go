package app

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/hashgate/hashgate/mineragent/internal/config"
	"github.com/hashgate/hashgate/pkg/agentwire"
	"github.com/hashgate/hashgate/pkg/blockutil"
	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/confutil"
	"github.com/hashgate/hashgate/pkg/stratum"
	"github.com/hashgate/hashgate/pkg/testutil"
	"github.com/hashgate/hashgate/pkg/work"
)

// The gateway in these tests is scripted with pkg/agentwire's own Accept
// (the real gateway's agent port is internal to the gateway module; the
// end-to-end test in tools/hgminer runs the agent against real gateways).

var testPrefix = []byte{0xff, 0, 0, 1}

const testToken = "t0ken"

// fakeGW is a scripted gateway agent port.
type fakeGW struct {
	t    *testing.T
	ln   net.Listener
	job  *work.Job
	addr string

	mu      sync.Mutex
	ack     bool                       // acknowledge batches
	garbage int                        // sessions still to be sent garbage after the job
	resumed uint64                     // Welcome.ResumedBatch to report
	hellos  []*agentwire.Hello         //
	msgs    []agentwire.Message        // everything received, in order
	conns   []net.Conn                 //
	onMsg   func(m agentwire.Message)  // optional hook
	send    func(c *agentwire.Conn)    // optional, after the job
	welcome func(w *agentwire.Welcome) // optional tweak
}

func newFakeGW(t *testing.T, job *work.Job, ack bool) *fakeGW {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g := &fakeGW{t: t, ln: ln, job: job, ack: ack, addr: ln.Addr().String()}
	go g.serve()
	t.Cleanup(g.close)
	return g
}

func (g *fakeGW) close() {
	g.ln.Close()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.conns {
		c.Close()
	}
}

func (g *fakeGW) serve() {
	var session uint64
	for {
		nc, err := g.ln.Accept()
		if err != nil {
			return
		}
		session++
		g.mu.Lock()
		g.conns = append(g.conns, nc)
		g.mu.Unlock()
		go g.handle(nc, session)
	}
}

func (g *fakeGW) handle(nc net.Conn, session uint64) {
	defer nc.Close()
	c := agentwire.NewConn(nc, agentwire.Options{})
	h, _, err := agentwire.Accept(c, func(h *agentwire.Hello) (*agentwire.Welcome, *agentwire.Reject) {
		if h.Token != testToken {
			return nil, &agentwire.Reject{Code: agentwire.RejectBadToken, Message: "unknown agent or wrong token"}
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		w := &agentwire.Welcome{SessionID: session, Extranonce1Prefix: testPrefix, Extranonce1Size: 6,
			Extranonce2Size: 6, VersionMask: 0x1fffe000, ServerTime: time.Now().UnixNano(), ResumedBatch: g.resumed}
		if g.welcome != nil {
			g.welcome(w)
		}
		return w, nil
	})
	if err != nil {
		return
	}
	g.mu.Lock()
	g.hellos = append(g.hellos, h)
	garbage, send := g.garbage > 0, g.send
	if garbage {
		g.garbage--
	}
	g.mu.Unlock()
	j := g.job
	if err := c.WriteMessages(&agentwire.Job{ID: j.ID, Height: j.Height, PrevHash: j.PrevHash, Coinb1: j.Coinb1,
		Coinb2: j.Coinb2, MerkleBranch: j.MerkleBranch, Version: j.Version, Bits: j.Bits, NTime: j.CurTime,
		MinTime: j.MinTime, Clean: true, NetworkDifficulty: j.NetDiff}); err != nil {
		return
	}
	if send != nil {
		send(c)
	}
	if garbage {
		// Bytes that are no zstd block, under the compressed stream.
		_, _ = nc.Write([]byte("\x00\xffgarbage that is no zstd block at all\xff\xff\xff\xff"))
	}
	for {
		m, err := c.ReadMessage()
		if err != nil {
			return
		}
		g.mu.Lock()
		g.msgs = append(g.msgs, m)
		ack, hook := g.ack, g.onMsg
		g.mu.Unlock()
		if hook != nil {
			hook(m)
		}
		var id uint64
		var n int
		switch m := m.(type) {
		case *agentwire.ShareBatch:
			id, n = m.BatchID, len(m.Shares)
		case *agentwire.Block:
			id, n = m.BatchID, 1
		case *agentwire.Ping:
			_ = c.WriteMessages(&agentwire.Pong{Echo: m.Time, Time: time.Now().UnixNano()})
			continue
		default:
			continue
		}
		if ack {
			_ = c.WriteMessages(&agentwire.BatchAck{BatchID: id, Results: make([]agentwire.ResultCode, n)})
		}
	}
}

// received returns a copy of what the gateway got so far.
func (g *fakeGW) received() []agentwire.Message {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]agentwire.Message(nil), g.msgs...)
}

// waitFor waits until pred holds on what the gateway received.
func (g *fakeGW) waitFor(what string, pred func([]agentwire.Message) bool) []agentwire.Message {
	g.t.Helper()
	var msgs []agentwire.Message
	testutil.Eventually(g.t, 10*time.Second, func() bool {
		msgs = g.received()
		return pred(msgs)
	}, "gateway %s: never received %s; got %s", g.addr, what, describeMsgs(g.received()))
	return msgs
}

func describeMsgs(msgs []agentwire.Message) string {
	s := ""
	for _, m := range msgs {
		switch m := m.(type) {
		case *agentwire.ShareBatch:
			s += fmt.Sprintf(" batch#%d(%d shares, %d rejects)", m.BatchID, len(m.Shares), len(m.Rejects))
		case *agentwire.Block:
			s += fmt.Sprintf(" block#%d", m.BatchID)
		case *agentwire.MinerLogin:
			s += fmt.Sprintf(" login(%d resumed=%v)", m.MinerID, m.Resumed)
		case *agentwire.MinerLogout:
			s += fmt.Sprintf(" logout(%d quiet=%v)", m.MinerID, m.Quiet)
		default:
			s += " " + m.Type().String()
		}
	}
	return s
}

// shares returns every share of the ShareBatches in msgs, by batch id.
func batches(msgs []agentwire.Message) map[uint64]*agentwire.ShareBatch {
	out := map[uint64]*agentwire.ShareBatch{}
	for _, m := range msgs {
		if b, ok := m.(*agentwire.ShareBatch); ok {
			out[b.BatchID] = b
		}
	}
	return out
}

func countShares(msgs []agentwire.Message) int {
	n := 0
	for _, m := range msgs {
		if b, ok := m.(*agentwire.ShareBatch); ok {
			n += len(b.Shares)
		}
	}
	return n
}

// testJob is a job as the jobmaster builds it (4 + 8 extranonce bytes) at
// network difficulty netDiff.
func testJob(t *testing.T, id string, netDiff float64) *work.Job {
	tgt, err := blockutil.TargetFromDifficulty(netDiff)
	require.NoError(t, err)
	addr, err := blockutil.DecodeAddress("bcrt1ql7fk7lfuvazvrytsx4efz5pv75j23cfkmjfytk", &chaincfg.RegressionNetParams)
	require.NoError(t, err)
	cb, err := blockutil.BuildCoinbase(blockutil.CoinbaseParams{Height: 101, Value: 5000000000,
		Payouts: []blockutil.Payout{{Address: addr, Weight: 1}}, Tag: []byte("/t/"), Extranonce1Size: 4, Extranonce2Size: 8})
	require.NoError(t, err)
	now := time.Now()
	b := &bus.Job{ID: id, Height: 101, PrevHash: chainhash.DoubleHashH([]byte(id)), Version: 0x20000000,
		Bits: blockchain.BigToCompact(tgt.Big()), CurTime: uint32(now.Unix()), MinTime: uint32(now.Unix()) - 600,
		Coinb1: cb.Coinb1, Coinb2: cb.Coinb2, Extranonce1Size: 4, Extranonce2Size: 8, Clean: true,
		CoinbaseValue: 5000000000}
	j, err := work.Prepare(b, now)
	require.NoError(t, err)
	return j
}

// startAgent runs a mineragent App against servers; it returns the app and
// its Stratum address.
func startAgent(t *testing.T, servers []string, mod func(*config.Config)) (*App, string) {
	t.Helper()
	cfg := config.Default()
	cfg.Instance, cfg.RunDir, cfg.AgentID, cfg.Token = "agent-test", t.TempDir(), "farm1", testToken
	for _, s := range servers {
		cfg.Upstream.Servers = append(cfg.Upstream.Servers, config.Server{Addr: s})
	}
	cfg.Upstream.RetryInterval = confutil.Duration(100 * time.Millisecond)
	cfg.Stratum.Listen = "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	cfg.Stratum.Loops = 2
	cfg.Vardiff.Min, cfg.Vardiff.Start, cfg.Vardiff.Max = 1e-9, 1e-6, 1e-6
	cfg.BatchInterval = confutil.Duration(50 * time.Millisecond)
	cfg.ShutdownTimeout = confutil.Duration(4 * time.Second)
	if mod != nil {
		mod(&cfg)
	}
	require.NoError(t, cfg.Validate())
	a, err := New(cfg, zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)), zap.NewAtomicLevelAt(zap.InfoLevel))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	select {
	case <-a.server.Booted():
	case err := <-done:
		t.Fatalf("agent stopped: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("agent did not start")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(15 * time.Second):
			t.Error("agent did not stop")
		}
	})
	return a, cfg.Stratum.Listen
}

// testMiner is a Stratum client.
type testMiner struct {
	t      *testing.T
	c      net.Conn
	r      *bufio.Reader
	id     uint64
	en1    []byte
	en2n   int
	diff   float64
	notify *stratum.Notify
	lines  []stratum.Response // notifications seen
}

func dialMiner(t *testing.T, addr string) *testMiner {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return &testMiner{t: t, c: c, r: bufio.NewReader(c)}
}

// read returns the next line (a reply or a notification it records).
func (m *testMiner) read() (stratum.Response, []byte, error) {
	_ = m.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := m.r.ReadBytes('\n')
	if err != nil {
		return stratum.Response{}, nil, err
	}
	resp, err := stratum.DecodeResponse(line)
	require.NoError(m.t, err, "%s", line)
	switch resp.Method {
	case "mining.notify":
		n, err := stratum.ParseNotify(line)
		require.NoError(m.t, err)
		m.notify = n
	case "mining.set_difficulty":
		d, err := stratum.ParseDifficulty(resp.Params)
		require.NoError(m.t, err)
		m.diff = d
	}
	if resp.Method != "" {
		m.lines = append(m.lines, resp)
	}
	return resp, line, nil
}

// call sends a request and returns its reply.
func (m *testMiner) call(method string, params ...any) stratum.Response {
	m.t.Helper()
	m.id++
	_, err := m.c.Write(stratum.AppendRequest(nil, m.id, method, params...))
	require.NoError(m.t, err)
	want := strconv.FormatUint(m.id, 10)
	for {
		resp, line, err := m.read()
		require.NoError(m.t, err, "waiting for the reply to %s", method)
		if resp.Method == "" && string(resp.ID) == want {
			_ = line
			return resp
		}
	}
}

// start subscribes and authorizes worker and waits for the first job.
func (m *testMiner) start(worker string) {
	m.t.Helper()
	resp := m.call("mining.subscribe", "testminer/1.0")
	require.Nil(m.t, resp.Error)
	var res []json.RawMessage
	require.NoError(m.t, json.Unmarshal(resp.Result, &res))
	require.Len(m.t, res, 3)
	var en1 string
	require.NoError(m.t, json.Unmarshal(res[1], &en1))
	var err error
	m.en1, err = hex.DecodeString(en1)
	require.NoError(m.t, err)
	require.NoError(m.t, json.Unmarshal(res[2], &m.en2n))
	resp = m.call("mining.authorize", worker, "x")
	require.Nil(m.t, resp.Error, "authorize")
	for m.notify == nil {
		_, _, err := m.read()
		require.NoError(m.t, err)
	}
}

// find searches a share on job j (the gateway's copy: the same coinbase
// bytes) whose difficulty is at least d and, unless block, below the
// network difficulty.
func (m *testMiner) find(j *work.Job, seq uint32, d float64, block bool) (en2 []byte, nonce uint32) {
	en2 = make([]byte, m.en2n)
	for n := seq << 20; ; n++ {
		en2[0], en2[1], en2[2], en2[3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
		h, _ := j.ShareHash(m.en1, en2, j.CurTime, n, j.Version, nil)
		diff := blockutil.HashDifficulty(&h)
		isBlock := blockutil.HashMeets(&h, &j.Target)
		if diff >= d && isBlock == block {
			return en2, n
		}
	}
}

// submit sends a share and returns the error code (0: accepted).
func (m *testMiner) submit(worker string, j *work.Job, en2 []byte, nonce uint32) int {
	m.t.Helper()
	resp := m.call("mining.submit", worker, j.ID, hex.EncodeToString(en2), fmt.Sprintf("%08x", j.CurTime),
		fmt.Sprintf("%08x", nonce))
	if resp.Error != nil {
		return resp.Error.Code
	}
	require.Equal(m.t, "true", string(resp.Result))
	return 0
}
