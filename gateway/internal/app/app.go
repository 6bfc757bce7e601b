// Package app wires the gateway: config → logger, metrics, admin endpoint,
// NATS, job feed, found-block sink, sessions and the gnet Stratum server; it
// owns startup order, readiness and shutdown.
package app

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/hashgate/hashgate/gateway/internal/agentlink"
	"github.com/hashgate/hashgate/gateway/internal/blocksink"
	"github.com/hashgate/hashgate/gateway/internal/config"
	"github.com/hashgate/hashgate/gateway/internal/jobfeed"
	"github.com/hashgate/hashgate/gateway/internal/statsout"
	"github.com/hashgate/hashgate/pkg/admin"
	"github.com/hashgate/hashgate/pkg/alert"
	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/extranonce"
	"github.com/hashgate/hashgate/pkg/noderpc"
	"github.com/hashgate/hashgate/pkg/session"
	"github.com/hashgate/hashgate/pkg/stats"
	"github.com/hashgate/hashgate/pkg/stratum"
	"github.com/hashgate/hashgate/pkg/stratumsrv"
	"github.com/hashgate/hashgate/pkg/work"
)

// Daemon is this daemon's name in logs, files and metrics.
const Daemon = "gateway"

// App is a configured gateway.
type App struct {
	cfg   config.Config
	lg    *zap.Logger
	reg   *prometheus.Registry
	admin *admin.Server

	table  *work.Table
	stats  *stats.Table
	env    *session.Env
	en     *extranonce.Allocator
	server *stratumsrv.Server
	feed   *jobfeed.Feed
	sink   *blocksink.Sink
	pub    *statsout.Publisher
	agents atomic.Pointer[agentlink.Server] // nil: agent port disabled
	nc     *nats.Conn
	alerts *alert.Shipper // nil: no alerts shipped

	counters *counters
	started  time.Time
	ready    sync.Once
	mu       sync.Mutex // guards cfg fields Reload changes
}

func maskOf(m uint32) *atomic.Uint32 {
	var a atomic.Uint32
	a.Store(m)
	return &a
}

// Reload applies what can change without a restart (SIGHUP): the pool's
// version-rolling mask, announced with mining.set_version_mask to every
// session whose granted mask changes. Other changes are reported as needing
// a restart. Safe to call while the gateway runs.
func (a *App) Reload(cfg config.Config) error {
	a.mu.Lock()
	old := a.cfg
	a.mu.Unlock()
	if m := cfg.Mask(); m != a.env.PoolMask.Load() {
		a.env.PoolMask.Store(m)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		n := a.server.Each(ctx, func(s *session.Session) ([]byte, bool) { return s.PoolMaskChanged(), false })
		cancel()
		a.lg.Info("version-rolling mask changed", zap.String("version_mask", cfg.Stratum.VersionMask),
			zap.Int("sessions_told", n))
	}
	// Everything else needs a restart: say so when it differs.
	cmp := cfg
	cmp.Stratum.VersionMask, cmp.Log = old.Stratum.VersionMask, old.Log
	if !reflect.DeepEqual(cmp, old) {
		a.lg.Warn("config changes other than version_mask and log.level need a restart (shell/restart.sh gateway)")
	}
	a.mu.Lock()
	a.cfg.Stratum.VersionMask = cfg.Stratum.VersionMask
	a.mu.Unlock()
	return nil
}

// counters implements session.Counter with Prometheus.
type counters struct {
	shares *prometheus.CounterVec
	blocks prometheus.Counter
}

