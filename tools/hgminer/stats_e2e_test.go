package main

// Acceptance tests of the statistics pipeline, end to end with real
// processes: btcd (regtest), an embedded NATS server with JetStream,
// redis-server, and the jobmaster, gateway and metawriter binaries. A test
// miner (statsConn below, on tools/internal/sconn and work) submits shares
// whose outcome it knows; the gateway's answers are the ground truth, and
// the Redis layout of DESIGN.md §4 must add up to exactly them, also across
// outages of Redis, the metawriter and NATS.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hashgate/hashgate/pkg/stratum"
	"github.com/hashgate/hashgate/pkg/testutil"
	"github.com/hashgate/hashgate/tools/internal/sconn"
	"github.com/hashgate/hashgate/tools/internal/work"
)

const (
	// statsDiff is the gateway's fixed share difficulty. Its target is
	// above 2^256, so every hash is a share; about every other hash also
	// meets regtest's network target (difficulty ≈ 4.66e-10), so the test
	// miner skips block hashes unless it wants a block.
	statsDiff = 1e-12
	// statsFlushDelay is the gateway's stats.flush_delay.
	statsFlushDelay = 2 * time.Second
	statsUser       = "alice"
)

var statsWorkers = []string{"rig1", "rig2"}

// ---------------------------------------------------------------------------
// Cluster

// statsCluster is btcd + NATS (JetStream) + Redis + jobmaster + gateway +
// metawriter.
type statsCluster struct {
	btcd     *testutil.Btcd
	redis    *testutil.Redis
	natsOpts testutil.NATSOptions
	natsPort int
	natsURL  string
	dir      string // the cluster's config directory
	stopNATS func()

	env        []string
	runDir     string
	stratum    string // host:port
	gwInstance string
	gwAdmin    string
	mwConf     string
	mwAdmin    string

	jobmaster, gateway, metawriter *proc
}

// startStatsCluster starts everything and waits until every daemon is
// healthy. The gateway runs with a fixed difficulty statsDiff and a short
// flush delay; gwInstance names it (the <host> of btc:mh:<host>:<key>).
//
// mods adjust the gateway's config before it is written (the agent tests
// add an "agent" section).
func startStatsCluster(t *testing.T, gwInstance string, mods ...func(gw map[string]any)) *statsCluster {
	t.Helper()
	// Fail (never skip) with a clear message when a server binary is
	// missing.
	testutil.RedisPath(t)
	testutil.BtcdPath(t)

	node := testutil.StartBtcd(t, testutil.BtcdOptions{})
	node.Generate(t, 1) // a recent tip: btcd serves templates only when current
	sc := &statsCluster{btcd: node, gwInstance: gwInstance,
		natsOpts: testutil.NATSOptions{JetStream: true, User: natsUser, Pass: natsPass,
			StoreDir: filepath.Join(t.TempDir(), "jetstream")}}
	natsURL, srv := testutil.StartNATS(t, sc.natsOpts)
	sc.natsPort = testutil.NATSPort(t, srv)
	sc.stopNATS = func() { srv.Shutdown(); srv.WaitForShutdown() }
	sc.redis = testutil.StartRedis(t)

	dir := t.TempDir()
	sc.runDir = filepath.Join(dir, "run")
	require.NoError(t, os.MkdirAll(sc.runDir, 0o755))
	sc.env = []string{"NATS_PASS=" + natsPass, "NODE_RPC_PASS=" + node.RPCPass}

	jmConf := filepath.Join(dir, "jobmaster.json")
	writeJSON(t, jmConf, jobmasterConfig(node, natsURL, sc.runDir))

	sc.stratum = "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	gw := gatewayConfig(node, natsURL, sc.runDir, gwInstance, sc.stratum,
		map[string]any{"target": "5s", "min": statsDiff, "max": statsDiff, "start": statsDiff, "retarget": "30s"})
	gw["stats"] = map[string]any{"enabled": true, "spool_bytes": 64 << 20, "flush_delay": statsFlushDelay.String()}
	for _, mod := range mods {
		mod(gw)
	}
	sc.natsURL, sc.dir = natsURL, dir
	gwConf := filepath.Join(dir, "gateway.json")
	writeJSON(t, gwConf, gw)

	// Same structure as conf/metawriter.json, with short timeouts so the
	// outages resolve quickly.
	sc.mwConf = filepath.Join(dir, "metawriter.json")
	writeJSON(t, sc.mwConf, map[string]any{
		"instance": "metawriter-test", "run_dir": sc.runDir, "nats": natsConfig(natsURL),
		"redis": map[string]any{"addr": sc.redis.Addr(), "username": "", "password_env": "", "db": 0, "pool": 4,
			"timeout": "1s", "key_prefix": "metawriter"},
		"consumer": map[string]any{"durable": "metawriter", "batch": 64, "fetch_wait": "1s", "ack_wait": "5s",
			"max_deliver": -1, "max_ack_pending": 1000, "retry_min": "200ms", "retry_max": "1s"},
		"retention": "720h", "sweep_interval": "1h", "dedup_ttl": "192h", "event_ttl": "720h",
		"event_max_len": 1000000, "admin": map[string]any{"listen": "127.0.0.1:0"}, "log": logConfig(),
		"shutdown_timeout": "10s",
	})

	checkConfigs(t, sc.env, jmBin, jmConf, gatewayBin, gwConf, mwBin, sc.mwConf)
	sc.jobmaster = startProc(t, "jobmaster", jmBin, sc.env, "-c", jmConf)
	waitHealthy(t, sc.jobmaster, filepath.Join(sc.runDir, "jobmaster.admin"))
	sc.gateway = startProc(t, "gateway", gatewayBin, sc.env, "-c", gwConf)
	sc.gwAdmin = waitHealthy(t, sc.gateway, filepath.Join(sc.runDir, "gateway.admin"))
	sc.startMetawriter(t)
	return sc
}

