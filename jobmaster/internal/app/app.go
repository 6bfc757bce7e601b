// Package app wires the jobmaster together: config → logger, metrics, admin
// endpoint, NATS, node pool, job engine and block submitter; it owns startup
// order, readiness and shutdown.
package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/hashgate/hashgate/jobmaster/internal/blocks"
	"github.com/hashgate/hashgate/jobmaster/internal/config"
	"github.com/hashgate/hashgate/jobmaster/internal/engine"
	"github.com/hashgate/hashgate/jobmaster/internal/jobs"
	"github.com/hashgate/hashgate/jobmaster/internal/nodes"
	"github.com/hashgate/hashgate/pkg/admin"
	"github.com/hashgate/hashgate/pkg/alert"
	"github.com/hashgate/hashgate/pkg/blockutil"
	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/noderpc"
)

// Daemon is this daemon's name in logs, files and metrics.
const Daemon = "jobmaster"

// App is a configured jobmaster.
type App struct {
	cfg   config.Config
	lg    *zap.Logger
	reg   *prometheus.Registry
	admin *admin.Server

	pool      *nodes.Pool
	store     *jobs.Store
	engine    *engine.Engine
	submitter *blocks.Submitter
	nc        *nats.Conn
	alerts    *alert.Shipper // nil: no alerts shipped

	subjJob, subjCurrent, subjBlock, subjResult, subjTip string

	readyOnce sync.Once
	started   time.Time
}

// Option adjusts New.
type Option func(*App)

// WithAlerts makes Run attach the daemon's alert shipper to its NATS
// connection, on <prefix>.all.alert, as soon as it is connected. Without it
// (or with nil) no alerts are shipped.
func WithAlerts(s *alert.Shipper) Option { return func(a *App) { a.alerts = s } }

// New builds the components; nothing is started or dialled.
func New(cfg config.Config, lg *zap.Logger, level zap.AtomicLevel, opts ...Option) (*App, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	payouts, err := cfg.Payouts()
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	var nn []*nodes.Node
	for _, nc := range cfg.Nodes {
		pass, err := nc.Password()
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", nc.Name, err)
		}
		cl, err := noderpc.New(noderpc.Options{URL: nc.RPCURL, User: nc.RPCUser, Password: pass, Timeout: nc.Timeout.D()})
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", nc.Name, err)
		}
		nn = append(nn, &nodes.Node{Name: nc.Name, Client: cl, ZMQ: nc.ZMQHashBlock, LongPoll: nc.LongPoll, Timeout: nc.Timeout.D()})
	}
	a := &App{cfg: cfg, lg: lg, reg: reg, started: time.Now()}
	for _, o := range opts {
		o(a)
	}
	a.pool = nodes.NewPool(nn, lg.Named("nodes"))
	nodeUp := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pool_jobmaster_node_up", Help: "1 when the node answers, 0 when it is out of rotation.",
	}, []string{"node"})
	reg.MustRegister(nodeUp)
	for _, n := range nn {
		nodeUp.WithLabelValues(n.Name).Set(1)
	}
	a.pool.OnChange = func(n *nodes.Node, up bool) {
		v := 0.0
		if up {
			v = 1
		}
		nodeUp.WithLabelValues(n.Name).Set(v)
	}

	a.store = jobs.NewStore(cfg.StaleGrace.D(), nil)
	builder := jobs.NewBuilder(jobs.Options{
		Params: cfg.Params(), Payouts: payouts, Tag: []byte(cfg.Coinbase.Tag),
		Extranonce1Size: cfg.Coinbase.Extranonce1Size, Extranonce2Size: cfg.Coinbase.Extranonce2Size,
	})
	em := engine.NewMetrics()
	em.Register(reg)
	a.engine = engine.New(engine.Options{
		Params: cfg.Params(), Pool: a.pool, Builder: builder, Store: a.store, Publisher: a,
		Metrics: em, Logger: lg.Named("engine"), RefreshInterval: cfg.RefreshInterval.D(),
		EmptyJobs: cfg.EmptyJobs, EmptyTimeout: cfg.EmptyTimeout.D(),
	})
	bm := blocks.NewMetrics()
	bm.Register(reg)
	a.submitter = blocks.New(blocks.Options{
		Pool: a.pool, Store: a.store, VersionMask: cfg.Mask(), Retries: cfg.Submit.Retries,
		RetryInterval: cfg.Submit.RetryInterval.D(), Timeout: cfg.Submit.Timeout.D(),
		Logger: lg.Named("blocks"), Metrics: bm,
	})

	p, c := cfg.NATS.Prefix, cfg.Coin
	a.subjJob = bus.Subject(p, c, bus.TopicJob)
	a.subjCurrent = bus.Subject(p, c, bus.TopicJobCurrent)
	a.subjBlock = bus.Subject(p, c, bus.TopicBlock)
	a.subjResult = bus.Subject(p, c, bus.TopicBlockResult)
	a.subjTip = bus.Subject(p, c, bus.TopicTip)

	a.admin = admin.New(cfg.Admin, lg.Named("admin"), reg, level)
	a.admin.AddCheck("nodes", a.pool.Check)
	a.admin.AddCheck("nats", func() error {
		if a.nc == nil || !a.nc.IsConnected() {
			return errors.New("not connected")
		}
		return nil
	})
	a.admin.AddCheck("jobs", func() error {
		if cur := a.engine.Current(); cur == nil {
			return errors.New("no job yet")
		} else if age := time.Since(time.Unix(0, cur.Job.CreatedUnixNano)); age > 3*cfg.RefreshInterval.D()+time.Minute {
			return fmt.Errorf("last job is %s old", age.Round(time.Second))
		}
		return nil
	})
	a.admin.SetStatus(a.status)
	return a, nil
}

