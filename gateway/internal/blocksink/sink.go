package blocksink

import (
	durable "github.com/hashgate/hashgate/pkg/spool"

	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/noderpc"
)

// Defaults for zero Options fields.
const (
	DefaultAckTimeout    = 2 * time.Second
	DefaultFallbackAfter = 3 * time.Second
	DefaultRetry         = 2 * time.Second
	DefaultMaxAge        = time.Hour
)

// Capacities.
const (
	// QueueSize is how many blocks Submit can hand over without spawning
	// a goroutine.
	QueueSize = 1024
	// ResultsSize is the capacity of Results; when nobody reads, the
	// oldest results are dropped.
	ResultsSize = 256
	// shutdownWait bounds how long Run waits, when stopping, for the
	// overflow spool writes still in progress.
	shutdownWait = 10 * time.Second
)

// Via values of Result: who reported the outcome.
const (
	ViaJobmaster = "jobmaster" // the jobmaster's reply
	ViaFallback  = "fallback"  // our own submission, confirmed on a node
	ViaNone      = "none"      // nobody: given up after MaxAge
)

// Node is a fallback submission target.
type Node struct {
	// Name identifies the node in logs and reasons.
	Name string
	// Client talks to the node's RPC server.
	Client *noderpc.Client
}

// Options configure a Sink. Zero durations take the Default values.
type Options struct {
	// Conn is the NATS connection; it may be disconnected (requests then
	// fail until it reconnects) or nil (fallback submission only).
	Conn *nats.Conn
	// Subject is <prefix>.<coin>.block (bus.Subject with bus.TopicBlock).
	Subject string
	// AckTimeout bounds each request to the jobmaster.
	AckTimeout time.Duration
	// FallbackAfter is how long the jobmaster has to give a final answer
	// before the sink submits the block to the nodes itself.
	FallbackAfter time.Duration
	// SpoolDir holds the spool records; it is created with mode 0700.
	SpoolDir string
	// Nodes are the fallback submission targets.
	Nodes []Node
	// Logger receives the sink's logs; nil means none.
	Logger *zap.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Retry is the interval between requests (and between fallback
	// submissions while no node is reachable) for a block without a final
	// outcome.
	Retry time.Duration
	// MaxAge is how long after it was queued a block is retried; then its
	// record moves to SpoolDir/failed/ (never deleted).
	MaxAge time.Duration
}

// Result is a block's outcome.
type Result struct {
	// Hash is the block hash.
	Hash chainhash.Hash
	// Status is the final status; for a block given up on (Via
	// ViaNone), the last status heard, or unreachable.
	Status bus.BlockStatus
	// Reason adds detail: the jobmaster's or the nodes' reasons.
	Reason string
	// Via says who reported the outcome: ViaJobmaster, ViaFallback or
	// ViaNone.
	Via string
}

// Sink delivers found blocks. See the package documentation.
type Sink struct {
	o  Options
	lg *zap.Logger
	m  *metrics
	sp spool

	in      chan *entry // Submit → Run
	results chan Result
	pending atomic.Int64 // blocks without a final outcome

	// Blocks the queue had no room for: Submit appends them to spill and
	// starts the spiller goroutine if it is not running; the spiller
	// writes their records and moves them to overflow for Run.
	mu       sync.Mutex // guards spill, spilling, overflow and parked
	spill    []*entry   // waiting for the spiller
	spilling bool       // the spiller goroutine is running
	overflow []*entry   // spooled by the spiller, not yet taken by Run
	parked   []*entry   // loaded by New or left by a stopped Run, found order
	kick     chan struct{}

	running atomic.Bool
}

// entry is one block. The fields up to spooled are set before Run owns
// the entry; the rest belong to Run.
type entry struct {
	hash   chainhash.Hash
	msg    []byte // FoundBlock message
	raw    []byte // nil when unknown
	jobID  string
	worker string
	found  int64 // FoundUnixNano
	queued time.Time
	// spooled is true once the record is on disk.
	spooled bool

	lg         *zap.Logger
	id         uint64    // Run's id, part of the reply subject
	started    time.Time // this Run took it
	nextReq    time.Time // next request to the jobmaster
	reqBusy    bool      // a request is in flight
	reqSeq     uint64    // number of the latest request
	reqDue     time.Time // when the latest request times out
	fbBusy     bool      // a fallback submission is in flight
	fbWanted   bool      // the jobmaster asked for one (unreachable, unknown_job)
	fbDone     bool      // no more fallback: nodes answered, or impossible
	fbNext     time.Time // next fallback while no node is reachable
	lastStatus bus.BlockStatus
	lastReason string
	height     int64
	gone       bool // final or given up; late attempt results are ignored
	warned     bool // "submitting it ourselves" logged
	noNode     bool // "no node reachable" logged
}

// record returns the entry's spool record.
func (e *entry) record() []byte { return encodeRecord(e.queued, e.msg, e.raw) }

// New opens (creating, mode 0700) the spool directory and loads the blocks
// spooled by an earlier run; Run replays them. Corrupt spool files are
// moved to SpoolDir/failed/ and logged.
func New(o Options) (*Sink, error) {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = DefaultAckTimeout
	}
	if o.FallbackAfter <= 0 {
		o.FallbackAfter = DefaultFallbackAfter
	}
	if o.Retry <= 0 {
		o.Retry = DefaultRetry
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.Conn != nil && o.Subject == "" {
		return nil, errors.New("blocksink: no subject for found blocks")
	}
	for i, n := range o.Nodes {
		if n.Client == nil {
			return nil, fmt.Errorf("blocksink: node %d (%q) has no client", i, n.Name)
		}
	}
	s := &Sink{
		o:       o,
		lg:      o.Logger,
		sp:      spool{dir: o.SpoolDir},
		in:      make(chan *entry, QueueSize),
		results: make(chan Result, ResultsSize),
		kick:    make(chan struct{}, 1),
	}
	s.m = newMetrics(func() float64 { return float64(s.Pending()) })
	if err := s.sp.open(); err != nil {
		return nil, err
	}
	recs, problems, err := s.sp.load()
	if err != nil {
		return nil, err
	}
	for _, p := range problems {
		s.lg.Error("corrupt block spool file moved aside", zap.String("file", p.file),
			zap.String("moved_to", p.movedTo), zap.Error(p.err))
	}
	for _, r := range recs {
		e := newEntry(r.msg, &r.fb, r.raw, r.queued)
		e.spooled = true
		s.parked = append(s.parked, e)
	}
	s.pending.Add(int64(len(recs)))
	if len(recs) > 0 {
		s.lg.Info("spooled found blocks to replay", zap.Int("blocks", len(recs)))
	}
	return s, nil
}

func newEntry(msg []byte, fb *bus.FoundBlock, raw []byte, queued time.Time) *entry {
	return &entry{hash: fb.BlockHash, msg: msg, raw: raw, jobID: fb.JobID, worker: fb.User + "." + fb.Worker,
		found: fb.FoundUnixNano, queued: queued}
}

// Submit hands a found block to the sink. It never blocks: it runs on a
// gnet event loop. When the queue is full the block is spooled by another
// goroutine instead, so it is never dropped. raw is the assembled block,
// nil if unknown (the jobmaster can still rebuild it, but the sink cannot
// submit it itself). Submit takes ownership of fb and raw; the caller must
// not modify them afterwards. Safe for concurrent use.
//
// Until Run is called, blocks wait in the queue (or, beyond it, on disk).
func (s *Sink) Submit(fb *bus.FoundBlock, raw []byte) {
	if fb == nil {
		return
	}
	e := newEntry(fb.Marshal(), fb, raw, s.o.Now())
	s.pending.Add(1)
	select {
	case s.in <- e:
		return
	default:
	}
	s.mu.Lock()
	s.spill = append(s.spill, e)
	start := !s.spilling
	s.spilling = true
	s.mu.Unlock()
	if start {
		go s.spiller()
	}
}

// spiller writes the records of the blocks the queue had no room for, in
// batches (each file fsynced, the directory once per batch), and hands
// them to Run. It exits when there is nothing left to write.
func (s *Sink) spiller() {
	for {
		s.mu.Lock()
		batch := s.spill
		s.spill = nil
		if len(batch) == 0 {
			s.spilling = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		for _, e := range batch {
			if err := s.sp.writeFile(e.hash, e.record()); err != nil {
				s.lg.Error("block spool write failed; the block is kept in memory only",
					zap.String("block_hash", e.hash.String()), zap.String("job_id", e.jobID),
					zap.String("worker", e.worker), zap.Error(err))
				continue
			}
			e.spooled = true
		}
		if err := durable.SyncDir(s.sp.dir); err != nil {
			s.lg.Error("block spool directory sync failed", zap.Error(err))
		}
		s.mu.Lock()
		s.overflow = append(s.overflow, batch...)
		s.mu.Unlock()
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// Pending returns the number of blocks without a final outcome (queued,
// spooled or being delivered). Safe for concurrent use.
func (s *Sink) Pending() int { return int(s.pending.Load()) }

// Results delivers the outcome of every block: final outcomes and blocks
// given up on. When nobody reads, the oldest results are dropped. Safe for
// concurrent use.
func (s *Sink) Results() <-chan Result { return s.results }

// Run delivers blocks until ctx is done, then persists whatever is still
// queued, waits for the attempts in flight and returns nil. Blocks without
// a final outcome stay spooled for the next run (or the next call of Run).
// Run must not be called concurrently with itself.
func (s *Sink) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("blocksink: Run is already running")
	}
	defer s.running.Store(false)

	w := &worker{s: s, ctx: ctx, byHash: map[chainhash.Hash]*entry{}, byID: map[uint64]*entry{},
		done: make(chan attempt, 16), replies: make(chan *nats.Msg, 256)}
	if err := w.subscribe(); err != nil {
		s.lg.Warn("cannot receive jobmaster replies; fallback submission only", zap.Error(err))
	}
	defer w.unsubscribe()
	s.mu.Lock()
	parked := s.parked
	s.parked = nil
	s.mu.Unlock()
	for _, e := range parked {
		w.add(e, true)
	}
	w.takeOverflow()

	tick := time.NewTicker(s.tickEvery())
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			w.shutdown()
			return nil
		case e := <-s.in:
			w.add(e, false)
		case <-s.kick:
			w.takeOverflow()
		case a := <-w.done:
			w.finished(a)
		case m := <-w.replies:
			w.reply(m)
		case <-tick.C:
			w.pollAll()
		}
	}
}

