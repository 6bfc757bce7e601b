package app

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/hashgate/hashgate/gateway/internal/config"
	"github.com/hashgate/hashgate/pkg/admin"
	"github.com/hashgate/hashgate/pkg/blockutil"
	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/confutil"
	"github.com/hashgate/hashgate/pkg/stratum"
	"github.com/hashgate/hashgate/pkg/testutil"
	"github.com/hashgate/hashgate/pkg/work"
)

const natsUser, natsPass = "hashgate", "pw-test"

// Jobs have a network difficulty of 2e-5 so tests can find blocks and
// non-block shares cheaply.
const netDiff = 2e-5

var netBits = func() uint32 {
	t, _ := blockutil.TargetFromDifficulty(netDiff)
	return blockchain.BigToCompact(t.Big())
}()

// fixture is a gateway under test; the test plays the jobmaster on the bus.
type fixture struct {
	t      *testing.T
	cfg    config.Config
	app    *App
	nc     *nats.Conn
	mu     sync.Mutex
	cur    *bus.Job
	blocks chan *bus.FoundBlock
	cancel context.CancelFunc
	done   chan error
}

func newFixture(t *testing.T, mutate func(*config.Config)) *fixture {
	url, _ := testutil.StartNATS(t, testutil.NATSOptions{User: natsUser, Pass: natsPass})
	cfg := config.Default()
	cfg.Network, cfg.Instance, cfg.GatewayID, cfg.RunDir = "regtest", "gw-test", 3, t.TempDir()
	cfg.NATS.URL, cfg.NATS.User, cfg.NATS.Pass = url, natsUser, natsPass
	cfg.Stratum.Listen = fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	cfg.Stratum.Loops = 2
	cfg.Vardiff.Min, cfg.Vardiff.Start = 1e-8, 1e-7
	cfg.Admin = admin.Config{Listen: "127.0.0.1:0"}
	cfg.Blocks.FallbackAfter = confutil.Duration(time.Second)
	if mutate != nil {
		mutate(&cfg)
	}
	require.NoError(t, cfg.Validate())
	f := &fixture{t: t, cfg: cfg, blocks: make(chan *bus.FoundBlock, 16), done: make(chan error, 1)}
	nc, err := nats.Connect(url, nats.UserInfo(natsUser, natsPass))
	require.NoError(t, err)
	f.nc = nc
	t.Cleanup(nc.Close)
	// The jobmaster's side of the bus.
	_, err = nc.Subscribe(bus.Subject("hashgate", "btc", bus.TopicJobCurrent), func(m *nats.Msg) {
		f.mu.Lock()
		cur := f.cur
		f.mu.Unlock()
		if cur != nil {
			_ = m.Respond(cur.Marshal())
		}
	})
	require.NoError(t, err)
	_, err = nc.Subscribe(bus.Subject("hashgate", "btc", bus.TopicBlock), func(m *nats.Msg) {
		var fb bus.FoundBlock
		require.NoError(t, fb.Unmarshal(m.Data))
		f.blocks <- &fb
		res := bus.BlockResult{Status: bus.BlockAccepted, BlockHash: fb.BlockHash, JobID: fb.JobID}
		_ = m.Respond(res.Marshal())
	})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	return f
}

