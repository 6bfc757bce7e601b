package blocksink

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/testutil"
)

// (a) The jobmaster answers: one request, the result comes back via the
// jobmaster, and the spool is empty afterwards.
func TestDeliveredToJobmaster(t *testing.T) {
	url, _ := testutil.StartNATS(t, testutil.NATSOptions{})
	got := jobmaster(t, url, bus.BlockAccepted)
	dir := t.TempDir()
	s := start(t, Options{Conn: natsConn(t, url), SpoolDir: dir})
	reg := prometheus.NewPedanticRegistry()
	s.Register(reg)

	fb, raw := fakeBlock(1)
	want := *fb
	s.Submit(fb, raw)
	r := result(t, s.Sink)
	require.Equal(t, Result{Hash: want.BlockHash, Status: bus.BlockAccepted, Via: ViaJobmaster}, r)
	require.Equal(t, &want, <-got, "the jobmaster got the share data unchanged")
	require.Zero(t, s.Pending())
	require.Empty(t, spoolFiles(t, dir), "spool emptied once final")
	require.Equal(t, 1.0, promtest.ToFloat64(s.m.blocks.WithLabelValues("accepted", ViaJobmaster)))
	require.Zero(t, promtest.ToFloat64(s.m.pending))
	n, err := promtest.GatherAndCount(reg, "pool_gateway_blocks_total", "pool_gateway_block_spool_pending")
	require.NoError(t, err)
	require.Equal(t, 2, n)
}

// Every final jobmaster status removes the block; unreachable and
// unknown_job don't.
func TestJobmasterStatuses(t *testing.T) {
	url, _ := testutil.StartNATS(t, testutil.NATSOptions{})
	for _, tc := range []struct {
		status bus.BlockStatus
		final  bool
	}{
		{bus.BlockAccepted, true}, {bus.BlockSideChain, true}, {bus.BlockSubmitted, true},
		{bus.BlockRejected, true}, {bus.BlockInvalid, true},
		{bus.BlockUnreachable, false}, {bus.BlockUnknownJob, false}, {"strange", false},
	} {
		t.Run(string(tc.status), func(t *testing.T) {
			subj := bus.Subject("st", string(tc.status), bus.TopicBlock)
			nc := natsConn(t, url)
			var requests atomic.Int32
			_, err := nc.Subscribe(subj, func(m *nats.Msg) {
				requests.Add(1)
				r := bus.BlockResult{Status: tc.status, Reason: "because"}
				_ = m.Respond(r.Marshal())
			})
			require.NoError(t, err)
			require.NoError(t, nc.Flush())
			dir := t.TempDir()
			s := start(t, Options{Conn: natsConn(t, url), Subject: subj, SpoolDir: dir,
				Retry: 50 * time.Millisecond, FallbackAfter: time.Minute})
			fb, raw := fakeBlock(2)
			s.Submit(fb, raw)
			if tc.final {
				r := result(t, s.Sink)
				require.Equal(t, tc.status, r.Status)
				require.Equal(t, "because", r.Reason)
				require.Equal(t, ViaJobmaster, r.Via)
				require.Empty(t, spoolFiles(t, dir))
				require.Zero(t, s.Pending())
				require.EqualValues(t, 1, requests.Load())
				return
			}
			// Not final: asked again every Retry, kept in the spool.
			testutil.Eventually(t, waitLong, func() bool { return requests.Load() >= 3 }, "re-requested")
			require.Len(t, spoolFiles(t, dir), 1)
			require.Equal(t, 1, s.Pending())
			require.Empty(t, s.Results())
		})
	}
}

