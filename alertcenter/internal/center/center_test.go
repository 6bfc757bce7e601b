package center

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/testutil"
)

func sample() *bus.Alert {
	return &bus.Alert{Host: "pool-1", Daemon: "jobmaster", Instance: "jm-1", Level: "fatal",
		Time: time.Date(2024, 4, 20, 0, 0, 0, 5, time.UTC).UnixNano(), Caller: "app/app.go:42",
		Message: "disk on fire", Fields: `disk=/dev/sda error="no space"`, Count: 1}
}

func TestLine(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*bus.Alert)
		want   string
	}{
		{"full", func(*bus.Alert) {},
			`pool-1: [fatal] app/app.go:42: disk on fire daemon=jobmaster instance=jm-1 disk=/dev/sda error="no space"`},
		{"folded", func(a *bus.Alert) { a.Count, a.Fields = 7, "" },
			`pool-1: [fatal] app/app.go:42: disk on fire (x7) daemon=jobmaster instance=jm-1`},
		{"no caller, no identity", func(a *bus.Alert) { a.Caller, a.Daemon, a.Instance, a.Fields = "", "", "", "" },
			`pool-1: [fatal] disk on fire`},
		{"one line whatever the input", func(a *bus.Alert) { a.Message, a.Fields = "a\nb\r\tc\x00d\xff", "" },
			`pool-1: [fatal] app/app.go:42: a\nb\r c d` + "\uFFFD" + ` daemon=jobmaster instance=jm-1`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := sample()
			tc.mutate(a)
			require.Equal(t, tc.want, Line(a))
		})
	}
}

func TestLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewLimiter(3, time.Second)
	for i := range 5 {
		require.Equal(t, i < 3, l.Allow("a", now), "burst of 3, try %d", i)
	}
	require.True(t, l.Allow("b", now), "hosts have their own buckets")
	require.Empty(t, l.Due(now), "no token yet for a summary")
	now = now.Add(400 * time.Millisecond) // 1.2 tokens
	require.Equal(t, []Suppressed{{Host: "a", Count: 2}}, l.Due(now), "the summary takes the token")
	require.False(t, l.Allow("a", now))
	require.Empty(t, l.Due(now))
	require.Equal(t, 2, l.Hosts())
	l.Due(now.Add(time.Hour))
	require.Zero(t, l.Hosts(), "quiet hosts are forgotten")

	var none *Limiter
	require.Nil(t, NewLimiter(0, time.Second))
	require.True(t, none.Allow("x", now))
	require.Empty(t, none.Due(now))
}

// hookServer is a webhook endpoint answering with codes in turn (the last
// one repeats) and recording what it got.
type hookServer struct {
	*httptest.Server
	calls  atomic.Int32
	bodies chan payload
}

func newHookServer(t *testing.T, codes ...int) *hookServer {
	h := &hookServer{bodies: make(chan payload, 100)}
	h.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(h.calls.Add(1))
		code := codes[min(n, len(codes))-1]
		if code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		if code/100 == 2 {
			raw, _ := io.ReadAll(r.Body)
			var p payload
			require.NoError(t, json.Unmarshal(raw, &p))
			require.Equal(t, "application/json", r.Header.Get("Content-Type"))
			h.bodies <- p
		}
		w.WriteHeader(code)
	}))
	// A test port below the ephemeral range.
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)))
	require.NoError(t, err)
	h.Listener = l
	h.Start()
	t.Cleanup(h.Close)
	return h
}

func runHook(t *testing.T, url string, deadline time.Duration) (*Webhook, *Metrics) {
	m := NewMetrics()
	w := NewWebhook(WebhookOptions{URL: url, Timeout: time.Second, Deadline: deadline,
		RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond, Queue: 10,
		Logger: zaptest.NewLogger(t), Metrics: m})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return w, m
}

