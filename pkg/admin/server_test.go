package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashgate/hashgate/pkg/admin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
)

// startServer starts a Server on a free loopback port and stops it when the
// test ends, checking that Serve returns nil.
func startServer(t *testing.T, reg *prometheus.Registry, level zap.AtomicLevel) *admin.Server {
	t.Helper()
	s := admin.New(admin.Config{Listen: "127.0.0.1:0"}, zaptest.NewLogger(t), reg, level)
	addr, err := s.Listen()
	require.NoError(t, err)
	require.Equal(t, "http://"+addr.String(), s.URL())

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	})
	return s
}

// do performs a request and returns the status code, body and headers.
func do(t *testing.T, method, url, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b), resp.Header
}

type health struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

func getHealth(t *testing.T, s *admin.Server) (int, health) {
	t.Helper()
	code, body, hdr := do(t, http.MethodGet, s.URL()+"/healthz", "")
	require.Equal(t, "application/json", hdr.Get("Content-Type"))
	var h health
	require.NoError(t, json.Unmarshal([]byte(body), &h), body)
	return code, h
}

func TestHealthzTransitions(t *testing.T) {
	s := startServer(t, nil, zap.AtomicLevel{})

	var nodeErr atomic.Pointer[error]
	s.AddCheck("node", func() error {
		if p := nodeErr.Load(); p != nil {
			return *p
		}
		return nil
	})
	s.AddCheck("nats", func() error { return nil })

	// Not ready: 503 "starting", checks still reported.
	code, h := getHealth(t, s)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, health{Status: "starting", Checks: map[string]string{"node": "ok", "nats": "ok"}}, h)

	// Ready and healthy.
	s.SetReady(true)
	code, h = getHealth(t, s)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, health{Status: "ok", Checks: map[string]string{"node": "ok", "nats": "ok"}}, h)

	// A failing check degrades but keeps 200.
	err := errors.New("node rpc 127.0.0.1:18443: connection refused")
	nodeErr.Store(&err)
	code, h = getHealth(t, s)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, health{Status: "degraded", Checks: map[string]string{
		"node": "node rpc 127.0.0.1:18443: connection refused",
		"nats": "ok",
	}}, h)

	// A hung check is reported as timed out without hanging the handler.
	release := make(chan struct{})
	var hungCalls atomic.Int32
	s.AddCheck("hung", func() error {
		hungCalls.Add(1)
		<-release
		return nil
	})
	t.Cleanup(func() { close(release) })
	nodeErr.Store(nil)

	for range 2 {
		start := time.Now()
		code, h = getHealth(t, s)
		elapsed := time.Since(start)
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, health{Status: "degraded", Checks: map[string]string{
			"node": "ok",
			"nats": "ok",
			"hung": "check timed out after 1s",
		}}, h)
		require.GreaterOrEqual(t, elapsed, admin.CheckTimeout)
		require.Less(t, elapsed, 5*time.Second)
	}
	// The second probe waited for the first call instead of stacking another.
	require.Equal(t, int32(1), hungCalls.Load())

	// Not ready again (e.g. shutting down): back to 503.
	s.SetReady(false)
	code, h = getHealth(t, s)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, "starting", h.Status)
}

func TestHealthzPanickingCheck(t *testing.T) {
	s := startServer(t, nil, zap.AtomicLevel{})
	s.SetReady(true)
	s.AddCheck("buggy", func() error { panic("boom") })

	code, h := getHealth(t, s)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, health{Status: "degraded", Checks: map[string]string{"buggy": "check panicked: boom"}}, h)
}

func TestHealthzMethods(t *testing.T) {
	s := startServer(t, nil, zap.AtomicLevel{})

	tests := []struct {
		method   string
		ready    bool
		wantCode int
		wantBody bool
	}{
		{method: http.MethodHead, ready: false, wantCode: http.StatusServiceUnavailable},
		{method: http.MethodHead, ready: true, wantCode: http.StatusOK},
		{method: http.MethodGet, ready: true, wantCode: http.StatusOK, wantBody: true},
		{method: http.MethodPost, ready: true, wantCode: http.StatusMethodNotAllowed, wantBody: true},
		{method: http.MethodDelete, ready: true, wantCode: http.StatusMethodNotAllowed, wantBody: true},
	}
	for _, tc := range tests {
		t.Run(tc.method, func(t *testing.T) {
			s.SetReady(tc.ready)
			code, body, _ := do(t, tc.method, s.URL()+"/healthz", "")
			require.Equal(t, tc.wantCode, code)
			require.Equal(t, tc.wantBody, body != "")
		})
	}
}

func TestStatus(t *testing.T) {
	s := startServer(t, nil, zap.AtomicLevel{})

	code, body, hdr := do(t, http.MethodGet, s.URL()+"/status", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "application/json", hdr.Get("Content-Type"))
	require.Equal(t, "{}\n", body)

	type jobStatus struct {
		Height int    `json:"height"`
		JobID  string `json:"job_id"`
	}
	s.SetStatus(func() any { return jobStatus{Height: 840000, JobID: "1a"} })
	code, body, _ = do(t, http.MethodGet, s.URL()+"/status", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "{\n  \"height\": 840000,\n  \"job_id\": \"1a\"\n}\n", body)

	s.SetStatus(func() any { return map[string]any{"bad": make(chan int)} })
	code, body, _ = do(t, http.MethodGet, s.URL()+"/status", "")
	require.Equal(t, http.StatusInternalServerError, code)
	require.Contains(t, body, "unsupported type")

	s.SetStatus(func() any { panic("status bug") })
	code, body, _ = do(t, http.MethodGet, s.URL()+"/status", "")
	require.Equal(t, http.StatusInternalServerError, code)
	require.Contains(t, body, "status function panicked: status bug")

	s.SetStatus(nil)
	_, body, _ = do(t, http.MethodGet, s.URL()+"/status", "")
	require.Equal(t, "{}\n", body)
}

