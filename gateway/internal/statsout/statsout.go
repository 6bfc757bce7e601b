// Package statsout ships the gateway's per-minute statistics and its events
// to the metawriter through JetStream, without loss and without double
// counting.
//
// A few seconds after each minute ends, the closed minute of every worker is
// taken from the stats table and turned into one or more bus.StatsBatch
// messages (workers split into parts; part 0 also carries the gateway's
// monitor values: pow, share, reject, reject_<reason>, block, goal,
// connections sampled once at the minute boundary, new_authorized). Events
// (connected, disconnected, new worker once per user.worker per hour, block)
// are sent as they happen. Every message first goes to a bounded, fsynced
// spool and is removed only when JetStream acknowledged it; while NATS is
// unreachable the spool grows and is replayed in order, also after a
// restart. Message ids (gateway, boot, minute, part / event sequence) let
// JetStream and the metawriter drop resends. SIGTERM flushes the open
// minute.
//
// Events come in bursts (a mineragent that goes away logs out thousands of
// miners at once), so they are queued in memory, written to the spool many
// to a record (one fsync per burst, not per event) and published with
// asynchronous JetStream publishes whose acknowledgements are awaited
// together; a record leaves the spool only when all its messages are
// acknowledged.
//
// Concurrency: Authorized, Disconnected and Block are safe for concurrent
// use and never block (they run on event loops); Run owns the spool.
package statsout

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/spool"
	"github.com/hashgate/hashgate/pkg/stats"
)

// Options configure a Publisher.
type Options struct {
	Conn    *nats.Conn
	Prefix  string
	Coin    string
	Gateway string
	Stats   *stats.Table
	// Connections samples the open connections (once per minute).
	Connections func() int64
	SpoolDir    string
	// MaxSpoolBytes bounds the spool (default 1 GiB).
	MaxSpoolBytes int64
	// FlushDelay is how long after a minute ends it is shipped (default 5s).
	FlushDelay time.Duration
	// PartSize is the number of workers per message (default 2000).
	PartSize int
	// NewWorkerWindow: a user.worker is announced as new once per window
	// (default 1h).
	NewWorkerWindow time.Duration
	Logger          *zap.Logger
	Now             func() time.Time
}

// Publisher ships statistics and events.
type Publisher struct {
	o    Options
	lg   *zap.Logger
	boot int64
	seq  atomic.Uint64
	sp   *spool.Spool
	js   jetstream.JetStream
	m    *metrics

	mu          sync.Mutex
	authorized  map[int64]float64 // minute → new authorizations
	connections map[int64]float64 // minute → connections sampled at its end
	seen        map[string]time.Time
	lastSample  int64

	// The event queue: emit appends, Run takes the whole slice.
	qmu      sync.Mutex
	queue    []bus.Event
	qdropped int       // dropped since the last warning
	qwarned  time.Time // when the last "queue full" warning was logged
	wake     chan struct{}
}

const (
	// maxQueuedEvents bounds the in-memory event queue (about 150 bytes
	// each); at that point events are dropped and counted.
	maxQueuedEvents = 1 << 17
	// eventsPerRecord is how many events share one spool record.
	eventsPerRecord = 1024
	// maxInFlight bounds the messages awaiting a JetStream acknowledgement.
	maxInFlight = 4096
	// publishWait bounds one publishing round (NATS slow or away).
	publishWait = 2 * time.Second
	// queueWarnEvery rate-limits the "event queue full" warning.
	queueWarnEvery = 10 * time.Second
)

