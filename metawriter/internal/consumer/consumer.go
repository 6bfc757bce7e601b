// Package consumer pulls statistics batches and events from the durable
// JetStream consumer and hands each to the store, acknowledging a message
// only after Redis confirmed it.
//
// # Delivery rules
//
//   - Applied or duplicate (already in Redis): Ack.
//   - Undecodable (bad subject, bad payload): logged at Warn, counted, and
//     Term'ed so it is not redelivered forever.
//   - Redis unreachable (or loading, busy, out of memory, ...): the message
//     and the rest of the fetched batch are handed back with NakWithDelay,
//     nothing is acknowledged, health turns degraded, one Error line is
//     logged for the whole outage (the alert path ships Error logs). The
//     loop stops pulling and pings Redis, backing off from retry_min to
//     retry_max, and resumes when Redis answers (logged at Info).
//   - Conflicting data in Redis (a key of the wrong type): logged at
//     Error, handed back with a long delay; nothing was written.
//
// On shutdown the message being applied is finished (its Redis call is
// not cancelled) and acknowledged; messages fetched but not started are
// handed back at once with Nak so another metawriter takes them.
//
// One goroutine runs Run; the accessors are safe for concurrent use.
package consumer

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hashgate/hashgate/metawriter/internal/layout"
	"github.com/hashgate/hashgate/metawriter/internal/store"
	"github.com/hashgate/hashgate/pkg/bus"
)

// Applier writes messages to Redis (implemented by *store.Store).
type Applier interface {
	ApplyStats(ctx context.Context, coin string, b *bus.StatsBatch) (store.Result, error)
	ApplyEvent(ctx context.Context, coin string, e *bus.Event) (store.Result, error)
	Ping(ctx context.Context) error
}

// Options configure a Consumer.
type Options struct {
	// Consumer is the durable pull consumer.
	Consumer jetstream.Consumer
	// Recreate, if set, is called to set the consumer up again when the
	// server reports it gone (an operator deleted it, a server lost its
	// state); it returns the new consumer.
	Recreate func(ctx context.Context) (jetstream.Consumer, error)
	// Store applies the messages.
	Store Applier
	// Prefix is the bus subject prefix.
	Prefix string
	// Batch is the number of messages per pull; FetchWait how long a pull
	// waits.
	Batch     int
	FetchWait time.Duration
	// ApplyTimeout bounds one apply or ping.
	ApplyTimeout time.Duration
	// RetryMin and RetryMax bound the redelivery delay and the ping
	// back-off during a Redis outage.
	RetryMin, RetryMax time.Duration
	// ConflictDelay is the redelivery delay of a message that conflicts
	// with data in Redis.
	ConflictDelay time.Duration
	Metrics       *Metrics
	Logger        *zap.Logger
}

// Consumer is the pull loop.
type Consumer struct {
	o  Options
	lg *zap.Logger

	cons jetstream.Consumer // written by Run's goroutine under mu; Run reads it without

	applied, duplicates, expired, undecodable, conflicts, heldBack atomic.Uint64
	appliedEvents                                                  atomic.Uint64

	mu         sync.Mutex
	redisErr   error     // guarded by mu; non-nil during an outage
	downSince  time.Time // guarded by mu
	delay      time.Duration
	natsErr    error            // guarded by mu; last pull failure, nil once pulls work
	lastMinute map[string]int64 // guarded by mu; newest applied minute per gateway
}

// maxGateways bounds the lastMinute map (status only).
const maxGateways = 10000

// New returns a Consumer.
func New(o Options) *Consumer {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics()
	}
	o.Metrics.RedisUp.Set(1)
	return &Consumer{o: o, lg: o.Logger, cons: o.Consumer, delay: o.RetryMin, lastMinute: map[string]int64{}}
}

// Run pulls and applies messages until ctx is done, then finishes the
// message being applied and hands back the rest. It returns nil.
func (c *Consumer) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		if c.RedisErr() != nil && !c.waitRedis(ctx) {
			return nil
		}
		fctx, cancel := context.WithTimeout(ctx, c.o.FetchWait)
		batch, err := c.cons.Fetch(c.o.Batch, jetstream.FetchContext(fctx))
		if err != nil {
			cancel()
			c.pullFailed(ctx, err)
			continue
		}
		for msg := range batch.Messages() {
			switch {
			case ctx.Err() != nil:
				_ = msg.Nak() // shutting down: let another metawriter have it now
			case c.RedisErr() != nil:
				_ = msg.NakWithDelay(c.currentDelay())
				c.heldBack.Add(1)
				c.count(msg.Subject(), "held_back")
			default:
				c.handle(ctx, msg)
			}
		}
		cancel()
		if err := batch.Error(); err != nil && !benign(err) {
			c.pullFailed(ctx, err)
			continue
		}
		c.pullOK()
	}
	return nil
}

