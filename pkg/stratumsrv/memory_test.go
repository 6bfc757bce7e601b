package stratumsrv

import (
	"bytes"
	"context"
	"net"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/panjf2000/gnet/v2"
	"go.uber.org/zap"

	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/extranonce"
	"github.com/hashgate/hashgate/pkg/session"
	"github.com/hashgate/hashgate/pkg/stratum"
	"github.com/hashgate/hashgate/pkg/testutil"
	"github.com/hashgate/hashgate/pkg/vardiff"
	"github.com/hashgate/hashgate/pkg/work"
)

// fakeLoop is an event loop that runs tasks at once, on the caller.
type fakeLoop struct{ gnet.EventLoop }

func (fakeLoop) Execute(ctx context.Context, r gnet.Runnable) error { return r.Run(ctx) }

// fakeConn is a connection whose inbound bytes are given up front and
// whose outbound bytes are counted (and kept with keep). Only what the
// Server uses is implemented. With failWrite, writing fails and closes the
// connection at once, as gnet does.
type fakeConn struct {
	gnet.Conn
	el     gnet.EventLoop
	srv    *Server
	remote net.Addr
	in     []byte
	ctx    any
	out    int
	closed bool

	keep          bool
	sent          bytes.Buffer
	failWrite     bool
	closedByWrite bool
}

func (c *fakeConn) EventLoop() gnet.EventLoop     { return c.el }
func (c *fakeConn) RemoteAddr() net.Addr          { return c.remote }
func (c *fakeConn) Context() any                  { return c.ctx }
func (c *fakeConn) SetContext(ctx any)            { c.ctx = ctx }
func (c *fakeConn) SetNoDelay(bool) error         { return nil }
func (c *fakeConn) Peek(int) ([]byte, error)      { return c.in, nil }
func (c *fakeConn) Discard(n int) (int, error)    { c.in = c.in[n:]; return n, nil }
func (c *fakeConn) OutboundBuffered() int         { return 0 }
func (c *fakeConn) Wake(gnet.AsyncCallback) error { return nil }
func (c *fakeConn) Close() error                  { c.closed = true; return nil }

func (c *fakeConn) Write(b []byte) (int, error) { return c.Writev([][]byte{b}) }

func (c *fakeConn) Writev(bs [][]byte) (int, error) {
	if c.failWrite {
		if !c.closedByWrite {
			c.closedByWrite = true
			c.srv.OnClose(c, errWrite)
		}
		return 0, errWrite
	}
	n := 0
	for _, b := range bs {
		n += len(b)
		if c.keep {
			c.sent.Write(b)
		}
	}
	c.out += n
	return n, nil
}

// countingUpstream is an Upstream that keeps nothing per worker (so the
// figures below are this package's and pkg/session's alone).
type countingUpstream struct{ next, shares atomic.Uint32 }

func (u *countingUpstream) Login(*session.Session, string, string) uint32 { return u.next.Add(1) }
func (u *countingUpstream) Logout(*session.Session, uint32)               {}
func (u *countingUpstream) Share(*session.Session, uint32, *session.AcceptedShare) {
	u.shares.Add(1)
}

type nopCounter struct{}

func (nopCounter) Share(string) {}
func (nopCounter) Block()       {}

type nopBlocks struct{}

func (nopBlocks) Submit(*bus.FoundBlock, []byte) {}

// prefixedXN is the mineragent's extranonce1: a prefix the gateway
// granted and a per-miner two-byte suffix.
type prefixedXN struct {
	prefix []byte
	suffix *extranonce.Allocator
}

func (x *prefixedXN) Size() int { return len(x.prefix) + x.suffix.Size() }
func (x *prefixedXN) Allocate(dst []byte, resume string) (bool, error) {
	copy(dst, x.prefix)
	return x.suffix.Allocate(dst[len(x.prefix):], "")
}
func (x *prefixedXN) Release(en1 []byte) { x.suffix.Release(en1[len(x.prefix):]) }

