// Package app wires the mineragent: config → logger, metrics, admin
// endpoint, the upstream link (internal/uplink), the job table and the gnet
// Stratum server the farm's miners connect to (pkg/stratumsrv with
// pkg/session: the gateway's own code); it owns startup order, the
// no-upstream policy and shutdown.
package app

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/hashgate/hashgate/mineragent/internal/config"
	"github.com/hashgate/hashgate/mineragent/internal/uplink"
	"github.com/hashgate/hashgate/pkg/admin"
	"github.com/hashgate/hashgate/pkg/agentwire"
	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/session"
	"github.com/hashgate/hashgate/pkg/stratum"
	"github.com/hashgate/hashgate/pkg/stratumsrv"
	"github.com/hashgate/hashgate/pkg/version"
	"github.com/hashgate/hashgate/pkg/work"
)

// Daemon is this daemon's name in logs, files and metrics.
const Daemon = "mineragent"

// App is a configured mineragent.
type App struct {
	cfg   config.Config
	lg    *zap.Logger
	reg   *prometheus.Registry
	admin *admin.Server

	table  *work.Table
	env    *session.Env
	xn     *grantedExtranonce
	server *stratumsrv.Server
	up     *uplink.Client

	layout   atomic.Pointer[agentwire.Welcome] // the current session's extranonce layout
	refusing atomic.Bool                       // no upstream for too long: miners are refused
	jobCtx   context.Context
	stopJobs context.CancelFunc
	jobs     atomic.Uint64
	started  time.Time
}

// counters implements session.Counter with Prometheus.
type counters struct {
	shares *prometheus.CounterVec
	blocks prometheus.Counter
}

func (c *counters) Share(result string) { c.shares.WithLabelValues(result).Inc() }
func (c *counters) Block()              { c.blocks.Inc() }

// noBlocks is the session's block sink: behind the agent, a block candidate
// goes upstream through Upstream.Share (flagged Block); the gateway
// assembles and submits it.
type noBlocks struct{}

func (noBlocks) Submit(*bus.FoundBlock, []byte) {}

// New builds the components; nothing is started or dialled.
func New(cfg config.Config, lg *zap.Logger, level zap.AtomicLevel) (*App, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	a := &App{cfg: cfg, lg: lg, reg: prometheus.NewRegistry(), started: time.Now()}
	a.jobCtx, a.stopJobs = context.WithCancel(context.Background())
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cn := &counters{
		shares: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mineragent_shares_total", Help: "Miners' shares by local result (accepted or the reject reason).",
		}, []string{"result"}),
		blocks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mineragent_block_candidates_total", Help: "Shares that met the network target.",
		}),
	}
	a.reg.MustRegister(cn.shares, cn.blocks)

	token, err := cfg.Secret()
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	servers := make([]uplink.Server, 0, len(cfg.Upstream.Servers))
	for _, s := range cfg.Upstream.Servers {
		srv := uplink.Server{Addr: s.Addr}
		if s.TLS {
			if srv.TLS, err = tlsConfig(s); err != nil {
				return nil, fmt.Errorf("upstream %s: %w", s.Addr, err)
			}
		}
		servers = append(servers, srv)
	}
	up, err := uplink.New(uplink.Options{Servers: servers, AgentID: cfg.AgentID, Token: token,
		Software: "hashgate-mineragent/" + version.String(), Instance: randomInstance(), Codec: cfg.CodecValue(),
		BatchInterval: cfg.BatchInterval.D(), DialTimeout: cfg.Upstream.DialTimeout.D(),
		HandshakeTimeout: cfg.Upstream.HandshakeTimeout.D(), PingInterval: cfg.Upstream.PingInterval.D(),
		ReadTimeout: cfg.Upstream.ReadTimeout.D(), RetryInterval: cfg.Upstream.RetryInterval.D(),
		FailbackAfter: cfg.Upstream.FailbackAfter.D(), MaxReplayAge: cfg.MaxReplayAge.D(),
		MaxReplayShares: cfg.MaxReplayShares, Handler: a, Logger: lg.Named("upstream")})
	if err != nil {
		return nil, err
	}
	a.up = up
	up.Register(a.reg)

	a.table = work.NewTable(cfg.Stratum.StaleGrace.D(), nil)
	a.xn = &grantedExtranonce{window: cfg.Stratum.ResumeWindow.D()}
	vd := cfg.VardiffConfig()
	var mask atomic.Uint32
	a.env = &session.Env{
		// No per-worker statistics here: the gateway keeps them from the
		// shares it credits. Duplicates are remembered for dedup_window.
		Jobs: a.table, Dedup: work.NewWindowDedup(cfg.DedupWindow.D(), nil), Extranonce: a.xn, Blocks: noBlocks{},
		Vardiff: &vd,
		Counter: cn, Upstream: up, Log: lg.Named("session"), PoolMask: &mask, Source: cfg.Instance,
		MaxWorkers: cfg.Stratum.MaxWorkers, MaxBadRequests: cfg.Stratum.MaxBadRequests, Now: time.Now,
	}
	sm := stratumsrv.NewMetrics()
	sm.Register(a.reg)
	so := cfg.Stratum.ServerOptions(a.env, lg.Named("server"), sm)
	so.Admit = func() bool { return !a.refusing.Load() }
	a.server = stratumsrv.New(so)

	a.admin = admin.New(cfg.Admin, lg.Named("admin"), a.reg, level)
	a.admin.AddCheck("upstream", func() error {
		if a.up.Linked() {
			return nil
		}
		return fmt.Errorf("no gateway link for %s (miners keep the last job)", a.up.Unlinked().Round(time.Second))
	})
	a.admin.AddCheck("jobs", func() error {
		if a.table.Current() == nil {
			return errors.New("no job yet: miners are held")
		}
		return nil
	})
	a.admin.SetStatus(a.status)
	return a, nil
}