// New opens the spool; pending records from an earlier run are replayed by
// Run.
func New(o Options) (*Publisher, error) {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxSpoolBytes <= 0 {
		o.MaxSpoolBytes = 1 << 30
	}
	if o.FlushDelay <= 0 {
		o.FlushDelay = 5 * time.Second
	}
	if o.PartSize <= 0 {
		o.PartSize = 2000
	}
	if o.NewWorkerWindow <= 0 {
		o.NewWorkerWindow = time.Hour
	}
	sp, problems, err := spool.Open(o.SpoolDir, o.MaxSpoolBytes)
	if err != nil {
		return nil, err
	}
	for _, p := range problems {
		o.Logger.Error("statistics spool file unreadable", zap.Error(p))
	}
	p := &Publisher{o: o, lg: o.Logger, boot: o.Now().UnixNano(), sp: sp,
		m: newMetrics(), authorized: map[int64]float64{}, connections: map[int64]float64{}, seen: map[string]time.Time{},
		wake: make(chan struct{}, 1)}
	p.lastSample = minuteOf(o.Now())
	if o.Conn != nil {
		p.js, err = jetstream.New(o.Conn, jetstream.WithPublishAsyncMaxPending(2*maxInFlight),
			jetstream.WithPublishAsyncTimeout(2*publishWait))
		if err != nil {
			return nil, fmt.Errorf("jetstream: %w", err)
		}
	}
	if n := sp.Len(); n > 0 {
		p.lg.Warn("replaying spooled statistics", zap.Int("messages", n))
	}
	p.m.spooled.Set(float64(sp.Len()))
	return p, nil
}

// Register registers the collectors.
func (p *Publisher) Register(reg prometheus.Registerer) { p.m.register(reg) }

// Spooled returns the messages waiting for JetStream.
func (p *Publisher) Spooled() int { return p.sp.Len() }

func minuteOf(t time.Time) int64 { return t.Unix() / 60 * 60 }

// Authorized records a worker authorizing on a connection: the
// new_authorized monitor value, a "connected" event and, once per window, a
// "new_worker" event.
func (p *Publisher) Authorized(now time.Time, user, worker, peer string) {
	key := user + "." + worker
	p.mu.Lock()
	p.authorized[minuteOf(now)]++
	last, ok := p.seen[key]
	isNew := !ok || now.Sub(last) >= p.o.NewWorkerWindow
	if isNew {
		p.seen[key] = now
	}
	p.mu.Unlock()
	p.emit(bus.Event{Time: now.Unix(), Kind: bus.EventConnected, User: user, Worker: worker, Peer: peer, Coin: p.o.Coin})
	if isNew {
		p.emit(bus.Event{Time: now.Unix(), Kind: bus.EventNewWorker, User: user, Worker: worker, Coin: p.o.Coin})
	}
}

// Disconnected records an authorized worker's connection closing.
func (p *Publisher) Disconnected(now time.Time, user, worker, peer string) {
	p.emit(bus.Event{Time: now.Unix(), Kind: bus.EventDisconnected, User: user, Worker: worker, Peer: peer, Coin: p.o.Coin})
}

// Block records a found block (hash in display order).
func (p *Publisher) Block(now time.Time, hash, user, worker string) {
	p.emit(bus.Event{Time: now.Unix(), Kind: bus.EventBlock, User: user, Worker: worker, Coin: p.o.Coin,
		Name: strings.ToUpper(p.o.Coin), Hash: hash})
}

func (p *Publisher) emit(ev bus.Event) {
	ev.Gateway, ev.Boot, ev.Seq = p.o.Gateway, p.boot, p.seq.Add(1)
	p.qmu.Lock()
	if len(p.queue) >= maxQueuedEvents {
		p.m.dropped.Inc()
		p.qdropped++
		var n int
		if now := time.Now(); now.Sub(p.qwarned) >= queueWarnEvery {
			n, p.qdropped, p.qwarned = p.qdropped, 0, now
		}
		p.qmu.Unlock()
		if n > 0 {
			p.lg.Warn("event queue full; events dropped", zap.Int("dropped", n), zap.String("kind", ev.Kind))
		}
		return
	}
	p.queue = append(p.queue, ev)
	p.qmu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// takeEvents empties the event queue.
func (p *Publisher) takeEvents() []bus.Event {
	p.qmu.Lock()
	q := p.queue
	p.queue = nil
	p.qmu.Unlock()
	return q
}

// message is one bus message of a spool record.
type message struct {
	subject, id string
	payload     []byte
}

// A spool record holds one message — u16 subject length | subject | u16 id
// length | id | payload — or, after the u16 batchMarker, a u32 count of
// messages each written as u16 subject length | subject | u16 id length |
// id | u32 payload length | payload. Subjects are never 65535 bytes long,
// so records written before batching still read.
const batchMarker = 0xffff

func record(subject, id string, payload []byte) []byte {
	b := make([]byte, 0, 4+len(subject)+len(id)+len(payload))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(subject)))
	b = append(b, subject...)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(id)))
	b = append(b, id...)
	return append(b, payload...)
}