// agentLikeEnv is a session environment shaped like the mineragent's: no
// statistics, no events, an Upstream and the windowed duplicate filter.
func agentLikeEnv(t testing.TB) *session.Env {
	now := time.Now()
	sfx, err := extranonce.NewPlain(2, 10*time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	xn := &prefixedXN{prefix: []byte{0xff, 0x01}, suffix: sfx}
	vd := vardiff.DefaultConfig()
	var mask atomic.Uint32
	mask.Store(0x1fffe000)
	table := work.NewTable(30*time.Second, nil)
	j, err := work.Prepare(&bus.Job{ID: "j1", Height: 100, Bits: 0x1d00ffff, Version: 0x20000000,
		CurTime: uint32(now.Unix()), MinTime: uint32(now.Unix()) - 600, Coinb1: make([]byte, 45),
		Coinb2: make([]byte, 110), Extranonce1Size: 4, Extranonce2Size: 8, Clean: true}, now)
	if err != nil {
		t.Fatal(err)
	}
	table.Add(j)
	return &session.Env{Jobs: table, Dedup: work.NewWindowDedup(30*time.Second, nil), Extranonce: xn,
		Blocks: nopBlocks{}, Vardiff: &vd, Counter: nopCounter{}, Upstream: &countingUpstream{},
		Log: zap.NewNop(), PoolMask: &mask, Source: "memtest", MaxWorkers: 64, MaxBadRequests: 20,
		Now: time.Now}
}

// handshake is what the load generator (tools/internal/load) sends on
// connecting: configure (version rolling), subscribe, authorize.
func handshake(i int) []byte {
	var b []byte
	b = stratum.AppendRequest(b, 1, "mining.configure", []string{"version-rolling"},
		map[string]any{"version-rolling.mask": "1fffe000", "version-rolling.min-bit-count": 2})
	b = stratum.AppendRequest(b, 2, "mining.subscribe", "hgminer-load/1.0")
	return stratum.AppendRequest(b, 3, "mining.authorize", "farm."+strconv.Itoa(i), "x")
}

// TestMemoryPerSession reports the live heap one miner costs in this
// package and pkg/session: connected (OnOpen) and then working
// (configure, subscribe, authorize, first job). It prints the figures
// (run with -v); it judges nothing. The connections themselves (fakes
// here; gnet's in a daemon) are allocated before the first reading.
func TestMemoryPerSession(t *testing.T) {
	const n = 2000
	env := agentLikeEnv(t)
	s := New(Options{Env: env, MaxConnections: n + 1, MaxLine: 16 << 10, MaxPending: 256 << 10,
		IdleTimeout: time.Hour, AuthTimeout: time.Hour})
	el := &fakeLoop{}
	conns := make([]*fakeConn, n)
	lines := make([][]byte, n) // kept: the connections consume theirs
	for i := range conns {
		lines[i] = handshake(i)
		conns[i] = &fakeConn{el: el, in: lines[i],
			remote: &net.TCPAddr{IP: net.IPv4(10, 1, byte(i>>8), byte(i)), Port: 40000 + i}}
	}
	// One connection first, so that the loop's own state (its scratch
	// buffers) is not counted per session.
	s.OnOpen(conns[0])
	s.OnTraffic(conns[0])

	base := testutil.LiveHeap()
	for _, c := range conns[1:] {
		s.OnOpen(c)
	}
	opened := testutil.LiveHeap()
	for _, c := range conns[1:] {
		s.OnTraffic(c)
	}
	working := testutil.LiveHeap()
	for _, c := range conns {
		if c.closed || c.out == 0 {
			t.Fatalf("connection not served: closed %v, %d bytes out", c.closed, c.out)
		}
	}
	if got := s.Connections(); got != n {
		t.Fatalf("%d connections, want %d", got, n)
	}
	per := func(a, b uint64) float64 { return float64(int64(b)-int64(a)) / float64(n-1) }
	t.Logf("heap per session: %.0f B connected, %.0f B working (+%.0f B for configure, subscribe, authorize)",
		per(base, opened), per(base, working), per(opened, working))

	// Everything closes cleanly: the registry forgets every session.
	for _, c := range conns {
		s.OnClose(c, nil)
	}
	if got := s.Connections(); got != 0 {
		t.Fatalf("%d connections left", got)
	}
	runtime.KeepAlive(conns)
	runtime.KeepAlive(lines)
}

// TestConnCtxSize keeps the per-connection context in the 32-byte size
// class.
func TestConnCtxSize(t *testing.T) {
	if n := unsafe.Sizeof(connCtx{}); n > 32 {
		t.Fatalf("connCtx is %d bytes, want at most 32", n)
	}
}
