// Package app wires alertcenter together: config → logger, metrics, admin
// endpoint, Redis client, webhook, the NATS subscription and the center; it
// owns startup order, readiness and shutdown.
package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"
	"go.uber.org/zap"

	"github.com/hashgate/hashgate/alertcenter/internal/center"
	"github.com/hashgate/hashgate/alertcenter/internal/config"
	"github.com/hashgate/hashgate/pkg/admin"
	"github.com/hashgate/hashgate/pkg/bus"
)

// Daemon is this daemon's name in logs, files and metrics.
const Daemon = "alertcenter"

// QueueGroup is the NATS queue group of the alert subscription: several
// alertcenters share the alerts, each handled by one of them.
const QueueGroup = "alertcenter"

// App is a configured alertcenter.
type App struct {
	cfg     config.Config
	lg      *zap.Logger
	reg     *prometheus.Registry
	admin   *admin.Server
	metrics *center.Metrics

	rdb     *redis.Client
	store   *center.Store
	hook    *center.Webhook // nil: no webhook
	limiter *center.Limiter // nil: no limit
	center  *center.Center
	subject string

	nc      atomic.Pointer[nats.Conn] // set once connected; read by health checks
	started time.Time
}

// New builds the components; nothing is started or dialled.
func New(cfg config.Config, lg *zap.Logger, level zap.AtomicLevel) (*App, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	pass, err := cfg.Redis.Password()
	if err != nil {
		return nil, fmt.Errorf("redis password: %w", err)
	}
	a := &App{cfg: cfg, lg: lg, reg: prometheus.NewRegistry(), metrics: center.NewMetrics(),
		subject: bus.AlertSubject(cfg.NATS.Prefix), started: time.Now()}
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.metrics.Register(a.reg)

	// go-redis prints pool errors to stderr on its own; the store already
	// logs failed writes (at warn, with the error), so silence it.
	redis.SetLogger(&logging.VoidLogger{})
	t := cfg.Redis.Timeout.D()
	a.rdb = redis.NewClient(&redis.Options{
		Addr: cfg.Redis.Addr, Username: cfg.Redis.User, Password: pass, DB: cfg.Redis.DB,
		DialTimeout: t, ReadTimeout: t, WriteTimeout: t,
		MaxRetries: -1, // the store retries, with its own backoff
		PoolSize:   2, DisableIdentity: true,
	})
	a.store = center.NewStore(center.StoreOptions{Client: a.rdb, Key: cfg.Redis.Key, MaxList: cfg.Redis.MaxList,
		Queue: cfg.Redis.Queue, RetryMax: cfg.Redis.RetryMax.D(), Logger: lg.Named("redis"), Metrics: a.metrics})
	if cfg.Webhook.URL != "" {
		w := cfg.Webhook
		a.hook = center.NewWebhook(center.WebhookOptions{URL: w.URL, Timeout: w.Timeout.D(), Deadline: w.Deadline.D(),
			RetryMin: w.RetryMin.D(), RetryMax: w.RetryMax.D(), Queue: w.Queue, Logger: lg.Named("webhook"),
			Metrics: a.metrics})
	}
	a.limiter = center.NewLimiter(cfg.RateLimit.PerHost, cfg.RateLimit.Per.D())
	a.center = center.New(center.Options{Store: a.store, Webhook: a.hook, Limiter: a.limiter,
		LimitText: fmt.Sprintf("%d/%s", cfg.RateLimit.PerHost, cfg.RateLimit.Per), Instance: cfg.Instance,
		Logger: lg.Named("center"), Metrics: a.metrics})

	a.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pool_alertcenter_queue_length",
			Help: "Alert lines waiting for a destination.", ConstLabels: prometheus.Labels{"queue": "redis"}},
			func() float64 { return float64(a.store.Pending()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pool_alertcenter_redis_up",
			Help: "1 while Redis takes the writes, 0 during an outage."},
			func() float64 {
				if a.store.Check() != nil {
					return 0
				}
				return 1
			}),
	)
	if a.hook != nil {
		a.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pool_alertcenter_queue_length",
			Help: "Alert lines waiting for a destination.", ConstLabels: prometheus.Labels{"queue": "webhook"}},
			func() float64 { return float64(a.hook.Pending()) }))
	}

	a.admin = admin.New(cfg.Admin, lg, a.reg, level) // names its logger "admin"
	a.admin.AddCheck("nats", func() error {
		if nc := a.nc.Load(); nc == nil || !nc.IsConnected() {
			return errors.New("not connected")
		}
		return nil
	})
	a.admin.AddCheck("redis", a.store.Check)
	if a.hook != nil {
		a.admin.AddCheck("webhook", a.hook.Check)
	}
	a.admin.SetStatus(a.status)
	return a, nil
}