// (b) The jobmaster is silent: after FallbackAfter the sink submits a real
// block to btcd itself and confirms it. Also: a jobmaster that says
// unreachable gets the fallback at once, and an orphan that btcd answers
// with null is not taken for accepted.
func TestFallbackToNode(t *testing.T) {
	node := testutil.StartBtcd(t, testutil.BtcdOptions{})
	url, _ := testutil.StartNATS(t, testutil.NATSOptions{})
	btcd := Node{Name: "btcd", Client: node.Client}

	t.Run("jobmaster silent", func(t *testing.T) {
		dir := t.TempDir()
		lg, obs := logs(t)
		s := start(t, Options{Conn: natsConn(t, url), SpoolDir: dir, AckTimeout: 100 * time.Millisecond,
			FallbackAfter: 300 * time.Millisecond, Nodes: []Node{deadNode(t), btcd}, Logger: lg})
		fb, raw := realBlock(t, node, nil)
		begin := time.Now()
		s.Submit(fb, raw)
		r := result(t, s.Sink)
		require.GreaterOrEqual(t, time.Since(begin), 300*time.Millisecond, "not before FallbackAfter")
		require.Equal(t, bus.BlockAccepted, r.Status, r.Reason)
		require.Equal(t, ViaFallback, r.Via)
		require.Equal(t, fb.BlockHash, r.Hash)
		require.Contains(t, r.Reason, "dead", "the unreachable node is reported")
		require.Equal(t, fb.BlockHash, node.BestHash(t), "our own submission made the chain")
		require.Empty(t, spoolFiles(t, dir))
		require.Zero(t, s.Pending())
		require.Equal(t, 1.0, promtest.ToFloat64(s.m.fallback.WithLabelValues(fallbackAccepted)))
		require.Equal(t, 1.0, promtest.ToFloat64(s.m.blocks.WithLabelValues("accepted", ViaFallback)))
		require.Equal(t, 1, obs.FilterMessage("no final answer from the jobmaster; submitting the found block to the nodes").Len())
		require.Zero(t, obs.FilterLevelExact(zap.ErrorLevel).Len(), "a reachable node: no error")
	})

	t.Run("jobmaster unreachable", func(t *testing.T) {
		subj := bus.Subject("unreach", "btc", bus.TopicBlock)
		nc := natsConn(t, url)
		_, err := nc.Subscribe(subj, func(m *nats.Msg) {
			r := bus.BlockResult{Status: bus.BlockUnreachable, Reason: "all nodes down"}
			_ = m.Respond(r.Marshal())
		})
		require.NoError(t, err)
		require.NoError(t, nc.Flush())
		dir := t.TempDir()
		s := start(t, Options{Conn: natsConn(t, url), Subject: subj, SpoolDir: dir,
			FallbackAfter: time.Hour, Nodes: []Node{btcd}})
		fb, raw := realBlock(t, node, nil)
		s.Submit(fb, raw)
		r := result(t, s.Sink)
		require.Equal(t, Result{Hash: fb.BlockHash, Status: bus.BlockAccepted, Via: ViaFallback}, r)
		require.Equal(t, fb.BlockHash, node.BestHash(t))
		require.Empty(t, spoolFiles(t, dir))
	})

	t.Run("orphan is not accepted", func(t *testing.T) {
		dir := t.TempDir()
		s := start(t, Options{SpoolDir: dir, FallbackAfter: 10 * time.Millisecond,
			Retry: 100 * time.Millisecond, Nodes: []Node{btcd}})
		unknown := chainhash.DoubleHashH([]byte("no such parent"))
		fb, raw := realBlock(t, node, &unknown)
		tip := node.BestHash(t)
		s.Submit(fb, raw)
		testutil.Eventually(t, waitLong, func() bool {
			return promtest.ToFloat64(s.m.fallback.WithLabelValues(fallbackRejected)) == 1
		}, "btcd answered")
		require.Equal(t, tip, node.BestHash(t))
		require.Empty(t, s.Results(), "submitblock's null is not an acceptance")
		require.Equal(t, 1, s.Pending(), "still waiting for the jobmaster")
		require.Len(t, spoolFiles(t, dir), 1)
	})
}

