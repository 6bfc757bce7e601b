package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/pprof"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// CheckTimeout bounds how long /healthz waits for each health check.
const CheckTimeout = time.Second

const (
	readHeaderTimeout = 5 * time.Second
	idleTimeout       = time.Minute
	shutdownTimeout   = 5 * time.Second
)

// Health states reported in the "status" field of /healthz.
const (
	StatusStarting = "starting" // not ready yet; HTTP 503
	StatusOK       = "ok"       // ready and every check passed; HTTP 200
	StatusDegraded = "degraded" // ready but some check failed; HTTP 200
)

// Server is a daemon's admin HTTP endpoint. Build it with New, register
// checks and the status function, then call Listen (optional) and Serve.
type Server struct {
	cfg   Config
	lg    *zap.Logger
	mux   *http.ServeMux
	ready atomic.Bool

	mu     sync.Mutex
	checks map[string]*check // guarded by mu
	status func() any        // guarded by mu
	ln     net.Listener      // guarded by mu; set once by Listen
	served bool              // guarded by mu; set once by Serve
}

// New builds a Server for cfg. It does not listen yet.
//
// lg may be nil, which disables logging. reg is exposed at /metrics; if it is
// nil, a fresh registry with the Go and process collectors is used instead
// (callers passing their own registry register those collectors themselves if
// they want them). level is served at /loglevel; its zero value is replaced by
// a new AtomicLevel at info, which is then not connected to any logger.
func New(cfg Config, lg *zap.Logger, reg *prometheus.Registry, level zap.AtomicLevel) *Server {
	if lg == nil {
		lg = zap.NewNop()
	}
	if level == (zap.AtomicLevel{}) {
		level = zap.NewAtomicLevel()
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		)
	}

	s := &Server{
		cfg:    cfg,
		lg:     lg.Named("admin"),
		mux:    http.NewServeMux(),
		checks: make(map[string]*check),
	}

	// Patterns with "GET" also match HEAD; other methods get 405.
	s.mux.HandleFunc("GET /healthz", s.handleHealthz)
	s.mux.HandleFunc("GET /status", s.handleStatus)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      s.stdLog(),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	s.mux.Handle("/loglevel", level) // GET and PUT, checked by zap

	// net/http/pprof, mounted here rather than on http.DefaultServeMux.
	s.mux.HandleFunc("/debug/pprof/", pprof.Index) // also serves named profiles
	s.mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	s.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	s.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return s
}

// stdLog adapts the server's logger for net/http and promhttp, which report
// their own errors through a *log.Logger.
func (s *Server) stdLog() *log.Logger {
	l, err := zap.NewStdLogAt(s.lg, zap.WarnLevel)
	if err != nil { // only for invalid levels
		return zap.NewStdLog(s.lg)
	}
	return l
}

// Handle adds an operator route (for example "POST /clients/reconnect") to
// the admin endpoint. Call it before Serve.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// SetReady marks the daemon ready (or not). /healthz answers 503 until it is.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// AddCheck registers a health check run on every /healthz request; a check
// with the same name is replaced. fn returns nil when healthy. It is called
// from request goroutines and must be safe for concurrent use with the rest
// of the daemon; at most one call of each check runs at a time, and requests
// arriving meanwhile wait for that call. A call taking longer than
// CheckTimeout is reported as timed out and left to finish in the background.
func (s *Server) AddCheck(name string, fn func() error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[name] = &check{name: name, fn: fn}
}

// SetStatus sets the function whose result /status returns as JSON. fn may
// be called from several requests at once; nil restores the empty object.
func (s *Server) SetStatus(fn func() any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = fn
}

// Listen binds the configured address, after checking the config with
// Validate, and returns the bound address (useful with port 0). It may be
// called at most once; Serve calls it if it has not been called. Once Listen
// succeeded, only Serve releases the listener; calling it with a cancelled
// context closes the listener at once.
func (s *Server) Listen() (net.Addr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listenLocked()
}

func (s *Server) listenLocked() (net.Addr, error) {
	if s.ln != nil {
		return nil, errors.New("admin: already listening")
	}
	if err := s.cfg.Validate(); err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	s.ln = ln
	return ln.Addr(), nil
}

// URL returns the endpoint's base URL, "http://host:port" with the bound
// port, or "" before Listen succeeded.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return "http://" + s.ln.Addr().String()
}

