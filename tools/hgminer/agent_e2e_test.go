package main

// Acceptance tests of the mineragent, end to end with real processes:
// btcd (regtest), NATS with JetStream, redis-server, the jobmaster, two
// gateways with agent ports, the metawriter and the mineragent. The test
// miner of stats_e2e_test.go (the same flow of valid, duplicate,
// unknown-job, block and stale shares) mines behind the agent; the agent's
// answers are the ground truth, and Redis must hold exactly them, per user
// and worker, as for direct miners, also when the gateway the agent uses
// is killed with SIGKILL in the middle.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/stretchr/testify/require"

	"github.com/hashgate/hashgate/pkg/agentwire"
	"github.com/hashgate/hashgate/pkg/testutil"
	"github.com/hashgate/hashgate/tools/internal/load"
)

const (
	agentID     = "farm1"
	agentToken  = "farm1-agent-token"
	agentPrefix = "ff000001"
)

// agentSection is the gateway's agent port config with the test agent.
func agentSection(listen string) map[string]any {
	return map[string]any{
		"listen": listen, "max_agents": 8, "handshake_timeout": "5s", "idle_timeout": "30s",
		"resume_window": "10m", "suffix_size": 2,
		"agents": []any{map[string]any{"id": agentID, "token": agentToken, "extranonce_prefix": agentPrefix}},
	}
}

// agentCluster is a statsCluster whose gateway (gw-a) has an agent port,
// a second gateway (gw-b) with an agent port, and a mineragent using gw-a
// then gw-b.
type agentCluster struct {
	*statsCluster
	agentA, agentB string // gateways' agent ports
	gwB            *proc
	gwBAdmin       string
	agent          *proc
	agentAdmin     string
	agentStratum   string
	agentRun       string // the agent's run_dir
}

func startAgentCluster(t *testing.T) *agentCluster {
	t.Helper()
	ac := &agentCluster{}
	ac.agentA = "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	ac.statsCluster = startStatsCluster(t, "gw-a", func(gw map[string]any) {
		gw["agent"] = agentSection(ac.agentA)
	})
	sc := ac.statsCluster

	// gw-b: same cluster, its own id, ports and run directory.
	ac.agentB = "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	runB := filepath.Join(sc.dir, "run-b")
	require.NoError(t, os.MkdirAll(runB, 0o755))
	gwB := gatewayConfig(sc.btcd, sc.natsURL, runB, "gw-b", "127.0.0.1:"+strconv.Itoa(testutil.FreePort(t)),
		map[string]any{"target": "5s", "min": statsDiff, "max": statsDiff, "start": statsDiff, "retarget": "30s"})
	gwB["gateway_id"] = 2
	gwB["stats"] = map[string]any{"enabled": true, "spool_bytes": 64 << 20, "flush_delay": statsFlushDelay.String()}
	gwB["agent"] = agentSection(ac.agentB)
	gwBConf := filepath.Join(sc.dir, "gateway-b.json")
	writeJSON(t, gwBConf, gwB)

	// The agent: gw-a first, gw-b second; the same fixed difficulty as the
	// direct tests.
	ac.agentStratum = "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	runAgent := filepath.Join(sc.dir, "run-agent")
	ac.agentRun = runAgent
	require.NoError(t, os.MkdirAll(runAgent, 0o755))
	agentConf := filepath.Join(sc.dir, "mineragent.json")
	writeJSON(t, agentConf, map[string]any{
		"instance": "agent-test", "run_dir": runAgent, "agent_id": agentID, "token": agentToken,
		"upstream": map[string]any{"servers": []any{
			map[string]any{"addr": ac.agentA}, map[string]any{"addr": ac.agentB}}},
		"stratum": map[string]any{"listen": ac.agentStratum, "max_connections": 19000},
		"vardiff": map[string]any{"target": "5s", "min": statsDiff, "max": statsDiff, "start": statsDiff,
			"retarget": "30s"},
		"batch_interval": "100ms", "max_replay_age": "10m", "no_upstream_timeout": "2m",
		"admin": map[string]any{"listen": "127.0.0.1:0"}, "log": logConfig(), "shutdown_timeout": "10s",
		"heap_profile": os.Getenv("HASHGATE_AGENT_LOAD_PROFILE") != "",
	})
	checkConfigs(t, sc.env, gatewayBin, gwBConf, agentBin, agentConf)
	ac.gwB = startProc(t, "gateway-b", gatewayBin, sc.env, "-c", gwBConf)
	ac.gwBAdmin = waitHealthy(t, ac.gwB, filepath.Join(runB, "gateway.admin"))
	ac.agent = startProc(t, "mineragent", agentBin, sc.env, "-c", agentConf)
	ac.agentAdmin = waitHealthy(t, ac.agent, filepath.Join(runAgent, "mineragent.admin"))
	t.Cleanup(func() {
		for _, p := range []*proc{ac.agent, ac.gwB} {
			if p.alive() {
				require.NoError(t, p.stop(t), "%s exit status:\n%s", p.name, p.tail(20))
			}
		}
	})
	return ac
}

