package statsout

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/spool"
	"github.com/hashgate/hashgate/pkg/stats"
	"github.com/hashgate/hashgate/pkg/testutil"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t     *testing.T
	url   string
	port  int
	nc    *nats.Conn
	js    jetstream.JetStream
	clock *clock
	tab   *stats.Table
	dir   string
	srv   *server.Server
	store string
}

func newEnv(t *testing.T) *env {
	port, store := testutil.FreePort(t), t.TempDir()
	url, srv := testutil.StartNATSOnPort(t, port, testutil.NATSOptions{JetStream: true, StoreDir: store})
	e := &env{t: t, url: url, port: port, clock: &clock{t: time.Unix(1_700_000_000, 0)}, tab: stats.NewTable(),
		dir: t.TempDir(), srv: srv, store: store}
	e.nc = e.connect()
	var err error
	e.js, err = jetstream.New(e.nc)
	require.NoError(t, err)
	_, err = bus.EnsureStatsStream(context.Background(), e.js, "hashgate")
	require.NoError(t, err)
	return e
}

func (e *env) connect() *nats.Conn {
	nc, err := nats.Connect(e.url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(e.t, err)
	e.t.Cleanup(nc.Close)
	return nc
}

func (e *env) publisher(conns func() int64) (*Publisher, context.CancelFunc) {
	p, err := New(Options{Conn: e.connect(), Prefix: "hashgate", Coin: "btc", Gateway: "gw1", Stats: e.tab,
		Connections: conns, SpoolDir: e.dir, PartSize: 2, Logger: zaptest.NewLogger(e.t), Now: e.clock.now})
	require.NoError(e.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = p.Run(ctx); close(done) }()
	stop := func() { cancel(); <-done }
	e.t.Cleanup(stop)
	return p, stop
}

// messages reads every message of the stream.
func (e *env) messages() (batches []bus.StatsBatch, events []bus.Event) {
	s, err := e.js.Stream(context.Background(), bus.StatsStream("hashgate"))
	require.NoError(e.t, err)
	info, err := s.Info(context.Background())
	require.NoError(e.t, err)
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(context.Background(), seq)
		require.NoError(e.t, err)
		switch m.Subject {
		case "hashgate.btc.stats":
			var b bus.StatsBatch
			require.NoError(e.t, b.Unmarshal(m.Data))
			batches = append(batches, b)
		case "hashgate.btc.event":
			var ev bus.Event
			require.NoError(e.t, ev.Unmarshal(m.Data))
			events = append(events, ev)
		}
	}
	return
}

func sums(batches []bus.StatsBatch) (acc, rej uint64, diff float64, monitor map[string]float64) {
	monitor = map[string]float64{}
	for _, b := range batches {
		for _, w := range b.Workers {
			acc += w.Accepted
			rej += w.Rejected
			diff += w.DiffSum
		}
		for _, m := range b.Monitor {
			monitor[m.Key] += m.Value
		}
	}
	return
}

