package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/hashgate/hashgate/alertcenter/internal/config"
	"github.com/hashgate/hashgate/pkg/admin"
	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/confutil"
	"github.com/hashgate/hashgate/pkg/daemon"
	"github.com/hashgate/hashgate/pkg/logx"
	"github.com/hashgate/hashgate/pkg/testutil"
)

const natsUser, natsPass = "hashgate", "pw-test"

// Environment of the helper daemon (this test binary re-executed).
const (
	helperNATS = "HASHGATE_ALERTCENTER_TEST_DAEMON_NATS" // set: run as the helper daemon
	helperRun  = "HASHGATE_ALERTCENTER_TEST_DAEMON_RUN"
)

// TestMain turns the test binary into "diskd", a daemon built on
// pkg/daemon like every hashgate daemon, when asked to.
func TestMain(m *testing.M) {
	if url := os.Getenv(helperNATS); url != "" {
		err := daemon.Run(daemon.Spec[string]{
			Name: "diskd",
			Load: func(string) (string, error) { return os.Getenv(helperRun), nil },
			Common: func(run string) daemon.Common {
				return daemon.Common{Log: logx.DefaultConfig(), Instance: "diskd-1", RunDir: run}
			},
			New: func(_ string, env daemon.Env) (daemon.App, error) { return diskd{env: env, url: url}, nil },
		}, "diskd.json", false, os.Stdout)
		fmt.Fprintln(os.Stderr, "diskd: Fatal did not exit:", err)
		os.Exit(3)
	}
	os.Exit(m.Run())
}

// diskd connects to NATS, attaches the alert shipper as every daemon does
// right after connecting, and dies of a fatal error.
type diskd struct {
	env daemon.Env
	url string
}

func (d diskd) Run(context.Context) error {
	nc, err := nats.Connect(d.url, nats.UserInfo(natsUser, natsPass))
	if err != nil {
		return err
	}
	d.env.Alerts.Attach(nc, bus.AlertSubject("hashgate"))
	d.env.Logger.Fatal("disk on fire", zap.String("disk", "/dev/sda"))
	return nil
}

// hook is a test webhook recording the payloads it accepted; the first
// `fail` posts get a 503.
type hook struct {
	*httptest.Server
	mu    sync.Mutex
	fail  int
	calls int
	got   []map[string]any
}

func newHook(t *testing.T, fail int) *hook {
	h := &hook{fail: fail}
	h.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.calls++
		if h.calls <= h.fail {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var p map[string]any
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Errorf("webhook body is not JSON: %v", err)
		}
		h.got = append(h.got, p)
	}))
	h.Listener = listen(t)
	h.Start()
	t.Cleanup(h.Close)
	return h
}

// listen binds a test port below the ephemeral range.
func listen(t *testing.T) net.Listener {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)))
	require.NoError(t, err)
	return l
}

func (h *hook) payloads() []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]map[string]any(nil), h.got...)
}

// fixture is an alertcenter running in-process with real NATS and Redis.
type fixture struct {
	t       *testing.T
	cfg     config.Config
	app     *App
	redis   *testutil.Redis
	natsURL string
	nc      *nats.Conn // the test's own connection, to publish alerts
}

// newConfig is a test config on fresh NATS and Redis servers.
func newConfig(t *testing.T) (config.Config, string, *testutil.Redis) {
	url, _ := testutil.StartNATS(t, testutil.NATSOptions{User: natsUser, Pass: natsPass})
	r := testutil.StartRedis(t)
	cfg := config.Default()
	cfg.Instance, cfg.RunDir = "ac-test", t.TempDir()
	cfg.NATS.URL, cfg.NATS.User, cfg.NATS.Pass = url, natsUser, natsPass
	cfg.Redis.Addr = r.Addr()
	cfg.Redis.RetryMax = confutil.Duration(100 * time.Millisecond)
	cfg.Webhook.RetryMin = confutil.Duration(20 * time.Millisecond)
	cfg.Webhook.RetryMax = confutil.Duration(100 * time.Millisecond)
	cfg.Admin = admin.Config{Listen: fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))}
	return cfg, url, r
}

func start(t *testing.T, cfg config.Config, url string, r *testutil.Redis) *fixture {
	t.Helper()
	require.NoError(t, cfg.Validate())
	a, err := New(cfg, zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)), zap.NewAtomicLevel())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Error("alertcenter did not stop")
		}
	})
	adminFile := filepath.Join(cfg.RunDir, Daemon+".admin")
	testutil.Eventually(t, 10*time.Second, func() bool { _, err := os.Stat(adminFile); return err == nil }, "ready")
	nc, err := nats.Connect(url, nats.UserInfo(natsUser, natsPass))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return &fixture{t: t, cfg: cfg, app: a, redis: r, natsURL: url, nc: nc}
}

// list returns the alert:message list.
func (f *fixture) list() []string {
	f.t.Helper()
	v, err := f.redis.Do("LRANGE", f.cfg.Redis.Key, "0", "-1")
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}

func (f *fixture) publish(a *bus.Alert) {
	f.t.Helper()
	require.NoError(f.t, f.nc.Publish(bus.AlertSubject("hashgate"), a.Marshal()))
	require.NoError(f.t, f.nc.Flush())
}