func TestMetrics(t *testing.T) {
	tests := []struct {
		name     string
		reg      func() *prometheus.Registry
		contains []string
	}{
		{
			name: "own registry",
			reg: func() *prometheus.Registry {
				reg := prometheus.NewRegistry()
				c := prometheus.NewCounter(prometheus.CounterOpts{Name: "pool_test_shares_total", Help: "Test counter."})
				reg.MustRegister(c)
				c.Add(3)
				return reg
			},
			contains: []string{"# TYPE pool_test_shares_total counter", "pool_test_shares_total 3"},
		},
		{
			name:     "nil registry gets runtime collectors",
			reg:      func() *prometheus.Registry { return nil },
			contains: []string{"go_goroutines ", "process_cpu_seconds_total "},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, tc.reg(), zap.AtomicLevel{})
			code, body, _ := do(t, http.MethodGet, s.URL()+"/metrics", "")
			require.Equal(t, http.StatusOK, code)
			for _, want := range tc.contains {
				require.Contains(t, body, want)
			}
		})
	}
}

func TestLogLevel(t *testing.T) {
	level := zap.NewAtomicLevelAt(zapcore.InfoLevel)
	s := startServer(t, nil, level)

	code, body, _ := do(t, http.MethodGet, s.URL()+"/loglevel", "")
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"level":"info"}`, body)

	code, body, _ = do(t, http.MethodPut, s.URL()+"/loglevel", `{"level":"debug"}`)
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"level":"debug"}`, body)
	require.Equal(t, zapcore.DebugLevel, level.Level())

	code, _, _ = do(t, http.MethodPut, s.URL()+"/loglevel", `{"level":"loud"}`)
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, zapcore.DebugLevel, level.Level())
}

func TestPprof(t *testing.T) {
	s := startServer(t, nil, zap.AtomicLevel{})
	tests := []struct {
		path     string
		contains string
	}{
		{path: "/debug/pprof/", contains: "goroutine"},
		{path: "/debug/pprof/goroutine?debug=1", contains: "goroutine profile:"},
		{path: "/debug/pprof/cmdline", contains: "admin.test"},
		{path: "/debug/pprof/heap?debug=1", contains: "heap profile:"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			code, body, _ := do(t, http.MethodGet, s.URL()+tc.path, "")
			require.Equal(t, http.StatusOK, code)
			require.Contains(t, body, tc.contains)
		})
	}

	code, _, _ := do(t, http.MethodGet, s.URL()+"/nothing-here", "")
	require.Equal(t, http.StatusNotFound, code)
}

// release closes the listener of a Server that was only listened on.
func release(t *testing.T, s *admin.Server) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	t.Cleanup(func() { require.NoError(t, s.Serve(ctx)) })
}

func TestListen(t *testing.T) {
	t.Run("url empty before listen", func(t *testing.T) {
		s := admin.New(admin.Config{Listen: "127.0.0.1:0"}, nil, nil, zap.AtomicLevel{})
		require.Empty(t, s.URL())
	})
	t.Run("listen twice", func(t *testing.T) {
		s := admin.New(admin.Config{Listen: "127.0.0.1:0"}, nil, nil, zap.AtomicLevel{})
		_, err := s.Listen()
		require.NoError(t, err)
		release(t, s)
		_, err = s.Listen()
		require.ErrorContains(t, err, "already listening")
	})
	t.Run("invalid config refused", func(t *testing.T) {
		s := admin.New(admin.Config{Listen: "0.0.0.0:0"}, nil, nil, zap.AtomicLevel{})
		_, err := s.Listen()
		require.ErrorContains(t, err, "admin: listen: \"0.0.0.0:0\" listens on all interfaces")
		require.Empty(t, s.URL())
	})
	t.Run("port in use", func(t *testing.T) {
		first := admin.New(admin.Config{Listen: "127.0.0.1:0"}, nil, nil, zap.AtomicLevel{})
		addr, err := first.Listen()
		require.NoError(t, err)
		release(t, first)
		second := admin.New(admin.Config{Listen: addr.String()}, nil, nil, zap.AtomicLevel{})
		err = second.Serve(context.Background())
		require.ErrorContains(t, err, "address already in use")
	})
}

func TestServeListensItself(t *testing.T) {
	s := admin.New(admin.Config{Listen: "127.0.0.1:0"}, zaptest.NewLogger(t), nil, zap.AtomicLevel{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()

	require.Eventually(t, func() bool { return s.URL() != "" }, 5*time.Second, 10*time.Millisecond)
	s.SetReady(true)
	code, _, _ := do(t, http.MethodGet, s.URL()+"/healthz", "")
	require.Equal(t, http.StatusOK, code)

	require.ErrorContains(t, s.Serve(ctx), "Serve called twice")

	cancel()
	require.NoError(t, <-done)

	// The listener is closed after Serve returns.
	client := &http.Client{Timeout: 2 * time.Second}
	_, err := client.Get(s.URL() + "/healthz")
	require.Error(t, err)
}

func TestHandleAddsRoute(t *testing.T) {
	s := admin.New(admin.Config{Listen: "127.0.0.1:0"}, nil, nil, zap.NewAtomicLevel())
	s.Handle("POST /op", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("done")) }))
	_, err := s.Listen()
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.Serve(ctx) }()
	resp, err := http.Post(s.URL()+"/op", "text/plain", nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, "done", string(body))
}