// benign reports whether a pull ended normally (expired, shutting down).
func benign(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages)
}

// handle decodes and applies one message and settles it.
func (c *Consumer) handle(ctx context.Context, msg jetstream.Msg) {
	subj := msg.Subject()
	coin, topic, ok := c.parseSubject(subj)
	if !ok {
		c.lg.Warn("message on an unexpected subject; terminated", zap.String("subject", subj))
		c.terminate(msg, topic)
		return
	}
	var (
		stats bus.StatsBatch
		ev    bus.Event
		err   error
	)
	if topic == bus.TopicStats {
		err = stats.Unmarshal(msg.Data())
	} else {
		err = ev.Unmarshal(msg.Data())
	}
	if err != nil {
		c.lg.Warn("undecodable message; terminated", zap.String("subject", subj),
			zap.String("msg_id", msg.Headers().Get(jetstream.MsgIDHeader)), zap.Error(err))
		c.terminate(msg, topic)
		return
	}

	// The apply is not cancelled by shutdown: it is finished and acked.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.ApplyTimeout)
	start := time.Now()
	var res store.Result
	if topic == bus.TopicStats {
		res, err = c.o.Store.ApplyStats(actx, coin, &stats)
	} else {
		res, err = c.o.Store.ApplyEvent(actx, coin, &ev)
	}
	cancel()
	c.o.Metrics.Apply.Observe(time.Since(start).Seconds())

	if err != nil {
		var conflict *store.ConflictError
		if errors.As(err, &conflict) {
			c.conflicts.Add(1)
			c.count(subj, "conflict")
			c.lg.Error("redis holds conflicting data; message held back until it is removed",
				zap.String("subject", subj), zap.Error(err))
			_ = msg.NakWithDelay(c.o.ConflictDelay)
			return
		}
		c.redisFailed(err)
		c.count(subj, "redis_error")
		_ = msg.NakWithDelay(c.currentDelay())
		return
	}
	if err := msg.Ack(); err != nil {
		// Redis has it; a redelivery will be recognised as a duplicate.
		c.lg.Warn("ack failed; the message will come back as a duplicate", zap.String("subject", subj), zap.Error(err))
	}
	c.count(subj, res.String())
	switch res {
	case store.Applied:
		if topic == bus.TopicStats {
			c.applied.Add(1)
			c.noteMinute(stats.Gateway, stats.Minute)
		} else {
			c.appliedEvents.Add(1)
		}
	case store.Duplicate:
		c.duplicates.Add(1)
		if ce := c.lg.Check(zap.DebugLevel, "duplicate skipped"); ce != nil {
			ce.Write(zap.String("subject", subj), zap.String("msg_id", msg.Headers().Get(jetstream.MsgIDHeader)))
		}
	case store.Expired:
		c.expired.Add(1)
	}
}

// terminate settles an undecodable message for good.
func (c *Consumer) terminate(msg jetstream.Msg, topic string) {
	c.undecodable.Add(1)
	if topic == bus.TopicEvent {
		c.o.Metrics.Events.WithLabelValues("undecodable").Inc()
	} else {
		c.o.Metrics.Batches.WithLabelValues("undecodable").Inc()
	}
	if err := msg.Term(); err != nil {
		c.lg.Warn("term failed", zap.Error(err))
	}
}

// parseSubject splits <prefix>.<coin>.<topic>. topic is returned even when
// ok is false, if it could be told.
func (c *Consumer) parseSubject(subj string) (coin, topic string, ok bool) {
	parts := strings.Split(subj, ".")
	if len(parts) != 3 {
		return "", "", false
	}
	topic = parts[2]
	if parts[0] != c.o.Prefix || (topic != bus.TopicStats && topic != bus.TopicEvent) || !layout.ValidCoin(parts[1]) {
		return "", topic, false
	}
	return parts[1], topic, true
}

// count increments the counter of the message's topic.
func (c *Consumer) count(subj, result string) {
	if strings.HasSuffix(subj, "."+bus.TopicEvent) {
		c.o.Metrics.Events.WithLabelValues(result).Inc()
	} else {
		c.o.Metrics.Batches.WithLabelValues(result).Inc()
	}
}

func (c *Consumer) noteMinute(gateway string, minute int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.lastMinute[gateway]; ok || len(c.lastMinute) < maxGateways {
		if minute > cur {
			c.lastMinute[gateway] = minute
		}
	}
}