func (c *counters) Share(result string) { c.shares.WithLabelValues(result).Inc() }
func (c *counters) Block()              { c.blocks.Inc() }

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
	a := &App{cfg: cfg, lg: lg, reg: prometheus.NewRegistry(), started: time.Now()}
	for _, o := range opts {
		o(a)
	}
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.counters = &counters{
		shares: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pool_gateway_shares_total", Help: "Shares by result (accepted or the reject reason).",
		}, []string{"result"}),
		blocks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pool_gateway_block_candidates_total", Help: "Shares that met the network target.",
		}),
	}
	a.reg.MustRegister(a.counters.shares, a.counters.blocks)

	a.table = work.NewTable(cfg.Stratum.StaleGrace.D(), nil)
	a.stats = stats.NewTable()
	en, err := extranonce.New(4, byte(cfg.GatewayID), cfg.Stratum.ResumeWindow.D(), nil)
	if err != nil {
		return nil, err
	}
	a.en = en
	vd := cfg.VardiffConfig()
	a.env = &session.Env{
		Jobs: a.table, Dedup: work.NewDedup(), Extranonce: en, Stats: a.stats, Vardiff: &vd,
		Counter: a.counters, Log: lg.Named("session"), PoolMask: maskOf(cfg.Mask()), Source: cfg.Instance,
		MaxWorkers: cfg.Stratum.MaxWorkers, MaxBadRequests: cfg.Stratum.MaxBadRequests, Now: time.Now,
	}
	sm := stratumsrv.NewMetrics()
	sm.Register(a.reg)
	a.server = stratumsrv.New(cfg.Stratum.ServerOptions(a.env, lg.Named("server"), sm))

	a.admin = admin.New(cfg.Admin, lg.Named("admin"), a.reg, level)
	a.admin.AddCheck("nats", func() error {
		if a.nc == nil || !a.nc.IsConnected() {
			return errors.New("not connected")
		}
		return nil
	})
	a.admin.AddCheck("jobs", func() error {
		if a.feed == nil || a.feed.LastJob().IsZero() {
			return errors.New("no job from the jobmaster yet: miners are held")
		}
		if age := time.Since(a.feed.LastJob()); age > cfg.Stratum.JobTimeout.D() {
			return fmt.Errorf("jobmaster silent for %s: serving the last job", age.Round(time.Second))
		}
		return nil
	})
	a.admin.AddCheck("blocks", func() error {
		if a.sink != nil && a.sink.Pending() > 0 {
			return fmt.Errorf("%d found blocks awaiting delivery (spooled)", a.sink.Pending())
		}
		return nil
	})
	a.admin.SetStatus(a.status)
	a.admin.Handle("POST /clients/reconnect", http.HandlerFunc(a.handleReconnect))
	a.admin.Handle("POST /clients/message", http.HandlerFunc(a.handleMessage))
	return a, nil
}

// matcher selects sessions for operator actions: ?worker=user.worker,
// ?user=user or ?all=1.
func matcher(r *http.Request) (func(*session.Session) bool, error) {
	q := r.URL.Query()
	switch {
	case q.Get("all") == "1":
		return func(*session.Session) bool { return true }, nil
	case q.Get("worker") != "":
		w := strings.ToLower(q.Get("worker"))
		return func(s *session.Session) bool { return s.Worker() == w }, nil
	case q.Get("user") != "":
		u := strings.ToLower(q.Get("user")) + "."
		return func(s *session.Session) bool { return strings.HasPrefix(s.Worker(), u) }, nil
	}
	return nil, errors.New("say which sessions: ?worker=user.worker, ?user=user or ?all=1")
}