// tickEvery is how often Run checks its deadlines.
func (s *Sink) tickEvery() time.Duration {
	d := min(s.o.Retry, s.o.FallbackAfter, s.o.AckTimeout) / 4
	return min(max(d, 5*time.Millisecond), 250*time.Millisecond)
}

// emit sends a result, dropping the oldest when the channel is full. Only
// Run calls it.
func (s *Sink) emit(r Result) {
	for {
		select {
		case s.results <- r:
			return
		default:
		}
		select {
		case <-s.results:
		default:
		}
	}
}

// attempt is the outcome of one fallback submission.
type attempt struct {
	e   *entry
	out fallbackOutcome
}

// worker is Run's state.
type worker struct {
	s        *Sink
	ctx      context.Context
	entries  []*entry // found order
	byHash   map[chainhash.Hash]*entry
	byID     map[uint64]*entry
	lastID   uint64
	done     chan attempt // fallback submissions
	busy     int          // fallback submissions in flight
	stopping bool         // no new attempts

	// Requests are published by Run itself (so they leave in found
	// order) with the reply subject <inbox>.<entry id>.<request number>;
	// replies arrive on replies, timeouts are checked on every tick.
	inbox   string
	sub     *nats.Subscription
	replies chan *nats.Msg
}

// subscribe starts receiving replies to the sink's requests.
func (w *worker) subscribe() error {
	nc := w.s.o.Conn
	if nc == nil {
		return nil
	}
	w.inbox = nc.NewInbox()
	sub, err := nc.Subscribe(w.inbox+".*.*", func(m *nats.Msg) {
		select {
		case w.replies <- m:
		default: // Run is behind: the request times out and is repeated
		}
	})
	if err != nil {
		return fmt.Errorf("subscribe to replies: %w", err)
	}
	w.sub = sub
	return nil
}