// Publish implements engine.Publisher: the job goes out on the job subject.
func (a *App) Publish(rec *jobs.Record) error {
	if a.nc == nil {
		return errors.New("nats not connected yet")
	}
	data := rec.Job.Marshal()
	if max := a.nc.MaxPayload(); int64(len(data)) > max {
		// Gateways can mine without the transactions; they only lose
		// their own fallback submission for this job.
		a.lg.Warn("job larger than the NATS max_payload; publishing it without transactions",
			zap.String("job_id", rec.Job.ID), zap.Int("bytes", len(data)), zap.Int64("max_payload", max))
		j := *rec.Job
		j.Txs = nil
		data = j.Marshal()
	}
	if err := a.nc.Publish(a.subjJob, data); err != nil {
		return fmt.Errorf("publish %s: %w", a.subjJob, err)
	}
	a.readyOnce.Do(a.markReady)
	return nil
}

// markReady flips /healthz and writes the admin URL file the watchdog reads.
func (a *App) markReady() {
	if err := a.admin.MarkReady(a.cfg.RunDir, Daemon); err != nil {
		a.lg.Error("write admin address file", zap.Error(err))
	}
	a.lg.Info("ready", zap.String("admin", a.admin.URL()), zap.Duration("startup", time.Since(a.started)))
}

func (a *App) status() any {
	s := map[string]any{
		"daemon":    Daemon,
		"instance":  a.cfg.Instance,
		"coin":      a.cfg.Coin,
		"network":   a.cfg.Network,
		"nodes":     a.pool.Statuses(),
		"jobs_kept": a.store.Len(),
		"uptime_s":  int64(time.Since(a.started).Seconds()),
	}
	if cur := a.engine.Current(); cur != nil {
		j := cur.Job
		s["job"] = map[string]any{
			"id": j.ID, "height": j.Height, "prev_hash": j.PrevHash.String(), "empty": j.Empty,
			"txs": len(j.Txs), "coinbase_value": j.CoinbaseValue, "bits": fmt.Sprintf("%08x", j.Bits),
			"network_difficulty": blockutil.BitsDifficulty(j.Bits), "source": j.Source,
			"age_s": time.Since(time.Unix(0, j.CreatedUnixNano)).Seconds(),
		}
	}
	if a.nc != nil {
		s["nats"] = map[string]any{"connected": a.nc.IsConnected(), "url": a.nc.ConnectedUrlRedacted()}
	}
	return s
}