// startMetawriter starts (or restarts) the metawriter and waits until it
// is healthy.
func (sc *statsCluster) startMetawriter(t *testing.T) {
	t.Helper()
	adminFile := filepath.Join(sc.runDir, "metawriter.admin")
	_ = os.Remove(adminFile) // a SIGKILLed metawriter leaves its file behind
	sc.metawriter = startProc(t, "metawriter", mwBin, sc.env, "-c", sc.mwConf)
	sc.mwAdmin = waitHealthy(t, sc.metawriter, adminFile)
}

// freezeMetawriter stops the metawriter with SIGSTOP: whatever the server
// delivers to it from now on stays unacknowledged.
func (sc *statsCluster) freezeMetawriter(t *testing.T) {
	t.Helper()
	require.True(t, sc.metawriter.alive(), "metawriter died on its own:\n%s", sc.metawriter.tail(30))
	require.NoError(t, sc.metawriter.cmd.Process.Signal(syscall.SIGSTOP))
}

// killMetawriter ends the metawriter with SIGKILL, as a crash would.
func (sc *statsCluster) killMetawriter(t *testing.T) {
	t.Helper()
	require.True(t, sc.metawriter.alive(), "metawriter died on its own:\n%s", sc.metawriter.tail(30))
	require.NoError(t, sc.metawriter.cmd.Process.Kill())
	<-sc.metawriter.done
}

// restartNATS starts the NATS server again on the same port with the same
// JetStream store.
func (sc *statsCluster) restartNATS(t *testing.T) {
	t.Helper()
	_, srv := testutil.StartNATSOnPort(t, sc.natsPort, sc.natsOpts)
	sc.stopNATS = func() { srv.Shutdown(); srv.WaitForShutdown() }
	// Cleanups run last-in first-out: stop the daemons before this server
	// goes (a daemon stopped without NATS waits out its shutdown timeout).
	t.Cleanup(func() { sc.shutdown(t) })
}

// shutdown stops the daemons with SIGTERM, metawriter first, and requires
// clean exits. It is idempotent.
func (sc *statsCluster) shutdown(t *testing.T) {
	t.Helper()
	for _, p := range []*proc{sc.metawriter, sc.gateway, sc.jobmaster} {
		if p.alive() {
			require.NoError(t, p.stop(t), "%s exit status:\n%s", p.name, p.tail(20))
		}
	}
}

// getJSON fetches url and decodes its JSON body.
func getJSON(url string, v any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return json.Unmarshal(b, v)
}

// metric reads one unlabelled sample from a Prometheus text endpoint.
func metric(adminURL, name string) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, adminURL+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

// gatewayStatus is the part of the gateway's /status the tests read.
type gatewayStatus struct {
	Connections  int64 `json:"connections"`
	StatsSpooled *int  `json:"stats_spooled"`
	Workers      []struct {
		User     string  `json:"user"`
		Worker   string  `json:"worker"`
		Accepted uint64  `json:"accepted"`
		DiffSum  float64 `json:"diff_sum"`
		Rejected uint64  `json:"rejected"`
	} `json:"workers"`
}

// metawriterStatus is the part of the metawriter's /status the tests read.
type metawriterStatus struct {
	Messages struct {
		Applied       uint64           `json:"batches_applied"`
		AppliedEvents uint64           `json:"events_applied"`
		Duplicates    uint64           `json:"duplicates_skipped"`
		Expired       uint64           `json:"expired_skipped"`
		Undecodable   uint64           `json:"undecodable"`
		Conflicts     uint64           `json:"conflicts"`
		RedisError    string           `json:"redis_error"`
		PullError     string           `json:"pull_error"`
		LastMinute    map[string]int64 `json:"last_minute"`
	} `json:"messages"`
	Consumer struct {
		Pending     *uint64 `json:"pending"`
		PendingAcks *int    `json:"pending_acks"`
		Error       string  `json:"error"`
	} `json:"consumer"`
}

// ---------------------------------------------------------------------------
// Test miner

// statsConn is one Stratum connection of the test miner, driven
// synchronously: submit writes one share and reads until its answer,
// handling notifications on the way. Not safe for concurrent use.
type statsConn struct {
	worker  string // "user.worker"
	conn    *sconn.Conn
	en1     []byte
	en2Size int
	diff    float64
	job     *work.Job // newest job
	cleans  int       // clean jobs seen
	nextID  uint64
	en2     uint64
	g       work.Grinder
	scratch []byte
}

// dialStats connects, subscribes and authorizes worker, and waits for the
// difficulty and the first job.
func dialStats(addr, worker string, en2Start uint64) (*statsConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := sconn.Dial(ctx, &net.Dialer{}, addr, false, 4096)
	if err != nil {
		return nil, err
	}
	c := &statsConn{worker: worker, conn: conn, nextID: 10, en2: en2Start}
	var b []byte
	b = stratum.AppendRequest(b, 1, "mining.subscribe", "statstest/1.0")
	b = stratum.AppendRequest(b, 2, "mining.authorize", worker, "x")
	if err := c.write(b); err != nil {
		conn.Close()
		return nil, err
	}
	fail := func(err error) (*statsConn, error) {
		conn.Close()
		return nil, fmt.Errorf("%s: %w", worker, err)
	}
	resp, err := c.await(1, 15*time.Second)
	if err != nil {
		return fail(err)
	}
	if resp.Error != nil {
		return fail(fmt.Errorf("subscribe refused: %v", resp.Error))
	}
	sub, err := sconn.ParseSubscribeResult(resp.Result)
	if err != nil {
		return fail(err)
	}
	c.en1, c.en2Size = sub.Extranonce1, sub.EN2Size
	if resp, err = c.await(2, 15*time.Second); err != nil {
		return fail(err)
	}
	if resp.Error != nil || string(resp.Result) != "true" {
		return fail(fmt.Errorf("authorize refused: %v %s", resp.Error, resp.Result))
	}
	deadline := time.Now().Add(30 * time.Second)
	for c.job == nil || c.diff == 0 {
		if time.Now().After(deadline) {
			return fail(errors.New("no difficulty and job within 30s of authorizing"))
		}
		if err := c.pump(200 * time.Millisecond); err != nil {
			return fail(err)
		}
	}
	if c.diff != statsDiff {
		return fail(fmt.Errorf("gateway set difficulty %g, want the fixed %g", c.diff, statsDiff))
	}
	return c, nil
}