func (w *worker) unsubscribe() {
	if w.sub != nil {
		_ = w.sub.Unsubscribe()
	}
}

// add takes a block. A block not yet on disk is spooled before anything
// else.
func (w *worker) add(e *entry, replay bool) {
	s := w.s
	if old, dup := w.byHash[e.hash]; dup {
		// The same block again (a duplicate share, or Submit racing a
		// replay): keep one entry, but never lose block bytes.
		s.pending.Add(-1)
		merged := old.raw == nil && e.raw != nil
		if merged {
			old.raw = e.raw
		}
		// Rewrite the record if it gained the block bytes, if the copy's
		// overflow write replaced it, or if it never reached the disk.
		if merged || e.spooled || !old.spooled {
			w.persist(old)
		}
		return
	}
	if !e.spooled {
		w.persist(e)
	}
	now := s.o.Now()
	e.lg = s.lg.With(zap.String("block_hash", e.hash.String()), zap.String("job_id", e.jobID),
		zap.String("worker", e.worker))
	e.started, e.nextReq = now, now
	w.lastID++
	e.id = w.lastID
	w.byID[e.id] = e
	i, _ := slices.BinarySearchFunc(w.entries, e, func(a, b *entry) int {
		if c := cmpInt64(a.found, b.found); c != 0 {
			return c
		}
		return a.queued.Compare(b.queued)
	})
	w.entries = slices.Insert(w.entries, i, e)
	w.byHash[e.hash] = e
	e.lg.Info("found block queued", zap.Bool("replayed", replay), zap.Bool("spooled", e.spooled),
		zap.Bool("has_block", e.raw != nil), zap.Duration("age", now.Sub(e.queued)))
	w.poll(e, now)
}

