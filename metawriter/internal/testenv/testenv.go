// Package testenv is the metawriter's test harness, shared by the
// in-process tests (internal/app) and the process tests (package main): a
// real redis-server, an embedded NATS server with JetStream, a publisher
// that sends batches and events as a gateway does, and a ledger of what was
// published that checks Redis holds exactly its sums. Only tests import it.
package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hashgate/hashgate/metawriter/internal/config"
	"github.com/hashgate/hashgate/pkg/admin"
	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/confutil"
	"github.com/hashgate/hashgate/pkg/testutil"
)

// NATS credentials of the test server.
const (
	NATSUser = "hashgate"
	NATSPass = "s3cret-test"
	Prefix   = "hashgate"
)

// Env is one test's Redis, NATS and gateway-side publisher.
type Env struct {
	T       testing.TB
	Redis   *testutil.Redis
	RDB     *redis.Client // the test's own Redis client
	NATSURL string
	NATS    *natsserver.Server
	natsOpt testutil.NATSOptions
	natsPrt int
	NC      *nats.Conn // the test's "gateway" connection
	JS      jetstream.JetStream
}

// New starts Redis (password "redis-test") and NATS with JetStream and
// creates the stats stream as a gateway would.
func New(t testing.TB) *Env {
	t.Helper()
	r := testutil.StartRedisWith(t, testutil.RedisOptions{Password: "redis-test"})
	nopt := testutil.NATSOptions{JetStream: true, User: NATSUser, Pass: NATSPass, StoreDir: filepath.Join(t.TempDir(), "js")}
	url, srv := testutil.StartNATS(t, nopt)
	nc, err := nats.Connect(url, nats.UserInfo(NATSUser, NATSPass), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = bus.EnsureStatsStream(ctx, js, Prefix)
	require.NoError(t, err)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr(), Password: r.Password, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { _ = rdb.Close() })
	return &Env{T: t, Redis: r, RDB: rdb, NATSURL: url, NATS: srv, natsOpt: nopt, natsPrt: testutil.NATSPort(t, srv), NC: nc, JS: js}
}

// StopNATS shuts the NATS server down (its JetStream store stays).
func (e *Env) StopNATS() {
	e.NATS.Shutdown()
	e.NATS.WaitForShutdown()
}

// StartNATS starts the NATS server again on the same port and store, and
// waits until the test's own connection is back.
func (e *Env) StartNATS() {
	e.T.Helper()
	_, e.NATS = testutil.StartNATSOnPort(e.T, e.natsPrt, e.natsOpt)
	testutil.Eventually(e.T, 10*time.Second, e.NC.IsConnected, "test connection did not reconnect")
}

// Config is a metawriter config for this Env with short timings: AckWait
// 3 s, pulls of 500 ms, Redis retries from 100 ms to 500 ms. The Redis
// password comes from the environment variable METAWRITER_TEST_REDIS_PASS,
// which Config sets.
func (e *Env) Config(instance string) config.Config {
	e.T.Setenv("METAWRITER_TEST_REDIS_PASS", e.Redis.Password)
	cfg := config.Default()
	cfg.Instance = instance
	cfg.RunDir = e.T.TempDir()
	cfg.NATS.URL = e.NATSURL
	cfg.NATS.User, cfg.NATS.Pass = NATSUser, NATSPass
	cfg.NATS.Prefix = Prefix
	cfg.Redis.Addr = e.Redis.Addr()
	cfg.Redis.PasswordEnv = "METAWRITER_TEST_REDIS_PASS"
	cfg.Redis.Timeout = confutil.Duration(time.Second)
	cfg.Consumer.Batch = 16
	cfg.Consumer.FetchWait = confutil.Duration(500 * time.Millisecond)
	cfg.Consumer.AckWait = confutil.Duration(3 * time.Second)
	cfg.Consumer.RetryMin = confutil.Duration(100 * time.Millisecond)
	cfg.Consumer.RetryMax = confutil.Duration(500 * time.Millisecond)
	cfg.Admin = admin.Config{Listen: "127.0.0.1:0"}
	cfg.ShutdownTimeout = confutil.Duration(5 * time.Second)
	cfg.Log.Level = "info"
	require.NoError(e.T, cfg.Validate())
	return cfg
}

