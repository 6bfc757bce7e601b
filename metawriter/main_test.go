package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hashgate/hashgate/metawriter/internal/config"
	"github.com/hashgate/hashgate/metawriter/internal/hashrate"
	"github.com/hashgate/hashgate/metawriter/internal/testenv"
	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/testutil"
)

// runMainEnv makes the test binary act as the metawriter binary: the
// process tests start it as a child with this variable set, so they run the
// real main (flags, config file, signals, exit status) without a go build.
const runMainEnv = "METAWRITER_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// proc is a metawriter process.
type proc struct {
	cmd    *exec.Cmd
	exited chan struct{}
	runDir string
	log    string
}

// writeConfig writes cfg as a config file.
func writeConfig(t *testing.T, cfg config.Config) string {
	t.Helper()
	data, err := json.MarshalIndent(cfg, "", "  ")
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "metawriter.json")
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path
}

// run runs the binary with args and returns its exit code and output.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return code, out.String(), errOut.String()
}

// startProc starts the daemon with the config file and waits until its
// /healthz says ok.
func startProc(t *testing.T, cfgPath, runDir string) *proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "metawriter.log")
	logFile, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-c", cfgPath)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = childAttr()
	require.NoError(t, cmd.Start())
	p := &proc{cmd: cmd, exited: make(chan struct{}), runDir: runDir, log: logPath}
	go func() {
		_ = cmd.Wait()
		_ = logFile.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			t.Logf("metawriter log:\n%s", data)
		}
	})
	testutil.Eventually(t, 20*time.Second, func() bool {
		u := p.adminURL()
		return u != "" && testenv.Health(u) == "ok"
	}, "metawriter process not ready")
	return p
}

// adminURL reads the admin address file ("" until written).
func (p *proc) adminURL() string {
	data, err := os.ReadFile(filepath.Join(p.runDir, "metawriter.admin"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// terminate sends SIGTERM and returns the exit code, failing after 10 s.
func (p *proc) terminate(t *testing.T) int {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(10 * time.Second):
		t.Fatal("metawriter did not exit within 10s of SIGTERM")
		return -1
	}
}

func TestCheckConfig(t *testing.T) {
	t.Setenv("NATS_PASS", "pw")
	code, out, errOut := run(t, "-t", "-c", filepath.Join("..", "conf", "metawriter.json"))
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "is valid")
	code, _, errOut = run(t, "hashrate")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "--user is required")
}

// TestKill9MidStream (d): the daemon is killed with SIGKILL while batches
// flow, restarted, and the sums are still exact; SIGTERM then exits 0.
func TestKill9MidStream(t *testing.T) {
	e := testenv.New(t)
	cfg := e.Config("mw-d")
	cfgPath := writeConfig(t, cfg)
	p := startProc(t, cfgPath, cfg.RunDir)

	l := testenv.NewLedger()
	g := testenv.NewGen(4, "gw1", time.Now().Unix()/60*60-300)
	var (
		published atomic.Int64
		stop      = make(chan struct{})
		wg        sync.WaitGroup
	)
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			b := g.Batch(i, 2)
			if err := e.PublishStats("btc", b, ""); err != nil {
				t.Errorf("publish: %v", err)
				return
			}
			l.AddStats("btc", b)
			published.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	})
	testutil.Eventually(t, 10*time.Second, func() bool {
		n, _ := e.RDB.Exists(t.Context(), "btc:m:share").Result()
		return n == 1 && published.Load() > 200
	})
	p.kill()
	killedAt := published.Load()
	p = startProc(t, cfgPath, cfg.RunDir)
	testutil.Eventually(t, 10*time.Second, func() bool { return published.Load() > killedAt+200 })
	close(stop)
	wg.Wait()
	t.Logf("published %d batches, killed after about %d", published.Load(), killedAt)

	var diff string
	testutil.Eventually(t, 20*time.Second, func() bool {
		diff = l.Diff(e.RDB, false)
		return diff == ""
	}, "sums not exact after SIGKILL and restart")
	require.Equal(t, 0, p.terminate(t), "graceful exit")
	_, err := os.Stat(filepath.Join(cfg.RunDir, "metawriter.admin"))
	require.True(t, os.IsNotExist(err), "admin file removed on shutdown")
}

// TestHashrateCommand (f): batches go through the daemon; the binary's
// hashrate command prints the figures the test predicts.
func TestHashrateCommand(t *testing.T) {
	e := testenv.New(t)
	cfg := e.Config("mw-f")
	cfgPath := writeConfig(t, cfg)
	p := startProc(t, cfgPath, cfg.RunDir)

	m0 := time.Now().Unix()/60*60 - 600
	// minute m0: rig1 10 shares at difficulty 65536, 2 rejects; rig2 5 at 1024.
	// minute m0+120: rig1 20 shares at 131072. minute m0+60: nothing.
	batches := []*bus.StatsBatch{
		{Gateway: "gw1", Boot: 1, Minute: m0, Parts: 1, Workers: []bus.WorkerStats{
			{User: "hr", Worker: "rig1", Accepted: 10, DiffSum: 10 * 65536, Rejected: 2},
			{User: "hr", Worker: "rig2", Accepted: 5, DiffSum: 5 * 1024},
		}},
		{Gateway: "gw2", Boot: 1, Minute: m0 + 120, Parts: 1, Workers: []bus.WorkerStats{
			{User: "hr", Worker: "rig1", Accepted: 20, DiffSum: 20 * 131072},
		}},
	}
	for _, b := range batches {
		require.NoError(t, e.PublishStats("btc", b, ""))
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		n, _ := e.RDB.HLen(t.Context(), "btc:s:hr").Result()
		return n == 2
	})

	until := time.Unix(m0+120, 0).UTC().Format(time.RFC3339)
	code, out, errOut := run(t, "hashrate", "-c", cfgPath, "--user", "hr", "--minutes", "3", "--until", until, "--json")
	require.Equal(t, 0, code, errOut)
	var rep hashrate.Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	const h = 1 << 32
	require.Equal(t, []hashrate.Minute{
		{Minute: m0, Time: time.Unix(m0, 0).UTC().Format(time.RFC3339), Shares: 15, Rejects: 2,
			Difficulty: 10*65536 + 5*1024, Hashrate: (10*65536 + 5*1024) * h / 60.0},
		{Minute: m0 + 60, Time: time.Unix(m0+60, 0).UTC().Format(time.RFC3339)},
		{Minute: m0 + 120, Time: time.Unix(m0+120, 0).UTC().Format(time.RFC3339), Shares: 20,
			Difficulty: 20 * 131072, Hashrate: 20 * 131072 * h / 60.0},
	}, rep.Minutes)
	total := 10*65536 + 5*1024 + 20*131072.0
	require.Equal(t, hashrate.Average{Shares: 35 / 3.0, Rejects: 2 / 3.0, Difficulty: total / 3, Hashrate: total * h / 180}, rep.Average)

	code, out, errOut = run(t, "hashrate", "-c", cfgPath, "--user", "hr", "--worker", "rig1", "--minutes", "3", "--until", until)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, hashrate.SI(10*65536*h/60.0))
	require.Contains(t, out, hashrate.SI(30*65536*h/180.0), "rig1's average: 10×65536 + 20×131072 = 30×... over 3 minutes")
	t.Logf("\n%s", out)
	require.Equal(t, 0, p.terminate(t))
}
