// Package app wires the metawriter together: config → Redis client and
// store, NATS and the durable consumer, the retention sweeper, metrics and
// the admin endpoint; it owns startup order, readiness and shutdown.
package app

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/hashgate/hashgate/metawriter/internal/config"
	"github.com/hashgate/hashgate/metawriter/internal/consumer"
	"github.com/hashgate/hashgate/metawriter/internal/redisconn"
	"github.com/hashgate/hashgate/metawriter/internal/store"
	"github.com/hashgate/hashgate/pkg/admin"
	"github.com/hashgate/hashgate/pkg/alert"
	"github.com/hashgate/hashgate/pkg/bus"
)

// Daemon is this daemon's name in logs, files and metrics.
const Daemon = "metawriter"

// App is a configured metawriter.
type App struct {
	cfg   config.Config
	lg    *zap.Logger
	reg   *prometheus.Registry
	admin *admin.Server

	rdb     *redis.Client
	store   *store.Store
	metrics *consumer.Metrics
	sweepN  prometheus.Counter

	nc       atomic.Pointer[nats.Conn]
	consumer atomic.Pointer[consumer.Consumer]
	lastSwp  atomic.Pointer[sweepStatus]
	started  time.Time
	alerts   *alert.Shipper // nil: no alerts shipped
}

// Option adjusts New.
type Option func(*App)

// WithAlerts makes Run attach the daemon's alert shipper to its NATS
// connection (<prefix>.all.alert) as soon as it is connected, so Error logs
// such as a Redis outage reach alertcenter. Without it no alerts are
// shipped.
func WithAlerts(s *alert.Shipper) Option { return func(a *App) { a.alerts = s } }

// sweepStatus is the last sweep on /status.
type sweepStatus struct {
	At        time.Time `json:"at"`
	Cutoff    int64     `json:"cutoff"`
	Full      bool      `json:"full"`
	Keys      int       `json:"keys"`
	Fields    int64     `json:"fields_removed"`
	Unindexed int64     `json:"unindexed"`
	Seconds   float64   `json:"seconds"`
	Error     string    `json:"error,omitempty"`
}

// New builds the components; nothing is started or dialled.
func New(cfg config.Config, lg *zap.Logger, level zap.AtomicLevel, opts ...Option) (*App, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	rdb, err := redisconn.New(cfg.Redis, Daemon+"/"+cfg.Instance, 0)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a := &App{cfg: cfg, lg: lg, reg: reg, rdb: rdb, started: time.Now()}
	for _, o := range opts {
		o(a)
	}
	a.store = store.New(store.Options{
		Client: rdb, KeyPrefix: cfg.Redis.KeyPrefix, DedupTTL: cfg.DedupTTL.D(), AgentDedupTTL: cfg.AgentDedupTTL.D(), Retention: cfg.Retention.D(),
		EventTTL: cfg.EventTTL.D(), EventMaxLen: cfg.EventMaxLen,
	})
	a.metrics = consumer.NewMetrics()
	a.metrics.Register(reg)
	a.sweepN = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "pool_metawriter_sweep_fields_removed_total",
		Help: "Minute fields removed by the retention sweep.",
	})
	reg.MustRegister(a.sweepN)

	a.admin = admin.New(cfg.Admin, lg.Named("admin"), reg, level)
	a.admin.AddCheck("redis", func() error {
		if c := a.consumer.Load(); c != nil {
			if err := c.RedisErr(); err != nil {
				return fmt.Errorf("outage: %w", err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), admin.CheckTimeout)
		defer cancel()
		return a.store.Ping(ctx)
	})
	a.admin.AddCheck("nats", func() error {
		nc := a.nc.Load()
		if nc == nil || !nc.IsConnected() {
			return errors.New("not connected")
		}
		if c := a.consumer.Load(); c != nil {
			if err := c.PullErr(); err != nil {
				return fmt.Errorf("pull: %w", err)
			}
		}
		return nil
	})
	a.admin.SetStatus(a.status)
	return a, nil
}

// AdminURL returns the admin endpoint's base URL once it listens.
func (a *App) AdminURL() string { return a.admin.URL() }

// Status returns the consumer's counters (zero before Run set it up).
func (a *App) Status() consumer.Status {
	if c := a.consumer.Load(); c != nil {
		return c.Status()
	}
	return consumer.Status{}
}

// Store returns the Redis store (tests use it to sweep).
func (a *App) Store() *store.Store { return a.store }