// persist writes e's spool record.
func (w *worker) persist(e *entry) {
	if err := w.s.sp.write(e.hash, e.record()); err != nil {
		w.s.lg.Error("block spool write failed; the block is kept in memory only",
			zap.String("block_hash", e.hash.String()), zap.String("job_id", e.jobID),
			zap.String("worker", e.worker), zap.Error(err))
		e.spooled = false
		return
	}
	e.spooled = true
}

// takeOverflow adds the blocks spooled by Submit's overflow goroutines.
func (w *worker) takeOverflow() {
	w.s.mu.Lock()
	taken := w.s.overflow
	w.s.overflow = nil
	w.s.mu.Unlock()
	for _, e := range taken {
		w.add(e, false)
	}
}

// pollAll starts whatever attempts are due.
func (w *worker) pollAll() {
	now := w.s.o.Now()
	for _, e := range slices.Clone(w.entries) {
		w.poll(e, now)
	}
}

// poll gives up on e, or starts the request and fallback submission that
// are due.
func (w *worker) poll(e *entry, now time.Time) {
	o := &w.s.o
	if w.stopping || e.gone {
		return
	}
	if now.Sub(e.queued) >= o.MaxAge && now.Sub(e.started) >= o.FallbackAfter+o.AckTimeout {
		w.giveUp(e, now)
		return
	}
	if e.reqBusy && !now.Before(e.reqDue) {
		e.reqBusy = false
		e.lastReason = "no reply from the jobmaster within " + o.AckTimeout.String()
		if ce := e.lg.Check(zap.DebugLevel, "found block request timed out; will retry"); ce != nil {
			ce.Write()
		}
	}
	if !e.reqBusy && !now.Before(e.nextReq) {
		w.request(e, now)
	}
	if !e.fbBusy && !e.fbDone && (e.fbWanted || now.Sub(e.started) >= o.FallbackAfter) && !now.Before(e.fbNext) {
		w.fallback(e)
	}
}

// request asks the jobmaster: one request, answered within AckTimeout or
// repeated after Retry.
func (w *worker) request(e *entry, now time.Time) {
	o := &w.s.o
	e.nextReq = now.Add(o.Retry)
	if w.sub == nil {
		e.lastReason = "no bus connection"
		return
	}
	e.reqSeq++
	reply := w.inbox + "." + strconv.FormatUint(e.id, 10) + "." + strconv.FormatUint(e.reqSeq, 10)
	if err := o.Conn.PublishRequest(o.Subject, reply, e.msg); err != nil {
		e.lastReason = err.Error()
		if ce := e.lg.Check(zap.DebugLevel, "found block request failed; will retry"); ce != nil {
			ce.Write(zap.Error(err))
		}
		return
	}
	e.reqBusy = true
	e.reqDue = now.Add(o.AckTimeout)
}