func tlsConfig(s config.Server) (*tls.Config, error) {
	host, _, _ := net.SplitHostPort(s.Addr)
	c := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if s.ServerName != "" {
		c.ServerName = s.ServerName
	}
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, err
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no certificates", s.CAFile)
		}
	}
	return c, nil
}

// randomInstance names this agent process for the gateways (never 0).
func randomInstance() uint64 {
	var b [8]byte
	for {
		_, _ = rand.Read(b[:])
		if v := binary.LittleEndian.Uint64(b[:]); v != 0 {
			return v
		}
	}
}

// Welcome implements uplink.Handler: a new gateway session's extranonce
// space and version mask.
func (a *App) Welcome(w *agentwire.Welcome) {
	prev := a.layout.Swap(w)
	moved, err := a.xn.set(w.Extranonce1Prefix, w.SuffixSize())
	if err != nil {
		a.lg.Error("unusable extranonce space from the gateway", zap.Error(err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if prev != nil && moved {
		// The miners' extranonce1s are not valid on this gateway: make them
		// reconnect (to us) and subscribe again.
		line := stratum.AppendReconnect(nil, "", 0, 0)
		n := a.server.Each(ctx, func(*session.Session) ([]byte, bool) { return line, true })
		a.lg.Warn("extranonce prefix changed: miners reconnected", zap.Int("sessions", n))
	}
	if old := a.env.PoolMask.Swap(w.VersionMask); old != w.VersionMask && prev != nil {
		n := a.server.Each(ctx, func(s *session.Session) ([]byte, bool) { return s.PoolMaskChanged(), false })
		a.lg.Info("version-rolling mask changed", zap.String("version_mask", fmt.Sprintf("%08x", w.VersionMask)),
			zap.Int("sessions_told", n))
	}
}

// Job implements uplink.Handler: a job from the gateway, once for the whole
// farm, prepared once and fanned out to every miner.
func (a *App) Job(j *agentwire.Job) {
	w := a.layout.Load()
	if w == nil {
		return
	}
	now := time.Now()
	b := &bus.Job{ID: j.ID, Height: j.Height, PrevHash: j.PrevHash, Version: j.Version, Bits: j.Bits,
		CurTime: j.NTime, MinTime: j.MinTime, Coinb1: j.Coinb1, Coinb2: j.Coinb2,
		Extranonce1Size: w.Extranonce1Size, Extranonce2Size: w.Extranonce2Size, MerkleBranch: j.MerkleBranch,
		Clean: j.Clean, CreatedUnixNano: now.UnixNano()}
	wj, err := work.Prepare(b, now)
	if err != nil {
		a.lg.Warn("unusable job from the gateway", zap.String("job_id", j.ID), zap.Error(err))
		return
	}
	added, newHeight := a.table.Add(wj)
	if !added {
		return
	}
	a.jobs.Add(1)
	took := a.server.Broadcast(a.jobCtx, wj, newHeight || j.Clean)
	if ce := a.lg.Check(zap.DebugLevel, "job"); ce != nil {
		ce.Write(zap.String("job_id", j.ID), zap.Int64("height", j.Height), zap.Bool("clean", newHeight || j.Clean),
			zap.Duration("fan_out", took))
	}
}

func (a *App) status() any {
	s := map[string]any{
		"daemon": Daemon, "instance": a.cfg.Instance, "agent_id": a.cfg.AgentID,
		"connections": a.server.Connections(), "uptime_s": int64(time.Since(a.started).Seconds()),
		"upstream": a.up.Status(), "refusing_miners": a.refusing.Load(), "jobs_received": a.jobs.Load(),
	}
	inUse, parked := a.xn.counts()
	s["extranonce1"] = map[string]int{"in_use": inUse, "parked_for_resume": parked}
	if j := a.table.Current(); j != nil {
		s["job"] = map[string]any{"id": j.ID, "height": j.Height, "network_difficulty": j.NetDiff,
			"age_s": time.Since(j.Received).Seconds(), "jobs_kept": a.table.Len()}
	}
	return s
}

// Run starts everything and blocks until ctx is done or a component fails.
// Shutdown: stop accepting and close the miners' sessions (their logouts
// go upstream), flush the last batch and wait for its acknowledgement,
// close the link, stop the admin endpoint.
func (a *App) Run(ctx context.Context) error {
	defer debug.SetGCPercent(debug.SetGCPercent(a.cfg.GCPercent))
	if !a.cfg.HeapProfile {
		// Only the few stacks sampled before this point stay in the table.
		runtime.MemProfileRate = 0
	}
	if _, err := a.admin.Listen(); err != nil {
		return fmt.Errorf("admin listen: %w", err)
	}
	adminCtx, stopAdmin := context.WithCancel(context.Background())
	defer stopAdmin()
	adminDone := make(chan error, 1)
	go func() { adminDone <- a.admin.Serve(adminCtx) }()

	upCtx, stopUp := context.WithCancel(context.Background())
	defer stopUp()
	upDone := make(chan error, 1)
	go func() { upDone <- a.up.Run(upCtx, a.cfg.ShutdownTimeout.D()/2) }()

	gnetDone, err := a.server.Start(a.cfg.Stratum.Listen, a.cfg.Stratum.Loops)
	if err != nil {
		return err
	}
	a.lg.Info("stratum listening", zap.String("listen", a.cfg.Stratum.Listen))
	workCtx, stopWork := context.WithCancel(context.Background())
	defer stopWork()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); a.housekeeping(workCtx) }()
	if err := a.admin.MarkReady(a.cfg.RunDir, Daemon); err != nil {
		a.lg.Error("write admin address file", zap.Error(err))
	}
	a.lg.Info("ready", zap.String("admin", a.admin.URL()), zap.Duration("startup", time.Since(a.started)))

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-gnetDone:
		runErr = fmt.Errorf("stratum server stopped: %w", err)
	case err := <-adminDone:
		runErr = fmt.Errorf("admin endpoint: %w", err)
	}
	a.lg.Info("shutting down")
	a.admin.MarkStopping(a.cfg.RunDir, Daemon)
	stopWork()
	wg.Wait()
	a.stopJobs()
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout.D()/2)
	defer cancel()
	if err := a.server.Stop(sctx); err != nil {
		a.lg.Warn("stratum engine stop", zap.Error(err))
	}
	stopUp() // flushes the last batch and the logouts, waits for the acknowledgement
	<-upDone
	st := a.up.Status()
	a.lg.Info("upstream closed", zap.Int("unacknowledged_shares", st.PendingShares),
		zap.Uint64("last_acked", st.LastAcked), zap.Uint64("last_batch", st.LastBatch))
	stopAdmin()
	<-adminDone
	a.lg.Info("shutdown complete")
	return runErr
}

// housekeeping applies the no-upstream policy and sweeps parked
// extranonces.
func (a *App) housekeeping(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	sweep := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if sweep++; sweep%10 == 0 {
			a.xn.sweep()
		}

		down := a.up.Unlinked()
		switch {
		case down > a.cfg.NoUpstreamTimeout.D() && !a.refusing.Load():
			a.refusing.Store(true)
			fb := a.cfg.Fallback
			var line []byte
			if fb.Host != "" {
				line = stratum.AppendReconnect(nil, fb.Host, fb.Port, 0)
			}
			n := a.server.Each(ctx, func(*session.Session) ([]byte, bool) { return line, true })
			a.lg.Error("no gateway reachable: miners sent away and new ones refused until a gateway is back",
				zap.Duration("since", down.Round(time.Second)), zap.Int("sessions", n),
				zap.String("fallback", fmt.Sprintf("%s:%d", fb.Host, fb.Port)))
		case down == 0 && a.refusing.Load():
			a.refusing.Store(false)
			a.lg.Info("gateway reachable again: accepting miners")
		}
	}
}