func (c *statsConn) write(b []byte) error {
	_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.conn.Write(b)
}

func (c *statsConn) close() { c.conn.Close() }

// await reads until the reply to id, handling notifications.
func (c *statsConn) await(id uint64, timeout time.Duration) (stratum.Response, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	for {
		line, _, err := c.conn.ReadLine()
		if err != nil {
			return stratum.Response{}, fmt.Errorf("waiting for the reply to %d: %w", id, err)
		}
		resp, err := stratum.DecodeResponse(line)
		if err != nil {
			return stratum.Response{}, fmt.Errorf("undecodable line %q: %w", line, err)
		}
		if resp.Method != "" {
			if err := c.notification(resp, line); err != nil {
				return stratum.Response{}, err
			}
			continue
		}
		if sconn.ParseID(resp.ID) == id {
			return resp, nil
		}
	}
}

// pump handles whatever notifications arrive within d.
func (c *statsConn) pump(d time.Duration) error {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	for {
		line, _, err := c.conn.ReadLine()
		if sconn.IsTimeout(err) {
			return nil
		}
		if err != nil {
			return err
		}
		resp, err := stratum.DecodeResponse(line)
		if err != nil {
			return fmt.Errorf("undecodable line %q: %w", line, err)
		}
		if resp.Method != "" {
			if err := c.notification(resp, line); err != nil {
				return err
			}
		}
	}
}

func (c *statsConn) notification(resp stratum.Response, line []byte) error {
	switch resp.Method {
	case "mining.set_difficulty":
		d, err := stratum.ParseDifficulty(resp.Params)
		if err != nil {
			return fmt.Errorf("bad set_difficulty %s: %w", resp.Params, err)
		}
		c.diff = d
	case "mining.notify":
		n, err := stratum.ParseNotify(line)
		if err != nil {
			return fmt.Errorf("bad notify: %w", err)
		}
		j, err := work.NewJob(n)
		if err != nil {
			return err
		}
		if n.Clean && c.job != nil {
			c.cleans++
		}
		c.job = j
	case "client.reconnect":
		return errors.New("gateway sent client.reconnect")
	}
	return nil
}

// share grinds a share of job at the session difficulty: a block
// candidate if block is set, else a hash that is not one.
func (c *statsConn) share(job *work.Job, block bool) (work.Share, error) {
	en2 := make([]byte, c.en2Size)
	c.en2++
	work.PutEN2(en2, c.en2)
	c.scratch = c.g.Reset(job, c.en1, en2, 0, 0, job.NTime, c.scratch)
	target, err := work.ShareTarget(c.diff)
	if err != nil {
		return work.Share{}, err
	}
	for {
		sh, err := c.g.Find(&target, 1<<16, !block)
		if err != nil {
			return work.Share{}, err
		}
		if sh.Block == block {
			return sh, nil
		}
	}
}

// submit sends sh and returns the gateway's answer: nil for true, else
// its error.
func (c *statsConn) submit(sh work.Share) (*stratum.Error, error) {
	id := c.nextID
	c.nextID++
	b := stratum.AppendSubmitRequest(nil, id, c.worker, sh.JobID, sh.EN2, sh.NTime, sh.Nonce, 0, false)
	if err := c.write(b); err != nil {
		return nil, err
	}
	resp, err := c.await(id, 15*time.Second)
	if err != nil {
		return nil, err
	}
	if resp.Error != nil {
		return resp.Error, nil
	}
	if string(resp.Result) != "true" {
		return &stratum.Error{Code: -1, Message: "result " + string(resp.Result)}, nil
	}
	return nil, nil
}

// tally is what the gateway answered for one worker.
type tally struct {
	accepted, rejected uint64
	diffSum            float64
	// reasons counts rejects by the kind of bad share that was sent:
	// duplicate, unknown_job, stale (the gateway's reason names).
	reasons map[string]uint64
	blocks  []string // hashes of accepted block candidates
}

// flow submits shares on one connection per worker, one every interval
// (alternating), mixing in rejected shares, until stopped. It runs in its
// own goroutine; progress and the final tallies are read under mu.
type flow struct {
	addr     string
	interval time.Duration
	block    bool // submit one block candidate (and then a stale share) on the first worker

	stop      chan struct{}
	reconnect chan int // index of the worker to reconnect
	done      chan struct{}

	mu         sync.Mutex
	tallies    map[string]*tally // by worker
	perMinute  map[int64]int     // answers by the local minute they arrived in
	lastAnswer time.Time
	blockHash  string
	netDiff    float64  // network difficulty of the jobs
	unexpected []string // answers that differ from what the share should get
	connects   map[string]int
	err        error
}