func (f *fixture) start() {
	a, err := New(f.cfg, zaptest.NewLogger(f.t, zaptest.Level(zap.InfoLevel)), zap.NewAtomicLevel())
	require.NoError(f.t, err)
	f.app = a
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go func() { f.done <- a.Run(ctx) }()
	f.t.Cleanup(func() {
		cancel()
		select {
		case err := <-f.done:
			require.NoError(f.t, err)
		case <-time.After(20 * time.Second):
			f.t.Error("gateway did not stop")
		}
	})
	testutil.Eventually(f.t, 10*time.Second, func() bool {
		c, err := net.Dial("tcp", f.cfg.Stratum.Listen)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, "stratum port listening")
}

// publish sends a job as the jobmaster would.
func (f *fixture) publish(id string, height int64, clean bool) *bus.Job {
	addr, err := blockutil.DecodeAddress("bcrt1ql7fk7lfuvazvrytsx4efz5pv75j23cfkmjfytk", &chaincfg.RegressionNetParams)
	require.NoError(f.t, err)
	cb, err := blockutil.BuildCoinbase(blockutil.CoinbaseParams{Height: height, Value: 5000000000,
		Payouts: []blockutil.Payout{{Address: addr, Weight: 1}}, Tag: []byte("/t/"), Extranonce1Size: 4, Extranonce2Size: 8})
	require.NoError(f.t, err)
	now := uint32(time.Now().Unix())
	j := &bus.Job{ID: id, Height: height, PrevHash: chainhash.DoubleHashH([]byte(fmt.Sprint(height))),
		Version: 0x20000000, Bits: netBits, CurTime: now, MinTime: now - 600, Coinb1: cb.Coinb1, Coinb2: cb.Coinb2,
		Extranonce1Size: 4, Extranonce2Size: 8, Clean: clean, CoinbaseValue: 5000000000, CreatedUnixNano: time.Now().UnixNano()}
	f.mu.Lock()
	f.cur = j
	f.mu.Unlock()
	require.NoError(f.t, f.nc.Publish(bus.Subject("hashgate", "btc", bus.TopicJob), j.Marshal()))
	return j
}

func (f *fixture) healthz() (int, string) {
	raw, err := os.ReadFile(filepath.Join(f.cfg.RunDir, "gateway.admin"))
	url := strings.TrimSpace(string(raw))
	if err != nil {
		url = f.app.admin.URL()
	}
	resp, err := http.Get(url + "/healthz")
	require.NoError(f.t, err)
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	b, _ := json.Marshal(body)
	return resp.StatusCode, string(b)
}

// miner is a raw-TCP Stratum client.
type miner struct {
	t    *testing.T
	c    net.Conn
	r    *bufio.Reader
	id   int
	en1  []byte
	diff float64
	job  *stratum.Notify
}

func dial(t *testing.T, addr string) *miner {
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return &miner{t: t, c: c, r: bufio.NewReader(c)}
}

func (m *miner) send(method string, params ...any) int {
	m.id++
	_, err := m.c.Write(stratum.AppendRequest(nil, uint64(m.id), method, params...))
	require.NoError(m.t, err)
	return m.id
}

// read returns the next line as a response, tracking difficulty and jobs.
func (m *miner) read(timeout time.Duration) (stratum.Response, error) {
	_ = m.c.SetReadDeadline(time.Now().Add(timeout))
	line, err := m.r.ReadBytes('\n')
	if err != nil {
		return stratum.Response{}, err
	}
	r, err := stratum.DecodeResponse(line)
	require.NoError(m.t, err, string(line))
	switch r.Method {
	case "mining.set_difficulty":
		var p []float64
		require.NoError(m.t, json.Unmarshal(r.Params, &p))
		m.diff = p[0]
	case "mining.notify":
		n, err := stratum.ParseNotify(line)
		require.NoError(m.t, err)
		m.job = n
	}
	return r, nil
}

// until reads lines until ok returns true.
func (m *miner) until(what string, ok func(stratum.Response) bool) stratum.Response {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		r, err := m.read(time.Until(deadline))
		require.NoError(m.t, err, "waiting for %s", what)
		if ok(r) {
			return r
		}
	}
	m.t.Fatalf("no %s", what)
	return stratum.Response{}
}

func (m *miner) reply(id int) stratum.Response {
	return m.until(fmt.Sprintf("reply %d", id), func(r stratum.Response) bool { return string(r.ID) == fmt.Sprint(id) })
}

func (m *miner) login(user string) {
	id := m.send("mining.subscribe", "test-miner/1.0")
	var sub []json.RawMessage
	require.NoError(m.t, json.Unmarshal(m.reply(id).Result, &sub))
	var en1 string
	require.NoError(m.t, json.Unmarshal(sub[1], &en1))
	var err error
	m.en1, err = hex.DecodeString(en1)
	require.NoError(m.t, err)
	id = m.send("mining.authorize", user, "x")
	require.Equal(m.t, "true", string(m.reply(id).Result))
	m.until("notify", func(r stratum.Response) bool { return r.Method == "mining.notify" })
}

// share finds a share on the current job with difficulty in [min, max).
func (m *miner) share(min, max float64, seed byte) (en2 []byte, ntime, nonce uint32, hash chainhash.Hash) {
	j := m.job
	en2 = make([]byte, 8)
	en2[0] = seed
	var prev chainhash.Hash = j.PrevHash
	for n := uint32(0); ; n++ {
		cb := append(append(append(append([]byte{}, j.Coinb1...), m.en1...), en2...), j.Coinb2...)
		root := blockutil.MerkleRootFromBranch(chainhash.DoubleHashH(cb), branch(j))
		h := blockutil.MakeHeader(j.Version, &prev, &root, j.NTime, j.Bits, n)
		hash = h.Hash()
		if d := blockutil.HashDifficulty(&hash); d >= min && d < max {
			return en2, j.NTime, n, hash
		}
	}
}

func branch(n *stratum.Notify) []chainhash.Hash {
	out := make([]chainhash.Hash, len(n.MerkleBranch))
	for i, b := range n.MerkleBranch {
		out[i] = b
	}
	return out
}

