package alert

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap/zapcore"

	"github.com/hashgate/hashgate/pkg/bus"
)

// Defaults for the zero Options.
const (
	DefaultBuffer       = 256
	DefaultDedupWindow  = time.Minute
	DefaultRate         = 10
	DefaultRatePer      = time.Minute
	DefaultFlushTimeout = 500 * time.Millisecond
	DefaultMaxKeys      = 1024
)

// Errors returned by Flush (and so by the core's Sync).
var (
	ErrFlushTimeout = errors.New("alert: flush timed out")
	ErrNotConnected = errors.New("alert: nats not connected; alerts stay buffered")
)

// Options configure a Shipper. The zero value of each field means its
// default.
type Options struct {
	// Daemon and Instance identify the process in every alert.
	Daemon, Instance string
	// Host labels every alert; default os.Hostname().
	Host string
	// MinLevel is the lowest level shipped; anything below Error (the
	// zero value is Info) means Error.
	MinLevel zapcore.Level
	// Buffer is the queue length (default 256); alerts beyond it are
	// dropped and counted.
	Buffer int
	// DedupWindow folds repeats of one (caller, message) pair (default
	// 1m); negative disables de-duplication.
	DedupWindow time.Duration
	// Rate alerts per RatePer leave the process, in bursts of up to Rate
	// (defaults 10 per minute); a negative Rate disables the limit.
	Rate    int
	RatePer time.Duration
	// FlushTimeout bounds the synchronous flush of DPanic/Panic/Fatal
	// entries and of Sync (default 500ms).
	FlushTimeout time.Duration
	// MaxKeys bounds how many (caller, message) pairs the de-duplication
	// remembers (default 1024); beyond it new pairs are not de-duplicated.
	MaxKeys int
}