func startFlow(t *testing.T, addr string, interval time.Duration, block bool) *flow {
	t.Helper()
	f := &flow{addr: addr, interval: interval, block: block, stop: make(chan struct{}),
		reconnect: make(chan int), done: make(chan struct{}), tallies: map[string]*tally{},
		perMinute: map[int64]int{}, connects: map[string]int{}}
	conns := make([]*statsConn, len(statsWorkers))
	for i, w := range statsWorkers {
		c, err := dialStats(addr, statsUser+"."+w, uint64(i)<<56)
		if err != nil {
			for _, c := range conns[:i] {
				c.close()
			}
		}
		require.NoError(t, err)
		conns[i] = c
		f.tallies[w] = &tally{reasons: map[string]uint64{}}
		f.connects[w] = 1
	}
	f.netDiff = conns[0].job.NetDiff
	go f.run(conns)
	t.Cleanup(func() { f.halt() })
	return f
}

// halt stops the flow and waits for it; it is idempotent.
func (f *flow) halt() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	<-f.done
}

func (f *flow) fail(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
}

func (f *flow) run(conns []*statsConn) {
	defer close(f.done)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.close()
			}
		}
	}()
	steps := make([]int, len(conns))
	last := make([]*work.Share, len(conns)) // last accepted share, for duplicates
	blockDone := !f.block
	tick := time.NewTicker(f.interval)
	defer tick.Stop()
	for turn := 0; ; turn = (turn + 1) % len(conns) {
		select {
		case <-f.stop:
			return
		case i := <-f.reconnect:
			conns[i].close()
			c, err := dialStats(f.addr, conns[i].worker, conns[i].en2+1<<48)
			if err != nil {
				conns[i] = nil
				f.fail(fmt.Errorf("reconnect %s: %w", statsWorkers[i], err))
				return
			}
			conns[i] = c
			// A share of the old session is a different (valid) share on
			// the new one: its extranonce1 is part of the hash.
			last[i] = nil
			f.mu.Lock()
			f.connects[statsWorkers[i]]++
			f.mu.Unlock()
			continue
		case <-tick.C:
		}
		c, w := conns[turn], statsWorkers[turn]
		// Handle notifications that arrived meanwhile, so shares go on
		// the newest job.
		if err := c.pump(time.Millisecond); err != nil {
			f.fail(fmt.Errorf("%s: %w", w, err))
			return
		}
		n := steps[turn]
		steps[turn]++
		var err error
		switch {
		case !blockDone && turn == 0 && n == 12:
			err = f.blockAndStale(c, conns, w)
			blockDone = true
		case n%9 == 8 && last[turn] != nil:
			_, err = f.send(c, w, *last[turn], "duplicate", nil)
		case n%11 == 10:
			var sh work.Share
			if sh, err = c.share(c.job, false); err == nil {
				sh.JobID = fmt.Sprintf("feed%04x", n) // a job id the gateway never issued
				_, err = f.send(c, w, sh, "unknown_job", nil)
			}
		default:
			var sh work.Share
			if sh, err = c.share(c.job, false); err == nil {
				_, err = f.send(c, w, sh, "", &last[turn])
			}
		}
		if err != nil {
			f.fail(fmt.Errorf("%s: %w", w, err))
			return
		}
	}
}

// blockAndStale submits a block candidate on c, waits until every
// connection has the new tip's clean job, then submits a (non-block) share
// on the old job, which is stale.
func (f *flow) blockAndStale(c *statsConn, conns []*statsConn, w string) error {
	old := c.job
	sh, err := c.share(old, true)
	if err != nil {
		return err
	}
	before := make([]int, len(conns))
	for i, cc := range conns {
		before[i] = cc.cleans
	}
	e, err := f.send(c, w, sh, "", nil)
	if err != nil {
		return err
	}
	if e != nil {
		return fmt.Errorf("block candidate rejected: %v", e)
	}
	f.mu.Lock()
	f.blockHash = sh.Hash.String()
	f.tallies[w].blocks = append(f.tallies[w].blocks, sh.Hash.String())
	f.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for i, cc := range conns {
		for cc.cleans == before[i] {
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: no clean job within 30s of the block", cc.worker)
			}
			if err := cc.pump(100 * time.Millisecond); err != nil {
				return err
			}
		}
	}
	stale, err := c.share(old, false)
	if err != nil {
		return err
	}
	_, err = f.send(c, w, stale, "stale", nil)
	return err
}

// send submits sh and tallies the answer. bad names the reject reason the
// share must get ("" for a valid share); last, if set, receives an
// accepted share.
func (f *flow) send(c *statsConn, w string, sh work.Share, bad string, last **work.Share) (*stratum.Error, error) {
	e, err := c.submit(sh)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tallies[w]
	f.perMinute[now.Unix()/60*60]++
	f.lastAnswer = now
	if e == nil {
		t.accepted++
		t.diffSum += c.diff
		if last != nil {
			s := sh
			*last = &s
		}
		if bad != "" {
			f.unexpected = append(f.unexpected, fmt.Sprintf("%s: %s share accepted", w, bad))
		}
		return nil, nil
	}
	t.rejected++
	want := map[string]int{"duplicate": 22, "unknown_job": 21, "stale": 21}[bad]
	if bad == "" || e.Code != want {
		f.unexpected = append(f.unexpected, fmt.Sprintf("%s: share meant to be %q answered %d %q (job %s)",
			w, bad, e.Code, e.Message, sh.JobID))
		bad = "unexpected"
	}
	t.reasons[bad]++
	return e, nil
}

// progress returns the answers per minute and whether the block step is
// done.
func (f *flow) progress() (perMinute map[int64]int, blockDone bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	perMinute = make(map[int64]int, len(f.perMinute))
	for k, v := range f.perMinute {
		perMinute[k] = v
	}
	return perMinute, !f.block || f.blockHash != "", f.err
}