// redisFailed enters (or continues) an outage; the first failure of an
// outage is logged at Error, later ones are not.
func (c *Consumer) redisFailed(err error) {
	c.mu.Lock()
	first := c.redisErr == nil
	c.redisErr = err
	if first {
		c.downSince = time.Now()
		c.delay = c.o.RetryMin
	}
	c.mu.Unlock()
	if first {
		c.o.Metrics.RedisUp.Set(0)
		c.lg.Error("redis unavailable; statistics are held in the stream until it is back", zap.Error(err))
	}
}

// waitRedis pings Redis with back-off until it answers (true) or ctx is
// done (false).
func (c *Consumer) waitRedis(ctx context.Context) bool {
	for {
		t := time.NewTimer(c.currentDelay())
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, c.o.ApplyTimeout)
		err := c.o.Store.Ping(pctx)
		cancel()
		c.mu.Lock()
		if err != nil {
			if ctx.Err() == nil {
				c.redisErr = err
			}
			c.delay = min(2*c.delay, c.o.RetryMax)
			c.mu.Unlock()
			continue
		}
		down := time.Since(c.downSince)
		c.redisErr, c.delay = nil, c.o.RetryMin
		c.mu.Unlock()
		c.o.Metrics.RedisUp.Set(1)
		c.lg.Info("redis is back; applying statistics again", zap.Duration("outage", down.Round(time.Millisecond)))
		return true
	}
}

func (c *Consumer) currentDelay() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.delay
}

// pullFailed records a failed pull, recreates a vanished consumer, and
// waits a little before the next pull.
func (c *Consumer) pullFailed(ctx context.Context, err error) {
	c.mu.Lock()
	first := c.natsErr == nil
	c.natsErr = err
	c.mu.Unlock()
	if first {
		c.lg.Warn("pulling from the stats stream fails", zap.Error(err))
	}
	if c.o.Recreate != nil && (errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound)) {
		if cons, rerr := c.o.Recreate(ctx); rerr == nil {
			c.mu.Lock()
			c.cons = cons
			c.mu.Unlock()
			c.lg.Info("consumer set up again")
		} else {
			c.lg.Warn("set up consumer", zap.Error(rerr))
		}
	}
	t := time.NewTimer(c.o.RetryMin)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (c *Consumer) pullOK() {
	c.mu.Lock()
	was := c.natsErr
	c.natsErr = nil
	c.mu.Unlock()
	if was != nil {
		c.lg.Info("pulling from the stats stream works again")
	}
}

// RedisErr returns the error of the current Redis outage, nil when Redis
// takes writes.
func (c *Consumer) RedisErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.redisErr
}

// PullErr returns the last pull failure, nil once pulls work.
func (c *Consumer) PullErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.natsErr
}

// ConsumerInfo asks the server about the durable consumer (pending and
// unacknowledged messages).
func (c *Consumer) ConsumerInfo(ctx context.Context) (*jetstream.ConsumerInfo, error) {
	c.mu.Lock()
	cons := c.cons
	c.mu.Unlock()
	return cons.Info(ctx)
}

// Status is a snapshot for /status.
type Status struct {
	Applied       uint64           `json:"batches_applied"`
	AppliedEvents uint64           `json:"events_applied"`
	Duplicates    uint64           `json:"duplicates_skipped"`
	Expired       uint64           `json:"expired_skipped"`
	Undecodable   uint64           `json:"undecodable"`
	Conflicts     uint64           `json:"conflicts"`
	HeldBack      uint64           `json:"held_back"`
	RedisError    string           `json:"redis_error,omitempty"`
	RedisDownS    float64          `json:"redis_down_s,omitempty"`
	PullError     string           `json:"pull_error,omitempty"`
	LastMinute    map[string]int64 `json:"last_minute"`
}

// Status returns the counters and the newest applied minute per gateway.
func (c *Consumer) Status() Status {
	s := Status{
		Applied: c.applied.Load(), AppliedEvents: c.appliedEvents.Load(), Duplicates: c.duplicates.Load(),
		Expired: c.expired.Load(), Undecodable: c.undecodable.Load(), Conflicts: c.conflicts.Load(),
		HeldBack: c.heldBack.Load(),
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.redisErr != nil {
		s.RedisError = c.redisErr.Error()
		s.RedisDownS = time.Since(c.downSince).Seconds()
	}
	if c.natsErr != nil {
		s.PullError = c.natsErr.Error()
	}
	s.LastMinute = make(map[string]int64, len(c.lastMinute))
	for k, v := range c.lastMinute {
		s.LastMinute[k] = v
	}
	return s
}
