package main

// The test cluster: real btcd (regtest), an embedded NATS server, and the
// real jobmaster and gateway binaries as subprocesses, with configs in the
// test's temporary directory. Nothing of ours is mocked.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hashgate/hashgate/pkg/testutil"
)

const (
	natsUser = "hashgate"
	natsPass = "tools-test-secret"
	// payoutAddr is the jobmaster's payout address in the tests (the
	// devnet's; btcd's own generate pays elsewhere).
	payoutAddr = "bcrt1ql7fk7lfuvazvrytsx4efz5pv75j23cfkmjfytk"
)

// Binaries built by TestMain.
var (
	repoRoot   string
	gatewayBin string
	jmBin      string
	mwBin      string
	hgminerBin string
	agentBin   string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	root, err := findRepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "hgminer tests:", err)
		return 1
	}
	repoRoot = root
	gatewayBin = filepath.Join(root, "bin", "gateway")
	jmBin = filepath.Join(root, "bin", "jobmaster")
	mwBin = filepath.Join(root, "bin", "metawriter")
	tmp, err := os.MkdirTemp("", "hgminer-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "hgminer tests:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	hgminerBin = filepath.Join(tmp, "hgminer")
	agentBin = filepath.Join(root, "bin", "mineragent")
	// Build failures fail the tests: never skip because a daemon is
	// missing.
	// The mineragent ships as a static binary (CGO_ENABLED=0, as make build
	// and shell/lib.sh build it): nothing to install on a farm's host.
	for _, b := range []struct {
		out, pkg string
		static   bool
	}{
		{gatewayBin, "./gateway", false}, {jmBin, "./jobmaster", false}, {mwBin, "./metawriter", false},
		{hgminerBin, "./tools/hgminer", false}, {agentBin, "./mineragent", true},
	} {
		cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
		cmd.Dir = root
		if b.static {
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "hgminer tests: go build -o %s %s failed: %v\n%s", b.out, b.pkg, err, out)
			return 1
		}
	}
	return m.Run()
}

// findRepoRoot walks up from the working directory to the go.work file.
func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.work above the working directory")
		}
		dir = parent
	}
}

// proc is a subprocess whose output goes to a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// startProc starts bin with args and env added to ours; the cleanup
// stops it with SIGTERM (SIGKILL after 10 s) and prints its log's tail if
// the test failed.
func startProc(t *testing.T, name, bin string, env []string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	require.NoError(t, cmd.Start(), "start %s", name)
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("----- %s log (tail) -----\n%s", name, p.tail(40))
		}
	})
	return p
}

// stop sends SIGTERM and waits (SIGKILL after 10 s); it returns the exit
// error.
func (p *proc) stop(t *testing.T) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Errorf("%s did not exit within 10s of SIGTERM; killing it", p.name)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return p.err
}

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *proc) tail(n int) string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// cluster is btcd + NATS + jobmaster + gateway.
type cluster struct {
	btcd        *testutil.Btcd
	stratum     string // host:port
	gwAdmin     string // admin base URL
	gateway     *proc
	jobmaster   *proc
	runDir      string
	generateURL string
}

// writeJSON writes v as a config file.
func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o600))
}

// natsConfig, nodeConfig and logConfig are the config sections every
// daemon of the test cluster shares.
func natsConfig(natsURL string) map[string]any {
	return map[string]any{"url": natsURL, "user": natsUser, "pass_env": "NATS_PASS", "prefix": "hashgate",
		"connect_timeout": "5s"}
}

func nodeConfig(node *testutil.Btcd) map[string]any {
	return map[string]any{"name": "node1", "rpc_url": "http://" + node.RPCAddr, "rpc_user": node.RPCUser,
		"rpc_pass_env": "NODE_RPC_PASS", "timeout": "5s"}
}

func logConfig() map[string]any { return map[string]any{"level": "info", "format": "json"} }

// jobmasterConfig is a jobmaster config with the structure of
// conf/jobmaster.json.
func jobmasterConfig(node *testutil.Btcd, natsURL, runDir string) map[string]any {
	jmNode := map[string]any{"longpoll": true}
	for k, v := range nodeConfig(node) {
		jmNode[k] = v
	}
	return map[string]any{
		"coin": "btc", "network": "regtest", "instance": "jobmaster-test", "run_dir": runDir,
		"nats": natsConfig(natsURL), "nodes": []any{jmNode},
		"poll_interval": "100ms", "refresh_interval": "30s", "empty_jobs": true, "stale_grace": "30s",
		"version_mask": "1fffe000",
		"coinbase": map[string]any{"tag": "/hashgate/", "extranonce1_size": 4, "extranonce2_size": 8,
			"payouts": []any{map[string]any{"address": payoutAddr, "weight": 1}}},
		"admin": map[string]any{"listen": "127.0.0.1:0"}, "log": logConfig(), "shutdown_timeout": "10s",
	}
}