func TestMinutesShippedExactly(t *testing.T) {
	e := newEnv(t)
	p, _ := e.publisher(func() int64 { return 7 })
	workers := []*stats.Worker{e.tab.Worker("alice", "a"), e.tab.Worker("alice", "b"), e.tab.Worker("bob", "x")}
	var wantAcc, wantRej uint64
	wantDiff := 0.0
	for minute := 0; minute < 3; minute++ {
		for i, w := range workers {
			for k := 0; k <= i+minute; k++ {
				w.Accept(e.clock.now(), 0.5, 1000, false)
				wantAcc++
				wantDiff += 0.5
			}
			w.Reject(e.clock.now(), stats.Duplicate)
			wantRej++
		}
		p.Authorized(e.clock.now(), "alice", "a", "10.0.0.1")
		e.clock.add(time.Minute)
		time.Sleep(600 * time.Millisecond) // let the 250 ms ticker see the boundary
	}
	e.clock.add(10 * time.Second) // past FlushDelay
	testutil.Eventually(t, 10*time.Second, func() bool {
		b, _ := e.messages()
		acc, _, _, _ := sums(b)
		return acc == wantAcc
	}, "three minutes shipped")
	batches, events := e.messages()
	acc, rej, diff, mon := sums(batches)
	require.Equal(t, wantAcc, acc)
	require.Equal(t, wantRej, rej)
	require.InDelta(t, wantDiff, diff, 1e-9)
	require.Equal(t, float64(wantAcc), mon["share"])
	require.InDelta(t, wantDiff, mon["pow"], 1e-9)
	require.Equal(t, float64(wantRej), mon["reject_duplicate"])
	require.Equal(t, 3.0, mon["new_authorized"])
	require.Equal(t, 3*7.0, mon["connections"], "sampled once per minute")
	for _, b := range batches {
		require.Equal(t, int64(0), b.Minute%60)
		require.Equal(t, "gw1", b.Gateway)
		require.LessOrEqual(t, len(b.Workers), 2, "split into parts")
		if b.Part > 0 {
			require.Empty(t, b.Monitor, "monitor values only in part 0")
		}
	}
	// connected ×3 and one new_worker (once per hour).
	kinds := map[string]int{}
	for _, ev := range events {
		kinds[ev.Kind]++
	}
	require.Equal(t, map[string]int{bus.EventConnected: 3, bus.EventNewWorker: 1}, kinds)
	require.Zero(t, p.Spooled())
}

// TestOutageAndRestart: with NATS down the batches wait in the spool; the
// gateway restarts; when NATS is back everything is delivered once, in order.
func TestOutageAndRestart(t *testing.T) {
	e := newEnv(t)
	_, stop := e.publisher(nil)
	w := e.tab.Worker("carol", "w")
	// NATS goes down (its JetStream store is kept for the restart).
	e.nc.Close()
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	for i := 0; i < 5; i++ {
		w.Accept(e.clock.now(), 2, 1000, false)
		e.clock.add(time.Minute)
		time.Sleep(300 * time.Millisecond)
	}
	e.clock.add(10 * time.Second)
	time.Sleep(600 * time.Millisecond)
	stop() // SIGTERM: flushes what is open into the spool

	// NATS is back; a new gateway process replays the spool.
	url, _ := testutil.StartNATSOnPort(t, e.port, testutil.NATSOptions{JetStream: true, StoreDir: e.store})
	e.url = url
	e.nc = e.connect()
	var err error
	e.js, err = jetstream.New(e.nc)
	require.NoError(t, err)
	_, err = bus.EnsureStatsStream(context.Background(), e.js, "hashgate")
	require.NoError(t, err)
	p2, _ := e.publisher(nil)
	testutil.Eventually(t, 15*time.Second, func() bool { return p2.Spooled() == 0 }, "spool replayed")
	batches, _ := e.messages()
	acc, _, diff, _ := sums(batches)
	require.Equal(t, uint64(5), acc)
	require.Equal(t, 10.0, diff)
	for i := 1; i < len(batches); i++ {
		require.LessOrEqual(t, batches[i-1].Minute, batches[i].Minute, "in order")
	}
}

// TestEventBurst: a mineragent going away logs out thousands of miners at
// once, from several event loops. Every event reaches the stream exactly
// once, none is dropped, and Run stops promptly.
func TestEventBurst(t *testing.T) {
	e := newEnv(t)
	p, stop := e.publisher(nil)
	const loops, each = 4, 2500
	var wg sync.WaitGroup
	for l := 0; l < loops; l++ {
		wg.Add(1)
		go func(l int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				p.Disconnected(e.clock.now(), "farm", fmt.Sprintf("w%d-%d", l, i), "10.0.0.9")
			}
		}(l)
	}
	wg.Wait()
	testutil.Eventually(t, 20*time.Second, func() bool {
		_, evs := e.messages()
		return len(evs) >= loops*each
	}, "all events in the stream")
	start := time.Now()
	stop()
	require.Less(t, time.Since(start), 3*time.Second, "Run returns promptly")
	_, evs := e.messages()
	require.Len(t, evs, loops*each)
	seen := map[uint64]bool{}
	workers := map[string]bool{}
	for _, ev := range evs {
		require.False(t, seen[ev.Seq], "event %d twice", ev.Seq)
		seen[ev.Seq] = true
		workers[ev.Worker] = true
		require.Equal(t, bus.EventDisconnected, ev.Kind)
	}
	require.Len(t, workers, loops*each)
	require.Zero(t, promtest.ToFloat64(p.m.dropped))
	require.Zero(t, p.Spooled())
}