func (a *App) status() any {
	s := map[string]any{
		"daemon": Daemon, "instance": a.cfg.Instance, "subject": a.subject, "queue_group": QueueGroup,
		"uptime_s": int64(time.Since(a.started).Seconds()), "alerts": a.metrics.Snapshot(),
	}
	r := map[string]any{"addr": a.cfg.Redis.Addr, "key": a.cfg.Redis.Key, "max_list": a.cfg.Redis.MaxList,
		"queued": a.store.Pending(), "written": a.store.Written()}
	if err := a.store.Check(); err != nil {
		r["error"] = err.Error()
	}
	s["redis"] = r
	w := map[string]any{"configured": a.hook != nil}
	if a.hook != nil {
		w["queued"] = a.hook.Pending()
		if err := a.hook.Check(); err != nil {
			w["error"] = err.Error()
		}
	}
	s["webhook"] = w
	s["rate_limit"] = map[string]any{"per_host": a.cfg.RateLimit.PerHost, "per": a.cfg.RateLimit.Per.String(),
		"hosts": a.limiter.Hosts()}
	if nc := a.nc.Load(); nc != nil {
		s["nats"] = map[string]any{"connected": nc.IsConnected(), "url": nc.ConnectedUrlRedacted()}
	}
	return s
}

// Run starts everything and blocks until ctx is done or a component fails.
// Ready (/healthz 200) once subscribed, even while Redis is down (lines are
// queued; health says "degraded"). Shutdown order: drain the subscription
// (alerts in flight are handled), stop the workers, give queued lines the
// rest of shutdown_timeout to reach Redis, close Redis, stop the admin
// endpoint.
func (a *App) Run(ctx context.Context) error {
	if _, err := a.admin.Listen(); err != nil {
		return fmt.Errorf("admin listen: %w", err)
	}
	adminCtx, stopAdmin := context.WithCancel(context.Background())
	defer stopAdmin()
	adminDone := make(chan error, 1)
	go func() { adminDone <- a.admin.Serve(adminCtx) }()
	defer func() { _ = a.rdb.Close() }()

	nc, err := bus.Connect(a.cfg.NATS, Daemon+"/"+a.cfg.Instance, a.lg.Named("nats"))
	if err != nil {
		stopAdmin()
		<-adminDone
		return err
	}
	a.nc.Store(nc)
	defer nc.Close()

	workCtx, stopWork := context.WithCancel(context.Background())
	defer stopWork()
	var wg sync.WaitGroup
	wg.Go(func() { _ = a.store.Run(workCtx) })
	wg.Go(func() { _ = a.center.Run(workCtx) })
	if a.hook != nil {
		wg.Go(func() { _ = a.hook.Run(workCtx) })
	}

	if _, err := nc.QueueSubscribe(a.subject, QueueGroup, func(m *nats.Msg) { a.center.Handle(m.Data) }); err != nil {
		return fmt.Errorf("subscribe %s: %w", a.subject, err)
	}
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("subscribe %s: %w", a.subject, err)
	}
	if err := a.admin.MarkReady(a.cfg.RunDir, Daemon); err != nil {
		a.lg.Warn("write admin address file", zap.Error(err))
	}
	a.lg.Info("ready", zap.String("admin", a.admin.URL()), zap.String("subject", a.subject),
		zap.Bool("webhook", a.hook != nil), zap.Duration("startup", time.Since(a.started)))

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-adminDone:
		runErr = fmt.Errorf("admin endpoint: %w", err)
	}

	// Ordered, bounded shutdown.
	a.lg.Info("shutting down")
	a.admin.MarkStopping(a.cfg.RunDir, Daemon)
	deadline := time.Now().Add(a.cfg.ShutdownTimeout.D())
	if err := nc.Drain(); err == nil {
		for nc.IsDraining() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	stopWork()
	wg.Wait()
	flushCtx, cancel := context.WithDeadline(context.Background(), deadline)
	a.store.Flush(flushCtx)
	cancel()
	stopAdmin()
	if err := <-adminDone; err != nil && runErr == nil {
		runErr = fmt.Errorf("admin endpoint: %w", err)
	}
	a.lg.Info("shutdown complete")
	return runErr
}