func (f *fixture) get(path string) (int, string) {
	f.t.Helper()
	resp, err := http.Get(f.app.admin.URL() + path)
	require.NoError(f.t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

func alertFrom(host string, i int) *bus.Alert {
	return &bus.Alert{Host: host, Daemon: "gateway", Instance: "gw-1", Level: "error", Time: time.Now().UnixNano(),
		Caller: "app/app.go:1", Message: fmt.Sprintf("problem %d", i), Count: 1}
}

// TestFatalInADaemonReachesRedisAndWebhook is the acceptance test: a
// daemon (a real process built on pkg/daemon) logs a Fatal and exits; the
// line appears in alert:message and at the webhook, which first fails.
func TestFatalInADaemonReachesRedisAndWebhook(t *testing.T) {
	h := newHook(t, 2)
	cfg, url, r := newConfig(t)
	cfg.Webhook.URL = h.URL + "/hooks/T000/B000/secret"
	f := start(t, cfg, url, r)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperNATS+"="+url, helperRun+"="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "diskd must die; stderr:\n%s", stderr.String())
	require.Equal(t, 1, ee.ExitCode(), "zap's Fatal exit code; stderr:\n%s", stderr.String())
	require.Contains(t, stderr.String(), `"msg":"disk on fire"`, "logged locally too")

	host, _ := os.Hostname()
	want := regexp.MustCompile(`^` + regexp.QuoteMeta(host) +
		`: \[fatal\] app/app_test\.go:\d+: disk on fire daemon=diskd instance=diskd-1 disk=/dev/sda$`)
	testutil.Eventually(t, 10*time.Second, func() bool { return len(f.list()) == 1 }, "line in alert:message")
	line := f.list()[0]
	require.Regexp(t, want, line)

	testutil.Eventually(t, 10*time.Second, func() bool { return len(h.payloads()) == 1 }, "webhook delivery")
	p := h.payloads()[0]
	require.Equal(t, line, p["text"])
	require.Equal(t, host, p["host"])
	require.Equal(t, "diskd", p["daemon"])
	require.Equal(t, "fatal", p["level"])
	require.EqualValues(t, 1, p["count"])
	require.NotEmpty(t, p["time"])

	code, metrics := f.get("/metrics")
	require.Equal(t, http.StatusOK, code)
	for _, want := range []string{`pool_alertcenter_alerts_total{result="received"} 1`,
		`pool_alertcenter_alerts_total{result="stored"} 1`, `pool_alertcenter_alerts_total{result="webhook_sent"} 1`,
		`pool_alertcenter_redis_up 1`} {
		require.Contains(t, metrics, want)
	}
	code, status := f.get("/status")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, status, `"configured": true`)
	require.NotContains(t, status, "secret", "the webhook URL is not shown")
	code, health := f.get("/healthz")
	require.Equal(t, http.StatusOK, code, health)
}

// TestRedisOutage: while Redis is down alerts queue up and health is
// degraded; after Redis restarts they are written, in order, and the list
// stays capped at max_list.
func TestRedisOutage(t *testing.T) {
	cfg, url, r := newConfig(t)
	cfg.Redis.MaxList = 5
	f := start(t, cfg, url, r)
	for i := range 3 {
		f.publish(alertFrom("h1", i))
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return len(f.list()) == 3 })

	r.Stop(t)
	for i := 3; i < 8; i++ {
		f.publish(alertFrom("h1", i))
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		_, body := f.get("/healthz")
		return strings.Contains(body, "degraded") && strings.Contains(body, "5 lines queued")
	}, "health degraded with the queue")
	_, metrics := f.get("/metrics")
	require.Contains(t, metrics, `pool_alertcenter_redis_up 0`)
	require.Contains(t, metrics, `pool_alertcenter_queue_length{queue="redis"} 5`)

	r.Start(t)
	testutil.Eventually(t, 10*time.Second, func() bool {
		got := f.list()
		return len(got) == 5 && strings.Contains(got[4], "problem 7")
	}, "queued lines written after the restart")
	got := f.list()
	for i, line := range got {
		require.Contains(t, line, fmt.Sprintf("problem %d", i+3), "newest five, in order")
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		code, body := f.get("/healthz")
		return code == http.StatusOK && !strings.Contains(body, "degraded")
	}, "healthy again")
}

// TestRateLimitPerHost: a noisy host is capped and summarised; another
// host is unaffected; garbage is counted, not stored.
func TestRateLimitPerHost(t *testing.T) {
	cfg, url, r := newConfig(t)
	cfg.RateLimit.PerHost, cfg.RateLimit.Per = 3, confutil.Duration(time.Second)
	f := start(t, cfg, url, r)
	for i := range 10 {
		f.publish(alertFrom("noisy", i))
	}
	f.publish(alertFrom("calm", 0))
	require.NoError(t, f.nc.Publish(bus.AlertSubject("hashgate"), []byte("garbage")))
	summary := "noisy: [warn] 7 alerts suppressed by the rate limit daemon=alertcenter instance=ac-test limit=3/1s"
	testutil.Eventually(t, 5*time.Second, func() bool {
		got := f.list()
		return len(got) == 5 && got[4] == summary
	}, "three from noisy, one from calm, then the summary")
	got := f.list()
	require.Equal(t, "calm: [error] app/app.go:1: problem 0 daemon=gateway instance=gw-1", got[3])
	_, metrics := f.get("/metrics")
	require.Contains(t, metrics, `pool_alertcenter_alerts_total{result="rate_limited"} 7`)
	require.Contains(t, metrics, `pool_alertcenter_alerts_total{result="invalid"} 1`)
}

// TestSharedByQueueGroup: two alertcenters on one bus store each alert
// once.
func TestSharedByQueueGroup(t *testing.T) {
	cfg, url, r := newConfig(t)
	cfg.RateLimit.PerHost = 0
	f := start(t, cfg, url, r)
	cfg2 := cfg
	cfg2.Instance, cfg2.RunDir = "ac-test-2", t.TempDir()
	cfg2.Admin.Listen = fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	start(t, cfg2, url, r)
	for i := range 40 {
		f.publish(alertFrom("h", i))
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return len(f.list()) == 40 })
	time.Sleep(100 * time.Millisecond)
	require.Len(t, f.list(), 40, "no alert handled twice")
}
