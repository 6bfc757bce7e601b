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
	el       gnet.EventLoop
	sessions map[gnet.Conn]*session.Session // owned by the loop
	wbuf     []byte                         // per-loop write batch
	vec      [][]byte
	scratch  session.Scratch // working memory shared by the loop's sessions
}

type connCtx struct {
	s      *session.Session
	ls     *loopState
	reason string
	opened time.Time
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
	ls := &loopState{el: el, sessions: map[gnet.Conn]*session.Session{}}
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
	ls.sessions[c] = sess
	c.SetContext(&connCtx{s: sess, ls: ls, opened: time.Now()})
	_ = c.SetNoDelay(true)
	return nil, gnet.None
}

// OnClose unregisters the connection.
func (s *Server) OnClose(c gnet.Conn, err error) gnet.Action {
	cc, ok := c.Context().(*connCtx)
	if !ok || cc == nil {
		return gnet.None
	}
	delete(cc.ls.sessions, c)
	cc.s.Close()
	s.conns.Add(-1)
	s.o.Metrics.Connections.Dec()
	reason := cc.reason
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
			cc.reason = ReasonLineTooLong
			action = gnet.Close
			break
		}
		consumed += n
		handled++
		out, reason := cc.s.HandleLine(line)
		ls.wbuf = append(ls.wbuf, out...)
		if reason != session.CloseNone {
			cc.reason = reason
			action = gnet.Close
			break
		}
	}
	_, _ = c.Discard(consumed)
	if len(ls.wbuf) > 0 {
		_, _ = c.Write(ls.wbuf)
	}
	if action == gnet.None && c.OutboundBuffered() > s.o.MaxPending {
		cc.reason = ReasonSlowConsumer
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
	for c, sess := range ls.sessions {
		if first := sess.OnFirstJob(j); len(first) > 0 {
			_, _ = c.Write(first)
			continue
		}
		setDiff, notify := sess.JobFrames(j, clean)
		if notify == nil {
			continue
		}
		if setDiff != nil {
			ls.vec = append(ls.vec[:0], setDiff, notify)
			_, _ = c.Writev(ls.vec)
		} else {
			_, _ = c.Write(notify)
		}
		if c.OutboundBuffered() > s.o.MaxPending {
			c.Context().(*connCtx).reason = ReasonSlowConsumer
			_ = c.Close()
		}
	}
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
	for c, sess := range ls.sessions {
		cc := c.Context().(*connCtx)
		switch {
		case now.Sub(sess.LastActive()) > s.o.IdleTimeout:
			cc.reason = ReasonIdle
			_ = c.Close()
			continue
		case !sess.Authorized() && now.Sub(cc.opened) > s.o.AuthTimeout:
			cc.reason = ReasonAuthTimeout
			_ = c.Close()
			continue
		}
		if out := sess.Tick(now); len(out) > 0 {
			_, _ = c.Write(out)
		}
	}
}

// Each runs fn on every session on its own loop (operator actions); fn
// returns bytes to write (nil: the session is not concerned) and whether to
// close the connection. It waits until every loop ran and returns how many
// sessions fn wrote to.
func (s *Server) Each(ctx context.Context, fn func(sess *session.Session) ([]byte, bool)) int {
	var n atomic.Int64
	s.onEveryLoop(ctx, func(ls *loopState) {
		for c, sess := range ls.sessions {
			out, closeIt := fn(sess)
			if len(out) > 0 {
				n.Add(1)
				_, _ = c.Write(out)
			}
			if closeIt {
				c.Context().(*connCtx).reason = ReasonOperator
				_ = c.Close()
			}
		}
	})
	return int(n.Load())
}