// handleReconnect sends client.reconnect (to ?host=&port=&wait=, default:
// the same address) and closes the matched sessions a moment later.
func (a *App) handleReconnect(w http.ResponseWriter, r *http.Request) {
	match, err := matcher(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	q := r.URL.Query()
	port, _ := strconv.Atoi(q.Get("port"))
	wait, _ := strconv.Atoi(q.Get("wait"))
	line := stratum.AppendReconnect(nil, q.Get("host"), port, wait)
	n := a.server.Each(r.Context(), func(s *session.Session) ([]byte, bool) {
		if !match(s) {
			return nil, false
		}
		return line, false
	})
	a.lg.Info("operator sent client.reconnect", zap.Int("sessions", n), zap.String("query", r.URL.RawQuery))
	_, _ = fmt.Fprintf(w, "{\"sessions\":%d}\n", n)
}

// handleMessage sends client.show_message with ?msg= to matched sessions.
func (a *App) handleMessage(w http.ResponseWriter, r *http.Request) {
	match, err := matcher(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	msg := r.URL.Query().Get("msg")
	if msg == "" || len(msg) > 512 {
		http.Error(w, "msg must be 1..512 characters", http.StatusBadRequest)
		return
	}
	line := stratum.AppendShowMessage(nil, msg)
	n := a.server.Each(r.Context(), func(s *session.Session) ([]byte, bool) {
		if !match(s) {
			return nil, false
		}
		return line, false
	})
	_, _ = fmt.Fprintf(w, "{\"sessions\":%d}\n", n)
}

func (a *App) status() any {
	s := map[string]any{
		"daemon": Daemon, "instance": a.cfg.Instance, "gateway_id": a.cfg.GatewayID, "coin": a.cfg.Coin,
		"connections": a.server.Connections(), "uptime_s": int64(time.Since(a.started).Seconds()),
		"workers": a.stats.Snapshot(100),
	}
	inUse, parked := a.en.Counts()
	s["extranonce1"] = map[string]int{"in_use": inUse, "parked_for_resume": parked}
	if j := a.table.Current(); j != nil {
		s["job"] = map[string]any{"id": j.ID, "height": j.Height, "empty": j.Empty, "network_difficulty": j.NetDiff,
			"age_s": time.Since(j.Received).Seconds(), "jobs_kept": a.table.Len()}
	}
	if a.feed != nil {
		s["jobs_received"] = a.feed.Jobs()
	}
	if a.sink != nil {
		s["blocks_pending"] = a.sink.Pending()
	}
	if a.pub != nil {
		s["stats_spooled"] = a.pub.Spooled()
	}
	if ag := a.agents.Load(); ag != nil {
		s["agents"] = ag.Status()
	}
	return s
}

// Run starts everything and blocks until ctx is done or a component fails.
// Shutdown order: stop accepting and close sessions (gnet engine), stop the
// job feed, let the block sink finish (its spool keeps anything pending),
// close NATS, stop the admin endpoint.
func (a *App) Run(ctx context.Context) error {
	if _, err := a.admin.Listen(); err != nil {
		return fmt.Errorf("admin listen: %w", err)
	}
	adminCtx, stopAdmin := context.WithCancel(context.Background())
	defer stopAdmin()
	adminDone := make(chan error, 1)
	go func() { adminDone <- a.admin.Serve(adminCtx) }()

	nc, err := bus.Connect(a.cfg.NATS, Daemon+"/"+a.cfg.Instance, a.lg.Named("nats"))
	if err != nil {
		return err
	}
	a.nc = nc
	defer nc.Close()
	a.alerts.Attach(nc, bus.AlertSubject(a.cfg.NATS.Prefix))

	var nodes []blocksink.Node
	for _, n := range a.cfg.Blocks.Nodes {
		pass, err := n.Password()
		if err != nil {
			return fmt.Errorf("blocks.nodes %s: %w", n.Name, err)
		}
		cl, err := noderpc.New(noderpc.Options{URL: n.RPCURL, User: n.RPCUser, Password: pass, Timeout: n.Timeout.D()})
		if err != nil {
			return fmt.Errorf("blocks.nodes %s: %w", n.Name, err)
		}
		nodes = append(nodes, blocksink.Node{Name: n.Name, Client: cl})
	}
	sink, err := blocksink.New(blocksink.Options{
		Conn: nc, Subject: bus.Subject(a.cfg.NATS.Prefix, a.cfg.Coin, bus.TopicBlock),
		AckTimeout: a.cfg.Blocks.AckTimeout.D(), FallbackAfter: a.cfg.Blocks.FallbackAfter.D(),
		SpoolDir: filepath.Join(a.cfg.RunDir, "gateway-blocks"), Nodes: nodes, Logger: a.lg.Named("blocks"),
	})
	if err != nil {
		return err
	}
	sink.Register(a.reg)
	a.sink = sink
	a.env.Blocks = sink

	if a.cfg.Stats.Enabled {
		pub, err := statsout.New(statsout.Options{Conn: nc, Prefix: a.cfg.NATS.Prefix, Coin: a.cfg.Coin,
			Gateway: a.cfg.Instance, Stats: a.stats, Connections: a.connections,
			SpoolDir: filepath.Join(a.cfg.RunDir, "gateway-stats"), MaxSpoolBytes: a.cfg.Stats.SpoolBytes,
			FlushDelay: a.cfg.Stats.FlushDelay.D(), Logger: a.lg.Named("stats")})
		if err != nil {
			return err
		}
		pub.Register(a.reg)
		a.pub = pub
		a.env.Events = pub
		ectx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		js, err := jetstream.New(nc)
		if err == nil {
			_, err = bus.EnsureStatsStream(ectx, js, a.cfg.NATS.Prefix)
		}
		cancel()
		if err != nil {
			// Not fatal: statistics wait in the spool until JetStream is there.
			a.lg.Warn("statistics stream not available yet; spooling", zap.Error(err))
		}
	}

	var bc jobfeed.Broadcaster = a.server
	agentDone := make(chan error, 1)
	agentCtx, stopAgents := context.WithCancel(context.Background())
	defer stopAgents()
	if a.cfg.Agent.Listen != "" {
		if err := a.startAgents(agentCtx, nc, agentDone); err != nil {
			return err
		}
		bc = broadcasters{a.server, a.agents.Load()}
	} else {
		agentDone <- nil
	}
	a.feed = jobfeed.New(jobfeed.Options{Conn: nc, Prefix: a.cfg.NATS.Prefix, Coin: a.cfg.Coin, Table: a.table,
		Broadcaster: bc, Logger: a.lg.Named("jobs")})

	workCtx, stopWork := context.WithCancel(context.Background())
	defer stopWork()
	sinkDone := make(chan error, 1)
	go func() { sinkDone <- sink.Run(workCtx) }()
	pubDone := make(chan error, 1)
	if a.pub != nil {
		go func() { pubDone <- a.pub.Run(workCtx) }()
	} else {
		pubDone <- nil
	}
	feedDone := make(chan error, 1)
	go func() { feedDone <- a.feed.Run(workCtx) }()
	go a.housekeeping(workCtx)

	gnetDone, err := a.server.Start(a.cfg.Stratum.Listen, a.cfg.Stratum.Loops)
	if err != nil {
		return err
	}
	a.lg.Info("stratum listening", zap.String("listen", a.cfg.Stratum.Listen))
	go a.readyWhenJob(workCtx)

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-gnetDone:
		runErr = fmt.Errorf("stratum server stopped: %w", err)
	case err := <-feedDone:
		runErr = fmt.Errorf("job feed stopped: %w", err)
	case err := <-adminDone:
		runErr = fmt.Errorf("admin endpoint: %w", err)
	}

	a.lg.Info("shutting down")
	a.admin.MarkStopping(a.cfg.RunDir, Daemon)
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout.D())
	defer cancel()
	if err := a.server.Stop(sctx); err != nil {
		a.lg.Warn("stratum engine stop", zap.Error(err))
	}
	stopAgents() // agents get Reject shutdown and fail over; pending credits finish
	if err := <-agentDone; err != nil {
		a.lg.Warn("agent port", zap.Error(err))
	}
	// Give the sink a moment to deliver blocks found in the last instant;
	// whatever is left stays in the spool for the next start.
	deadline := time.Now().Add(a.cfg.ShutdownTimeout.D() / 2)
	for sink.Pending() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	stopWork()
	<-sinkDone
	<-pubDone // flushes the open minute (spooled if NATS cannot take it)
	_ = nc.Drain()
	stopAdmin()
	<-adminDone
	a.lg.Info("shutdown complete")
	return runErr
}