// (c) Crash safety: with NATS down and no node reachable the block stays
// spooled across a stop; a new sink on the same directory replays it to a
// working jobmaster.
func TestSpoolSurvivesRestart(t *testing.T) {
	url, srv := testutil.StartNATS(t, testutil.NATSOptions{})
	nc := natsConn(t, url)
	srv.Shutdown() // NATS goes down
	srv.WaitForShutdown()

	dir := t.TempDir()
	lg, obs := logs(t)
	s := start(t, Options{Conn: nc, SpoolDir: dir, AckTimeout: 100 * time.Millisecond,
		FallbackAfter: 200 * time.Millisecond, Retry: 100 * time.Millisecond, Nodes: []Node{deadNode(t)}, Logger: lg})
	fb, raw := fakeBlock(7)
	want := *fb
	s.Submit(fb, raw)
	testutil.Eventually(t, waitLong, func() bool {
		return promtest.ToFloat64(s.m.fallback.WithLabelValues(fallbackUnreachable)) >= 2
	}, "the fallback found no node, twice")
	require.Equal(t, 1, obs.FilterMessage("no node reachable for the found block; retrying").FilterLevelExact(zap.ErrorLevel).Len(),
		"logged at Error once")
	s.stop() // the gateway stops (or dies)

	files := spoolFiles(t, dir)
	require.Len(t, files, 1)
	require.Equal(t, filepath.Join(dir, want.BlockHash.String()+spoolExt), files[0])
	b, err := os.ReadFile(files[0])
	require.NoError(t, err)
	rec, err := decodeRecord(b)
	require.NoError(t, err)
	require.Equal(t, want, rec.fb)
	require.Equal(t, raw, rec.raw)

	// The gateway comes back, NATS and the jobmaster too.
	url2, _ := testutil.StartNATS(t, testutil.NATSOptions{})
	got := jobmaster(t, url2, bus.BlockAccepted)
	s2, err := New(Options{Conn: natsConn(t, url2), Subject: subject, SpoolDir: dir, Logger: lg})
	require.NoError(t, err)
	require.Equal(t, 1, s2.Pending(), "loaded from the spool")
	runSink(t, s2)
	select {
	case b := <-got:
		require.Equal(t, &want, b)
	case <-time.After(waitLong):
		t.Fatal("spooled block never delivered")
	}
	r := result(t, s2)
	require.Equal(t, Result{Hash: want.BlockHash, Status: bus.BlockAccepted, Via: ViaJobmaster}, r)
	require.Zero(t, s2.Pending())
	require.Empty(t, spoolFiles(t, dir))
}

// A restart replays several blocks in the order they were found.
func TestReplayInFoundOrder(t *testing.T) {
	dir := t.TempDir()
	s, err := New(Options{SpoolDir: dir})
	require.NoError(t, err)
	var want []chainhash.Hash
	for _, i := range []int{5, 3, 9, 1} {
		fb, raw := fakeBlock(i)
		s.Submit(fb, raw)
	}
	for _, i := range []int{1, 3, 5, 9} {
		fb, _ := fakeBlock(i)
		want = append(want, fb.BlockHash)
	}
	runSink(t, s).stop() // spools what was queued, delivers nothing
	require.Len(t, spoolFiles(t, dir), 4)

	url, _ := testutil.StartNATS(t, testutil.NATSOptions{})
	got := jobmaster(t, url, bus.BlockAccepted)
	s2 := start(t, Options{Conn: natsConn(t, url), SpoolDir: dir})
	var order []chainhash.Hash
	for range 4 {
		select {
		case fb := <-got:
			order = append(order, fb.BlockHash)
		case <-time.After(waitLong):
			t.Fatal("not replayed")
		}
	}
	require.Equal(t, want, order)
	testutil.Eventually(t, waitLong, func() bool { return s2.Pending() == 0 }, "all final")
	require.Empty(t, spoolFiles(t, dir))
}

