package agentlink

// The agent side in these tests is a real agentwire.Conn over TCP driven
// by the test (the mineragent daemon is not part of this package); NATS
// with JetStream is a real embedded server.

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/hashgate/hashgate/pkg/agentwire"
	"github.com/hashgate/hashgate/pkg/blockutil"
	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/testutil"
	"github.com/hashgate/hashgate/pkg/work"
)

// Jobs have a network difficulty of 2e-5: shares of 1e-7 are cheap and are
// not blocks.
const netDiff = 2e-5

var prefix = []byte{0xff, 0, 0, 1}

type recSink struct {
	mu     sync.Mutex
	blocks []*bus.FoundBlock
	raws   [][]byte
}

func (r *recSink) Submit(fb *bus.FoundBlock, raw []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.blocks, r.raws = append(r.blocks, fb), append(r.raws, raw)
}

type recEvents struct {
	mu     sync.Mutex
	events []string
}

func (r *recEvents) add(s string) { r.mu.Lock(); r.events = append(r.events, s); r.mu.Unlock() }
func (r *recEvents) Authorized(_ time.Time, user, worker, peer string) {
	r.add("connected " + user + "." + worker + " " + peer)
}
func (r *recEvents) Disconnected(_ time.Time, user, worker, peer string) {
	r.add("disconnected " + user + "." + worker + " " + peer)
}
func (r *recEvents) Block(_ time.Time, hash, user, worker string) {
	r.add("block " + user + "." + worker)
}
func (r *recEvents) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

type env struct {
	t      *testing.T
	js     jetstream.JetStream
	jobs   *work.Table
	job    *work.Job
	sink   *recSink
	events *recEvents
}

func newEnv(t *testing.T) *env {
	url, _ := testutil.StartNATS(t, testutil.NATSOptions{JetStream: true, StoreDir: filepath.Join(t.TempDir(), "js")})
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = bus.EnsureStatsStream(ctx, js, "hashgate")
	require.NoError(t, err)
	e := &env{t: t, js: js, jobs: work.NewTable(30*time.Second, nil), sink: &recSink{}, events: &recEvents{}}
	e.job = e.addJob("j1", 100)
	return e
}

func (e *env) addJob(id string, height int64) *work.Job {
	tgt, err := blockutil.TargetFromDifficulty(netDiff)
	require.NoError(e.t, err)
	addr, err := blockutil.DecodeAddress("bcrt1ql7fk7lfuvazvrytsx4efz5pv75j23cfkmjfytk", &chaincfg.RegressionNetParams)
	require.NoError(e.t, err)
	cb, err := blockutil.BuildCoinbase(blockutil.CoinbaseParams{Height: height, Value: 5000000000,
		Payouts: []blockutil.Payout{{Address: addr, Weight: 1}}, Tag: []byte("/t/"), Extranonce1Size: 4, Extranonce2Size: 8})
	require.NoError(e.t, err)
	now := time.Now()
	b := &bus.Job{ID: id, Height: height, PrevHash: chainhash.DoubleHashH([]byte(id)), Version: 0x20000000,
		Bits: blockchain.BigToCompact(tgt.Big()), CurTime: uint32(now.Unix()), MinTime: uint32(now.Unix()) - 600,
		Coinb1: cb.Coinb1, Coinb2: cb.Coinb2, Extranonce1Size: 4, Extranonce2Size: 8, Clean: true,
		CoinbaseValue: 5000000000}
	j, err := work.Prepare(b, now)
	require.NoError(e.t, err)
	added, _ := e.jobs.Add(j)
	require.True(e.t, added)
	return j
}

// start runs a gateway's agent port (its own duplicate filter: another
// gateway) and returns its address.
func (e *env) start(instance string) (*Server, string) {
	s, err := New(Options{Listen: "127.0.0.1:0", Agents: []Agent{{ID: "farm1", Token: "tok", Prefix: prefix}},
		MaxAgents: 4, HandshakeTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second, ResumeWindow: time.Minute,
		SuffixSize: 2, Logger: zaptest.NewLogger(e.t), Jobs: e.jobs, Dedup: work.NewDedup(), PoolMask: func() uint32 { return 0x1fffe000 },
		Blocks: e.sink, Events: e.events, Source: instance,
		Credit: JetStreamCreditor{JS: e.js, Subject: bus.Subject("hashgate", "btc", bus.TopicStats)}})
	require.NoError(e.t, err)
	addr, err := s.Listen()
	require.NoError(e.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		require.NoError(e.t, <-done)
	})
	return s, addr.String()
}