func batchRecord(msgs []message) []byte {
	n := 6
	for _, m := range msgs {
		n += 8 + len(m.subject) + len(m.id) + len(m.payload)
	}
	b := make([]byte, 0, n)
	b = binary.LittleEndian.AppendUint16(b, batchMarker)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(msgs)))
	for _, m := range msgs {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(m.subject)))
		b = append(b, m.subject...)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(m.id)))
		b = append(b, m.id...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(m.payload)))
		b = append(b, m.payload...)
	}
	return b
}

var errShortRecord = errors.New("short spool record")

// parseRecord reads a record of either form.
func parseRecord(b []byte) ([]message, error) {
	if len(b) < 2 {
		return nil, errShortRecord
	}
	if binary.LittleEndian.Uint16(b) != batchMarker {
		subject, rest, ok := field16(b)
		if !ok {
			return nil, errShortRecord
		}
		id, rest, ok := field16(rest)
		if !ok {
			return nil, errShortRecord
		}
		return []message{{subject: string(subject), id: string(id), payload: rest}}, nil
	}
	if len(b) < 6 {
		return nil, errShortRecord
	}
	count := binary.LittleEndian.Uint32(b[2:])
	b = b[6:]
	if uint64(count) > uint64(len(b)/8) {
		return nil, fmt.Errorf("spool record claims %d messages in %d bytes", count, len(b))
	}
	msgs := make([]message, 0, count)
	for i := uint32(0); i < count; i++ {
		subject, rest, ok := field16(b)
		if !ok {
			return nil, errShortRecord
		}
		id, rest, ok := field16(rest)
		if !ok || len(rest) < 4 {
			return nil, errShortRecord
		}
		n := binary.LittleEndian.Uint32(rest)
		if uint64(n) > uint64(len(rest)-4) {
			return nil, errShortRecord
		}
		msgs = append(msgs, message{subject: string(subject), id: string(id), payload: rest[4 : 4+n]})
		b = rest[4+n:]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("spool record has %d bytes after its last message", len(b))
	}
	return msgs, nil
}

// field16 splits a u16-length-prefixed field off b.
func field16(b []byte) (field, rest []byte, ok bool) {
	if len(b) < 2 {
		return nil, nil, false
	}
	n := int(binary.LittleEndian.Uint16(b))
	if len(b) < 2+n {
		return nil, nil, false
	}
	return b[2 : 2+n], b[2+n:], true
}

// enqueue spools a message.
func (p *Publisher) enqueue(subject, id string, payload []byte) {
	p.spoolRecord(record(subject, id, payload), 1, id)
}

// spoolRecord appends a record of n messages (the first with id first).
func (p *Publisher) spoolRecord(rec []byte, n int, first string) {
	if _, err := p.sp.Append(rec); err != nil {
		p.m.dropped.Add(float64(n))
		p.lg.Error("statistics spool refused messages; they are lost", zap.String("first_id", first),
			zap.Int("messages", n), zap.Error(err))
		return
	}
	p.m.spooled.Set(float64(p.sp.Len()))
}