func (a *App) status() any {
	s := map[string]any{
		"daemon":   Daemon,
		"instance": a.cfg.Instance,
		"uptime_s": int64(time.Since(a.started).Seconds()),
		"redis":    map[string]any{"addr": a.cfg.Redis.Addr, "db": a.cfg.Redis.DB},
		"retention": map[string]any{
			"retention": a.cfg.Retention.String(), "dedup_ttl": a.cfg.DedupTTL.String(), "agent_dedup_ttl": a.cfg.AgentDedupTTL.String(),
		},
	}
	if c := a.consumer.Load(); c != nil {
		s["messages"] = c.Status()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if info, err := c.ConsumerInfo(ctx); err == nil {
			s["consumer"] = map[string]any{
				"name": info.Name, "stream": info.Stream, "pending_acks": info.NumAckPending,
				"pending": info.NumPending, "redelivered": info.NumRedelivered, "waiting_pulls": info.NumWaiting,
			}
		} else {
			s["consumer"] = map[string]any{"error": err.Error()}
		}
	}
	if sw := a.lastSwp.Load(); sw != nil {
		s["last_sweep"] = sw
	}
	if nc := a.nc.Load(); nc != nil {
		s["nats"] = map[string]any{"connected": nc.IsConnected(), "url": nc.ConnectedUrlRedacted()}
	}
	return s
}

// Run starts everything and blocks until ctx is done or a component fails.
// Startup waits (not ready) until the stream and consumer are set up and
// Redis answers. Shutdown: the consumer finishes and acknowledges the
// message being applied and hands back the rest, the acks are flushed,
// then NATS, Redis and the admin endpoint are closed.
func (a *App) Run(ctx context.Context) error {
	defer a.rdb.Close()
	if _, err := a.admin.Listen(); err != nil {
		return fmt.Errorf("admin listen: %w", err)
	}
	adminCtx, stopAdmin := context.WithCancel(context.Background())
	defer stopAdmin()
	adminDone := make(chan error, 1)
	go func() { adminDone <- a.admin.Serve(adminCtx) }()
	defer func() {
		stopAdmin()
		<-adminDone
	}()

	nc, err := bus.Connect(a.cfg.NATS, Daemon+"/"+a.cfg.Instance, a.lg.Named("nats"))
	if err != nil {
		return err
	}
	a.nc.Store(nc)
	defer nc.Close()
	a.alerts.Attach(nc, bus.AlertSubject(a.cfg.NATS.Prefix))
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}

	// Set up: stream and consumer, then Redis. Both are retried: a
	// metawriter started before its NATS or Redis waits for them.
	cons, err := retry(ctx, a.lg, "set up the stats consumer", a.cfg.Consumer.RetryMax.D(), func(ctx context.Context) (jetstream.Consumer, error) {
		return a.ensureConsumer(ctx, js)
	})
	if err != nil {
		return nil //nolint:nilerr // ctx is done: a normal shutdown during startup
	}
	if _, err := retry(ctx, a.lg, "reach redis", a.cfg.Consumer.RetryMax.D(), func(ctx context.Context) (struct{}, error) {
		return struct{}{}, a.store.Ping(ctx)
	}); err != nil {
		return nil //nolint:nilerr // as above
	}

	c := consumer.New(consumer.Options{
		Consumer:      cons,
		Recreate:      func(ctx context.Context) (jetstream.Consumer, error) { return a.ensureConsumer(ctx, js) },
		Store:         a.store,
		Prefix:        a.cfg.NATS.Prefix,
		Batch:         a.cfg.Consumer.Batch,
		FetchWait:     a.cfg.Consumer.FetchWait.D(),
		ApplyTimeout:  a.cfg.Redis.Timeout.D(),
		RetryMin:      a.cfg.Consumer.RetryMin.D(),
		RetryMax:      a.cfg.Consumer.RetryMax.D(),
		ConflictDelay: a.cfg.Consumer.AckWait.D(),
		Metrics:       a.metrics,
		Logger:        a.lg.Named("consumer"),
	})
	a.consumer.Store(c)

	if err := a.admin.MarkReady(a.cfg.RunDir, Daemon); err != nil {
		a.lg.Error("write admin address file", zap.Error(err))
	}
	defer a.admin.MarkStopping(a.cfg.RunDir, Daemon)
	a.lg.Info("ready", zap.String("admin", a.admin.URL()), zap.String("consumer", a.cfg.Consumer.Durable),
		zap.String("stream", bus.StatsStream(a.cfg.NATS.Prefix)), zap.Duration("startup", time.Since(a.started)))

	// Both stop with workCtx; the consumer still finishes the message it
	// is applying.
	workCtx, stopWork := context.WithCancel(ctx)
	defer stopWork()
	g, gctx := errgroup.WithContext(workCtx)
	consumerDone := make(chan struct{})
	g.Go(func() error {
		defer close(consumerDone)
		return c.Run(workCtx)
	})
	g.Go(func() error { a.sweeper(gctx); return nil })

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-adminDone:
		adminDone <- err // for the deferred wait
		runErr = fmt.Errorf("admin endpoint: %w", err)
	}

	// Ordered, bounded shutdown.
	a.lg.Info("shutting down")
	a.admin.SetReady(false)
	stopWork()
	deadline := time.Now().Add(a.cfg.ShutdownTimeout.D())
	select {
	case <-consumerDone:
	case <-time.After(time.Until(deadline)):
		a.lg.Warn("consumer did not stop within the shutdown timeout")
	}
	// Make sure the last acks and naks reach the server; with NATS away
	// there is nobody to flush to (unacked messages are redelivered and the
	// batch ids in Redis make that harmless), so do not wait.
	if nc.IsConnected() {
		if err := nc.FlushTimeout(max(time.Until(deadline), 100*time.Millisecond)); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			a.lg.Warn("flush acks", zap.Error(err))
		}
	}
	a.lg.Info("shutdown complete")
	return runErr
}