func (m *miner) submit(user string, en2 []byte, ntime, nonce uint32) stratum.Response {
	id := m.send("mining.submit", user, m.job.JobID, hex.EncodeToString(en2), fmt.Sprintf("%08x", ntime), fmt.Sprintf("%08x", nonce))
	return m.reply(id)
}

// TestMinersHeldUntilJobThenMine: a miner connecting before any job is held;
// the first job releases it; shares are accepted, a block is delivered to the
// jobmaster over the bus, and /healthz follows the job state.
func TestMinersHeldUntilJobThenMine(t *testing.T) {
	f := newFixture(t, func(c *config.Config) { c.Stratum.JobTimeout = confutil.Duration(2 * time.Second) })
	f.start()
	code, _ := f.healthz()
	require.Equal(t, http.StatusServiceUnavailable, code, "not ready without a job")

	m := dial(t, f.cfg.Stratum.Listen)
	id := m.send("mining.subscribe", "early-bird")
	_, err := m.read(300 * time.Millisecond)
	require.Error(t, err, "held: no reply before the first job")

	f.publish("j1", 100, true)
	r := m.reply(id)
	require.Nil(t, r.Error)
	id = m.send("mining.authorize", "alice.rig1", "x")
	require.Equal(t, "true", string(m.reply(id).Result))
	m.until("notify", func(r stratum.Response) bool { return r.Method == "mining.notify" })
	require.Equal(t, "j1", m.job.JobID)
	require.True(t, m.job.Clean)
	require.Equal(t, 1e-7, m.diff)
	var sub []json.RawMessage
	require.NoError(t, json.Unmarshal(r.Result, &sub))
	var en1 string
	require.NoError(t, json.Unmarshal(sub[1], &en1))
	m.en1, _ = hex.DecodeString(en1)
	require.Equal(t, byte(3), m.en1[0], "gateway id prefixes extranonce1")

	testutil.Eventually(t, 5*time.Second, func() bool { c, _ := f.healthz(); return c == http.StatusOK }, "ready with a job")

	en2, ntime, nonce, _ := m.share(1e-7, netDiff, 1)
	res := m.submit("alice.rig1", en2, ntime, nonce)
	require.Nil(t, res.Error, "accepted share")
	require.Equal(t, "true", string(res.Result))

	en2, ntime, nonce, hash := m.share(netDiff, 1e300, 2)
	res = m.submit("alice.rig1", en2, ntime, nonce)
	require.Nil(t, res.Error)
	select {
	case fb := <-f.blocks:
		require.Equal(t, hash, fb.BlockHash)
		require.Equal(t, "j1", fb.JobID)
		require.Equal(t, "alice", fb.User)
		require.Equal(t, "rig1", fb.Worker)
		require.Equal(t, m.en1, fb.Extranonce1)
	case <-time.After(5 * time.Second):
		t.Fatal("found block never reached the jobmaster")
	}

	// The jobmaster goes silent: still serving, health says so.
	testutil.Eventually(t, 5*time.Second, func() bool {
		c, body := f.healthz()
		return c == http.StatusOK && strings.Contains(body, "degraded") && strings.Contains(body, "silent")
	}, "degraded after job_timeout")
}

// TestFanOutAndLimits: a clean job reaches every session; over-long lines,
// the connection cap and idle sessions are closed with their reasons.
func TestFanOutAndLimits(t *testing.T) {
	f := newFixture(t, func(c *config.Config) {
		c.Stratum.MaxConnections = 60
		c.Stratum.MaxLine = 1024
	})
	f.publish("k1", 200, true)
	f.start()
	var miners []*miner
	for i := 0; i < 50; i++ {
		m := dial(t, f.cfg.Stratum.Listen)
		m.login(fmt.Sprintf("user%d.w", i))
		miners = append(miners, m)
	}
	f.publish("k2", 201, true)
	for _, m := range miners {
		m.until("new job", func(r stratum.Response) bool { return r.Method == "mining.notify" && m.job.JobID == "k2" })
		require.True(t, m.job.Clean)
	}

	long := dial(t, f.cfg.Stratum.Listen)
	_, err := long.c.Write([]byte(strings.Repeat("x", 2048)))
	require.NoError(t, err)
	_, err = long.read(3 * time.Second)
	require.Error(t, err, "closed for an over-long line")

	// The cap: 50 logged in + up to 10 more.
	var extra []net.Conn
	refused := 0
	for i := 0; i < 15; i++ {
		c, err := net.Dial("tcp", f.cfg.Stratum.Listen)
		require.NoError(t, err)
		extra = append(extra, c)
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
			refused++
		}
	}
	require.GreaterOrEqual(t, refused, 5, "connections above max_connections are refused")
	for _, c := range extra {
		c.Close()
	}
}