func (o *Options) defaults() {
	if o.Host == "" {
		o.Host, _ = os.Hostname()
		if o.Host == "" {
			o.Host = "unknown"
		}
	}
	o.Host = clip(o.Host, bus.MaxAlertIdent)
	o.Daemon = clip(o.Daemon, bus.MaxAlertIdent)
	o.Instance = clip(o.Instance, bus.MaxAlertIdent)
	if o.MinLevel < zapcore.ErrorLevel {
		o.MinLevel = zapcore.ErrorLevel
	}
	if o.Buffer <= 0 {
		o.Buffer = DefaultBuffer
	}
	if o.DedupWindow == 0 {
		o.DedupWindow = DefaultDedupWindow
	}
	if o.Rate == 0 {
		o.Rate = DefaultRate
	}
	if o.RatePer <= 0 {
		o.RatePer = DefaultRatePer
	}
	if o.FlushTimeout <= 0 {
		o.FlushTimeout = DefaultFlushTimeout
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
}

// Stats are a Shipper's counters since it was built.
type Stats struct {
	Queued     uint64 // alerts put on the queue (including summaries)
	Published  uint64 // alerts handed to NATS
	Folded     uint64 // entries folded into another alert by de-duplication
	Suppressed uint64 // entries over the rate limit (reported by summaries)
	Dropped    uint64 // alerts lost: queue full, or NATS refused the publish
	Pending    int    // alerts waiting in the queue now
}

// Shipper de-duplicates, rate-limits, queues and publishes alerts; see the
// package documentation. It is safe for concurrent use; all methods of a
// nil *Shipper are no-ops.
type Shipper struct {
	o    Options
	tick time.Duration

	queue    chan *bus.Alert
	wake     chan struct{} // Attach happened; capacity 1
	flushReq chan flushReq
	quit     chan struct{}
	done     chan struct{}
	once     sync.Once

	target atomic.Pointer[target] // nil until Attach

	mu         sync.Mutex            // guards the fields below
	seen       map[string]*seenEntry // (caller, message) → de-duplication state
	tokens     float64               // rate limit bucket
	refilled   time.Time             // last refill of tokens
	suppressed uint32                // entries over the limit not yet reported
	firstSupp  string                // "caller: message" of the first of them

	queued, published, folded, suppressedTotal, dropped atomic.Uint64
}

type target struct {
	nc      *nats.Conn
	subject string
}

type flushReq struct {
	deadline time.Time
	done     chan error // capacity 1
}

// seenEntry is the de-duplication state of one (caller, message) pair.
type seenEntry struct {
	until  time.Time // end of the window opened by the last alert sent
	folded uint32    // repeats since then, not yet reported
	last   bus.Alert // the latest repeat (its time and fields are reported)
}

// NewShipper builds a Shipper and starts its goroutine; Close stops it.
func NewShipper(o Options) *Shipper {
	o.defaults()
	s := &Shipper{
		o:        o,
		queue:    make(chan *bus.Alert, o.Buffer),
		wake:     make(chan struct{}, 1),
		flushReq: make(chan flushReq),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
		seen:     make(map[string]*seenEntry),
		tokens:   float64(o.Rate),
		refilled: time.Now(),
	}
	s.tick = time.Second
	for _, d := range []time.Duration{o.DedupWindow / 4, o.RatePer / time.Duration(max(o.Rate, 1))} {
		if d > 0 && d < s.tick {
			s.tick = d
		}
	}
	s.tick = max(s.tick, 10*time.Millisecond)
	go s.run()
	return s
}

// NewCore is NewShipper(o) followed by Core: the core to tee into the
// daemon's logger and the shipper to Attach, Sync and Close.
func NewCore(o Options) (zapcore.Core, *Shipper) {
	s := NewShipper(o)
	return s.Core(), s
}

// Core returns the zapcore.Core that feeds the shipper; it may be used by
// any number of loggers.
func (s *Shipper) Core() zapcore.Core {
	if s == nil {
		return zapcore.NewNopCore()
	}
	return &core{s: s}
}

// Attach makes subject on nc the destination: queued alerts start flowing.
// A later call replaces the destination. The shipper never closes nc; once
// nc is closed, alerts are dropped (counted) until Attach is called again.
// A nil nc is ignored.
func (s *Shipper) Attach(nc *nats.Conn, subject string) {
	if s == nil || nc == nil {
		return
	}
	s.target.Store(&target{nc: nc, subject: subject})
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Flush waits up to timeout until the queued alerts were handed to NATS and
// the server confirmed them. It returns at once (nil) when no destination
// is attached, and ErrNotConnected, without waiting, while NATS is
// reconnecting.
func (s *Shipper) Flush(timeout time.Duration) error {
	if s == nil || s.target.Load() == nil {
		return nil
	}
	r := flushReq{deadline: time.Now().Add(timeout), done: make(chan error, 1)}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case s.flushReq <- r:
	case <-timer.C:
		return ErrFlushTimeout
	case <-s.done:
		return nil
	}
	select {
	case err := <-r.done:
		return err
	case <-timer.C:
		return ErrFlushTimeout
	}
}

// Close stops the goroutine after one last attempt (bounded by
// FlushTimeout) to publish what is queued. Alerts logged afterwards are
// dropped. Close is idempotent.
func (s *Shipper) Close() {
	if s == nil {
		return
	}
	s.once.Do(func() {
		close(s.quit)
		<-s.done
	})
}

// Stats returns the counters.
func (s *Shipper) Stats() Stats {
	if s == nil {
		return Stats{}
	}
	return Stats{
		Queued: s.queued.Load(), Published: s.published.Load(), Folded: s.folded.Load(),
		Suppressed: s.suppressedTotal.Load(), Dropped: s.dropped.Load(), Pending: len(s.queue),
	}
}

// offer applies de-duplication and the rate limit to a, then queues it. It
// runs in the logging goroutine and never blocks beyond the short mutex.
func (s *Shipper) offer(a *bus.Alert, lvl zapcore.Level) {
	if lvl >= zapcore.FatalLevel {
		s.enqueue(a, true) // last words: no limit, no folding
		s.reportAll(time.Now())
		return
	}
	now := time.Now()
	dedup := s.o.DedupWindow > 0
	key := ""
	s.mu.Lock()
	var e *seenEntry
	if dedup {
		key = a.Caller + "\x00" + a.Message
		e = s.seen[key]
		if e != nil && now.Before(e.until) {
			e.folded = satAdd(e.folded, 1)
			e.last = *a
			s.mu.Unlock()
			s.folded.Add(1)
			return
		}
	}
	if !s.takeLocked(now) {
		s.suppressed = satAdd(s.suppressed, 1)
		if s.suppressed == 1 {
			s.firstSupp = a.Message
			if a.Caller != "" {
				s.firstSupp = a.Caller + ": " + a.Message
			}
		}
		s.mu.Unlock()
		s.suppressedTotal.Add(1)
		return
	}
	switch {
	case e != nil: // window over: the unreported repeats ride along
		a.Count = satAdd(a.Count, e.folded)
		e.folded, e.until = 0, now.Add(s.o.DedupWindow)
	case dedup:
		if len(s.seen) >= s.o.MaxKeys {
			s.evictLocked(now)
		}
		if len(s.seen) < s.o.MaxKeys {
			s.seen[key] = &seenEntry{until: now.Add(s.o.DedupWindow)}
		}
	}
	s.mu.Unlock()
	s.enqueue(a, lvl > zapcore.ErrorLevel)
}

// enqueue puts a on the queue without blocking. When the queue is full a
// normal alert is dropped; an urgent one (above Error) takes the place of
// the oldest queued alert.
func (s *Shipper) enqueue(a *bus.Alert, urgent bool) {
	for range 3 {
		select {
		case s.queue <- a:
			s.queued.Add(1)
			return
		default:
		}
		if !urgent {
			break
		}
		select {
		case <-s.queue:
			s.dropped.Add(1)
		default:
		}
	}
	s.dropped.Add(1)
}

// refillLocked adds the tokens earned since the last refill.
func (s *Shipper) refillLocked(now time.Time) {
	if s.o.Rate < 0 {
		return
	}
	if el := now.Sub(s.refilled); el > 0 {
		s.tokens = min(float64(s.o.Rate), s.tokens+float64(s.o.Rate)*el.Seconds()/s.o.RatePer.Seconds())
		s.refilled = now
	}
}

// takeLocked takes one token if there is one.
func (s *Shipper) takeLocked(now time.Time) bool {
	if s.o.Rate < 0 {
		return true
	}
	s.refillLocked(now)
	if s.tokens < 1 {
		return false
	}
	s.tokens--
	return true
}

// evictLocked forgets pairs whose window is over and that have nothing to
// report.
func (s *Shipper) evictLocked(now time.Time) {
	for k, e := range s.seen {
		if !now.Before(e.until) && e.folded == 0 {
			delete(s.seen, k)
		}
	}
}

// sweep reports the repeats of closed windows and the suppressed count,
// each as one alert, as far as the rate limit allows; what it can't report
// yet waits for the next tick.
func (s *Shipper) sweep(now time.Time) {
	var out []*bus.Alert
	s.mu.Lock()
	for k, e := range s.seen {
		if now.Before(e.until) {
			continue
		}
		if e.folded > 0 {
			if !s.takeLocked(now) {
				continue
			}
			a := e.last
			a.Count = e.folded
			out = append(out, &a)
		}
		delete(s.seen, k)
	}
	if s.suppressed > 0 && s.takeLocked(now) {
		out = append(out, s.summaryLocked(now))
	}
	s.mu.Unlock()
	for _, a := range out {
		s.enqueue(a, false)
	}
}

// reportAll queues the unreported repeats of every pair and the suppressed
// count at once, ignoring windows and the rate limit: the process is about
// to end (a Fatal entry, or Close).
func (s *Shipper) reportAll(now time.Time) {
	var out []*bus.Alert
	s.mu.Lock()
	for _, e := range s.seen {
		if e.folded > 0 {
			a := e.last
			a.Count = e.folded
			out = append(out, &a)
			e.folded = 0
		}
	}
	if s.suppressed > 0 {
		out = append(out, s.summaryLocked(now))
	}
	s.mu.Unlock()
	for _, a := range out {
		s.enqueue(a, false)
	}
}

// summaryLocked builds the "N alerts suppressed" alert and resets the
// count.
func (s *Shipper) summaryLocked(now time.Time) *bus.Alert {
	a := &bus.Alert{
		Host: s.o.Host, Daemon: s.o.Daemon, Instance: s.o.Instance, Level: zapcore.ErrorLevel.String(),
		Time:    now.UnixNano(),
		Message: fmt.Sprintf("%d alerts suppressed by the rate limit", s.suppressed),
		Fields: clip(fmt.Sprintf("limit=%d/%s first=%s", s.o.Rate, s.o.RatePer, strconv.Quote(s.firstSupp)),
			bus.MaxAlertFields),
		Count: 1,
	}
	s.suppressed, s.firstSupp = 0, ""
	return a
}

// run is the shipper's goroutine: it publishes queued alerts once a
// destination is attached, serves flushes and runs the sweeps.
func (s *Shipper) run() {
	defer close(s.done)
	tick := time.NewTicker(s.tick)
	defer tick.Stop()
	for {
		t := s.target.Load()
		var q chan *bus.Alert
		if t != nil {
			q = s.queue
		}
		select {
		case <-s.quit:
			s.reportAll(time.Now())
			if t != nil {
				s.drain(t)
				_ = s.flushConn(t, time.Now().Add(s.o.FlushTimeout))
			}
			return
		case <-s.wake:
		case a := <-q:
			s.publish(t, a)
		case r := <-s.flushReq:
			if t == nil {
				r.done <- nil
				continue
			}
			s.drain(t)
			r.done <- s.flushConn(t, r.deadline)
		case now := <-tick.C:
			s.sweep(now)
		}
	}
}

// drain publishes everything queued right now.
func (s *Shipper) drain(t *target) {
	for {
		select {
		case a := <-s.queue:
			s.publish(t, a)
		default:
			return
		}
	}
}

// publish hands one alert to NATS; it does not wait for the server.
func (s *Shipper) publish(t *target, a *bus.Alert) {
	if err := t.nc.Publish(t.subject, a.Marshal()); err != nil {
		s.dropped.Add(1)
		return
	}
	s.published.Add(1)
}

// flushConn waits for the server to confirm what was published, unless the
// connection is down (then waiting would only delay the caller).
func (s *Shipper) flushConn(t *target, deadline time.Time) error {
	if !t.nc.IsConnected() {
		return ErrNotConnected
	}
	d := time.Until(deadline)
	if d <= 0 {
		return ErrFlushTimeout
	}
	if err := t.nc.FlushTimeout(d); err != nil {
		if errors.Is(err, nats.ErrTimeout) {
			return ErrFlushTimeout
		}
		return err
	}
	return nil
}

// satAdd adds without wrapping.
func satAdd(a, b uint32) uint32 {
	if c := a + b; c >= a {
		return c
	}
	return ^uint32(0)
}
