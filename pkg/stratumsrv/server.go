// Package server is the gateway's gnet event handler: it frames Stratum
// lines, feeds them to sessions, fans jobs out and polices connections
// (connection cap below the file limit, line length, malformed-request
// budget, slow readers, idle and unauthorized sessions).
//
// Concurrency: each connection and its session are owned by the connection's
// event loop. A per-loop registry (loopState) is touched only on that loop;
// work for a loop from elsewhere (job fan-out, the once-a-second sweep) is
// queued with EventLoop.Execute, one task per loop rather than one per
// connection. Counters shared across loops are atomics.
package stratumsrv

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"go.uber.org/zap"

	"github.com/hashgate/hashgate/pkg/session"
	"github.com/hashgate/hashgate/pkg/stratum"
	"github.com/hashgate/hashgate/pkg/work"
)

// Close reasons beyond the session's.
const (
	ReasonClientClosed   = "client_closed"
	ReasonLineTooLong    = "line_too_long"
	ReasonSlowConsumer   = "slow_consumer"
	ReasonIdle           = "idle_timeout"
	ReasonAuthTimeout    = "unauthorized"
	ReasonMaxConnections = "max_connections"
	ReasonShutdown       = "shutdown"
	ReasonOperator       = "operator"
	ReasonRefused        = "refused"
)

// closeReason is a close reason in a byte (connCtx is per miner): an index
// into the names below, extended by the first use of any other reason the
// session returns.
type closeReason uint8

const (
	reasonNone closeReason = iota
	reasonClientClosed
	reasonLineTooLong
	reasonSlowConsumer
	reasonIdle
	reasonAuthTimeout
	reasonOperator
	reasonParseError
	reasonNoExtra
	numFixedReasons
)

var fixedReasons = [numFixedReasons]string{
	reasonNone: "", reasonClientClosed: ReasonClientClosed, reasonLineTooLong: ReasonLineTooLong,
	reasonSlowConsumer: ReasonSlowConsumer, reasonIdle: ReasonIdle, reasonAuthTimeout: ReasonAuthTimeout,
	reasonOperator: ReasonOperator, reasonParseError: session.CloseParseError, reasonNoExtra: session.CloseNoExtra,
}

// otherReasons are the names of reasons beyond fixedReasons, in the order
// they were first seen (a handful at most: the session's close reasons are
// constants).
var otherReasons struct {
	mu    sync.Mutex
	names []string
}

// reasonCode returns the code of a close reason.
func reasonCode(name string) closeReason {
	for i, n := range fixedReasons {
		if n == name {
			return closeReason(i)
		}
	}
	o := &otherReasons
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, n := range o.names {
		if n == name {
			return numFixedReasons + closeReason(i)
		}
	}
	if int(numFixedReasons)+len(o.names) > 255 {
		return reasonNone // cannot happen; the connection closes all the same
	}
	o.names = append(o.names, name)
	return numFixedReasons + closeReason(len(o.names)-1)
}

// String returns the reason's name.
func (r closeReason) String() string {
	if r < numFixedReasons {
		return fixedReasons[r]
	}
	o := &otherReasons
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.names[r-numFixedReasons]
}

// maxLinesPerCall bounds the lines handled in one OnTraffic so one chatty
// miner cannot starve the others on its loop.
const maxLinesPerCall = 64

// Options configure a Server.
type Options struct {
	Env            *session.Env
	MaxConnections int
	MaxLine        int
	MaxPending     int
	IdleTimeout    time.Duration
	AuthTimeout    time.Duration
	Logger         *zap.Logger
	Metrics        *Metrics
	// Admit, if set, is asked for every new connection; false refuses it
	// (the mineragent while no pool link has been up for too long).
	Admit func() bool
}

// Server implements gnet.EventHandler.
type Server struct {
	gnet.BuiltinEventEngine
	o   Options
	lg  *zap.Logger
	eng atomic.Pointer[gnet.Engine]

	conns  atomic.Int64
	nextID atomic.Uint64
	loops  sync.Map // gnet.EventLoop -> *loopState
	booted chan struct{}
	once   sync.Once
}

type loopState struct {
	el gnet.EventLoop
	// conns are the loop's connections, owned by the loop; a connection's
	// connCtx.idx is its place (a removal moves the last one there).
	conns   []gnet.Conn
	wbuf    []byte // per-loop write batch
	vec     [][]byte
	scratch session.Scratch // working memory shared by the loop's sessions
}

// connCtx is a connection's context (one per miner: kept small).
type connCtx struct {
	s      *session.Session
	ls     *loopState
	opened int64 // monotonic, see monotonic
	idx    int32 // in ls.conns
	reason closeReason
}

// monotonic returns t as nanoseconds since the package's start, on the
// monotonic clock when t carries its reading (time.Now does): differences
// of these are what t.Sub would return.
func monotonic(t time.Time) int64 { return int64(t.Sub(clockBase)) }