// closeMinutes turns drained worker minutes and the host counters into
// batches.
func (p *Publisher) closeMinutes(now time.Time, all bool) {
	drained := p.o.Stats.Drain(now, all)
	byMinute := map[int64][]bus.WorkerStats{}
	host := map[int64]map[string]float64{}
	hostOf := func(m int64) map[string]float64 {
		if host[m] == nil {
			host[m] = map[string]float64{}
		}
		return host[m]
	}
	for key, mins := range drained {
		user, worker, _ := strings.Cut(key, ".")
		for _, m := range mins {
			byMinute[m.Minute] = append(byMinute[m.Minute], bus.WorkerStats{User: user, Worker: worker,
				Accepted: m.Accepted, DiffSum: m.DiffSum, GoalSum: m.GoalSum, Rejected: m.Rejected})
			h := hostOf(m.Minute)
			h["share"] += float64(m.Accepted)
			h["pow"] += m.DiffSum
			h["goal"] += m.GoalSum
			h["reject"] += float64(m.Rejected)
			h["block"] += float64(m.Blocks)
			for r := stats.Reason(0); r < stats.NumReasons; r++ {
				if n := m.Reasons[r]; n > 0 {
					h["reject_"+r.String()] += float64(n)
				}
			}
		}
	}
	cur := minuteOf(now)
	p.mu.Lock()
	for m, n := range p.authorized {
		if m < cur || all {
			hostOf(m)["new_authorized"] += n
			delete(p.authorized, m)
		}
	}
	for m, n := range p.connections {
		hostOf(m)["connections"] = n
		delete(p.connections, m)
	}
	p.mu.Unlock()

	minutes := make([]int64, 0, len(host))
	for m := range host {
		minutes = append(minutes, m)
	}
	for m := range byMinute {
		if host[m] == nil {
			minutes = append(minutes, m)
		}
	}
	sort.Slice(minutes, func(i, j int) bool { return minutes[i] < minutes[j] })
	subject := bus.Subject(p.o.Prefix, p.o.Coin, bus.TopicStats)
	for _, m := range minutes {
		ws := byMinute[m]
		sort.Slice(ws, func(i, j int) bool {
			if ws[i].User != ws[j].User {
				return ws[i].User < ws[j].User
			}
			return ws[i].Worker < ws[j].Worker
		})
		parts := max(1, (len(ws)+p.o.PartSize-1)/p.o.PartSize)
		for part := 0; part < parts; part++ {
			b := bus.StatsBatch{Gateway: p.o.Gateway, Boot: p.boot, Minute: m, Part: uint32(part), Parts: uint32(parts)}
			b.Workers = ws[min(part*p.o.PartSize, len(ws)):min((part+1)*p.o.PartSize, len(ws))]
			if part == 0 {
				keys := make([]string, 0, len(host[m]))
				for k := range host[m] {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					b.Monitor = append(b.Monitor, bus.MonitorStat{Key: k, Value: host[m][k]})
				}
			}
			p.enqueue(subject, b.ID(), b.Marshal())
			p.m.batches.Inc()
		}
	}
}

// sample records the connection count at each minute boundary, once.
func (p *Publisher) sample(now time.Time) {
	cur := minuteOf(now)
	p.mu.Lock()
	defer p.mu.Unlock()
	if cur > p.lastSample && p.o.Connections != nil {
		// The count now stands for the minute that just ended.
		p.connections[cur-60] = float64(p.o.Connections())
	}
	p.lastSample = cur
}

// Run ships until ctx is done, then flushes the open minute and makes a
// last, bounded attempt to publish (what fails stays spooled).
func (p *Publisher) Run(ctx context.Context) error {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	flushed := minuteOf(p.o.Now()) - 60 // minutes up to this one are shipped
	for {
		select {
		case <-ctx.Done():
			p.spoolEvents()
			p.closeMinutes(p.o.Now(), true)
			fctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			p.publishSpool(fctx)
			cancel()
			p.m.spooled.Set(float64(p.sp.Len()))
			return nil
		case <-p.wake:
			p.spoolEvents()
			p.publishSpool(ctx)
		case <-t.C:
			now := p.o.Now()
			p.sample(now)
			if m := minuteOf(now.Add(-p.o.FlushDelay)) - 60; m > flushed {
				p.closeMinutes(now.Add(-p.o.FlushDelay), false)
				flushed = m
			}
			p.spoolEvents()
			p.publishSpool(ctx)
		}
	}
}

// spoolEvents moves the queued events into the spool, eventsPerRecord to a
// record.
func (p *Publisher) spoolEvents() {
	q := p.takeEvents()
	if len(q) == 0 {
		return
	}
	subject := bus.Subject(p.o.Prefix, p.o.Coin, bus.TopicEvent)
	msgs := make([]message, 0, min(len(q), eventsPerRecord))
	for len(q) > 0 {
		n := min(len(q), eventsPerRecord)
		msgs = msgs[:0]
		for i := range q[:n] {
			msgs = append(msgs, message{subject: subject, id: q[i].ID(), payload: q[i].Marshal()})
		}
		p.spoolRecord(batchRecord(msgs), n, msgs[0].id)
		q = q[n:]
	}
	p.m.spooled.Set(float64(p.sp.Len()))
}