// requestReconnect makes the flow reconnect worker i (a disconnected and
// a connected event).
func (f *flow) requestReconnect(t *testing.T, i int) {
	t.Helper()
	select {
	case f.reconnect <- i:
	case <-f.done:
		t.Fatalf("share flow ended: %v", f.err)
	case <-time.After(30 * time.Second):
		t.Fatal("share flow did not take the reconnect request")
	}
}

// result is the flow's outcome after halt.
type result struct {
	tallies    map[string]*tally
	accepted   uint64 // K
	rejected   uint64 // J
	diffSum    float64
	reasons    map[string]uint64
	minutes    []int64 // local minutes with answers, ascending
	lastAnswer time.Time
	blockHash  string
	netDiff    float64
	connects   map[string]int
}

func (f *flow) result(t *testing.T) result {
	t.Helper()
	f.halt()
	f.mu.Lock()
	defer f.mu.Unlock()
	require.NoError(t, f.err, "share flow failed")
	// Not fatal: the pipeline is still checked against whatever was
	// answered.
	assert.Empty(t, f.unexpected, "the gateway answered shares differently than their kind calls for")
	r := result{tallies: f.tallies, reasons: map[string]uint64{}, lastAnswer: f.lastAnswer, blockHash: f.blockHash,
		netDiff: f.netDiff, connects: f.connects}
	for _, tl := range f.tallies {
		r.accepted += tl.accepted
		r.rejected += tl.rejected
		r.diffSum += tl.diffSum
		for k, v := range tl.reasons {
			r.reasons[k] += v
		}
	}
	for m := range f.perMinute {
		r.minutes = append(r.minutes, m)
	}
	sort.Slice(r.minutes, func(i, j int) bool { return r.minutes[i] < r.minutes[j] })
	return r
}

// ---------------------------------------------------------------------------
// Redis reads (testutil's tiny RESP client)

func redisStrings(t *testing.T, r *testutil.Redis, args ...string) []string {
	t.Helper()
	v, err := r.Do(args...)
	require.NoError(t, err, "redis %v", args)
	arr, ok := v.([]any)
	require.True(t, ok, "redis %v answered %T %v", args, v, v)
	out := make([]string, len(arr))
	for i, e := range arr {
		s, ok := e.(string)
		require.True(t, ok, "redis %v: element %T", args, e)
		out[i] = s
	}
	return out
}