type agent struct {
	nc net.Conn
	c  *agentwire.Conn
	w  *agentwire.Welcome
}

func dial(t *testing.T, addr string) (net.Conn, *agentwire.Conn) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	require.NoError(t, nc.SetDeadline(time.Now().Add(15*time.Second)))
	t.Cleanup(func() { nc.Close() })
	return nc, agentwire.NewConn(nc, agentwire.Options{})
}

func greet(t *testing.T, addr string, instance uint64) *agent {
	nc, c := dial(t, addr)
	w, err := agentwire.Greet(c, &agentwire.Hello{AgentID: "farm1", Token: "tok", Software: "test", Instance: instance})
	require.NoError(t, err)
	return &agent{nc: nc, c: c, w: w}
}

// next reads the next message that is not a job.
func (a *agent) next(t *testing.T) agentwire.Message {
	for {
		m, err := a.c.ReadMessage()
		require.NoError(t, err)
		if _, ok := m.(*agentwire.Job); !ok {
			return m
		}
	}
}

func (a *agent) ack(t *testing.T, id uint64) *agentwire.BatchAck {
	m := a.next(t)
	ack, ok := m.(*agentwire.BatchAck)
	require.True(t, ok, "got %s", m.Type())
	require.Equal(t, id, ack.BatchID)
	return ack
}

var suffix = []byte{0, 1}

func en1() []byte { return append(append([]byte(nil), prefix...), suffix...) }

// mine finds a share of job j with difficulty in [min, max).
func mine(t *testing.T, j *work.Job, seq byte, min, max float64) agentwire.Share {
	en2 := []byte{seq, 0, 0, 0, 0, 0}
	for n := uint32(0); n < 1<<26; n++ {
		h, _ := j.ShareHash(en1(), en2, j.CurTime, n, j.Version, nil)
		if d := blockutil.HashDifficulty(&h); d >= min && d < max {
			return agentwire.Share{MinerID: 1, JobID: j.ID, Extranonce2: en2, NTime: j.CurTime, Nonce: n, Difficulty: min}
		}
	}
	t.Fatal("no nonce")
	return agentwire.Share{}
}

func login(resumed bool) *agentwire.MinerLogin {
	return &agentwire.MinerLogin{MinerID: 1, Resumed: resumed, Extranonce1Suffix: suffix, User: "alice",
		Worker: "rig1", VersionMask: 0xffffffff, PeerIP: netip.MustParseAddr("10.0.0.7")}
}

func streamMsgs(t *testing.T, js jetstream.JetStream) []*bus.StatsBatch {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, bus.StatsStream("hashgate"))
	require.NoError(t, err)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	var out []*bus.StatsBatch
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		require.NoError(t, err)
		var b bus.StatsBatch
		require.NoError(t, b.Unmarshal(m.Data))
		out = append(out, &b)
	}
	return out
}