// ensureConsumer creates (or updates) the stream and the durable consumer.
func (a *App) ensureConsumer(ctx context.Context, js jetstream.JetStream) (jetstream.Consumer, error) {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := bus.EnsureStatsStream(sctx, js, a.cfg.NATS.Prefix); err != nil {
		return nil, err
	}
	cc := a.cfg.Consumer
	p := a.cfg.NATS.Prefix
	cons, err := js.CreateOrUpdateConsumer(sctx, bus.StatsStream(p), jetstream.ConsumerConfig{
		Durable:       cc.Durable,
		Description:   "metawriter: statistics and events into Redis",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cc.AckWait.D(),
		MaxDeliver:    cc.MaxDeliver,
		MaxAckPending: cc.MaxAckPending,
		FilterSubjects: []string{
			p + ".*." + bus.TopicStats,
			p + ".*." + bus.TopicEvent,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", cc.Durable, err)
	}
	return cons, nil
}

// retry calls fn until it succeeds or ctx is done, backing off up to
// maxWait. The first failure is logged at Error (an operator must look),
// later ones only at Debug.
func retry[T any](ctx context.Context, lg *zap.Logger, what string, maxWait time.Duration, fn func(context.Context) (T, error)) (T, error) {
	wait := 100 * time.Millisecond
	for n := 0; ; n++ {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		v, err := fn(cctx)
		cancel()
		if err == nil {
			if n > 0 {
				lg.Info("startup step succeeded after retries", zap.String("step", what), zap.Int("attempts", n+1))
			}
			return v, nil
		}
		if ctx.Err() != nil {
			return v, ctx.Err()
		}
		if n == 0 {
			lg.Error("startup step failed; retrying", zap.String("step", what), zap.Error(err))
		} else {
			lg.Debug("startup step failed again", zap.String("step", what), zap.Error(err))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return v, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, maxWait)
	}
}

// sweeper runs the retention sweep soon after startup and then every
// sweep_interval, on one metawriter of the pool at a time.
func (a *App) sweeper(ctx context.Context) {
	if a.cfg.Retention.D() <= 0 {
		return
	}
	interval := a.cfg.SweepInterval.D()
	t := time.NewTimer(min(interval, 10*time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.sweepOnce(ctx, interval)
		t.Reset(interval)
	}
}

// sweepOnce takes the pool-wide lock and sweeps.
func (a *App) sweepOnce(ctx context.Context, interval time.Duration) {
	lockTTL := max(interval*9/10, time.Second)
	ok, err := a.store.TryLockSweep(ctx, a.cfg.Instance, lockTTL)
	if err != nil || !ok {
		if err != nil && ctx.Err() == nil {
			a.lg.Warn("retention sweep skipped", zap.Error(err))
		}
		return
	}
	start := time.Now()
	res, err := a.store.Sweep(ctx)
	st := &sweepStatus{At: start, Cutoff: res.Cutoff, Full: res.Full, Keys: res.Keys, Fields: res.Fields,
		Unindexed: res.Unindexed, Seconds: time.Since(start).Seconds()}
	a.sweepN.Add(float64(res.Fields))
	if err != nil {
		st.Error = err.Error()
		if ctx.Err() == nil {
			a.lg.Warn("retention sweep failed; retried next interval", zap.Error(err))
		}
	} else {
		a.lg.Info("retention sweep done", zap.Int64("cutoff", res.Cutoff), zap.Bool("full", res.Full),
			zap.Int("keys", res.Keys), zap.Int64("fields_removed", res.Fields), zap.Int64("unindexed", res.Unindexed),
			zap.Duration("took", time.Since(start)))
	}
	a.lastSwp.Store(st)
}