var clockBase = time.Now()

// add registers c on the loop.
func (ls *loopState) add(c gnet.Conn, cc *connCtx) {
	cc.idx = int32(len(ls.conns))
	ls.conns = append(ls.conns, c)
}

// remove unregisters the connection at cc.idx: the last one takes its
// place, so a loop walking ls.conns from the end (each) visits every other
// connection once even when the one it is at goes.
func (ls *loopState) remove(cc *connCtx) {
	if cc.idx < 0 {
		return // already removed
	}
	last := len(ls.conns) - 1
	if moved := ls.conns[last]; int(cc.idx) != last {
		ls.conns[cc.idx] = moved
		moved.Context().(*connCtx).idx = cc.idx
	}
	ls.conns[last] = nil
	ls.conns = ls.conns[:last]
	cc.idx = -1
}

// each calls fn for every connection of the loop (on the loop). fn may
// close the connection it is given, even synchronously (a failed write).
func (ls *loopState) each(fn func(c gnet.Conn, cc *connCtx)) {
	for i := len(ls.conns) - 1; i >= 0; i-- {
		if i >= len(ls.conns) {
			continue // fn closed more than its own connection
		}
		c := ls.conns[i]
		fn(c, c.Context().(*connCtx))
	}
}

// New returns a server.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics()
	}
	return &Server{o: o, lg: o.Logger, booted: make(chan struct{})}
}

// Booted is closed once the engine is listening.
func (s *Server) Booted() <-chan struct{} { return s.booted }

// Connections returns the open connections.
func (s *Server) Connections() int64 { return s.conns.Load() }

// OnBoot records the engine.
func (s *Server) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng.Store(&eng)
	s.once.Do(func() { close(s.booted) })
	return gnet.None
}

// Stop stops the engine (closing every connection).
func (s *Server) Stop(ctx context.Context) error {
	e := s.eng.Load()
	if e == nil {
		return nil
	}
	return e.Stop(ctx)
}

func (s *Server) loopOf(c gnet.Conn) *loopState {
	el := c.EventLoop()
	if v, ok := s.loops.Load(el); ok {
		return v.(*loopState)
	}
	ls := &loopState{el: el}
	v, _ := s.loops.LoadOrStore(el, ls)
	return v.(*loopState)
}

// OnOpen admits a connection unless the cap is reached.
func (s *Server) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	if s.conns.Add(1) > int64(s.o.MaxConnections) {
		s.conns.Add(-1)
		s.o.Metrics.Closed.WithLabelValues(ReasonMaxConnections).Inc()
		return nil, gnet.Close
	}
	if s.o.Admit != nil && !s.o.Admit() {
		s.conns.Add(-1)
		s.o.Metrics.Closed.WithLabelValues(ReasonRefused).Inc()
		return nil, gnet.Close
	}
	s.o.Metrics.Connections.Inc()
	remote := ""
	if a := c.RemoteAddr(); a != nil {
		remote = a.String()
	}
	sess := session.New(s.o.Env, s.nextID.Add(1), remote)
	ls := s.loopOf(c)
	sess.ShareScratch(&ls.scratch)
	cc := &connCtx{s: sess, ls: ls, opened: monotonic(time.Now())}
	ls.add(c, cc)
	c.SetContext(cc)
	_ = c.SetNoDelay(true)
	return nil, gnet.None
}

// OnClose unregisters the connection.
func (s *Server) OnClose(c gnet.Conn, err error) gnet.Action {
	cc, ok := c.Context().(*connCtx)
	if !ok || cc == nil {
		return gnet.None
	}
	cc.ls.remove(cc)
	cc.s.Close()
	s.conns.Add(-1)
	s.o.Metrics.Connections.Dec()
	reason := cc.reason.String()
	if reason == "" {
		reason = ReasonClientClosed
	}
	s.o.Metrics.Closed.WithLabelValues(reason).Inc()
	if ce := s.lg.Check(zap.DebugLevel, "connection closed"); ce != nil {
		ce.Write(zap.Uint64("conn", cc.s.ID), zap.String("remote_addr", cc.s.Remote), zap.String("reason", reason),
			zap.String("worker", cc.s.Worker()), zap.NamedError("cause", err))
	}
	return gnet.None
}