// pending is a spool record whose messages are being published.
type pending struct {
	seq     uint64
	futures []jetstream.PubAckFuture
	bad     error // unreadable record: dropped
}

// publishSpool publishes spooled records oldest first, up to maxInFlight
// messages a round without waiting for each acknowledgement, and removes
// the records whose messages were all acknowledged. It stops at the first
// record that was not (order is kept; messages of later records that did
// get through are dropped as duplicates by their ids when resent).
func (p *Publisher) publishSpool(ctx context.Context) {
	if p.js == nil {
		return
	}
	seqs := p.sp.Pending()
	for len(seqs) > 0 {
		if ctx.Err() != nil {
			return
		}
		var round []pending
		inFlight, sendErr := 0, error(nil)
		for len(seqs) > 0 && inFlight < maxInFlight && sendErr == nil {
			pd := pending{seq: seqs[0]}
			seqs = seqs[1:]
			var msgs []message
			b, err := p.sp.Read(pd.seq)
			if err == nil {
				msgs, err = parseRecord(b)
			}
			if err != nil {
				pd.bad = err
				round = append(round, pd)
				continue
			}
			for _, m := range msgs {
				f, err := p.js.PublishMsgAsync(&nats.Msg{Subject: m.subject, Data: m.payload}, jetstream.WithMsgID(m.id))
				if err != nil {
					sendErr = fmt.Errorf("publish %s: %w", m.id, err)
					break
				}
				pd.futures = append(pd.futures, f)
			}
			inFlight += len(pd.futures)
			round = append(round, pd)
		}
		if !p.settle(ctx, round, sendErr) {
			return
		}
	}
}

// settle waits for the acknowledgements of a round and removes the records
// that are done, in order; it reports whether all were.
func (p *Publisher) settle(ctx context.Context, round []pending, sendErr error) bool {
	wctx, cancel := context.WithTimeout(ctx, publishWait)
	defer cancel()
	defer func() { p.m.spooled.Set(float64(p.sp.Len())) }()
	for i, pd := range round {
		if pd.bad != nil {
			p.lg.Error("unreadable statistics spool record dropped", zap.Uint64("seq", pd.seq), zap.Error(pd.bad))
			_ = p.sp.Remove(pd.seq)
			continue
		}
		complete := sendErr == nil || i < len(round)-1
		for _, f := range pd.futures {
			select {
			case <-f.Ok():
				p.m.published.Inc()
				continue
			case err := <-f.Err():
				p.failed(f.Msg(), err)
			case <-wctx.Done():
				p.failed(f.Msg(), wctx.Err())
			}
			return false
		}
		if !complete {
			p.failed(nil, sendErr)
			return false
		}
		_ = p.sp.Remove(pd.seq)
	}
	return sendErr == nil
}

func (p *Publisher) failed(m *nats.Msg, err error) {
	p.m.failures.Inc()
	id := ""
	if m != nil {
		id = m.Header.Get(jetstream.MsgIDHeader)
	}
	p.lg.Debug("statistics publish failed; kept in the spool", zap.String("id", id), zap.Error(err))
}

type metrics struct {
	batches, published, failures, dropped prometheus.Counter
	spooled                               prometheus.Gauge
}

func newMetrics() *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	return &metrics{
		batches:   c("pool_gateway_stats_batches_total", "Statistics batches built (one per minute part)."),
		published: c("pool_gateway_stats_published_total", "Statistics and event messages acknowledged by JetStream."),
		failures:  c("pool_gateway_stats_publish_failures_total", "Publish attempts that failed (message kept)."),
		dropped:   c("pool_gateway_stats_dropped_total", "Messages lost: spool full or event queue full."),
		spooled: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pool_gateway_stats_spooled",
			Help: "Statistics and event messages waiting in the spool."}),
	}
}

func (m *metrics) register(reg prometheus.Registerer) {
	reg.MustRegister(m.batches, m.published, m.failures, m.dropped, m.spooled)
}
