package statsout

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/hashgate/hashgate/pkg/bus"
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
