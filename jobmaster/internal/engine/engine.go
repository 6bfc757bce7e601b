// Package engine is the jobmaster's job state machine. One goroutine owns
// the state (current tip, what was published for it); tips and templates
// arrive as events from the node watchers, the bus and its own fetches.
//
// On a new tip it publishes an empty-block job at once (when the new bits
// are known from the tip alone), fetches the full template in parallel, and
// publishes the full job without cleaning the empty job's work. Template
// replies carry a sequence number given when the request was sent (or, for a
// long poll, when it returned): a reply older than one already applied is
// dropped, and a template below the current tip never replaces it, except
// when a tip announced on the bus is not followed by any node within
// EmptyTimeout.
package engine

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"go.uber.org/zap"

	"github.com/hashgate/hashgate/jobmaster/internal/jobs"
	"github.com/hashgate/hashgate/jobmaster/internal/nodes"
	"github.com/hashgate/hashgate/pkg/blockutil"
	"github.com/hashgate/hashgate/pkg/noderpc"
)

// Publisher sends a job to the gateways. It is called from the engine
// goroutine and should not block for long.
type Publisher interface {
	Publish(rec *jobs.Record) error
}

// Options configure an Engine.
type Options struct {
	Params          *chaincfg.Params
	Pool            *nodes.Pool
	Builder         *jobs.Builder
	Store           *jobs.Store
	Publisher       Publisher
	Metrics         *Metrics
	Logger          *zap.Logger
	RefreshInterval time.Duration
	EmptyJobs       bool
	EmptyTimeout    time.Duration
}

// Engine is the job state machine.
type Engine struct {
	o      Options
	lg     *zap.Logger
	events chan event
	seq    atomic.Uint64

	// Owned by the Run goroutine.
	tip        chainhash.Hash // current tip (the jobs' previous block)
	height     int64          // current tip's height
	tipSeen    time.Time      // when the current tip was first noticed
	tipForeign bool           // current tip came from the bus, not a node
	applied    uint64         // sequence of the last applied template
	emptyFor   chainhash.Hash // tip an empty job was published for
	fullFor    chainhash.Hash // tip a full job was published for
	last       *jobs.Record   // last published job
	lastFull   *jobs.Record   // last published full job
	inflight   int            // template fetches under way
	retryAt    time.Time      // when to retry a failed fetch
	asked      map[chainhash.Hash]bool

	mu      sync.RWMutex // guards current for Current()
	current *jobs.Record
}

type event interface{}

type tipEvent struct {
	hash chainhash.Hash
	node *nodes.Node
	via  string
	seen time.Time
}

type headerEvent struct {
	hash chainhash.Hash
	info *noderpc.BlockHeaderInfo
	node *nodes.Node
	via  string
	seen time.Time
}

type busTipEvent struct {
	header blockutil.Header
	source string
	seen   time.Time
}

type templateEvent struct {
	seq    uint64
	tmpl   *noderpc.Template
	node   *nodes.Node
	err    error
	reason string
	asked  time.Time
}

// New returns an Engine.
func New(o Options) *Engine {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics()
	}
	return &Engine{o: o, lg: o.Logger, events: make(chan event, 256), asked: map[chainhash.Hash]bool{}}
}

// Current returns the last published job (nil before the first). Safe for
// concurrent use.
func (e *Engine) Current() *jobs.Record {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.current
}

// NodeTip reports a best-block hash seen on a node. Safe for concurrent use;
// never blocks (a full queue drops the event: the poll repeats it).
func (e *Engine) NodeTip(hash chainhash.Hash, n *nodes.Node, via string, seen time.Time) {
	e.send(tipEvent{hash: hash, node: n, via: via, seen: seen})
}

// LongPollTemplate reports a template a long poll returned. Safe for
// concurrent use.
func (e *Engine) LongPollTemplate(t *noderpc.Template, n *nodes.Node, seen time.Time) {
	e.send(templateEvent{seq: e.seq.Add(1), tmpl: t, node: n, reason: "longpoll", asked: seen})
}

// BusTip reports a header announced on the bus. The caller has checked its
// proof of work. Safe for concurrent use.
func (e *Engine) BusTip(h blockutil.Header, source string, seen time.Time) {
	e.send(busTipEvent{header: h, source: source, seen: seen})
}

func (e *Engine) send(ev event) {
	select {
	case e.events <- ev:
	default:
		e.lg.Warn("engine event queue full; event dropped")
	}
}

// Run processes events until ctx is done.
func (e *Engine) Run(ctx context.Context) error {
	refresh := time.NewTicker(e.o.RefreshInterval)
	defer refresh.Stop()
	retry := time.NewTicker(250 * time.Millisecond)
	defer retry.Stop()
	e.fetch(ctx, "start")
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-e.events:
			e.handle(ctx, ev)
		case <-refresh.C:
			e.fetch(ctx, "refresh")
		case now := <-retry.C:
			if !e.retryAt.IsZero() && now.After(e.retryAt) && e.inflight == 0 {
				e.retryAt = time.Time{}
				e.fetch(ctx, "retry")
			}
		}
	}
}