// readyWhenJob flips /healthz once the first job is there (miners are held
// until then).
func (a *App) readyWhenJob(ctx context.Context) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if a.table.Current() != nil {
			if err := a.admin.MarkReady(a.cfg.RunDir, Daemon); err != nil {
				a.lg.Error("write admin address file", zap.Error(err))
			}
			a.lg.Info("ready", zap.String("admin", a.admin.URL()), zap.Duration("startup", time.Since(a.started)))
			return
		}
	}
}

// housekeeping sweeps parked extranonces, raises an error (an alert) when
// the jobmaster falls silent and logs block outcomes.
func (a *App) housekeeping(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	silent := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.en.Sweep()
			last := a.feed.LastJob()
			switch age := time.Since(last); {
			case !last.IsZero() && age > a.cfg.Stratum.JobTimeout.D() && !silent:
				silent = true
				a.lg.Error("jobmaster silent: serving the last job", zap.Duration("since", age.Round(time.Second)))
			case silent && age <= a.cfg.Stratum.JobTimeout.D():
				silent = false
				a.lg.Info("jobs flowing again")
			}
		case r := <-a.sink.Results():
			a.lg.Info("block outcome", zap.String("block_hash", r.Hash.String()), zap.String("status", string(r.Status)),
				zap.String("via", r.Via), zap.String("reason", r.Reason))
		}
	}
}