// TestIdleAndUnauthorizedClosed: silent sessions and sessions that never
// authorize are closed by the once-a-second sweep.
func TestIdleAndUnauthorizedClosed(t *testing.T) {
	f := newFixture(t, func(c *config.Config) {
		c.Stratum.IdleTimeout = confutil.Duration(2 * time.Second)
		c.Stratum.AuthTimeout = confutil.Duration(time.Second)
	})
	f.publish("i1", 300, true)
	f.start()
	idle := dial(t, f.cfg.Stratum.Listen)
	idle.login("alice.idle")
	lurker := dial(t, f.cfg.Stratum.Listen)
	lurker.send("mining.subscribe")
	for _, m := range []*miner{idle, lurker} {
		var err error
		for err == nil {
			_, err = m.read(6 * time.Second)
		}
		require.False(t, isTimeout(err), "closed by the sweep, not a read timeout: %v", err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestPrepareJobNotify checks that a job becomes the notify line miners get.
func TestPrepareJobNotify(t *testing.T) {
	b := &bus.Job{ID: "abc", Height: 1, Bits: 0x207fffff, Version: 0x20000000, CurTime: 1700000000,
		Coinb1: []byte{1, 2}, Coinb2: []byte{3, 4}, Extranonce1Size: 4, Extranonce2Size: 8,
		PrevHash: *chaincfg.MainNetParams.GenesisHash}
	j, err := work.Prepare(b, time.Now())
	require.NoError(t, err)
	n, err := stratum.ParseNotify(j.NotifyClean)
	require.NoError(t, err)
	require.Equal(t, "abc", n.JobID)
	require.True(t, n.Clean)
	require.Equal(t, [32]byte(*chaincfg.MainNetParams.GenesisHash), n.PrevHash)
	require.Contains(t, string(j.NotifyClean), "0a8ce26f72b3f1b646a2a6c14ff763ae65831e939c085ae10019d66800000000")
	k, err := stratum.ParseNotify(j.NotifyKeep)
	require.NoError(t, err)
	require.False(t, k.Clean)
}

// TestOperatorActions: operators reach miners with client.show_message and
// client.reconnect through the admin endpoint.
func TestOperatorActions(t *testing.T) {
	f := newFixture(t, nil)
	f.publish("o1", 400, true)
	f.start()
	alice := dial(t, f.cfg.Stratum.Listen)
	alice.login("alice.rig1")
	bob := dial(t, f.cfg.Stratum.Listen)
	bob.login("bob.rig1")
	testutil.Eventually(t, 5*time.Second, func() bool { c, _ := f.healthz(); return c == http.StatusOK }, "ready")
	post := func(path string) (int, string) {
		resp, err := http.Post(f.app.admin.URL()+path, "text/plain", nil)
		require.NoError(t, err)
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = io.Copy(&b, resp.Body)
		return resp.StatusCode, b.String()
	}
	code, body := post("/clients/message?worker=alice.rig1&msg=maintenance+at+noon")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `"sessions":1`)
	r := alice.until("show_message", func(r stratum.Response) bool { return r.Method == "client.show_message" })
	require.Contains(t, string(r.Params), "maintenance at noon")

	code, body = post("/clients/reconnect?user=bob&host=pool2.example&port=3333&wait=5")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `"sessions":1`)
	r = bob.until("reconnect", func(r stratum.Response) bool { return r.Method == "client.reconnect" })
	require.Contains(t, string(r.Params), "pool2.example")

	code, _ = post("/clients/reconnect")
	require.Equal(t, http.StatusBadRequest, code, "an action must say which sessions")
}

// TestReloadVersionMask: narrowing the pool's version mask on SIGHUP reload
// tells every version-rolling miner with mining.set_version_mask.
func TestReloadVersionMask(t *testing.T) {
	f := newFixture(t, nil)
	f.publish("m1", 500, true)
	f.start()
	roller := dial(t, f.cfg.Stratum.Listen)
	id := roller.send("mining.configure", []string{"version-rolling"}, map[string]any{"version-rolling.mask": "1fffe000"})
	var res map[string]any
	require.NoError(t, json.Unmarshal(roller.reply(id).Result, &res))
	require.Equal(t, "1fffe000", res["version-rolling.mask"])
	roller.login("alice.asic")
	plain := dial(t, f.cfg.Stratum.Listen)
	plain.login("bob.cpu")

	cfg := f.cfg
	cfg.Stratum.VersionMask = "00ffe000"
	require.NoError(t, f.app.Reload(cfg))
	r := roller.until("set_version_mask", func(r stratum.Response) bool { return r.Method == "mining.set_version_mask" })
	require.JSONEq(t, `["00ffe000"]`, string(r.Params))
	// The miner that never negotiated version rolling hears nothing.
	_, err := plain.read(500 * time.Millisecond)
	require.True(t, isTimeout(err), "no set_version_mask for a miner without version rolling: %v", err)
}