func (e *Engine) handle(ctx context.Context, ev event) {
	switch ev := ev.(type) {
	case tipEvent:
		e.onNodeTip(ctx, ev)
	case headerEvent:
		e.onHeader(ctx, ev)
	case busTipEvent:
		e.onBusTip(ctx, ev)
	case templateEvent:
		e.onTemplate(ctx, ev)
	}
}

// fetch asks the pool for a template in the background.
func (e *Engine) fetch(ctx context.Context, reason string) {
	seq := e.seq.Add(1)
	e.inflight++
	asked := time.Now()
	go func() {
		t, n, err := e.o.Pool.Template(ctx)
		e.o.Metrics.TemplateFetch.Observe(time.Since(asked).Seconds())
		select {
		case e.events <- templateEvent{seq: seq, tmpl: t, node: n, err: err, reason: reason, asked: asked}:
		case <-ctx.Done():
		}
	}()
}

func (e *Engine) onNodeTip(ctx context.Context, ev tipEvent) {
	if ev.hash == e.tip || e.asked[ev.hash] {
		return
	}
	e.asked[ev.hash] = true
	e.lg.Debug("tip noticed", zap.String("block_hash", ev.hash.String()), zap.String("node", ev.node.Name), zap.String("via", ev.via))
	// The template and the header race; whichever is first wins.
	e.fetch(ctx, ev.via)
	go func() {
		cctx, cancel := context.WithTimeout(ctx, ev.node.Timeout)
		info, err := ev.node.Client.GetBlockHeader(cctx, ev.hash)
		cancel()
		if err != nil {
			e.lg.Debug("getblockheader failed", zap.String("node", ev.node.Name), zap.Error(err))
			return
		}
		select {
		case e.events <- headerEvent{hash: ev.hash, info: info, node: ev.node, via: ev.via, seen: ev.seen}:
		case <-ctx.Done():
		}
	}()
}

func (e *Engine) onHeader(ctx context.Context, ev headerEvent) {
	delete(e.asked, ev.hash)
	if ev.hash == e.tip || ev.info.Height <= e.height {
		return // already there (the template won) or not higher
	}
	bits, err := parseBits(ev.info.Bits)
	if err != nil {
		e.lg.Debug("header with bad bits", zap.String("bits", ev.info.Bits))
		return
	}
	minTime := uint32(ev.info.Time + 1)
	if ev.info.MedianTime > 0 && uint32(ev.info.MedianTime+1) > minTime {
		minTime = uint32(ev.info.MedianTime + 1)
	}
	e.newTip(ctx, ev.hash, ev.info.Height, bits, minTime, ev.node.Name, false, ev.seen)
}

func (e *Engine) onBusTip(ctx context.Context, ev busTipEvent) {
	hash := ev.header.Hash()
	if hash == e.tip {
		return
	}
	if ev.header.PrevHash() != e.tip || e.height == 0 {
		e.lg.Debug("bus tip does not extend our tip; ignored",
			zap.String("block_hash", hash.String()), zap.String("source", ev.source))
		return
	}
	e.newTip(ctx, hash, e.height+1, ev.header.Bits(), ev.header.Time()+1, ev.source, true, ev.seen)
	e.fetch(ctx, "bus tip")
}

// newTip moves to a new tip and publishes the empty job when allowed.
func (e *Engine) newTip(_ context.Context, hash chainhash.Hash, height int64, tipBits, minTime uint32, source string, foreign bool, seen time.Time) {
	e.setTip(hash, height, seen, foreign)
	e.lg.Info("new tip", zap.Int64("height", height), zap.String("block_hash", hash.String()), zap.String("source", source))
	if !e.o.EmptyJobs {
		return
	}
	bits, ok := jobs.NextBits(e.o.Params, height, tipBits)
	if !ok {
		e.lg.Debug("next bits unknown from the tip alone; waiting for the template", zap.Int64("height", height+1))
		return
	}
	version := int32(0x20000000)
	if e.lastFull != nil {
		version = e.lastFull.Job.Version
	}
	rec, err := e.o.Builder.Empty(jobs.EmptyParams{Prev: hash, Height: height + 1, Bits: bits, Version: version,
		MinTime: minTime, Source: source})
	if err != nil {
		e.lg.Error("build empty job", zap.Error(err))
		return
	}
	rec.Job.Clean = true
	if e.publish(rec) {
		e.emptyFor = hash
		e.o.Metrics.TipToJob.WithLabelValues("empty").Observe(time.Since(seen).Seconds())
	}
}