// (d) NATS restarts while a block is pending: it is delivered once NATS is
// back.
func TestNATSRestart(t *testing.T) {
	url, srv := testutil.StartNATS(t, testutil.NATSOptions{})
	port := testutil.NATSPort(t, srv)
	nc := natsConn(t, url)
	dir := t.TempDir()
	s := start(t, Options{Conn: nc, SpoolDir: dir, AckTimeout: 100 * time.Millisecond,
		FallbackAfter: 200 * time.Millisecond, Retry: 100 * time.Millisecond}) // no nodes
	srv.Shutdown()
	srv.WaitForShutdown()

	fb, raw := fakeBlock(9)
	s.Submit(fb, raw)
	time.Sleep(500 * time.Millisecond) // several failed requests and the fallback
	require.Equal(t, 1, s.Pending())
	require.Len(t, spoolFiles(t, dir), 1)
	require.Equal(t, 1.0, promtest.ToFloat64(s.m.fallback.WithLabelValues(fallbackImpossible)))

	url2, _ := testutil.StartNATSOnPort(t, port, testutil.NATSOptions{})
	require.Equal(t, url, url2)
	got := jobmaster(t, url2, bus.BlockSubmitted)
	select {
	case b := <-got:
		require.Equal(t, fb.BlockHash, b.BlockHash)
	case <-time.After(waitLong):
		t.Fatal("not delivered after NATS came back")
	}
	r := result(t, s.Sink)
	require.Equal(t, Result{Hash: fb.BlockHash, Status: bus.BlockSubmitted, Via: ViaJobmaster}, r)
	require.Zero(t, s.Pending())
	require.Empty(t, spoolFiles(t, dir))
}

// (f) Submit never blocks, even with no worker running and the queue
// full; nothing is dropped, and stopping Run spools what was queued.
func TestSubmitNeverBlocks(t *testing.T) {
	dir := t.TempDir()
	s, err := New(Options{SpoolDir: dir})
	require.NoError(t, err)
	const n = 5000
	var slowest time.Duration
	begin := time.Now()
	for i := range n {
		fb, raw := fakeBlock(i)
		t0 := time.Now()
		s.Submit(fb, raw)
		slowest = max(slowest, time.Since(t0))
	}
	total := time.Since(begin)
	t.Logf("%d Submits with no worker: %s in all, slowest %s", n, total, slowest)
	// Generous bounds for a loaded CI machine: Submit must not wait for disk
	// or network (an fsync + request would take seconds for this many).
	require.Less(t, total, 5*time.Second)
	require.Less(t, slowest, time.Second)
	require.Equal(t, n, s.Pending())

	// Beyond the queue, overflow goroutines spool the blocks themselves.
	testutil.Eventually(t, 2*waitLong, func() bool { return len(spoolFiles(t, dir)) == n-QueueSize },
		"overflow spooled")
	t.Logf("overflow spooled after %s", time.Since(begin))
	// A worker that starts and stops spools the queued ones too.
	runSink(t, s).stop()
	t.Logf("queue spooled after %s", time.Since(begin))
	require.Len(t, spoolFiles(t, dir), n)
	require.Equal(t, n, s.Pending())
	s2, err := New(Options{SpoolDir: dir})
	require.NoError(t, err)
	require.Equal(t, n, s2.Pending())
}

// The same block twice is delivered once.
func TestDuplicateSubmit(t *testing.T) {
	url, _ := testutil.StartNATS(t, testutil.NATSOptions{})
	s0, err := New(Options{Conn: natsConn(t, url), Subject: subject, SpoolDir: t.TempDir()})
	require.NoError(t, err)
	fb, _ := fakeBlock(4)
	s0.Submit(fb, nil)
	fb2, raw := fakeBlock(4)
	s0.Submit(fb2, raw) // the copy brings the block bytes
	require.Equal(t, 2, s0.Pending())
	got := jobmaster(t, url, bus.BlockAccepted)
	s := runSink(t, s0)
	r := result(t, s.Sink)
	require.Equal(t, bus.BlockAccepted, r.Status)
	// The duplicate is dropped when the worker reaches it, possibly just
	// after the first result went out.
	testutil.Eventually(t, waitLong, func() bool { return s.Pending() == 0 }, "duplicate dropped")
	select {
	case r := <-s.Results():
		t.Fatalf("second result %+v", r)
	case <-time.After(100 * time.Millisecond):
	}
	require.Len(t, got, 1, "one request")
}