// OnTraffic frames and handles lines: peek once, walk every complete line,
// discard what was consumed, write all replies at once.
func (s *Server) OnTraffic(c gnet.Conn) gnet.Action {
	cc := c.Context().(*connCtx)
	buf, _ := c.Peek(-1)
	consumed, handled := 0, 0
	ls := cc.ls
	ls.wbuf = ls.wbuf[:0]
	action := gnet.None
	for consumed < len(buf) && handled < maxLinesPerCall {
		line, n, err := stratum.SplitLine(buf[consumed:], s.o.MaxLine)
		if errors.Is(err, stratum.ErrIncomplete) {
			break
		}
		if err != nil {
			cc.reason = reasonLineTooLong
			action = gnet.Close
			break
		}
		consumed += n
		handled++
		out, reason := cc.s.HandleLine(line)
		ls.wbuf = append(ls.wbuf, out...)
		if reason != session.CloseNone {
			cc.reason = reasonCode(reason)
			action = gnet.Close
			break
		}
	}
	_, _ = c.Discard(consumed)
	if len(ls.wbuf) > 0 {
		_, _ = c.Write(ls.wbuf)
	}
	if action == gnet.None && c.OutboundBuffered() > s.o.MaxPending {
		cc.reason = reasonSlowConsumer
		return gnet.Close
	}
	if action == gnet.None && handled == maxLinesPerCall && consumed < len(buf) {
		_ = c.Wake(nil) // come back for the rest after the others had a turn
	}
	return action
}

// Broadcast sends a job to every ready session: one task per event loop,
// the notify line encoded once and shared. It returns when every loop has
// queued its writes (or ctx ends) and reports how long that took.
func (s *Server) Broadcast(ctx context.Context, j *work.Job, clean bool) time.Duration {
	start := time.Now()
	s.onEveryLoop(ctx, func(ls *loopState) { s.fanOut(ls, j, clean) })
	d := time.Since(start)
	s.o.Metrics.Broadcast.Observe(d.Seconds())
	return d
}

// onEveryLoop runs fn on every event loop (one task per loop, on the loop's
// own goroutine) and waits until all ran or ctx ends.
func (s *Server) onEveryLoop(ctx context.Context, fn func(ls *loopState)) {
	var wg sync.WaitGroup
	s.loops.Range(func(_, v any) bool {
		ls := v.(*loopState)
		wg.Add(1)
		err := ls.el.Execute(ctx, gnet.RunnableFunc(func(context.Context) error {
			defer wg.Done()
			fn(ls)
			return nil
		}))
		if err != nil {
			wg.Done()
		}
		return true
	})
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// fanOut runs on ls's loop.
func (s *Server) fanOut(ls *loopState, j *work.Job, clean bool) {
	ls.each(func(c gnet.Conn, cc *connCtx) {
		sess := cc.s
		if first := sess.OnFirstJob(j); len(first) > 0 {
			_, _ = c.Write(first)
			return
		}
		setDiff, notify := sess.JobFrames(j, clean)
		if notify == nil {
			return
		}
		if setDiff != nil {
			ls.vec = append(ls.vec[:0], setDiff, notify)
			_, _ = c.Writev(ls.vec)
		} else {
			_, _ = c.Write(notify)
		}
		if c.OutboundBuffered() > s.o.MaxPending {
			cc.reason = reasonSlowConsumer
			_ = c.Close()
		}
	})
}

// OnTick runs once a second (on gnet's ticker goroutine): it queues the
// sweep on every loop.
func (s *Server) OnTick() (time.Duration, gnet.Action) {
	now := s.o.Env.Now()
	s.loops.Range(func(_, v any) bool {
		ls := v.(*loopState)
		_ = ls.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			s.sweep(ls, now)
			return nil
		}))
		return true
	})
	return time.Second, gnet.None
}

// sweep runs on ls's loop: idle and unauthorized sessions are closed, the
// others get their silence retarget.
func (s *Server) sweep(ls *loopState, now time.Time) {
	mono := monotonic(now)
	ls.each(func(c gnet.Conn, cc *connCtx) {
		sess := cc.s
		switch {
		case now.Sub(sess.LastActive()) > s.o.IdleTimeout:
			cc.reason = reasonIdle
			_ = c.Close()
			return
		case !sess.Authorized() && time.Duration(mono-cc.opened) > s.o.AuthTimeout:
			cc.reason = reasonAuthTimeout
			_ = c.Close()
			return
		}
		if out := sess.Tick(now); len(out) > 0 {
			_, _ = c.Write(out)
		}
	})
}

// Each runs fn on every session on its own loop (operator actions); fn
// returns bytes to write (nil: the session is not concerned) and whether to
// close the connection. It waits until every loop ran and returns how many
// sessions fn wrote to.
func (s *Server) Each(ctx context.Context, fn func(sess *session.Session) ([]byte, bool)) int {
	var n atomic.Int64
	s.onEveryLoop(ctx, func(ls *loopState) {
		ls.each(func(c gnet.Conn, cc *connCtx) {
			out, closeIt := fn(cc.s)
			if len(out) > 0 {
				n.Add(1)
				_, _ = c.Write(out)
			}
			if closeIt {
				cc.reason = reasonOperator
				_ = c.Close()
			}
		})
	})
	return int(n.Load())
}