func (e *Engine) onTemplate(ctx context.Context, ev templateEvent) {
	if ev.reason != "longpoll" { // long polls are not counted in inflight
		e.inflight = max(0, e.inflight-1)
	}
	if ev.err != nil {
		if ctx.Err() == nil {
			e.lg.Error("no template from any node", zap.String("reason", ev.reason), zap.Error(ev.err))
			e.o.Metrics.TemplateErrors.Inc()
			e.retryAt = time.Now().Add(time.Second)
		}
		return
	}
	if ev.seq <= e.applied {
		e.lg.Debug("older template reply dropped", zap.Uint64("seq", ev.seq), zap.Uint64("applied", e.applied))
		return
	}
	t := ev.tmpl
	prev, err := chainhash.NewHashFromStr(t.PreviousBlockHash)
	if err != nil {
		e.o.Pool.Failed(ev.node, err)
		e.lg.Warn("template with a bad previous hash", zap.String("node", ev.node.Name))
		e.retryAt = time.Now().Add(time.Second)
		return
	}
	tipHeight := t.Height - 1
	switch {
	case *prev == e.tip:
		// Same tip: a full job for it, or a refresh.
	case tipHeight < e.height && e.tipForeign && time.Since(e.tipSeen) < e.o.EmptyTimeout:
		// The node has not caught up with a tip from the bus yet.
		e.lg.Debug("template behind the bus tip; waiting", zap.String("node", ev.node.Name))
		e.retryAt = time.Now().Add(500 * time.Millisecond)
		return
	case tipHeight < e.height && !e.tipForeign:
		// A slow node's view, older than the tip we are on.
		e.lg.Debug("template below the current tip dropped", zap.Int64("height", t.Height))
		return
	default:
		// The template is the first news of a new tip (or we give up on a
		// foreign tip nobody follows).
		if e.tipForeign && tipHeight < e.height {
			e.lg.Warn("no node followed the announced tip; back to the nodes' chain",
				zap.String("block_hash", e.tip.String()))
		}
		e.setTip(*prev, tipHeight, ev.asked, false)
	}
	rec, err := e.o.Builder.FromTemplate(t, ev.node.Name)
	if err != nil {
		e.o.Pool.Failed(ev.node, err)
		e.lg.Error("template refused", zap.String("node", ev.node.Name), zap.Error(err))
		e.o.Metrics.TemplateErrors.Inc()
		e.retryAt = time.Now().Add(time.Second)
		return
	}
	e.applied = ev.seq
	if e.fullFor == e.tip && sameWork(e.lastFull, rec) {
		return // nothing new for miners
	}
	first := e.fullFor != e.tip
	rec.Job.Clean = first && e.emptyFor != e.tip
	if e.publish(rec) {
		e.lastFull = rec
		if first {
			e.fullFor = e.tip
			e.o.Metrics.TipToJob.WithLabelValues("full").Observe(time.Since(e.tipSeen).Seconds())
		}
	}
}

// setTip moves to a new tip and forgets what was published for the old one
// (the chain may come back to a tip it left: its jobs must be clean again).
func (e *Engine) setTip(hash chainhash.Hash, height int64, seen time.Time, foreign bool) {
	e.tip, e.height, e.tipSeen, e.tipForeign = hash, height, seen, foreign
	e.emptyFor, e.fullFor = chainhash.Hash{}, chainhash.Hash{}
	clear(e.asked)
}

// publish stores and sends a job; it reports success.
func (e *Engine) publish(rec *jobs.Record) bool {
	e.o.Store.Add(rec)
	if err := e.o.Publisher.Publish(rec); err != nil {
		e.lg.Error("publish job", zap.String("job_id", rec.Job.ID), zap.Error(err))
		return false
	}
	e.last = rec
	e.mu.Lock()
	e.current = rec
	e.mu.Unlock()
	kind := "full"
	if rec.Job.Empty {
		kind = "empty"
	}
	e.o.Metrics.Jobs.WithLabelValues(kind).Inc()
	e.o.Metrics.Height.Set(float64(rec.Job.Height))
	e.lg.Info("job published", zap.String("job_id", rec.Job.ID), zap.Int64("height", rec.Job.Height),
		zap.Bool("clean", rec.Job.Clean), zap.Bool("empty", rec.Job.Empty), zap.Int("txs", len(rec.Job.Txs)),
		zap.Int64("coinbase_value", rec.Job.CoinbaseValue), zap.String("source", rec.Job.Source))
	return true
}

// sameWork reports whether two full jobs offer miners the same work.
func sameWork(a, b *jobs.Record) bool {
	if a == nil || b == nil || a.Job.PrevHash != b.Job.PrevHash || a.Job.CoinbaseValue != b.Job.CoinbaseValue ||
		a.Job.Version != b.Job.Version || a.Job.Bits != b.Job.Bits || len(a.TxIDs) != len(b.TxIDs) {
		return false
	}
	for i := range a.TxIDs {
		if a.TxIDs[i] != b.TxIDs[i] {
			return false
		}
	}
	return true
}