// hash returns HGETALL key as field → value.
func hash(t *testing.T, r *testutil.Redis, key string) map[string]string {
	t.Helper()
	kv := redisStrings(t, r, "HGETALL", key)
	m := make(map[string]string, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// countSum sums a hash of integer minute fields; every field must be a
// unix minute.
func countSum(t *testing.T, r *testutil.Redis, key string) (sum uint64, fields int) {
	t.Helper()
	h := hash(t, r, key)
	for f, v := range h {
		requireMinuteField(t, key, f)
		n, err := strconv.ParseUint(v, 10, 64)
		require.NoError(t, err, "%s field %s = %q is not a count", key, f, v)
		sum += n
	}
	return sum, len(h)
}

// floatSum sums a hash of numeric minute fields.
func floatSum(t *testing.T, r *testutil.Redis, key string) float64 {
	t.Helper()
	var sum float64
	for f, v := range hash(t, r, key) {
		requireMinuteField(t, key, f)
		x, err := strconv.ParseFloat(v, 64)
		require.NoError(t, err, "%s field %s = %q is not a number", key, f, v)
		sum += x
	}
	return sum
}

func requireMinuteField(t *testing.T, key, f string) {
	t.Helper()
	m, err := strconv.ParseInt(f, 10, 64)
	require.NoError(t, err, "%s: field %q is not a unix minute", key, f)
	require.Zero(t, m%60, "%s: field %q is not a multiple of 60", key, f)
	require.Equal(t, strconv.FormatInt(m, 10), f, "%s: field %q is not canonical decimal", key, f)
}

func requireRel(t *testing.T, want, got float64, what string) {
	t.Helper()
	require.LessOrEqual(t, math.Abs(got-want), 1e-9*math.Abs(want), "%s: got %.17g, want %.17g", what, got, want)
}

// ---------------------------------------------------------------------------
// Waiting and checking

// waitApplied waits until the gateway's last minute with shares was
// flushed (its end + flush delay) and everything reached Redis: the user's
// counts equal the answers, the gateway's spool is empty and the
// metawriter's consumer has nothing pending or unacknowledged. On timeout
// it fails with what it saw.
func waitApplied(t *testing.T, sc *statsCluster, r result, timeout time.Duration) {
	t.Helper()
	lastMinute := r.lastAnswer.Unix() / 60 * 60
	flushAt := time.Unix(lastMinute+60, 0).Add(statsFlushDelay + 500*time.Millisecond)
	t.Logf("last answer %s (minute %d); the gateway flushes it at %s", r.lastAnswer.Format(time.TimeOnly),
		lastMinute, flushAt.Format(time.TimeOnly))
	time.Sleep(time.Until(flushAt))
	deadline := time.Now().Add(timeout)
	var state string
	for {
		shares, _ := countSum(t, sc.redis, "btc:s:"+statsUser)
		rejects, _ := countSum(t, sc.redis, "btc:s:"+statsUser+":reject")
		var gs gatewayStatus
		gerr := getJSON(sc.gwAdmin+"/status", &gs)
		var ms metawriterStatus
		merr := getJSON(sc.mwAdmin+"/status", &ms)
		spooled := -1
		if gs.StatsSpooled != nil {
			spooled = *gs.StatsSpooled
		}
		var pending uint64 = math.MaxUint64
		pendingAcks := -1
		if ms.Consumer.Pending != nil && ms.Consumer.PendingAcks != nil {
			pending, pendingAcks = *ms.Consumer.Pending, *ms.Consumer.PendingAcks
		}
		state = fmt.Sprintf("redis shares %d (want %d), rejects %d (want %d); gateway spooled %d (%v); "+
			"metawriter pending %d, unacked %d, applied %d batches / %d events, %d duplicates, last minutes %v (%v)",
			shares, r.accepted, rejects, r.rejected, spooled, gerr, int64(pending), pendingAcks,
			ms.Messages.Applied, ms.Messages.AppliedEvents, ms.Messages.Duplicates, ms.Messages.LastMinute, merr)
		if shares == r.accepted && rejects == r.rejected && spooled == 0 && pending == 0 && pendingAcks == 0 {
			t.Logf("applied: %s", state)
			return
		}
		if time.Now().After(deadline) {
			require.Failf(t, "statistics did not add up", "after %s: %s", timeout, state)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// checkUserWorkers asserts the per user and per worker counts against the
// answers: accepted shares, their difficulty, goal and rejects.
func checkUserWorkers(t *testing.T, rd *testutil.Redis, r result) {
	t.Helper()
	k, j := r.accepted, r.rejected
	kd := float64(k) * statsDiff
	shares, _ := countSum(t, rd, "btc:s:"+statsUser)
	require.Equal(t, k, shares, "btc:s:alice")
	requireRel(t, kd, floatSum(t, rd, "btc:p:"+statsUser), "btc:p:alice")
	rejects, _ := countSum(t, rd, "btc:s:"+statsUser+":reject")
	require.Equal(t, j, rejects, "btc:s:alice:reject")
	require.Positive(t, r.netDiff)
	requireRel(t, kd/r.netDiff, floatSum(t, rd, "btc:g:"+statsUser), "btc:g:alice (difficulty / network difficulty)")
	for _, w := range statsWorkers {
		tl := r.tallies[w]
		require.Positive(t, tl.accepted, "worker %s had no accepted shares", w)
		require.Positive(t, tl.rejected, "worker %s had no rejected shares", w)
		key := "btc:s:" + statsUser + ":" + w
		n, _ := countSum(t, rd, key)
		require.Equal(t, tl.accepted, n, key)
		requireRel(t, float64(tl.accepted)*statsDiff, floatSum(t, rd, "btc:p:"+statsUser+":"+w), "btc:p:alice:"+w)
		n, _ = countSum(t, rd, key+":reject")
		require.Equal(t, tl.rejected, n, key+":reject")
	}
}

// checkWorkerEvents asserts the workers' events: one newworker entry each
// and one connected (and, with disconnects, one disconnected) event per
// connection the flow made.
func checkWorkerEvents(t *testing.T, rd *testutil.Redis, r result, disconnects bool) {
	t.Helper()
	newworker := redisStrings(t, rd, "LRANGE", "newworker", "0", "-1")
	newevent := redisStrings(t, rd, "LRANGE", "newevent", "0", "-1")
	countOf := func(list []string, entry string) int {
		n := 0
		for _, e := range list {
			if e == entry {
				n++
			}
		}
		return n
	}
	events := []string{"connected"}
	if disconnects {
		events = append(events, "disconnected")
	}
	for _, w := range statsWorkers {
		require.Equal(t, 1, countOf(newworker, fmt.Sprintf(`{"user":"alice","worker":"%s","coin":"btc"}`, w)),
			"newworker entries for %s: %q", w, newworker)
		for _, ev := range events {
			require.Equal(t, r.connects[w], countOf(newevent,
				fmt.Sprintf(`{"user":"alice","worker":"%s","coin":"btc","peer":"127.0.0.1","event":"%s"}`, w, ev)),
				"%s events for %s: %q", ev, w, newevent)
		}
	}
}

// checkRedis asserts the Redis layout against the answers.
func checkRedis(t *testing.T, sc *statsCluster, r result) {
	t.Helper()
	rd := sc.redis
	k, j := r.accepted, r.rejected
	kd := float64(k) * statsDiff
	requireRel(t, kd, r.diffSum, "answers: accepted difficulty")

	_, minutes := countSum(t, rd, "btc:s:"+statsUser)
	require.GreaterOrEqual(t, minutes, 2, "btc:s:alice must have at least two minute fields")
	checkUserWorkers(t, rd, r)

	// Pool-wide and per gateway host monitor values.
	mon := func(key string) float64 { return floatSum(t, rd, "btc:m:"+key) }
	host := func(key string) float64 { return floatSum(t, rd, "btc:mh:"+sc.gwInstance+":"+key) }
	require.Equal(t, float64(k), mon("share"), "btc:m:share")
	require.Equal(t, float64(k), host("share"), "btc:mh:%s:share", sc.gwInstance)
	require.Equal(t, float64(j), mon("reject"), "btc:m:reject")
	require.Equal(t, float64(j), host("reject"), "btc:mh:%s:reject", sc.gwInstance)
	requireRel(t, kd, mon("pow"), "btc:m:pow")
	requireRel(t, kd, host("pow"), "btc:mh:"+sc.gwInstance+":pow")
	requireRel(t, kd/r.netDiff, mon("goal"), "btc:m:goal")
	for reason, n := range r.reasons {
		if reason != "unexpected" { // its gateway reason is unknown
			require.Equal(t, float64(n), mon("reject_"+reason), "btc:m:reject_%s", reason)
		}
	}
	require.Equal(t, float64(len(r.tallies[statsWorkers[0]].blocks)), mon("block"), "btc:m:block")
	connects := 0
	for _, n := range r.connects {
		connects += n
	}
	require.Equal(t, float64(connects), mon("new_authorized"), "btc:m:new_authorized")
	maxConns := 0.0
	for f, v := range hash(t, rd, "btc:m:connections") {
		requireMinuteField(t, "btc:m:connections", f)
		x, err := strconv.ParseFloat(v, 64)
		require.NoError(t, err)
		maxConns = max(maxConns, x)
	}
	require.Equal(t, float64(len(statsWorkers)), maxConns, "btc:m:connections: the most connections sampled at a minute's end")
	require.Contains(t, redisStrings(t, rd, "SMEMBERS", "btc:mk:share"), sc.gwInstance, "btc:mk:share")
	mining := redisStrings(t, rd, "SMEMBERS", "mining:keys")
	for _, key := range []string{"btc:s:alice", "btc:p:alice", "btc:s:alice:reject", "btc:s:alice:rig1", "btc:s:alice:rig2"} {
		require.Contains(t, mining, key, "mining:keys")
	}
	monitor := redisStrings(t, rd, "SMEMBERS", "monitor:keys")
	for _, key := range []string{"btc:m:share", "btc:m:reject", "btc:m:pow"} {
		require.Contains(t, monitor, key, "monitor:keys")
	}

	checkWorkerEvents(t, rd, r, true)
	newblock := redisStrings(t, rd, "LRANGE", "newblock", "0", "-1")
	require.Len(t, newblock, len(r.tallies[statsWorkers[0]].blocks), "newblock: %q", newblock)
	for _, h := range r.tallies[statsWorkers[0]].blocks {
		require.Contains(t, newblock, fmt.Sprintf(`{"name":"BTC","hash":"%s","user":"alice","worker":"rig1"}`, h))
	}

	// The gateway's own view agrees with the answers (so a mismatch above
	// is the pipeline's, not the share accounting's).
	var gs gatewayStatus
	require.NoError(t, getJSON(sc.gwAdmin+"/status", &gs))
	for _, w := range statsWorkers {
		found := false
		for _, ws := range gs.Workers {
			if ws.User == statsUser && ws.Worker == w {
				found = true
				require.Equal(t, r.tallies[w].accepted, ws.Accepted, "gateway /status accepted of %s", w)
				require.Equal(t, r.tallies[w].rejected, ws.Rejected, "gateway /status rejected of %s", w)
			}
		}
		require.True(t, found, "gateway /status lists no worker %s", w)
	}
	dropped, err := metric(sc.gwAdmin, "pool_gateway_stats_dropped_total")
	require.NoError(t, err)
	require.Zero(t, dropped, "gateway dropped statistics messages")
	var ms metawriterStatus
	require.NoError(t, getJSON(sc.mwAdmin+"/status", &ms))
	require.Zero(t, ms.Messages.Conflicts, "metawriter conflicts")
	require.Zero(t, ms.Messages.Undecodable, "metawriter undecodable messages")
	require.Zero(t, ms.Messages.Expired, "metawriter expired batches")
}

// checkHashrate runs the analysts' command and checks its sums.
func checkHashrate(t *testing.T, sc *statsCluster, r result) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, mwBin, "hashrate", "-c", sc.mwConf, "--user", statsUser, "--minutes", "10", "--json")
	cmd.Env = append(os.Environ(), sc.env...)
	out, err := cmd.Output()
	var stderr string
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		stderr = string(ee.Stderr)
	}
	require.NoError(t, err, "metawriter hashrate: %s", stderr)
	var rep struct {
		User    string `json:"user"`
		Minutes []struct {
			Minute     int64   `json:"minute"`
			Shares     uint64  `json:"shares"`
			Rejects    uint64  `json:"rejects"`
			Difficulty float64 `json:"difficulty"`
			Hashrate   float64 `json:"hashrate"`
		} `json:"minutes"`
	}
	require.NoError(t, json.Unmarshal(out, &rep), "hashrate output:\n%s", out)
	require.Equal(t, statsUser, rep.User)
	require.Len(t, rep.Minutes, 10)
	var shares, rejects uint64
	var diff float64
	withShares := 0
	for _, m := range rep.Minutes {
		shares += m.Shares
		rejects += m.Rejects
		diff += m.Difficulty
		if m.Shares > 0 {
			withShares++
			requireRel(t, m.Difficulty*(1<<32)/60, m.Hashrate, "hashrate of minute "+strconv.FormatInt(m.Minute, 10))
		}
	}
	require.Equal(t, r.accepted, shares, "hashrate: shares over 10 minutes\n%s", out)
	require.Equal(t, r.rejected, rejects, "hashrate: rejects over 10 minutes\n%s", out)
	requireRel(t, float64(r.accepted)*statsDiff, diff, "hashrate: accepted difficulty over 10 minutes")
	require.GreaterOrEqual(t, withShares, 2, "hashrate: minutes with shares\n%s", out)
}

// ---------------------------------------------------------------------------
// Tests

// TestStatsEndToEnd: shares over at least two unix minutes, with
// duplicates, unknown-job shares, one block candidate and one stale share,
// end in Redis exactly as the gateway answered them.
func TestStatsEndToEnd(t *testing.T) {
	t.Parallel()
	start := time.Now()
	sc := startStatsCluster(t, "gw-e2e")
	t.Logf("cluster up in %s", time.Since(start).Round(time.Millisecond))

	f := startFlow(t, sc.stratum, 200*time.Millisecond, true)
	// Until the answers span two minutes, with a fair number in the last.
	flowStart := time.Now()
	testutil.Eventually(t, 150*time.Second, func() bool {
		perMinute, blockDone, err := f.progress()
		require.NoError(t, err, "share flow failed")
		var newest int64
		for m := range perMinute {
			newest = max(newest, m)
		}
		return blockDone && len(perMinute) >= 2 && perMinute[newest] >= 20
	}, "shares did not span two minutes")
	r := f.result(t)
	t.Logf("flow: %s, answers: %d accepted, %d rejected %v, minutes %v, block %s",
		time.Since(flowStart).Round(time.Millisecond), r.accepted, r.rejected, r.reasons, r.minutes, r.blockHash)
	require.NotEmpty(t, r.blockHash)
	require.Equal(t, uint64(1), r.reasons["stale"])
	require.Positive(t, r.reasons["duplicate"])
	require.Positive(t, r.reasons["unknown_job"])

	// The block reached the node.
	blockHash, err := chainhash.NewHashFromStr(r.blockHash)
	require.NoError(t, err)
	testutil.Eventually(t, 20*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := sc.btcd.Client.GetBlockHex(ctx, *blockHash)
		return err == nil
	}, "block %s not on the node", r.blockHash)

	waitApplied(t, sc, r, 60*time.Second)
	checkRedis(t, sc, r)
	checkHashrate(t, sc, r)
	sc.shutdown(t)
	t.Logf("total %s", time.Since(start).Round(time.Millisecond))
}

// TestStatsSurviveOutages: while shares flow, Redis is stopped for two
// minutes across two minute flushes, the metawriter is SIGKILLed and restarted (a
// worker reconnects while it is dead), and NATS is shut down for 15 s
// across the next minute flush (a worker reconnects meanwhile, so events
// go through the gateway's spool too). Afterwards Redis holds exactly the
// gateway's answers.
func TestStatsSurviveOutages(t *testing.T) {
	t.Parallel()
	start := time.Now()
	sc := startStatsCluster(t, "gw-outage")
	t.Logf("cluster up in %s", time.Since(start).Round(time.Millisecond))

	f := startFlow(t, sc.stratum, 150*time.Millisecond, false)
	alive := func() {
		t.Helper()
		_, _, err := f.progress()
		require.NoError(t, err, "share flow failed")
		require.True(t, sc.gateway.alive(), "gateway died:\n%s", sc.gateway.tail(30))
		require.True(t, sc.jobmaster.alive(), "jobmaster died:\n%s", sc.jobmaster.tail(30))
	}
	at := func(when time.Time, what string) {
		t.Helper()
		time.Sleep(time.Until(when))
		alive()
		t.Logf("%s: %s", time.Now().Format("15:04:05.000"), what)
	}
	// Align the outages with minute flushes (minute end + flush delay).
	b1 := time.Unix((time.Now().Add(12*time.Second).Unix()+59)/60*60, 0)
	redisBack := b1.Add(112 * time.Second) // two minutes after it stopped
	b2 := b1.Add(3 * time.Minute)

	// (a) Redis down for two minutes, from 8 s before b1: minutes b1-60 and
	// b1 are flushed (b1+2s, b1+62s) while it is down.
	at(b1.Add(-8*time.Second), "stop redis-server")
	sc.redis.Stop(t)
	sawOutage := false
	for time.Now().Before(redisBack) {
		var ms metawriterStatus
		if getJSON(sc.mwAdmin+"/status", &ms) == nil && ms.Messages.RedisError != "" {
			sawOutage = true
		}
		time.Sleep(250 * time.Millisecond)
	}
	require.True(t, sawOutage, "the metawriter never noticed Redis was down (nothing to apply during the outage?)")
	at(redisBack, "start redis-server after two minutes")
	sc.redis.Start(t)

	// (b) The metawriter crashes holding messages: frozen (SIGSTOP), it is
	// handed the events of a worker's reconnect without acknowledging
	// them, then SIGKILLed; more events arrive while it is dead.
	at(redisBack.Add(6*time.Second), "SIGSTOP metawriter; a worker reconnects")
	sc.freezeMetawriter(t)
	f.requestReconnect(t, 0)
	at(redisBack.Add(8*time.Second), "SIGKILL metawriter; a worker reconnects")
	sc.killMetawriter(t)
	f.requestReconnect(t, 1)
	at(redisBack.Add(13*time.Second), "restart metawriter")
	sc.startMetawriter(t)

	// (c) NATS down from 5 s before b2 to 10 s after: minute b2-60 is
	// flushed into the gateway's spool; the workers reconnect meanwhile.
	at(b2.Add(-5*time.Second), "shut NATS down")
	sc.stopNATS()
	f.requestReconnect(t, 0)
	f.requestReconnect(t, 1)
	sawSpool := false
	for time.Now().Before(b2.Add(10 * time.Second)) {
		var gs gatewayStatus
		if getJSON(sc.gwAdmin+"/status", &gs) == nil && gs.StatsSpooled != nil && *gs.StatsSpooled > 0 {
			sawSpool = true
		}
		time.Sleep(250 * time.Millisecond)
	}
	require.True(t, sawSpool, "the gateway's statistics spool never held anything while NATS was down")
	at(b2.Add(10*time.Second), "start NATS again")
	sc.restartNATS(t)

	// Shares keep flowing a while after the last outage.
	at(b2.Add(40*time.Second), "stop the shares")
	r := f.result(t)
	t.Logf("answers: %d accepted, %d rejected %v, minutes %v, connects %v", r.accepted, r.rejected, r.reasons,
		r.minutes, r.connects)
	require.GreaterOrEqual(t, len(r.minutes), 3)

	waitApplied(t, sc, r, 90*time.Second)
	checkRedis(t, sc, r)
	checkHashrate(t, sc, r)
	var ms metawriterStatus
	require.NoError(t, getJSON(sc.mwAdmin+"/status", &ms))
	t.Logf("metawriter after restart: %d batches, %d events applied, %d duplicates skipped",
		ms.Messages.Applied, ms.Messages.AppliedEvents, ms.Messages.Duplicates)
	sc.shutdown(t)
	t.Logf("total %s", time.Since(start).Round(time.Millisecond))
}