// connections counts miners for the per-minute statistics: direct
// sessions and miners bound on connected agents.
func (a *App) connections() int64 {
	n := a.server.Connections()
	if ag := a.agents.Load(); ag != nil {
		n += ag.Miners()
	}
	return n
}

// broadcasters fans a job out to the Stratum sessions and the agents.
type broadcasters []jobfeed.Broadcaster

func (b broadcasters) Broadcast(ctx context.Context, j *work.Job, clean bool) time.Duration {
	var d time.Duration
	for _, x := range b {
		d = max(d, x.Broadcast(ctx, j, clean))
	}
	return d
}

// startAgents opens the agent port; Serve's result goes to done.
func (a *App) startAgents(ctx context.Context, nc *nats.Conn, done chan<- error) error {
	c := a.cfg.Agent
	var agents []agentlink.Agent
	for _, ag := range c.Agents {
		tok, err := ag.Secret()
		if err != nil {
			return fmt.Errorf("agent.agents %s: %w", ag.ID, err)
		}
		prefix, _ := hex.DecodeString(ag.ExtranoncePrefix) // checked by Validate
		agents = append(agents, agentlink.Agent{ID: ag.ID, Token: tok, Prefix: prefix})
	}
	var tlsConf *tls.Config
	if c.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
		if err != nil {
			return fmt.Errorf("agent tls: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	var credit agentlink.Creditor
	if a.cfg.Stats.Enabled {
		js, err := jetstream.New(nc)
		if err != nil {
			return fmt.Errorf("agent port: jetstream: %w", err)
		}
		credit = agentlink.JetStreamCreditor{JS: js, Subject: bus.Subject(a.cfg.NATS.Prefix, a.cfg.Coin, bus.TopicStats)}
	}
	var events session.EventSink
	if a.pub != nil {
		events = a.pub
	}
	m := agentlink.NewMetrics()
	m.Register(a.reg)
	srv, err := agentlink.New(agentlink.Options{Listen: c.Listen, TLS: tlsConf, Agents: agents, MaxAgents: c.MaxAgents,
		HandshakeTimeout: c.HandshakeTimeout.D(), IdleTimeout: c.IdleTimeout.D(), ResumeWindow: c.ResumeWindow.D(),
		SuffixSize: c.SuffixSize, Jobs: a.table, Dedup: a.env.Dedup, PoolMask: a.env.PoolMask.Load,
		Blocks: a.sink, Events: events, Credit: credit, Source: a.cfg.Instance, Logger: a.lg.Named("agents"),
		Metrics: m})
	if err != nil {
		return err
	}
	addr, err := srv.Listen()
	if err != nil {
		return err
	}
	a.agents.Store(srv)
	go func() { done <- srv.Serve(ctx) }()
	a.lg.Info("agent port listening", zap.String("listen", addr.String()), zap.Int("agents", len(agents)),
		zap.Bool("tls", tlsConf != nil))
	return nil
}