func TestWebhookRetriesUntilAccepted(t *testing.T) {
	h := newHookServer(t, 503, 500, 200)
	w, m := runHook(t, h.URL, 10*time.Second)
	a := sample()
	w.Add(a, Line(a), time.Now())
	select {
	case p := <-h.bodies:
		require.Equal(t, payload{Text: Line(a), Host: "pool-1", Daemon: "jobmaster", Instance: "jm-1", Level: "fatal",
			Time: "2024-04-20T00:00:00.000000005Z", Count: 1, Caller: "app/app.go:42", Message: "disk on fire"}, p)
	case <-time.After(5 * time.Second):
		t.Fatal("webhook never accepted the alert")
	}
	testutil.Eventually(t, time.Second, func() bool { return m.Snapshot()[ResultWebhookSent] == 1 })
	require.EqualValues(t, 3, h.calls.Load())
	require.NoError(t, w.Check())
}

func TestWebhookGivesUp(t *testing.T) {
	t.Run("permanent refusal", func(t *testing.T) {
		h := newHookServer(t, 404)
		w, m := runHook(t, h.URL, 10*time.Second)
		w.Add(sample(), "x", time.Now())
		testutil.Eventually(t, 5*time.Second, func() bool { return m.Snapshot()[ResultWebhookFailed] == 1 })
		require.EqualValues(t, 1, h.calls.Load(), "a 404 is not retried")
		require.ErrorContains(t, w.Check(), "404")
	})
	t.Run("deadline", func(t *testing.T) {
		h := newHookServer(t, 502)
		w, m := runHook(t, h.URL+"/secret-token", 300*time.Millisecond)
		start := time.Now()
		w.Add(sample(), "x", start)
		testutil.Eventually(t, 5*time.Second, func() bool { return m.Snapshot()[ResultWebhookFailed] == 1 })
		require.Less(t, time.Since(start), 2*time.Second)
		require.Greater(t, h.calls.Load(), int32(1), "retried meanwhile")
	})
	t.Run("unreachable, url never in errors", func(t *testing.T) {
		h := newHookServer(t, 200)
		url := h.URL + "/hooks/secret-token"
		h.Close()
		w, m := runHook(t, url, 200*time.Millisecond)
		w.Add(sample(), "x", time.Now())
		testutil.Eventually(t, 5*time.Second, func() bool { return m.Snapshot()[ResultWebhookFailed] == 1 })
		require.Error(t, w.Check())
		require.NotContains(t, w.Check().Error(), "secret-token")
	})
	t.Run("queue full", func(t *testing.T) {
		m := NewMetrics()
		w := NewWebhook(WebhookOptions{URL: "http://127.0.0.1:1/", Timeout: time.Second, Deadline: time.Second,
			RetryMin: time.Millisecond, RetryMax: time.Millisecond, Queue: 2, Metrics: m})
		for range 5 {
			w.Add(sample(), "x", time.Now()) // no Run: nothing drains the queue
		}
		require.Equal(t, 2, w.Pending())
		require.EqualValues(t, 3, m.Snapshot()[ResultWebhookDropped])
	})
}

// TestStoreCapsAndQueues: lines reach the list in order, the list keeps the
// newest max_list, and the memory queue keeps the newest lines when full.
func TestStoreCapsAndQueues(t *testing.T) {
	r := testutil.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1, DisableIdentity: true})
	t.Cleanup(func() { _ = rdb.Close() })
	m := NewMetrics()
	s := NewStore(StoreOptions{Client: rdb, Key: "alert:message", MaxList: 5, Queue: 4, RetryMax: 50 * time.Millisecond,
		Logger: zaptest.NewLogger(t), Metrics: m})
	for i := range 6 {
		s.Add(fmt.Sprint("early ", i)) // not running yet: only the newest 4 stay
	}
	require.Equal(t, 4, s.Pending())
	require.EqualValues(t, 2, m.Snapshot()[ResultDropped])

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	list := func() string {
		got, _ := rdb.LRange(context.Background(), "alert:message", 0, -1).Result()
		return strings.Join(got, ",")
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return list() == "early 2,early 3,early 4,early 5" })
	for i := range 3 {
		s.Add(fmt.Sprint("line ", i))
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return list() == "early 4,early 5,line 0,line 1,line 2" },
		"capped at 5, oldest gone")
	testutil.Eventually(t, time.Second, func() bool { return m.Snapshot()[ResultStored] == 7 })
	require.NoError(t, s.Check())
}