// PublishStats publishes a batch of coin under JetStream message id msgID
// (empty: the batch's ID, as a gateway does).
func (e *Env) PublishStats(coin string, b *bus.StatsBatch, msgID string) error {
	if msgID == "" {
		msgID = b.ID()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := e.JS.Publish(ctx, bus.Subject(Prefix, coin, bus.TopicStats), b.Marshal(), jetstream.WithMsgID(msgID))
	return err
}

// PublishEvent publishes an event of coin under msgID (empty: its ID).
func (e *Env) PublishEvent(coin string, ev *bus.Event, msgID string) error {
	if msgID == "" {
		msgID = ev.ID()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := e.JS.Publish(ctx, bus.Subject(Prefix, coin, bus.TopicEvent), ev.Marshal(), jetstream.WithMsgID(msgID))
	return err
}

// Health returns /healthz's status field ("" if unreachable).
func Health(url string) string {
	cl := http.Client{Timeout: 3 * time.Second}
	resp, err := cl.Get(url + "/healthz")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
	}
	data, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(data, &body)
	return body.Status
}

// Ledger records what was published and predicts Redis. Safe for
// concurrent use.
type Ledger struct {
	mu     sync.Mutex
	hashes map[string]map[string]float64
	sets   map[string]map[string]bool
	lists  map[string][]string
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	return &Ledger{hashes: map[string]map[string]float64{}, sets: map[string]map[string]bool{}, lists: map[string][]string{}}
}

func (l *Ledger) incr(key string, minute int64, v float64) {
	if v == 0 {
		return
	}
	h := l.hashes[key]
	if h == nil {
		h = map[string]float64{}
		l.hashes[key] = h
	}
	h[strconv.FormatInt(minute, 10)] += v
}

func (l *Ledger) sadd(key, member string) {
	s := l.sets[key]
	if s == nil {
		s = map[string]bool{}
		l.sets[key] = s
	}
	s[member] = true
}

// AddStats records a batch that must be counted once.
func (l *Ledger) AddStats(coin string, b *bus.StatsBatch) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := b.Minute
	share := func(key string, v float64) {
		if v != 0 {
			l.incr(key, m, v)
			l.sadd("mining:keys", key)
		}
	}
	for _, w := range b.Workers {
		u := coin + ":s:" + w.User
		share(u, float64(w.Accepted))
		share(u+":"+w.Worker, float64(w.Accepted))
		share(u+":reject", float64(w.Rejected))
		share(u+":"+w.Worker+":reject", float64(w.Rejected))
		p := coin + ":p:" + w.User
		share(p, w.DiffSum)
		share(p+":"+w.Worker, w.DiffSum)
		share(coin+":g:"+w.User, w.GoalSum)
	}
	for _, mv := range b.Monitor {
		if mv.Value == 0 {
			continue
		}
		l.incr(coin+":m:"+mv.Key, m, mv.Value)
		l.incr(coin+":mh:"+b.Gateway+":"+mv.Key, m, mv.Value)
		l.sadd(coin+":mk:"+mv.Key, b.Gateway)
		l.sadd("monitor:keys", coin+":m:"+mv.Key)
	}
}

// AddListEntry records an expected event list entry (in order).
func (l *Ledger) AddListEntry(list, entry string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lists[list] = append(l.lists[list], entry)
}

// Diff compares Redis with the ledger and describes the first differences
// ("" when Redis is exactly as predicted). Lists are compared as
// multisets unless ordered is set.
func (l *Ledger) Diff(rdb *redis.Client, ordered bool) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for key, want := range l.hashes {
		got, err := rdb.HGetAll(ctx, key).Result()
		if err != nil {
			return fmt.Sprintf("HGETALL %s: %v", key, err)
		}
		if len(got) != len(want) {
			return fmt.Sprintf("%s has %d fields, want %d", key, len(got), len(want))
		}
		for f, wv := range want {
			gv, err := strconv.ParseFloat(got[f], 64)
			if err != nil || gv != wv {
				return fmt.Sprintf("%s[%s] = %q, want %v", key, f, got[f], wv)
			}
		}
	}
	for key, want := range l.sets {
		got, err := rdb.SMembers(ctx, key).Result()
		if err != nil {
			return fmt.Sprintf("SMEMBERS %s: %v", key, err)
		}
		if len(got) != len(want) {
			return fmt.Sprintf("%s has %d members, want %d", key, len(got), len(want))
		}
		for _, g := range got {
			if !want[g] {
				return fmt.Sprintf("%s has unexpected member %s", key, g)
			}
		}
	}
	for key, want := range l.lists {
		got, err := rdb.LRange(ctx, key, 0, -1).Result()
		if err != nil {
			return fmt.Sprintf("LRANGE %s: %v", key, err)
		}
		w := append([]string(nil), want...)
		if !ordered {
			sort.Strings(got)
			sort.Strings(w)
		}
		if fmt.Sprint(got) != fmt.Sprint(w) {
			return fmt.Sprintf("%s = %d entries, want %d (first difference in %v vs %v)", key, len(got), len(w), head(got), head(w))
		}
	}
	return ""
}

func head(s []string) []string { return s[:min(3, len(s))] }

// Keys returns how many hash keys the ledger predicts.
func (l *Ledger) Keys() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.hashes)
}

// Gen makes reproducible gateway batches whose sums are exact in floating
// point: difficulties are multiples of 1/8, goals multiples of 1/1024.
type Gen struct {
	rnd     *rand.Rand
	Gateway string
	Boot    int64
	Base    int64 // first minute
	users   []string
}

// NewGen returns a generator for gateway gw whose minutes start at base.
func NewGen(seed uint64, gw string, base int64) *Gen {
	return &Gen{rnd: rand.New(rand.NewPCG(seed, 1)), Gateway: gw, Boot: int64(seed), Base: base,
		users: []string{"alice", "bob", "carol"}}
}

// Batch returns batch i: minute Base + (i%minutes)*60, part i, with 2 to 4
// workers and the monitor values pow, share and reject.
func (g *Gen) Batch(i, minutes int) *bus.StatsBatch {
	b := &bus.StatsBatch{Gateway: g.Gateway, Boot: g.Boot, Minute: g.Base + int64(i%minutes)*60,
		Part: uint32(i), Parts: 1 << 30}
	var pow, shares, rejects float64
	for w := range 2 + g.rnd.IntN(3) {
		acc := uint64(g.rnd.IntN(50))
		ws := bus.WorkerStats{
			User: g.users[g.rnd.IntN(len(g.users))], Worker: "rig" + strconv.Itoa(w),
			Accepted: acc, DiffSum: float64(acc) * float64(1+g.rnd.IntN(4096)) / 8,
			GoalSum: float64(g.rnd.IntN(64)) / 1024, Rejected: uint64(g.rnd.IntN(3)),
		}
		pow += ws.DiffSum
		shares += float64(ws.Accepted)
		rejects += float64(ws.Rejected)
		b.Workers = append(b.Workers, ws)
	}
	b.Monitor = []bus.MonitorStat{{Key: "pow", Value: pow}, {Key: "share", Value: shares}, {Key: "reject", Value: rejects}}
	return b
}