// Serve answers requests until ctx is done, then shuts down gracefully,
// giving in-flight requests up to 5 s (their contexts are cancelled, which
// ends long pprof profiles at once), and returns nil. It returns an error if
// listening or serving fails. Serve listens first if Listen was not called,
// and may be called at most once.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	if s.served {
		s.mu.Unlock()
		return errors.New("admin: Serve called twice")
	}
	s.served = true
	if s.ln == nil {
		if _, err := s.listenLocked(); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	ln := s.ln
	s.mu.Unlock()

	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          s.stdLog(),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.lg.Info("admin endpoint listening", zap.String("url", "http://"+ln.Addr().String()))

	select {
	case err := <-errc:
		return fmt.Errorf("admin: serve: %w", err)
	case <-ctx.Done():
	}

	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		s.lg.Warn("admin endpoint shutdown timed out; closing connections", zap.Error(err))
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin: serve: %w", err)
	}
	s.lg.Debug("admin endpoint stopped")
	return nil
}

// healthResponse is the body of /healthz.
type healthResponse struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// handleHealthz runs every check and reports readiness and their results.
func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	checks := slices.Collect(maps.Values(s.checks))
	s.mu.Unlock()

	resp := healthResponse{Status: StatusStarting, Checks: make(map[string]string, len(checks))}
	failed := false
	var (
		wg    sync.WaitGroup
		resMu sync.Mutex
	)
	for _, c := range checks {
		wg.Go(func() {
			result := "ok"
			if err := c.run(s.lg, CheckTimeout); err != nil {
				result = err.Error()
				if result == "" {
					result = "failed"
				}
			}
			resMu.Lock()
			defer resMu.Unlock()
			resp.Checks[c.name] = result
			failed = failed || result != "ok"
		})
	}
	wg.Wait()

	code := http.StatusServiceUnavailable
	if s.ready.Load() {
		code, resp.Status = http.StatusOK, StatusOK
		if failed {
			resp.Status = StatusDegraded
		}
	}
	writeJSON(w, code, resp, false)
}

// handleStatus returns the status function's value as indented JSON.
func (s *Server) handleStatus(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	fn := s.status
	s.mu.Unlock()

	var v any = struct{}{}
	if fn != nil {
		var err error
		if v, err = callStatus(fn); err != nil {
			s.lg.Error("status function failed", zap.Error(err))
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()}, true)
			return
		}
	}
	writeJSON(w, http.StatusOK, v, true)
}

// callStatus calls fn, turning a panic (a bug in the daemon) into an error.
func callStatus(fn func() any) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("status function panicked: %v", r)
		}
	}()
	return fn(), nil
}

// writeJSON writes v as a JSON response with the given status code.
func writeJSON(w http.ResponseWriter, code int, v any, indent bool) {
	var (
		body []byte
		err  error
	)
	if indent {
		body, err = json.MarshalIndent(v, "", "  ")
	} else {
		body, err = json.Marshal(v)
	}
	if err != nil {
		code = http.StatusInternalServerError
		body, _ = json.Marshal(map[string]string{"error": "encode response: " + err.Error()})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}

// check is one registered health check.
type check struct {
	name string
	fn   func() error

	mu      sync.Mutex
	running *checkRun // the call in flight, if any; guarded by mu
}

// checkRun is one call of a check function.
type checkRun struct {
	done chan struct{} // closed when the call returned
	err  error         // the call's result; read only after done is closed
}

// run waits up to timeout for a call of the check function, starting one
// unless a call is already in flight, and returns its result.
func (c *check) run(lg *zap.Logger, timeout time.Duration) error {
	c.mu.Lock()
	r := c.running
	if r == nil {
		r = &checkRun{done: make(chan struct{})}
		c.running = r
		go c.call(lg, r)
	}
	c.mu.Unlock()

	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-r.done:
		return r.err
	case <-t.C:
		return fmt.Errorf("check timed out after %s", timeout)
	}
}

// call runs the check function once and publishes the result in r.
func (c *check) call(lg *zap.Logger, r *checkRun) {
	defer func() {
		if p := recover(); p != nil {
			r.err = fmt.Errorf("check panicked: %v", p)
			lg.Error("health check panicked", zap.String("check", c.name), zap.Any("panic", p), zap.StackSkip("stack", 1))
		}
		c.mu.Lock()
		c.running = nil
		c.mu.Unlock()
		close(r.done)
	}()
	r.err = c.fn()
}

// MarkReady flips /healthz to ready and writes the endpoint's URL to
// <runDir>/<daemon>.admin, where shell/restart.sh and shell/check_alive.sh
// look for it. A failure to write the file is returned (the daemon stays
// ready: only the watchdog loses sight of it).
func (s *Server) MarkReady(runDir, daemon string) error {
	s.SetReady(true)
	return WriteAddrFile(filepath.Join(runDir, daemon+".admin"), s.URL())
}

// MarkStopping flips /healthz to not ready and removes the URL file, first
// thing in a graceful shutdown.
func (s *Server) MarkStopping(runDir, daemon string) {
	s.SetReady(false)
	RemoveFile(filepath.Join(runDir, daemon+".admin"))
}
