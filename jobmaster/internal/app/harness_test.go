package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/nats-io/nats.go"
	zmq "github.com/pebbe/zmq4"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/hashgate/hashgate/jobmaster/internal/config"
	"github.com/hashgate/hashgate/pkg/admin"
	"github.com/hashgate/hashgate/pkg/blockutil"
	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/confutil"
	"github.com/hashgate/hashgate/pkg/testutil"
)

var regtest = &chaincfg.RegressionNetParams

const natsUser, natsPass = "hashgate", "s3cret-test"

// cluster is a jobmaster under test with its NATS server and a gateway-like
// client.
type cluster struct {
	t      testing.TB
	cfg    config.Config
	app    *App
	nc     *nats.Conn // the test's own "gateway" connection
	jobs   chan *bus.Job
	cancel context.CancelFunc
	done   chan error
}

func nodeConfig(name string, b *testutil.Btcd) config.NodeConfig {
	return config.NodeConfig{Name: name, RPCURL: "http://" + b.RPCAddr, RPCUser: b.RPCUser, RPCPass: b.RPCPass,
		LongPoll: true, Timeout: confutil.Duration(5 * time.Second)}
}

// baseConfig is a regtest config paying to payout.
func baseConfig(t testing.TB, natsURL string, payout string, nodes ...config.NodeConfig) config.Config {
	cfg := config.Default()
	cfg.Network = "regtest"
	cfg.Instance = "jm-test"
	cfg.RunDir = t.TempDir()
	cfg.NATS.URL = natsURL
	cfg.NATS.User, cfg.NATS.Pass = natsUser, natsPass
	cfg.Nodes = nodes
	cfg.Coinbase.Payouts = []config.PayoutConfig{{Address: payout, Weight: 1}}
	cfg.Admin = admin.Config{Listen: "127.0.0.1:0"}
	cfg.Submit.RetryInterval = confutil.Duration(100 * time.Millisecond)
	cfg.Submit.Retries = 3
	cfg.StaleGrace = confutil.Duration(30 * time.Second)
	return cfg
}

// startCluster runs the jobmaster with cfg and subscribes to its jobs.
func startCluster(t testing.TB, cfg config.Config) *cluster {
	t.Helper()
	require.NoError(t, cfg.Validate())
	level := zap.InfoLevel
	if _, bench := t.(*testing.B); bench {
		level = zap.WarnLevel // keep benchmark output readable
	}
	lg := zaptest.NewLogger(t, zaptest.Level(level))
	a, err := New(cfg, lg, zap.NewAtomicLevel())
	require.NoError(t, err)

	c := &cluster{t: t, cfg: cfg, app: a, jobs: make(chan *bus.Job, 1024), done: make(chan error, 1)}
	nc, err := nats.Connect(cfg.NATS.URL, nats.UserInfo(natsUser, natsPass))
	require.NoError(t, err)
	c.nc = nc
	_, err = nc.Subscribe(bus.Subject(cfg.NATS.Prefix, cfg.Coin, bus.TopicJob), func(m *nats.Msg) {
		var j bus.Job
		if err := j.Unmarshal(m.Data); err != nil {
			t.Errorf("gateway cannot decode a job: %v", err)
			return
		}
		c.jobs <- &j
	})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())

	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() { c.done <- a.Run(ctx) }()
	t.Cleanup(c.stop)
	return c
}

func (c *cluster) stop() {
	if c.cancel == nil {
		return
	}
	c.cancel()
	c.cancel = nil
	select {
	case err := <-c.done:
		require.NoError(c.t, err)
	case <-time.After(20 * time.Second):
		c.t.Error("jobmaster did not shut down within 20s")
	}
	c.nc.Close()
}

// nextJob waits for the next job matching ok.
func (c *cluster) nextJob(timeout time.Duration, what string, ok func(*bus.Job) bool) *bus.Job {
	c.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case j := <-c.jobs:
			if ok(j) {
				return j
			}
		case <-deadline:
			c.t.Fatalf("no job %s within %s", what, timeout)
			return nil
		}
	}
}

// drain discards jobs queued so far.
func (c *cluster) drain() {
	for {
		select {
		case <-c.jobs:
		default:
			return
		}
	}
}

// grind finds a nonce for job with the given extranonces whose hash meets
// (want=true) or misses (want=false) the job's network target, the way a
// miner would, and returns the share as a gateway would send it.
func grind(t testing.TB, j *bus.Job, en1, en2 []byte, want bool) *bus.FoundBlock {
	t.Helper()
	target := blockutil.TargetFromBits(j.Bits)
	cb := make([]byte, 0, len(j.Coinb1)+len(en1)+len(en2)+len(j.Coinb2))
	cb = append(append(append(append(cb, j.Coinb1...), en1...), en2...), j.Coinb2...)
	cbid := chainhash.Hash(sha256d(cb))
	root := blockutil.MerkleRootFromBranch(cbid, j.MerkleBranch)
	ntime := j.CurTime
	for nonce := uint32(0); nonce < 1<<24; nonce++ {
		h := blockutil.MakeHeader(j.Version, &j.PrevHash, &root, ntime, j.Bits, nonce)
		hash := h.Hash()
		if blockutil.HashMeets(&hash, &target) == want {
			return &bus.FoundBlock{JobID: j.ID, Extranonce1: en1, Extranonce2: en2, NTime: ntime, Nonce: nonce,
				Version: j.Version, BlockHash: hash, Source: "test-gateway", User: "alice", Worker: "rig1",
				FoundUnixNano: time.Now().UnixNano()}
		}
	}
	t.Fatal("no nonce found")
	return nil
}

