package stratumsrv

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/session"
	"github.com/hashgate/hashgate/pkg/work"
)

// testServer serves n fake connections on one loop; each has sent the
// handshake.
func testServer(t *testing.T, n int) (*Server, []*fakeConn) {
	t.Helper()
	env := agentLikeEnv(t)
	s := New(Options{Env: env, MaxConnections: 1000, MaxLine: 16 << 10, MaxPending: 256 << 10,
		IdleTimeout: time.Hour, AuthTimeout: time.Hour})
	el := &fakeLoop{}
	conns := make([]*fakeConn, n)
	for i := range conns {
		conns[i] = &fakeConn{el: el, in: handshake(i), srv: s, keep: true,
			remote: &net.TCPAddr{IP: net.IPv4(10, 0, 0, byte(i)), Port: 1000 + i}}
		if _, action := s.OnOpen(conns[i]); action != gnet.None {
			t.Fatalf("connection %d refused", i)
		}
		s.OnTraffic(conns[i])
	}
	return s, conns
}

// checkRegistry: every open connection is registered once, at its place.
func checkRegistry(t *testing.T, s *Server, open []*fakeConn) {
	t.Helper()
	var ls *loopState
	s.loops.Range(func(_, v any) bool { ls = v.(*loopState); return false })
	if len(ls.conns) != len(open) {
		t.Fatalf("%d registered, %d open", len(ls.conns), len(open))
	}
	seen := map[gnet.Conn]bool{}
	for i, c := range ls.conns {
		if cc := c.Context().(*connCtx); int(cc.idx) != i {
			t.Fatalf("connection at %d says it is at %d", i, cc.idx)
		}
		seen[c] = true
	}
	for _, c := range open {
		if !seen[c] {
			t.Fatal("an open connection is not registered")
		}
	}
	if got := s.Connections(); got != int64(len(open)) {
		t.Fatalf("Connections() = %d, want %d", got, len(open))
	}
}

func newJob(t *testing.T, id string, height int64) *work.Job {
	now := time.Now()
	j, err := work.Prepare(&bus.Job{ID: id, Height: height, Bits: 0x1d00ffff, Version: 0x20000000,
		CurTime: uint32(now.Unix()), MinTime: uint32(now.Unix()) - 600, Coinb1: make([]byte, 45),
		Coinb2: make([]byte, 110), Extranonce1Size: 4, Extranonce2Size: 8, Clean: true}, now)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// TestRegistryOpenClose: connections closing in any order leave the
// registry exact.
func TestRegistryOpenClose(t *testing.T) {
	s, conns := testServer(t, 60)
	checkRegistry(t, s, conns)
	rng := rand.New(rand.NewPCG(3, 4))
	open := append([]*fakeConn(nil), conns...)
	for len(open) > 0 {
		i := rng.IntN(len(open))
		s.OnClose(open[i], nil)
		open = append(open[:i], open[i+1:]...)
		checkRegistry(t, s, open)
	}
}

// TestBroadcastReachesEveryone: every ready session gets a job exactly
// once, also when connections close during the fan-out (a failed write
// closes at once, inside the walk).
func TestBroadcastReachesEveryone(t *testing.T) {
	s, conns := testServer(t, 40)
	for i, c := range conns {
		c.failWrite = i%7 == 3
		c.sent.Reset()
	}
	j := newJob(t, "j2", 101)
	s.Broadcast(context.Background(), j, true)
	var open []*fakeConn
	for i, c := range conns {
		n := bytes.Count(c.sent.Bytes(), []byte(`"mining.notify"`))
		switch {
		case c.failWrite && (n != 0 || !c.closedByWrite):
			t.Fatalf("connection %d: failed write not closed (%d notifies)", i, n)
		case !c.failWrite && n != 1:
			t.Fatalf("connection %d got %d notifies, want 1", i, n)
		case !c.failWrite:
			open = append(open, c)
		}
	}
	checkRegistry(t, s, open)
	if got := testutil.ToFloat64(s.o.Metrics.Closed.WithLabelValues(ReasonClientClosed)); got != float64(len(conns)-len(open)) {
		t.Fatalf("%v closes counted as %s", got, ReasonClientClosed)
	}
}

// TestSweepAndEach: the sweep closes unauthorized sessions after
// AuthTimeout (and only those), with the reason counted; Each reaches
// every session.
func TestSweepAndEach(t *testing.T) {
	s, conns := testServer(t, 10)
	// Two more that never authorize.
	el := conns[0].el
	idle := []*fakeConn{{el: el, srv: s, remote: &net.TCPAddr{}}, {el: el, srv: s, remote: &net.TCPAddr{}}}
	for _, c := range idle {
		s.OnOpen(c)
	}
	s.o.AuthTimeout = time.Second
	var ls *loopState
	s.loops.Range(func(_, v any) bool { ls = v.(*loopState); return false })
	s.sweep(ls, time.Now())
	for _, c := range append(conns, idle...) {
		if c.closed {
			t.Fatal("closed before the timeout")
		}
	}
	s.sweep(ls, time.Now().Add(2*time.Second))
	for _, c := range conns {
		if c.closed {
			t.Fatal("an authorized session was closed")
		}
	}
	for _, c := range idle {
		if !c.closed {
			t.Fatal("an unauthorized session was kept")
		}
		s.OnClose(c, nil) // what gnet does next
	}
	if got := testutil.ToFloat64(s.o.Metrics.Closed.WithLabelValues(ReasonAuthTimeout)); got != 2 {
		t.Fatalf("%v closes counted as %s, want 2", got, ReasonAuthTimeout)
	}
	checkRegistry(t, s, conns)

	seen := map[*session.Session]int{}
	n := s.Each(context.Background(), func(sess *session.Session) ([]byte, bool) {
		seen[sess]++
		return []byte("x\n"), false
	})
	if n != len(conns) || len(seen) != len(conns) {
		t.Fatalf("Each wrote to %d sessions, saw %d, want %d", n, len(seen), len(conns))
	}
}

// TestCloseReasons: every reason keeps its name through its byte code.
func TestCloseReasons(t *testing.T) {
	for _, name := range []string{"", ReasonClientClosed, ReasonLineTooLong, ReasonSlowConsumer, ReasonIdle,
		ReasonAuthTimeout, ReasonOperator, session.CloseParseError, session.CloseNoExtra, "something_new", "another"} {
		if got := reasonCode(name).String(); got != name {
			t.Fatalf("%q comes back as %q", name, got)
		}
		if reasonCode(name) != reasonCode(name) {
			t.Fatalf("%q has two codes", name)
		}
	}
	if reasonCode(session.CloseParseError) >= numFixedReasons {
		t.Fatal("the session's reasons have fixed codes")
	}
}

var errWrite = errors.New("write failed")