func TestRefusals(t *testing.T) {
	e := newEnv(t)
	_, addr := e.start("gw-a")

	_, c := dial(t, addr)
	_, err := agentwire.Greet(c, &agentwire.Hello{AgentID: "farm1", Token: "wrong", Instance: 1})
	var rej *agentwire.Reject
	require.True(t, errors.As(err, &rej), "%v", err)
	require.Equal(t, agentwire.RejectBadToken, rej.Code)
	_, err = c.ReadMessage()
	require.Error(t, err, "closed after the reject")

	_, c = dial(t, addr)
	_, err = agentwire.Greet(c, &agentwire.Hello{AgentID: "nobody", Token: "tok", Instance: 1})
	require.True(t, errors.As(err, &rej))
	require.Equal(t, agentwire.RejectBadToken, rej.Code, "unknown id and wrong token look the same")

	_, c = dial(t, addr)
	require.NoError(t, c.WriteMessages(&agentwire.Hello{ProtocolVersion: agentwire.Version + 1, AgentID: "farm1",
		Token: "tok", Instance: 1}))
	m, err := c.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, agentwire.RejectVersion, m.(*agentwire.Reject).Code)

	// A stream of another version: the gateway answers in its own.
	nc, c := dial(t, addr)
	_, err = nc.Write([]byte{'H', 'A', agentwire.Version + 1, byte(agentwire.CodecNone),
		'H', 'A', agentwire.Version + 1, byte(agentwire.TypeHello), 0, 0, 0, 0})
	require.NoError(t, err)
	require.NoError(t, nc.(*net.TCPConn).CloseWrite())
	m, err = c.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, agentwire.RejectVersion, m.(*agentwire.Reject).Code)

	// Garbage streams: a protocol reject or a close, never a crash.
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200; i++ {
		nc, c := dial(t, addr)
		junk := make([]byte, 1+rng.IntN(600))
		for k := range junk {
			junk[k] = byte(rng.UintN(256))
		}
		if i%2 == 0 {
			junk = append([]byte{'H', 'A', agentwire.Version, byte(agentwire.CodecNone)}, junk...)
		}
		_, _ = nc.Write(junk)
		if m, err := c.ReadMessage(); err == nil {
			r, ok := m.(*agentwire.Reject)
			require.True(t, ok, "garbage answered with %s", m.Type())
			require.Contains(t, []agentwire.RejectCode{agentwire.RejectProtocol, agentwire.RejectVersion}, r.Code)
		}
		nc.Close()
	}
	// Still serving.
	a := greet(t, addr, 5)
	require.Equal(t, prefix, a.w.Extranonce1Prefix)
}