// Run starts everything and blocks until ctx is done or a component fails.
// Shutdown is ordered: stop taking found blocks and jobs requests (drain
// NATS, letting in-flight block submissions finish), stop the engine and
// watchers, stop the admin endpoint.
func (a *App) Run(ctx context.Context) error {
	if _, err := a.admin.Listen(); err != nil {
		return fmt.Errorf("admin listen: %w", err)
	}
	nc, err := bus.Connect(a.cfg.NATS, Daemon+"/"+a.cfg.Instance, a.lg.Named("nats"))
	if err != nil {
		return err
	}
	a.nc = nc
	defer nc.Close()
	a.alerts.Attach(nc, bus.AlertSubject(a.cfg.NATS.Prefix))
	nc.SetReconnectHandler(func(nc *nats.Conn) {
		a.lg.Info("nats reconnected; republishing the current job")
		if cur := a.engine.Current(); cur != nil {
			_ = a.Publish(cur)
		}
	})

	if err := a.subscribe(ctx); err != nil {
		return err
	}

	workCtx, stopWork := context.WithCancel(context.Background())
	defer stopWork()
	g, gctx := errgroup.WithContext(workCtx)
	g.Go(func() error { return a.engine.Run(gctx) })
	g.Go(func() error { return a.pool.Poll(gctx, a.cfg.PollInterval.D(), a.engine.NodeTip) })
	g.Go(func() error { return a.pool.LongPoll(gctx, a.engine.LongPollTemplate) })
	for _, n := range a.pool.Nodes() {
		if n.ZMQ != "" {
			g.Go(func() error { return a.pool.WatchZMQ(gctx, n, a.engine.NodeTip) })
		}
	}
	g.Go(func() error {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-t.C:
				a.store.Sweep()
			}
		}
	})
	adminCtx, stopAdmin := context.WithCancel(context.Background())
	defer stopAdmin()
	adminDone := make(chan error, 1)
	go func() { adminDone <- a.admin.Serve(adminCtx) }()

	// Wait for the end.
	waitErr := make(chan error, 1)
	go func() { waitErr <- g.Wait() }()
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-waitErr:
		if runErr == nil {
			runErr = errors.New("components stopped unexpectedly")
		}
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
	select {
	case <-waitErr:
	case <-time.After(time.Until(deadline)):
		a.lg.Warn("components did not stop within the shutdown timeout")
	}
	stopAdmin()
	<-adminDone
	a.lg.Info("shutdown complete")
	return runErr
}

// subscribe sets up the bus handlers.
func (a *App) subscribe(ctx context.Context) error {
	// Current job on request (gateways asking after a (re)connect). The
	// answer is marked clean: a fresh gateway has no older work to keep.
	if _, err := a.nc.QueueSubscribe(a.subjCurrent, Daemon, func(m *nats.Msg) {
		cur := a.engine.Current()
		if cur == nil || m.Reply == "" {
			return
		}
		j := *cur.Job
		j.Clean = true
		data := j.Marshal()
		if int64(len(data)) > a.nc.MaxPayload() {
			j.Txs = nil
			data = j.Marshal()
		}
		_ = m.Respond(data)
	}); err != nil {
		return fmt.Errorf("subscribe %s: %w", a.subjCurrent, err)
	}

	// Found blocks: bounded concurrency; each gets exactly one reply.
	sem := make(chan struct{}, a.cfg.Submit.Workers)
	if _, err := a.nc.QueueSubscribe(a.subjBlock, Daemon, func(m *nats.Msg) {
		var fb bus.FoundBlock
		if err := fb.Unmarshal(m.Data); err != nil {
			a.lg.Warn("undecodable found-block message", zap.Error(err))
			res := bus.BlockResult{Status: bus.BlockInvalid, Reason: err.Error()}
			if m.Reply != "" {
				_ = m.Respond(res.Marshal())
			}
			return
		}
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			res := a.submitter.Handle(context.WithoutCancel(ctx), &fb)
			ack := *res
			ack.Block = nil
			if m.Reply != "" {
				if err := m.Respond(ack.Marshal()); err != nil {
					a.lg.Warn("found-block reply failed", zap.Error(err))
				}
			}
			if res.Status != bus.BlockInvalid && res.Status != bus.BlockUnknownJob {
				if err := a.nc.Publish(a.subjResult, res.Marshal()); err != nil {
					a.lg.Warn("publish block result", zap.Error(err))
				}
			}
		}()
	}); err != nil {
		return fmt.Errorf("subscribe %s: %w", a.subjBlock, err)
	}

	// Tips from bitpeer and other watchers: proof of work checked here.
	powLimit := blockutil.TargetFromBig(a.cfg.Params().PowLimit)
	if _, err := a.nc.Subscribe(a.subjTip, func(m *nats.Msg) {
		var t bus.Tip
		if err := t.Unmarshal(m.Data); err != nil {
			a.lg.Debug("undecodable tip message", zap.Error(err))
			return
		}
		h := blockutil.Header(t.Header)
		if err := h.CheckPoW(powLimit); err != nil {
			a.lg.Warn("tip with bad proof of work ignored", zap.String("source", t.Source), zap.Error(err))
			return
		}
		a.engine.BusTip(h, t.Source, time.Now())
	}); err != nil {
		return fmt.Errorf("subscribe %s: %w", a.subjTip, err)
	}
	return a.nc.Flush()
}