// gatewayConfig is a gateway config with the structure of
// conf/gateway.json; callers may add sections (e.g. "stats").
func gatewayConfig(node *testutil.Btcd, natsURL, runDir, instance, stratum string, vardiff map[string]any) map[string]any {
	return map[string]any{
		"coin": "btc", "network": "regtest", "instance": instance, "gateway_id": 1, "run_dir": runDir,
		"nats":    natsConfig(natsURL),
		"stratum": map[string]any{"listen": stratum, "max_connections": 19000, "version_mask": "1fffe000"},
		"vardiff": vardiff,
		"blocks": map[string]any{"ack_timeout": "2s", "fallback_after": "3s",
			"nodes": []any{nodeConfig(node)}},
		"admin": map[string]any{"listen": "127.0.0.1:0"}, "log": logConfig(), "shutdown_timeout": "10s",
	}
}

// checkConfigs runs "<bin> -t -c <conf>" for each pair.
func checkConfigs(t *testing.T, env []string, binConf ...string) {
	t.Helper()
	for i := 0; i+1 < len(binConf); i += 2 {
		cmd := exec.Command(binConf[i], "-t", "-c", binConf[i+1])
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s -t -c %s:\n%s", binConf[i], binConf[i+1], out)
	}
}

// startCluster starts everything and waits until the gateway is healthy;
// vardiffMin is the gateway's vardiff.min and start.
func startCluster(t *testing.T, vardiffMin float64) *cluster {
	t.Helper()
	node := testutil.StartBtcd(t, testutil.BtcdOptions{})
	node.Generate(t, 1) // a recent tip: btcd serves templates only when current
	natsURL, _ := testutil.StartNATS(t, testutil.NATSOptions{User: natsUser, Pass: natsPass})
	dir := t.TempDir()
	runDir := filepath.Join(dir, "run")
	require.NoError(t, os.MkdirAll(runDir, 0o755))
	env := []string{"NATS_PASS=" + natsPass, "NODE_RPC_PASS=" + node.RPCPass}
	jmConf := filepath.Join(dir, "jobmaster.json")
	writeJSON(t, jmConf, jobmasterConfig(node, natsURL, runDir))

	// A tiny vardiff so shares are cheap and blocks happen at regtest
	// difficulty.
	stratum := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	gwConf := filepath.Join(dir, "gateway.json")
	writeJSON(t, gwConf, gatewayConfig(node, natsURL, runDir, "gateway-test", stratum,
		map[string]any{"target": "5s", "min": vardiffMin, "max": 1e15, "start": vardiffMin, "retarget": "30s"}))

	checkConfigs(t, env, jmBin, jmConf, gatewayBin, gwConf)
	c := &cluster{btcd: node, stratum: stratum, runDir: runDir,
		generateURL: fmt.Sprintf("http://%s:%s@%s", node.RPCUser, node.RPCPass, node.RPCAddr)}
	c.jobmaster = startProc(t, "jobmaster", jmBin, env, "-c", jmConf)
	waitHealthy(t, c.jobmaster, filepath.Join(runDir, "jobmaster.admin"))
	c.gateway = startProc(t, "gateway", gatewayBin, env, "-c", gwConf)
	c.gwAdmin = waitHealthy(t, c.gateway, filepath.Join(runDir, "gateway.admin"))
	return c
}

// waitHealthy waits until the daemon wrote its admin URL and /healthz
// answers 200; it returns the admin URL.
func waitHealthy(t *testing.T, p *proc, adminFile string) string {
	t.Helper()
	var admin string
	testutil.Eventually(t, 30*time.Second, func() bool {
		require.True(t, p.alive(), "%s exited while starting:\n%s", p.name, p.tail(30))
		b, err := os.ReadFile(adminFile)
		if err != nil {
			return false
		}
		admin = strings.TrimRight(strings.TrimSpace(string(b)), "/")
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, admin+"/healthz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "%s never became healthy", p.name)
	return admin
}

// runTool runs hgminer with args to completion (bounded by timeout) and
// returns stdout and stderr.
func runTool(t *testing.T, timeout time.Duration, args ...string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, hgminerBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	require.NoError(t, err, "hgminer %s\nstderr:\n%s", strings.Join(args, " "), tailString(stderr.String(), 40))
	return stdout.String(), stderr.String()
}

// cutProxy forwards TCP connections to a target and can cut them all, to
// simulate a network blip between a miner and the gateway.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
}

func startCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &cutProxy{ln: ln, target: target}
	t.Cleanup(func() {
		ln.Close()
		p.cut()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

// cut closes every connection made so far.
func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func tailString(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