func sha256d(b []byte) (h [32]byte) {
	first := sha256.Sum256(b)
	return sha256.Sum256(first[:])
}

// submit hands a found block to the jobmaster over the bus and waits for
// the acknowledgement.
func (c *cluster) submit(fb *bus.FoundBlock) *bus.BlockResult {
	c.t.Helper()
	m, err := c.nc.Request(bus.Subject(c.cfg.NATS.Prefix, c.cfg.Coin, bus.TopicBlock), fb.Marshal(), 30*time.Second)
	require.NoError(c.t, err)
	var res bus.BlockResult
	require.NoError(c.t, res.Unmarshal(m.Data))
	return &res
}

// healthz returns the admin endpoint's /healthz status code and body.
func (c *cluster) healthz() (int, map[string]any) {
	c.t.Helper()
	resp, err := http.Get(c.app.admin.URL() + "/healthz")
	require.NoError(c.t, err)
	defer resp.Body.Close()
	var body map[string]any
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &body)
	return resp.StatusCode, body
}

// addresses returns one regtest address of every payout type.
func addresses(t testing.TB) map[string]btcutil.Address {
	t.Helper()
	key, err := btcec.NewPrivateKey()
	require.NoError(t, err)
	pub := key.PubKey().SerializeCompressed()
	p2pkh, err := btcutil.NewAddressPubKeyHash(btcutil.Hash160(pub), regtest)
	require.NoError(t, err)
	redeem := []byte{0x51} // OP_TRUE
	p2sh, err := btcutil.NewAddressScriptHash(redeem, regtest)
	require.NoError(t, err)
	p2wpkh, err := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(pub), regtest)
	require.NoError(t, err)
	ws := sha256.Sum256(redeem)
	p2wsh, err := btcutil.NewAddressWitnessScriptHash(ws[:], regtest)
	require.NoError(t, err)
	p2tr, err := btcutil.NewAddressTaproot(schnorr.SerializePubKey(key.PubKey()), regtest)
	require.NoError(t, err)
	return map[string]btcutil.Address{"p2pkh": p2pkh, "p2sh": p2sh, "p2wpkh": p2wpkh, "p2wsh": p2wsh, "p2tr": p2tr}
}

// slowProxy sits in front of a real node and delays getblocktemplate calls,
// to make "the template is slow" happen on demand. Everything else passes
// straight through to the real btcd.
type slowProxy struct {
	srv   *httptest.Server
	mu    sync.Mutex
	delay time.Duration
}

func newSlowProxy(t testing.TB, target string) *slowProxy {
	u, err := url.Parse("http://" + target)
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &slowProxy{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if strings.Contains(string(body), `"getblocktemplate"`) {
			p.mu.Lock()
			d := p.delay
			p.mu.Unlock()
			time.Sleep(d)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *slowProxy) setDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// corePub plays Bitcoin Core's ZMQ publisher (btcd has none): a real zmq4
// PUB socket sending Core's multipart hashblock.
type corePub struct {
	sock *zmq.Socket
	seq  uint32
}

// startZMQCluster runs a jobmaster on node with polling slowed to 10 s and
// long polls off, subscribed to a test PUB socket, so only ZMQ can explain a
// fast job. It returns once the first job is out and the subscription has
// reached the publisher.
func startZMQCluster(t testing.TB, node *testutil.Btcd) (*cluster, *corePub) {
	t.Helper()
	sock, err := zmq.NewSocket(zmq.PUB)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sock.Close() })
	endpoint := fmt.Sprintf("tcp://127.0.0.1:%d", testutil.FreePort(t))
	require.NoError(t, sock.Bind(endpoint))
	natsURL, _ := testutil.StartNATS(t, testutil.NATSOptions{User: natsUser, Pass: natsPass})
	nc := nodeConfig("core-like", node)
	nc.LongPoll = false
	nc.ZMQHashBlock = endpoint
	cfg := baseConfig(t, natsURL, "bcrt1ql7fk7lfuvazvrytsx4efz5pv75j23cfkmjfytk", nc)
	cfg.PollInterval = confutil.Duration(10 * time.Second)
	cfg.RefreshInterval = confutil.Duration(60 * time.Second)
	c := startCluster(t, cfg)
	c.nextJob(20*time.Second, "at start", func(*bus.Job) bool { return true })
	time.Sleep(300 * time.Millisecond) // let the SUB socket's subscription reach the PUB
	return c, &corePub{sock: sock}
}

// hashblock sends topic, the hash in display order and the next sequence
// number (4 bytes LE), as Core does.
func (p *corePub) hashblock(t testing.TB, h chainhash.Hash) {
	t.Helper()
	var display [32]byte
	for i := range display {
		display[i] = h[31-i]
	}
	p.seq++
	_, err := p.sock.SendMessage("hashblock", display[:], binary.LittleEndian.AppendUint32(nil, p.seq))
	require.NoError(t, err)
}