// reply handles the jobmaster's answer to any of a block's requests (a
// late answer counts as much as a timely one).
func (w *worker) reply(m *nats.Msg) {
	idStr, seqStr, _ := strings.Cut(strings.TrimPrefix(m.Subject, w.inbox+"."), ".")
	id, err1 := strconv.ParseUint(idStr, 10, 64)
	seq, err2 := strconv.ParseUint(seqStr, 10, 64)
	e := w.byID[id]
	if err1 != nil || err2 != nil || e == nil || e.gone {
		return // an entry already final
	}
	current := seq == e.reqSeq
	if current {
		e.reqBusy = false
	}
	if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
		e.lastReason = "no jobmaster listening"
		return // retried at nextReq
	}
	var r bus.BlockResult
	if err := r.Unmarshal(m.Data); err != nil {
		e.lastReason = "undecodable jobmaster reply: " + err.Error()
		e.lg.Warn("undecodable jobmaster reply; will retry", zap.Error(err))
		return
	}
	if r.Height > 0 {
		e.height = r.Height
	}
	switch r.Status {
	case bus.BlockAccepted, bus.BlockSideChain, bus.BlockSubmitted, bus.BlockRejected, bus.BlockInvalid:
		w.final(e, r.Status, r.Reason, ViaJobmaster)
		return
	case bus.BlockUnreachable, bus.BlockUnknownJob:
		e.lastStatus, e.lastReason = r.Status, r.Reason
		e.fbWanted = true
	default:
		e.lastStatus, e.lastReason = r.Status, r.Reason
		e.lg.Warn("unknown found-block reply status; will retry", zap.String("status", string(r.Status)),
			zap.String("reason", r.Reason))
	}
	w.poll(e, w.s.o.Now())
}

// fallback submits e to the nodes ourselves, if we can.
func (w *worker) fallback(e *entry) {
	s := w.s
	if len(e.raw) == 0 || len(s.o.Nodes) == 0 {
		reason := "no fallback nodes configured"
		if len(e.raw) == 0 {
			reason = "block bytes unknown (job without transactions)"
		}
		e.lg.Error("cannot submit the found block ourselves; waiting for the jobmaster", zap.String("reason", reason))
		s.m.fallback.WithLabelValues(fallbackImpossible).Inc()
		e.fbDone = true
		return
	}
	if !e.warned {
		e.warned = true
		e.lg.Warn("no final answer from the jobmaster; submitting the found block to the nodes",
			zap.String("status", string(e.lastStatus)), zap.String("reason", e.lastReason))
	}
	e.fbBusy = true
	w.busy++
	go func() {
		w.done <- attempt{e: e, out: submitToNodes(w.ctx, s.o.Nodes, e.raw, e.hash)}
	}()
}

// finished handles the end of a fallback submission.
func (w *worker) finished(a attempt) {
	w.busy--
	e := a.e
	if e.gone {
		return
	}
	now := w.s.o.Now()
	e.fbBusy = false
	w.s.m.fallback.WithLabelValues(a.out.result).Inc()
	if a.out.height > 0 {
		e.height = a.out.height
	}
	switch a.out.result {
	case fallbackAccepted:
		w.final(e, bus.BlockAccepted, a.out.reason, ViaFallback)
		return
	case fallbackSideChain:
		w.final(e, bus.BlockSideChain, a.out.reason, ViaFallback)
		return
	case fallbackRejected:
		// The nodes answered and none holds it: don't resubmit, but the
		// jobmaster (which rebuilds the block) may still succeed.
		e.fbDone = true
		e.lastReason = a.out.reason
		e.lg.Warn("nodes refused our submission of the found block; still asking the jobmaster",
			zap.String("reason", a.out.reason))
	default:
		e.fbNext = now.Add(w.s.o.Retry)
		e.lastReason = a.out.reason
		if !e.noNode {
			e.noNode = true
			e.lg.Error("no node reachable for the found block; retrying", zap.String("reason", a.out.reason))
		} else if ce := e.lg.Check(zap.DebugLevel, "no node reachable for the found block; retrying"); ce != nil {
			ce.Write(zap.String("reason", a.out.reason))
		}
	}
	w.poll(e, now)
}