func TestBatchesCreditedOnceAcrossGateways(t *testing.T) {
	e := newEnv(t)
	_, addrA := e.start("gw-a")
	_, addrB := e.start("gw-b")
	const instance = 0xabc

	a := greet(t, addrA, instance)
	w := a.w
	require.Equal(t, uint8(6), w.Extranonce1Size)
	require.Equal(t, uint8(6), w.Extranonce2Size)
	require.Equal(t, uint32(0x1fffe000), w.VersionMask)
	require.Zero(t, w.ResumedBatch)
	m, err := a.c.ReadMessage()
	require.NoError(t, err)
	job, ok := m.(*agentwire.Job)
	require.True(t, ok, "the current job follows the welcome, got %s", m.Type())
	require.Equal(t, "j1", job.ID)
	require.True(t, job.Clean)
	require.Equal(t, e.job.Coinb1, job.Coinb1)

	good := []agentwire.Share{mine(t, e.job, 1, 1e-7, netDiff), mine(t, e.job, 2, 1e-7, netDiff),
		mine(t, e.job, 3, 1e-7, netDiff)}
	low := mine(t, e.job, 4, 1e-9, 1e-8)
	low.Difficulty = 1e-7 // claims more than its hash proves
	unknown := good[0]
	unknown.MinerID = 9
	batch := &agentwire.ShareBatch{BatchID: 1, Time: time.Now().Unix(), Shares: append(append([]agentwire.Share(nil),
		good...), low, unknown), Rejects: []agentwire.RejectCount{{MinerID: 1, Reason: 8, Count: 2}}}
	require.NoError(t, a.c.WriteMessages(login(false), batch))
	ack := a.ack(t, 1)
	require.False(t, ack.Duplicate)
	require.Equal(t, []agentwire.ResultCode{0, 0, 0, agentwire.ResultLowDifficulty, agentwire.ResultUnknownMiner}, ack.Results)
	require.Equal(t, []string{"connected alice.rig1 10.0.0.7"}, e.events.list())

	msgs := streamMsgs(t, e.js)
	require.Len(t, msgs, 1, "one credit message per batch, stored before the ack")
	b := msgs[0]
	require.Equal(t, "agent:farm1", b.Gateway)
	require.Equal(t, uint32(1), b.Part)
	require.Len(t, b.Workers, 1)
	ws := b.Workers[0]
	require.Equal(t, "alice.rig1", ws.User+"."+ws.Worker)
	require.Equal(t, uint64(3), ws.Accepted)
	require.InDelta(t, 3e-7, ws.DiffSum, 1e-20)
	require.InDelta(t, 3e-7/e.job.NetDiff, ws.GoalSum, 1e-15)
	require.Equal(t, uint64(3), ws.Rejected, "1 low difficulty + 2 refused at the agent")
	mon := map[string]float64{}
	for _, m := range b.Monitor {
		mon[m.Key] = m.Value
	}
	require.Equal(t, 3.0, mon["share"])
	require.Equal(t, 2.0, mon["reject_duplicate"])
	require.Equal(t, 1.0, mon["reject_low_difficulty"])

	// The link drops before the agent read anything more; the same process
	// comes back to the same gateway: batch 1 is known durable.
	a.nc.Close()
	a = greet(t, addrA, instance)
	require.Equal(t, uint64(1), a.w.ResumedBatch)
	require.NoError(t, a.c.WriteMessages(batch)) // replayed anyway
	require.True(t, a.ack(t, 1).Duplicate)

	// Failover: another gateway has never seen the process. The replay is
	// validated again (its duplicate filter is its own) and the credit is
	// published with the same id: JetStream keeps one.
	a.nc.Close()
	b2 := greet(t, addrB, instance)
	require.Zero(t, b2.w.ResumedBatch)
	require.NoError(t, b2.c.WriteMessages(login(true), batch))
	ack = b2.ack(t, 1)
	require.Equal(t, []agentwire.ResultCode{0, 0, 0, agentwire.ResultLowDifficulty, agentwire.ResultUnknownMiner}, ack.Results)
	require.Len(t, streamMsgs(t, e.js), 1, "the second crediting of batch 1 is dropped by JetStream")
	require.Len(t, e.events.list(), 1, "a resumed login records no event")

	// Logouts: an event unless quiet.
	require.NoError(t, b2.c.WriteMessages(&agentwire.MinerLogout{MinerID: 1},
		&agentwire.ShareBatch{BatchID: 2, Time: time.Now().Unix()}))
	b2.ack(t, 2)
	require.Equal(t, "disconnected alice.rig1 10.0.0.7", e.events.list()[1])
}

func TestBlockBehindAgent(t *testing.T) {
	e := newEnv(t)
	_, addr := e.start("gw-a")
	a := greet(t, addr, 77)
	sh := mine(t, e.job, 9, netDiff, 1e300)
	sh.Difficulty = 1e-7
	require.NoError(t, a.c.WriteMessages(login(false)))
	require.NoError(t, a.c.WriteMessages(&agentwire.Block{BatchID: 1, Time: time.Now().Unix(), Share: sh,
		User: "alice", Worker: "rig1"}))
	ack := a.ack(t, 1)
	require.Equal(t, []agentwire.ResultCode{agentwire.ResultAccepted}, ack.Results)
	e.sink.mu.Lock()
	defer e.sink.mu.Unlock()
	require.Len(t, e.sink.blocks, 1)
	fb, raw := e.sink.blocks[0], e.sink.raws[0]
	require.Equal(t, "alice", fb.User)
	require.Equal(t, "gw-a/agent:farm1", fb.Source)
	require.Len(t, fb.Extranonce1, 4, "found blocks use the job's extranonce layout")
	require.Equal(t, append(en1(), sh.Extranonce2...), append(fb.Extranonce1, fb.Extranonce2...))
	var blk wire.MsgBlock
	require.NoError(t, blk.Deserialize(bytes.NewReader(raw)))
	h := blk.BlockHash()
	require.Equal(t, fb.BlockHash, h)
	require.True(t, blockutil.HashMeets(&h, &e.job.Target), "the block meets the target")
	require.Contains(t, e.events.list(), "block alice.rig1")
	msgs := streamMsgs(t, e.js)
	require.Len(t, msgs, 1)
	require.Equal(t, uint64(1), msgs[0].Workers[0].Accepted)
}
