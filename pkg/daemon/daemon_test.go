package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/logx"
	"github.com/hashgate/hashgate/pkg/testutil"
)

type cfg struct{ run string }

type quickApp struct{ err error }

func (a quickApp) Run(context.Context) error { return a.err }

func spec(loadErr, runErr error, dir string) Spec[cfg] {
	return Spec[cfg]{
		Name: "testd",
		Load: func(string) (cfg, error) { return cfg{run: dir}, loadErr },
		Common: func(c cfg) Common {
			return Common{Log: logx.DefaultConfig(), Instance: "t", RunDir: c.run}
		},
		New: func(cfg, Env) (App, error) { return quickApp{err: runErr}, nil },
	}
}

func TestCheckMode(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, Run(spec(nil, nil, t.TempDir()), "x.json", true, &out))
	require.Contains(t, out.String(), "is valid")
	err := Run(spec(errors.New("a: bad\nb: bad"), nil, t.TempDir()), "x.json", true, &out)
	require.ErrorContains(t, err, "has problems")
	require.Equal(t, 2, strings.Count(err.Error(), "bad"), "every problem is printed")
}

func TestRunWritesAndRemovesPIDFile(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, Run(spec(nil, nil, dir), "x.json", false, os.Stdout))
	_, err := os.Stat(filepath.Join(dir, "testd.pid"))
	require.True(t, os.IsNotExist(err), "pid file removed on exit")
	err = Run(spec(nil, errors.New("boom"), dir), "x.json", false, os.Stdout)
	require.ErrorContains(t, err, "boom")
}

// TestEnv: the app gets the logger, its level and the alert shipper (none
// with NoAlerts).
func TestEnv(t *testing.T) {
	for _, noAlerts := range []bool{false, true} {
		var got Env
		s := spec(nil, nil, t.TempDir())
		s.NoAlerts = noAlerts
		s.New = func(_ cfg, env Env) (App, error) { got = env; return quickApp{}, nil }
		require.NoError(t, Run(s, "x.json", false, os.Stdout))
		require.NotNil(t, got.Logger)
		require.Equal(t, zapcore.InfoLevel, got.Level.Level())
		require.Equal(t, noAlerts, got.Alerts == nil)
	}
}

// Environment of the helper process started by the tests below.
const (
	helperEnv    = "HASHGATE_DAEMON_TEST_HELPER" // "fatal" or "panic"
	helperNATS   = "HASHGATE_DAEMON_TEST_NATS"
	helperRunDir = "HASHGATE_DAEMON_TEST_RUN"
)

// helperApp is the daemon the helper process runs: it connects to NATS,
// attaches the shipper as every daemon does, and then dies.
type helperApp struct {
	env  Env
	mode string
}

func (a helperApp) Run(context.Context) error {
	nc, err := nats.Connect(os.Getenv(helperNATS))
	if err != nil {
		return err
	}
	a.env.Alerts.Attach(nc, bus.AlertSubject("hashgate"))
	if a.mode == "panic" {
		var m map[string]int
		m["boom"]++ // a real bug: assignment to a nil map
	}
	a.env.Logger.Fatal("disk on fire", zap.String("disk", "/dev/sda"))
	return nil
}

// TestMain turns the test binary into the helper daemon when asked to.
func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		s := spec(nil, nil, os.Getenv(helperRunDir))
		s.New = func(_ cfg, env Env) (App, error) { return helperApp{env: env, mode: mode}, nil }
		err := Run(s, "x.json", false, os.Stdout)
		fmt.Fprintln(os.Stderr, "helper returned:", err)
		os.Exit(3)
	}
	os.Exit(m.Run())
}

// runHelper runs this test binary as a daemon in mode and returns its exit
// code and the alerts that reached NATS.
func runHelper(t *testing.T, mode string) (int, []*bus.Alert) {
	url, _ := testutil.StartNATS(t, testutil.NATSOptions{})
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	defer nc.Close()
	ch := make(chan *bus.Alert, 16)
	_, err = nc.Subscribe(bus.AlertSubject("hashgate"), func(m *nats.Msg) {
		var a bus.Alert
		if err := a.Unmarshal(m.Data); err != nil {
			t.Errorf("undecodable alert: %v", err)
			return
		}
		ch <- &a
	})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperNATS+"="+url, helperRunDir+"="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "stderr:\n%s", stderr.String())
	// The process is gone: whatever reached the server is all there is.
	require.NoError(t, nc.Flush())
	var got []*bus.Alert
	for {
		select {
		case a := <-ch:
			got = append(got, a)
		case <-time.After(200 * time.Millisecond):
			return ee.ExitCode(), got
		}
	}
}

// TestFatalReachesTheBus: a daemon's Fatal log is on the bus before the
// process exits.
func TestFatalReachesTheBus(t *testing.T) {
	code, got := runHelper(t, "fatal")
	require.Equal(t, 1, code, "zap's Fatal exits with 1")
	require.Len(t, got, 1)
	a := got[0]
	host, _ := os.Hostname()
	require.Equal(t, host, a.Host)
	require.Equal(t, "testd", a.Daemon)
	require.Equal(t, "t", a.Instance)
	require.Equal(t, "fatal", a.Level)
	require.Equal(t, "disk on fire", a.Message)
	require.Regexp(t, `^daemon/daemon_test\.go:\d+$`, a.Caller)
	require.Equal(t, "disk=/dev/sda", a.Fields)
}

// TestPanicReachesTheBus: a panic escaping App.Run is logged at Error,
// shipped, and still crashes the process.
func TestPanicReachesTheBus(t *testing.T) {
	code, got := runHelper(t, "panic")
	require.Equal(t, 2, code, "an unrecovered panic exits with 2")
	require.Len(t, got, 1)
	require.Equal(t, "error", got[0].Level)
	require.Equal(t, "panic", got[0].Message)
	require.Contains(t, got[0].Fields, "assignment to entry in nil map")
}

type reloadApp struct {
	got chan string
	ctx chan struct{}
}

func (a *reloadApp) Run(ctx context.Context) error {
	close(a.ctx)
	<-ctx.Done()
	return nil
}

// TestSIGHUPReload: SIGHUP re-reads the config; a bad config is refused, a
// good one reaches Reload.
func TestSIGHUPReload(t *testing.T) {
	dir := t.TempDir()
	app := &reloadApp{got: make(chan string, 4), ctx: make(chan struct{})}
	var bad atomic.Bool
	s := Spec[cfg]{
		Name: "reloadd",
		Load: func(string) (cfg, error) {
			if bad.Load() {
				return cfg{}, errors.New("typo")
			}
			return cfg{run: dir}, nil
		},
		Common: func(c cfg) Common { return Common{Log: logx.DefaultConfig(), Instance: "t", RunDir: dir} },
		New:    func(cfg, Env) (App, error) { return app, nil },
		Reload: func(a App, c cfg) error {
			a.(*reloadApp).got <- c.run
			return nil
		},
		NoAlerts: true,
	}
	done := make(chan error, 1)
	go func() { done <- Run(s, "x.json", false, os.Stdout) }()
	<-app.ctx
	bad.Store(true)
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	time.Sleep(200 * time.Millisecond)
	require.Empty(t, app.got, "a config with problems is refused")
	bad.Store(false)
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	select {
	case got := <-app.got:
		require.Equal(t, dir, got)
	case <-time.After(5 * time.Second):
		t.Fatal("Reload not called")
	}
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGTERM))
	require.NoError(t, <-done)
}