// final records a final outcome: the spool record is removed.
func (w *worker) final(e *entry, status bus.BlockStatus, reason, via string) {
	s := w.s
	w.drop(e)
	if e.spooled {
		if err := s.sp.remove(e.hash); err != nil {
			e.lg.Warn("remove spool record", zap.Error(err))
		}
	}
	s.m.blocks.WithLabelValues(string(status), via).Inc()
	fields := []zap.Field{zap.Int64("height", e.height), zap.String("status", string(status)),
		zap.String("via", via), zap.String("reason", reason), zap.Duration("took", s.o.Now().Sub(e.queued))}
	if status == bus.BlockRejected || status == bus.BlockInvalid {
		e.lg.Warn("found block outcome", fields...)
	} else {
		e.lg.Info("found block outcome", fields...)
	}
	s.emit(Result{Hash: e.hash, Status: status, Reason: reason, Via: via})
}

// giveUp stops retrying e after MaxAge; its record moves to failed/.
func (w *worker) giveUp(e *entry, now time.Time) {
	s := w.s
	w.drop(e)
	var where string
	var err error
	if e.spooled {
		where, err = s.sp.moveToFailed(s.sp.path(e.hash))
	} else {
		where, err = s.sp.failRecord(e.hash, e.record())
	}
	status := e.lastStatus
	if status == "" {
		status = bus.BlockUnreachable
	}
	reason := fmt.Sprintf("gave up after %s: %s", now.Sub(e.queued).Round(time.Second), e.lastReason)
	s.m.blocks.WithLabelValues(string(status), ViaNone).Inc()
	e.lg.Error("giving up on found block; record kept in the spool's failed directory", zap.Int64("height", e.height),
		zap.String("status", string(status)), zap.String("reason", reason), zap.String("file", where),
		zap.NamedError("move_error", err))
	s.emit(Result{Hash: e.hash, Status: status, Reason: reason, Via: ViaNone})
}

// drop removes e from Run's state.
func (w *worker) drop(e *entry) {
	e.gone = true
	delete(w.byHash, e.hash)
	delete(w.byID, e.id)
	if i := slices.Index(w.entries, e); i >= 0 {
		w.entries = slices.Delete(w.entries, i, i+1)
	}
	w.s.pending.Add(-1)
}

// shutdown persists what is queued, lets the attempts in flight finish
// (they see the cancelled context; a reply that already arrived still
// counts) and parks the remaining blocks for a later Run.
func (w *worker) shutdown() {
	s := w.s
	w.stopping = true
	var rest []*entry
	for more := true; more; {
		select {
		case e := <-s.in:
			rest = append(rest, e)
		default:
			more = false
		}
	}
	for w.busy > 0 {
		w.finished(<-w.done)
	}
	for more := true; more; { // answers that already arrived still count
		select {
		case m := <-w.replies:
			w.reply(m)
		default:
			more = false
		}
	}
	// Let the spiller finish (bounded); whatever it has not reached is
	// written here.
	for deadline := time.Now().Add(shutdownWait); time.Now().Before(deadline); {
		s.mu.Lock()
		busy := s.spilling
		s.mu.Unlock()
		if !busy {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.mu.Lock()
	rest = append(rest, s.overflow...)
	s.overflow = nil
	rest = append(rest, s.spill...)
	s.spill = nil
	s.mu.Unlock()
	wrote := false
	for _, e := range rest {
		if e.spooled {
			continue
		}
		if err := s.sp.writeFile(e.hash, e.record()); err != nil {
			s.lg.Error("block spool write failed", zap.String("block_hash", e.hash.String()),
				zap.String("job_id", e.jobID), zap.String("worker", e.worker), zap.Error(err))
			continue
		}
		e.spooled, wrote = true, true
	}
	if wrote {
		if err := durable.SyncDir(s.sp.dir); err != nil {
			s.lg.Error("block spool directory sync failed", zap.Error(err))
		}
	}
	left := append(slices.Clone(w.entries), rest...)
	for _, e := range left {
		if !e.spooled {
			s.lg.Error("found block not persisted at shutdown", zap.String("block_hash", e.hash.String()),
				zap.String("job_id", e.jobID), zap.String("worker", e.worker))
		}
		e.reset()
	}
	s.mu.Lock()
	s.parked = append(s.parked, left...)
	s.mu.Unlock()
	if len(left) > 0 {
		s.lg.Info("found blocks left for the next run", zap.Int("blocks", len(left)))
	}
}

// reset clears Run's state of an entry parked for a later Run.
func (e *entry) reset() {
	*e = entry{hash: e.hash, msg: e.msg, raw: e.raw, jobID: e.jobID, worker: e.worker, found: e.found,
		queued: e.queued, spooled: e.spooled}
}