// TestOldRecordReplays: a spool written before events were batched (one
// message per record) is still replayed.
func TestOldRecordReplays(t *testing.T) {
	e := newEnv(t)
	sp, _, err := spool.Open(e.dir, 1<<20)
	require.NoError(t, err)
	ev := bus.Event{Gateway: "gw0", Boot: 1, Seq: 1, Time: 1, Kind: bus.EventConnected, User: "old", Worker: "w"}
	_, err = sp.Append(record("hashgate.btc.event", ev.ID(), ev.Marshal()))
	require.NoError(t, err)
	p, _ := e.publisher(nil)
	testutil.Eventually(t, 10*time.Second, func() bool { return p.Spooled() == 0 }, "replayed")
	_, evs := e.messages()
	require.Len(t, evs, 1)
	require.Equal(t, "old", evs[0].User)
}

func TestRecordCodec(t *testing.T) {
	msgs := []message{{"a.b", "id1", []byte("x")}, {"a.c", "id2", nil}, {"a.d", "", []byte("yz")}}
	got, err := parseRecord(batchRecord(msgs))
	require.NoError(t, err)
	require.Len(t, got, 3)
	for i := range msgs {
		require.Equal(t, msgs[i].subject, got[i].subject)
		require.Equal(t, msgs[i].id, got[i].id)
		require.Equal(t, string(msgs[i].payload), string(got[i].payload))
	}
	one, err := parseRecord(record("s", "i", []byte("p")))
	require.NoError(t, err)
	require.Equal(t, []message{{"s", "i", []byte("p")}}, one)
	b := batchRecord(msgs)
	for n := 0; n < len(b); n++ {
		_, err := parseRecord(b[:n])
		require.Error(t, err, "truncated at %d", n)
	}
	_, err = parseRecord(append(b, 0))
	require.Error(t, err, "trailing byte")
}

func FuzzParseRecord(f *testing.F) {
	f.Add(batchRecord([]message{{"a", "b", []byte("c")}}))
	f.Add(record("s", "i", []byte("p")))
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, err := parseRecord(b)
		if err != nil || len(b) < 2 || binary.LittleEndian.Uint16(b) != batchMarker {
			return
		}
		if again, err := parseRecord(batchRecord(msgs)); err != nil || len(again) != len(msgs) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// TestPartialFailureResent: a record published while JetStream is away is
// kept and resent whole; messages that did get through are not stored
// twice (their ids are de-duplicated).
func TestPartialFailureResent(t *testing.T) {
	e := newEnv(t)
	// Half of a batch reaches the stream before the publisher exists, as
	// if a round had been cut short after those acknowledgements.
	var msgs []message
	for i := 1; i <= 10; i++ {
		ev := bus.Event{Gateway: "gw0", Boot: 7, Seq: uint64(i), Time: 1, Kind: bus.EventDisconnected, User: "u", Worker: fmt.Sprint(i)}
		msgs = append(msgs, message{"hashgate.btc.event", ev.ID(), ev.Marshal()})
		if i <= 5 {
			_, err := e.js.Publish(context.Background(), "hashgate.btc.event", ev.Marshal(), jetstream.WithMsgID(ev.ID()))
			require.NoError(t, err)
		}
	}
	sp, _, err := spool.Open(e.dir, 1<<20)
	require.NoError(t, err)
	_, err = sp.Append(batchRecord(msgs))
	require.NoError(t, err)
	p, _ := e.publisher(nil)
	testutil.Eventually(t, 10*time.Second, func() bool { return p.Spooled() == 0 }, "resent")
	_, evs := e.messages()
	require.Len(t, evs, 10, "each event once")
	for i, ev := range evs {
		require.Equal(t, uint64(i+1), ev.Seq, "in order")
	}
}