// A block that finds no taker for MaxAge is given up on: its record moves
// to failed/ (never deleted) with an Error log and a result via none.
func TestGiveUpAfterMaxAge(t *testing.T) {
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	dir := t.TempDir()
	lg, obs := logs(t)
	s := start(t, Options{SpoolDir: dir, Now: now, AckTimeout: 50 * time.Millisecond,
		FallbackAfter: 50 * time.Millisecond, Retry: 50 * time.Millisecond, MaxAge: time.Hour,
		Nodes: []Node{deadNode(t)}, Logger: lg})
	fb, raw := fakeBlock(11)
	s.Submit(fb, raw)
	testutil.Eventually(t, waitLong, func() bool {
		return promtest.ToFloat64(s.m.fallback.WithLabelValues(fallbackUnreachable)) >= 1
	}, "tried")
	require.Empty(t, s.Results())
	offset.Store(int64(time.Hour + time.Minute))

	r := result(t, s.Sink)
	require.Equal(t, fb.BlockHash, r.Hash)
	require.Equal(t, ViaNone, r.Via)
	require.Equal(t, bus.BlockUnreachable, r.Status)
	require.Contains(t, r.Reason, "gave up after 1h")
	require.Zero(t, s.Pending())
	require.Empty(t, spoolFiles(t, dir))
	failed := failedFiles(t, dir)
	require.Len(t, failed, 1)
	b, err := os.ReadFile(failed[0])
	require.NoError(t, err)
	rec, err := decodeRecord(b)
	require.NoError(t, err)
	require.Equal(t, raw, rec.raw, "kept whole")
	require.Equal(t, 1, obs.FilterMessage("giving up on found block; record kept in the spool's failed directory").Len())
	require.Equal(t, 1.0, promtest.ToFloat64(s.m.blocks.WithLabelValues("unreachable", ViaNone)))
}

// A block without its bytes can't be submitted by us: said at Error, and
// it still reaches the jobmaster.
func TestNoRawBlock(t *testing.T) {
	url, _ := testutil.StartNATS(t, testutil.NATSOptions{})
	lg, obs := logs(t)
	s := start(t, Options{Conn: natsConn(t, url), SpoolDir: t.TempDir(), FallbackAfter: 50 * time.Millisecond,
		Retry: 50 * time.Millisecond, Nodes: []Node{deadNode(t)}, Logger: lg})
	fb, _ := fakeBlock(12)
	s.Submit(fb, nil)
	testutil.Eventually(t, waitLong, func() bool {
		return obs.FilterMessage("cannot submit the found block ourselves; waiting for the jobmaster").Len() == 1
	}, "said so")
	require.Equal(t, zap.ErrorLevel, obs.FilterMessage("cannot submit the found block ourselves; waiting for the jobmaster").All()[0].Level)
	jobmaster(t, url, bus.BlockAccepted)
	require.Equal(t, bus.BlockAccepted, result(t, s.Sink).Status)
}

func TestRunTwice(t *testing.T) {
	s := start(t, Options{SpoolDir: t.TempDir()})
	testutil.Eventually(t, waitLong, func() bool { return s.running.Load() }, "running")
	require.Error(t, s.Run(t.Context()))
}

func TestNewErrors(t *testing.T) {
	_, err := New(Options{})
	require.ErrorContains(t, err, "spool directory")
	url, _ := testutil.StartNATS(t, testutil.NATSOptions{})
	_, err = New(Options{Conn: natsConn(t, url), SpoolDir: t.TempDir()})
	require.ErrorContains(t, err, "subject")
	_, err = New(Options{SpoolDir: t.TempDir(), Nodes: []Node{{Name: "x"}}})
	require.ErrorContains(t, err, "no client")
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	_, err = New(Options{SpoolDir: filepath.Join(file, "spool")})
	require.Error(t, err)

	dir := filepath.Join(t.TempDir(), "new", "spool")
	_, err = New(Options{SpoolDir: dir})
	require.NoError(t, err)
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
}