// agentStatus is the part of the mineragent's /status the tests read.
type agentStatus struct {
	Upstream struct {
		Server    string `json:"server"`
		Linked    bool   `json:"linked"`
		Replayed  uint64 `json:"batches_replayed"`
		Pending   int    `json:"pending_shares"`
		Failovers uint64 `json:"failovers"`
	} `json:"upstream"`
}

// waitAgentCredited waits until Redis holds exactly the agent's answers
// for the test user (shares and rejects) and the metawriter has nothing
// pending; on timeout it fails with what it saw.
func waitAgentCredited(t *testing.T, ac *agentCluster, r result, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		shares, _ := countSum(t, ac.redis, "btc:s:"+statsUser)
		rejects, _ := countSum(t, ac.redis, "btc:s:"+statsUser+":reject")
		var ms metawriterStatus
		merr := getJSON(ac.mwAdmin+"/status", &ms)
		pending, acks := uint64(1), 1
		if ms.Consumer.Pending != nil && ms.Consumer.PendingAcks != nil {
			pending, acks = *ms.Consumer.Pending, *ms.Consumer.PendingAcks
		}
		state := fmt.Sprintf("redis shares %d (want %d), rejects %d (want %d); metawriter pending %d, unacked %d, "+
			"applied %d, duplicates %d (%v)", shares, r.accepted, rejects, r.rejected, pending, acks,
			ms.Messages.Applied, ms.Messages.Duplicates, merr)
		if shares == r.accepted && rejects == r.rejected && pending == 0 && acks == 0 {
			t.Logf("credited: %s", state)
			return
		}
		if time.Now().After(deadline) {
			require.Failf(t, "agent statistics did not add up", "after %s: %s", timeout, state)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// checkAgentRedis asserts the per user and worker layout against the
// answers, as checkRedis does for direct miners, plus the events.
func checkAgentRedis(t *testing.T, ac *agentCluster, r result) {
	t.Helper()
	rd := ac.redis
	kd := float64(r.accepted) * statsDiff
	checkUserWorkers(t, rd, r)
	// Pool-wide monitor values include the agent's shares.
	require.Equal(t, float64(r.accepted), floatSum(t, rd, "btc:m:share"), "btc:m:share")
	requireRel(t, kd, floatSum(t, rd, "btc:m:pow"), "btc:m:pow")
	for reason, n := range r.reasons {
		if reason != "unexpected" {
			require.Equal(t, float64(n), floatSum(t, rd, "btc:m:reject_"+reason), "btc:m:reject_%s", reason)
		}
	}

	// Events as for a direct miner: one new worker, one connection and one
	// disconnection per worker (the failover re-announces miners without
	// events), the block once.
	checkWorkerEvents(t, rd, r, false)
	if r.blockHash != "" {
		newblock := redisStrings(t, rd, "LRANGE", "newblock", "0", "-1")
		require.Contains(t, newblock, fmt.Sprintf(`{"name":"BTC","hash":"%s","user":"alice","worker":"rig1"}`, r.blockHash))
	}
}

// TestAgentEndToEnd covers the mineragent's acceptance: miners behind the
// agent are credited per user and worker exactly as direct miners (1);
// the gateway the agent uses is SIGKILLed mid-flow, the miners stay
// connected, the agent moves to the other gateway and every accepted share
// is credited once (2); a block found behind the agent is accepted by
// btcd (3); a wrong token, a version mismatch and garbage on the agent
// port get a clear error and a closed link (4).
func TestAgentEndToEnd(t *testing.T) {
	t.Parallel()
	start := time.Now()
	ac := startAgentCluster(t)
	t.Logf("cluster up in %s", time.Since(start).Round(time.Millisecond))

	// (4) Bad agents on gw-b's port, before the real agent may use it.
	checkBadAgents(t, ac.agentB)

	f := startFlow(t, ac.agentStratum, 100*time.Millisecond, true)
	progress := func(n int) {
		t.Helper()
		testutil.Eventually(t, 90*time.Second, func() bool {
			perMinute, blockDone, err := f.progress()
			require.NoError(t, err, "share flow failed")
			total := 0
			for _, v := range perMinute {
				total += v
			}
			return blockDone && total >= n
		}, "the flow did not reach %d answers", n)
	}
	progress(60)
	var st agentStatus
	require.NoError(t, getJSON(ac.agentAdmin+"/status", &st))
	require.Equal(t, ac.agentA, st.Upstream.Server, "the agent starts on the first gateway")

	// (2) SIGKILL the gateway the agent uses while shares flow, at a moment
	// when it holds batches it has not acknowledged (frozen with SIGSTOP
	// first, so some may be credited already): the agent replays them to
	// gw-b and nothing is credited twice.
	require.NoError(t, ac.gateway.cmd.Process.Signal(syscall.SIGSTOP))
	testutil.Eventually(t, 10*time.Second, func() bool {
		var st agentStatus
		return getJSON(ac.agentAdmin+"/status", &st) == nil && st.Upstream.Pending >= 3
	}, "shares did not wait for gw-a's acknowledgement")
	require.NoError(t, ac.gateway.cmd.Process.Kill())
	<-ac.gateway.done
	killed := time.Now()
	testutil.Eventually(t, 10*time.Second, func() bool {
		var st agentStatus
		return getJSON(ac.agentAdmin+"/status", &st) == nil && st.Upstream.Linked && st.Upstream.Server == ac.agentB
	}, "the agent did not move to gw-b")
	t.Logf("failover to gw-b seen by /status after %s", time.Since(killed).Round(time.Millisecond))
	_, _, err := f.progress()
	require.NoError(t, err, "miners must stay connected across the failover")
	perMinute, _, _ := f.progress()
	before := 0
	for _, v := range perMinute {
		before += v
	}
	progress(before + 60)
	r := f.result(t)
	require.NoError(t, getJSON(ac.agentAdmin+"/status", &st))
	t.Logf("agent: %d failover(s), %d batches replayed", st.Upstream.Failovers, st.Upstream.Replayed)
	require.Equal(t, uint64(1), st.Upstream.Failovers)
	require.Positive(t, st.Upstream.Replayed, "the unacknowledged batches were replayed")
	t.Logf("answers: %d accepted, %d rejected %v, block %s", r.accepted, r.rejected, r.reasons, r.blockHash)
	require.NotEmpty(t, r.blockHash)
	require.Positive(t, r.reasons["duplicate"])
	require.Positive(t, r.reasons["unknown_job"])

	// (3) The block reached btcd through the agent and a gateway.
	blockHash, err := chainhash.NewHashFromStr(r.blockHash)
	require.NoError(t, err)
	testutil.Eventually(t, 20*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := ac.btcd.Client.GetBlockHex(ctx, *blockHash)
		return err == nil
	}, "block %s not on the node", r.blockHash)

	// (1) and (2): Redis holds exactly the answers.
	waitAgentCredited(t, ac, r, 90*time.Second)
	checkAgentRedis(t, ac, r)
	t.Logf("total %s", time.Since(start).Round(time.Millisecond))
}

// checkBadAgents: a wrong token, a protocol version mismatch and garbage
// each get a clear error and a closed link; the port keeps serving.
func checkBadAgents(t *testing.T, addr string) {
	t.Helper()
	dial := func() (net.Conn, *agentwire.Conn) {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		require.NoError(t, err)
		require.NoError(t, nc.SetDeadline(time.Now().Add(10*time.Second)))
		return nc, agentwire.NewConn(nc, agentwire.Options{})
	}
	closed := func(c *agentwire.Conn) {
		t.Helper()
		_, err := c.ReadMessage()
		require.Error(t, err, "the gateway must close the link")
	}

	nc, c := dial()
	_, err := agentwire.Greet(c, &agentwire.Hello{AgentID: agentID, Token: "wrong", Instance: 1})
	var rej *agentwire.Reject
	require.True(t, errors.As(err, &rej), "wrong token: %v", err)
	require.Equal(t, agentwire.RejectBadToken, rej.Code)
	closed(c)
	nc.Close()

	nc, c = dial()
	require.NoError(t, c.WriteMessages(&agentwire.Hello{ProtocolVersion: agentwire.Version + 1, AgentID: agentID,
		Token: agentToken, Instance: 1}))
	m, err := c.ReadMessage()
	require.NoError(t, err)
	rej, ok := m.(*agentwire.Reject)
	require.True(t, ok, "version mismatch answered with %s", m.Type())
	require.Equal(t, agentwire.RejectVersion, rej.Code)
	closed(c)
	nc.Close()

	// Garbage after a valid preamble (uncompressed codec, so the bytes are
	// frames): a protocol Reject or a plain close, never a hang.
	nc, c = dial()
	garbage := make([]byte, 512)
	for i := range garbage {
		garbage[i] = byte(rand.IntN(256))
	}
	_, err = nc.Write(append([]byte{'H', 'A', agentwire.Version, byte(agentwire.CodecNone)}, garbage...))
	require.NoError(t, err)
	if m, err := c.ReadMessage(); err == nil {
		rej, ok := m.(*agentwire.Reject)
		require.True(t, ok, "garbage answered with %s", m.Type())
		require.Equal(t, agentwire.RejectProtocol, rej.Code, "garbage: %v", rej)
		closed(c)
	}
	nc.Close()
}

// TestAgentLoadReport runs the load generator against the mineragent with
// 5,000 miners at one share per 5 s each (acceptance 5): the report gives
// the agent's upstream bytes per share and kbit/s and its RSS. The figures
// are printed, not judged (docs/benchmarks.md records them with the
// machine); the test checks that they were measured and that every share
// was answered and went upstream.
//
// For the figures in docs/benchmarks.md, HASHGATE_AGENT_LOAD_CONNS and
// HASHGATE_AGENT_LOAD_DURATION change the 5,000 miners and 20 s;
// HASHGATE_AGENT_LOAD_PROFILE=<dir> turns the agent's heap profile on and
// saves it with /proc status near the end of the run (where its memory
// goes; the sampling itself costs about 1.5 MB).
func TestAgentLoadReport(t *testing.T) {
	ac := startAgentCluster(t)
	conns, duration := 5000, 20*time.Second
	if v, err := strconv.Atoi(os.Getenv("HASHGATE_AGENT_LOAD_CONNS")); err == nil && v > 0 {
		conns = v
	}
	if v, err := time.ParseDuration(os.Getenv("HASHGATE_AGENT_LOAD_DURATION")); err == nil && v > 0 {
		duration = v
	}
	if dir := os.Getenv("HASHGATE_AGENT_LOAD_PROFILE"); dir != "" {
		// The load tool connects everyone before the measured run starts.
		timer := time.AfterFunc(2*time.Second+duration*3/4, func() { saveAgentProfile(t, ac, dir) })
		defer timer.Stop()
	}
	out, stderr := runTool(t, 4*time.Minute+2*duration, "load", "-url", "stratum+tcp://"+ac.agentStratum,
		"-conns", strconv.Itoa(conns), "-procs", "2", "-share-rate", "0.2", "-duration", duration.String(),
		"-admin", ac.agentAdmin, "-pid", "@"+filepath.Join(ac.agentRun, "mineragent.pid"), "-report", "json")
	var rep load.Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep), "report:\n%s\nstderr:\n%s", out, tailString(stderr, 20))
	var text strings.Builder
	rep.WriteText(&text)
	t.Logf("load report, %d miners behind the agent:\n%s", conns, text.String())

	require.Equal(t, conns, rep.Connect.Connected)
	require.Zero(t, rep.Dropped)
	s := rep.Submit
	// conns × 0.2/s × duration, give or take the schedule edges.
	want := float64(conns) * 0.2 * duration.Seconds()
	require.InDelta(t, want, float64(s.Submitted), want/4)
	require.LessOrEqual(t, s.RejectedTotal, s.Submitted/100, "rejects: %v", s.Rejected)
	g := rep.Gateway
	require.NotNil(t, g)
	require.Equal(t, "proc", g.Source)
	require.Positive(t, g.RSSEndMB)
	require.Positive(t, g.RSSPerConnKB)
	u := g.Upstream
	require.NotNil(t, u, "the agent's upstream figures")
	require.Positive(t, u.BytesPerShare)
	require.Positive(t, u.KbitPerSecUp)
	// Every share the agent accepted during the run went upstream and was
	// accepted there too (the run's edges aside).
	require.InDelta(t, float64(s.Accepted), u.SharesAccepted, float64(s.Accepted)/20)
}

// saveAgentProfile writes the agent's heap profile, /proc status and
// runtime memory statistics into dir.
func saveAgentProfile(t *testing.T, ac *agentCluster, dir string) {
	for name, url := range map[string]string{"heap.pprof": ac.agentAdmin + "/debug/pprof/heap",
		"memstats.txt": ac.agentAdmin + "/debug/pprof/heap?debug=1"} {
		resp, err := http.Get(url)
		if err != nil {
			t.Logf("agent profile: %v", err)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		_ = os.WriteFile(filepath.Join(dir, name), b, 0o644)
	}
	if b, err := os.ReadFile(filepath.Join(ac.agentRun, "mineragent.pid")); err == nil {
		if st, err := os.ReadFile("/proc/" + strings.TrimSpace(string(b)) + "/status"); err == nil {
			_ = os.WriteFile(filepath.Join(dir, "status.txt"), st, 0o644)
		}
	}
	t.Logf("agent profile saved in %s", dir)
}
