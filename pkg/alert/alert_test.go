package alert

import (
	"errors"
	"fmt"
	"strings"
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

const subject = "hashgate.all.alert"

// sink collects the alerts published on the test server.
type sink struct {
	t  *testing.T
	nc *nats.Conn
	ch chan *bus.Alert
}

func newSink(t *testing.T, url string) *sink {
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	s := &sink{t: t, nc: nc, ch: make(chan *bus.Alert, 20000)}
	_, err = nc.Subscribe(subject, func(m *nats.Msg) {
		var a bus.Alert
		if err := a.Unmarshal(m.Data); err != nil {
			t.Errorf("undecodable alert: %v", err)
			return
		}
		s.ch <- &a
	})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	return s
}

// next waits for one alert.
func (s *sink) next(timeout time.Duration) *bus.Alert {
	s.t.Helper()
	select {
	case a := <-s.ch:
		return a
	case <-time.After(timeout):
		s.t.Fatalf("no alert within %s", timeout)
		return nil
	}
}

// collect gathers alerts until none arrived for quiet.
func (s *sink) collect(quiet time.Duration) []*bus.Alert {
	var out []*bus.Alert
	for {
		select {
		case a := <-s.ch:
			out = append(out, a)
		case <-time.After(quiet):
			return out
		}
	}
}

// publisher connects the shipper's side.
func publisher(t *testing.T, url string) *nats.Conn {
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

func newShipper(t *testing.T, o Options) *Shipper {
	if o.Host == "" {
		o.Host = "host-a"
	}
	if o.Daemon == "" {
		o.Daemon, o.Instance = "testd", "t-1"
	}
	s := NewShipper(o)
	t.Cleanup(s.Close)
	return s
}

// TestErrorsReachTheBus: error entries, with their caller, message and
// fields, arrive as decoded bus.Alerts; debug, info and warn do not; an
// error logged before Attach waits in the queue.
func TestErrorsReachTheBus(t *testing.T) {
	url, _ := testutil.StartNATS(t, testutil.NATSOptions{})
	snk := newSink(t, url)
	sh := newShipper(t, Options{})
	lg, level, err := logx.New(logx.Config{Level: "debug"}, "testd", "t-1", sh.Core())
	require.NoError(t, err)
	lg = lg.Named("engine").With(zap.String("node", "node1"))

	lg.Error("before attach")
	require.Equal(t, 1, sh.Stats().Pending)
	sh.Attach(publisher(t, url), subject)
	a := snk.next(5 * time.Second)
	require.Equal(t, "before attach", a.Message)

	lg.Debug("debug")
	lg.Info("info")
	lg.Warn("warn")
	lg.Error("disk on fire", zap.Int("free_mb", 0), zap.Error(errors.New("no space left")),
		zap.Duration("since", 1500*time.Millisecond), zap.Strings("dirs", []string{"/a", "/b"}))
	a = snk.next(5 * time.Second)
	require.Equal(t, "host-a", a.Host)
	require.Equal(t, "testd", a.Daemon)
	require.Equal(t, "t-1", a.Instance)
	require.Equal(t, "error", a.Level)
	require.Equal(t, "disk on fire", a.Message)
	require.Regexp(t, `^alert/alert_test\.go:\d+$`, a.Caller)
	require.Equal(t, `logger=engine node=node1 free_mb=0 error="no space left" since=1.5s dirs=["/a","/b"]`, a.Fields,
		"daemon and instance are not repeated in the fields")
	require.Equal(t, uint32(1), a.Count)
	require.InDelta(t, time.Now().UnixNano(), a.Time, float64(5*time.Second))
	require.Empty(t, snk.collect(200*time.Millisecond), "debug, info and warn are not shipped")

	// The logger's level gates the core too (error is the highest
	// selectable level, so only a check below it is possible).
	level.SetLevel(zapcore.ErrorLevel)
	lg.Warn("still not shipped")
	require.Nil(t, lg.Check(zapcore.WarnLevel, "x"))
	require.Empty(t, snk.collect(100*time.Millisecond))

	st := sh.Stats()
	require.Equal(t, uint64(2), st.Published)
	require.Zero(t, st.Dropped)
}

// TestDedup: 100 identical errors within the window become a first alert
// and one folded alert carrying the rest; a different message is not
// folded.
func TestDedup(t *testing.T) {
	url, _ := testutil.StartNATS(t, testutil.NATSOptions{})
	snk := newSink(t, url)
	sh := newShipper(t, Options{DedupWindow: 300 * time.Millisecond, Rate: -1})
	sh.Attach(publisher(t, url), subject)
	lg := zap.New(sh.Core(), zap.AddCaller())

	for i := range 100 {
		lg.Error("node unreachable", zap.Int("try", i))
	}
	lg.Error("other")
	got := snk.collect(time.Second)
	var total uint32
	byMsg := map[string]int{}
	for _, a := range got {
		byMsg[a.Message]++
		if a.Message == "node unreachable" {
			total += a.Count
		}
	}
	require.Equal(t, uint32(100), total, "every occurrence is counted")
	require.LessOrEqual(t, byMsg["node unreachable"], 3, "folded into a few alerts: %d", byMsg["node unreachable"])
	require.Equal(t, 1, byMsg["other"])
	require.Equal(t, uint32(1), got[0].Count, "the first occurrence goes out at once")
	last := got[len(got)-1]
	require.Equal(t, uint32(99), last.Count, "the repeats leave when the window closes")
	require.Contains(t, last.Fields, "try=99", "with the latest repeat's fields")
	require.Equal(t, uint64(99), sh.Stats().Folded)
}

// TestRateLimit: a flood of distinct errors is capped at the burst, and a
// summary with the suppressed count follows once a token is free.
func TestRateLimit(t *testing.T) {
	url, _ := testutil.StartNATS(t, testutil.NATSOptions{})
	snk := newSink(t, url)
	sh := newShipper(t, Options{Rate: 5, RatePer: 500 * time.Millisecond})
	sh.Attach(publisher(t, url), subject)
	lg := zap.New(sh.Core(), zap.AddCaller())

	for i := range 200 {
		lg.Error(fmt.Sprintf("flood %d", i))
	}
	got := snk.collect(500 * time.Millisecond)
	var plain int
	var summary *bus.Alert
	for _, a := range got {
		if strings.Contains(a.Message, "suppressed") {
			require.Nil(t, summary, "one summary")
			summary = a
		} else {
			plain++
		}
	}
	require.Equal(t, 5, plain, "the burst")
	require.NotNil(t, summary, "a summary follows")
	require.Equal(t, "195 alerts suppressed by the rate limit", summary.Message)
	require.Contains(t, summary.Fields, `first="alert/alert_test.go:`)
	require.Contains(t, summary.Fields, `flood 5"`)
	require.Equal(t, "error", summary.Level)
	require.Equal(t, uint64(195), sh.Stats().Suppressed)
}

// TestNeverBlocks: with NATS gone, and with no destination at all, 10,000
// errors cost well under a second; the bounded queue drops and counts.
func TestNeverBlocks(t *testing.T) {
	url, srv := testutil.StartNATS(t, testutil.NATSOptions{})
	nc := publisher(t, url)
	for _, attach := range []bool{true, false} {
		sh := newShipper(t, Options{Rate: -1, DedupWindow: -1})
		if attach {
			sh.Attach(nc, subject)
			srv.Shutdown()
			testutil.Eventually(t, 5*time.Second, func() bool { return !nc.IsConnected() }, "client notices")
		}
		lg := zap.New(sh.Core(), zap.AddCaller())
		start := time.Now()
		for i := range 10000 {
			lg.Error("write failed", zap.Int("i", i))
		}
		lg.DPanic("urgent entries flush synchronously, but not to a dead server")
		_ = lg.Sync()
		el := time.Since(start)
		st := sh.Stats()
		t.Logf("attached=%v: 10001 errors in %s; %+v", attach, el, st)
		require.Less(t, el, 3*time.Second, "logging never waits for the bus")
		require.GreaterOrEqual(t, st.Queued+st.Dropped, uint64(10001), "every alert is queued or dropped")
		if !attach {
			require.Equal(t, DefaultBuffer, st.Pending, "the queue holds what it can")
			require.Equal(t, uint64(10001-DefaultBuffer), st.Dropped)
		}
	}
}

// TestCoreContract: levels, LevelOf, With isolation and clipping.
func TestCoreContract(t *testing.T) {
	sh := newShipper(t, Options{MinLevel: zapcore.InfoLevel, Rate: -1, DedupWindow: -1})
	c := sh.Core()
	require.False(t, c.Enabled(zapcore.WarnLevel), "MinLevel below Error means Error")
	require.True(t, c.Enabled(zapcore.ErrorLevel))
	require.True(t, c.Enabled(zapcore.FatalLevel))
	require.Equal(t, zapcore.ErrorLevel, zapcore.LevelOf(c))
	require.Nil(t, c.Check(zapcore.Entry{Level: zapcore.WarnLevel}, nil))
	require.NotNil(t, c.Check(zapcore.Entry{Level: zapcore.ErrorLevel}, nil))

	parent := c.With([]zapcore.Field{zap.String("a", "1")})
	left := parent.With([]zapcore.Field{zap.String("b", "x y")})
	right := parent.With([]zapcore.Field{zap.String("c", "")})
	require.Same(t, parent, parent.With(nil))
	e := zapcore.Entry{Level: zapcore.ErrorLevel, Message: "m", Time: time.Unix(0, 42)}
	require.Equal(t, `a=1 b="x y"`, left.(*core).alert(e, nil).Fields)
	require.Equal(t, `a=1 c=""`, right.(*core).alert(e, nil).Fields)
	require.Equal(t, `a=1`, parent.(*core).alert(e, nil).Fields)
	require.Equal(t, `a=1 k="line\nbreak" t=1970-01-01T00:00:00.000000042Z`,
		parent.(*core).alert(e, []zapcore.Field{zap.String("k", "line\nbreak"), zap.Time("t", time.Unix(0, 42))}).Fields)

	big := strings.Repeat("é", bus.MaxAlertMessage)
	a := c.(*core).alert(zapcore.Entry{Level: zapcore.ErrorLevel, Message: big},
		[]zapcore.Field{zap.String("big", big)})
	require.LessOrEqual(t, len(a.Message), bus.MaxAlertMessage)
	require.LessOrEqual(t, len(a.Fields), bus.MaxAlertFields)
	require.True(t, strings.HasSuffix(a.Message, "é…"), "clipped on a rune boundary")
	var back bus.Alert
	require.NoError(t, back.Unmarshal(a.Marshal()), "a clipped alert always decodes")
	wide := c.With([]zapcore.Field{zap.String("big", big)})
	require.LessOrEqual(t, len(wide.(*core).with), bus.MaxAlertFields)

	// Write below the level is ignored; a nil shipper is inert.
	require.NoError(t, c.Write(zapcore.Entry{Level: zapcore.WarnLevel}, nil))
	require.Zero(t, sh.Stats().Queued)
	var none *Shipper
	none.Attach(nil, "")
	require.NoError(t, none.Flush(time.Second))
	none.Close()
	require.Equal(t, Stats{}, none.Stats())
	require.False(t, none.Core().Enabled(zapcore.FatalLevel))
}

// TestFatalBypassesLimits: a fatal entry is never folded or suppressed,
// and takes the place of the oldest alert when the queue is full.
func TestFatalBypassesLimits(t *testing.T) {
	url, _ := testutil.StartNATS(t, testutil.NATSOptions{})
	snk := newSink(t, url)
	sh := newShipper(t, Options{Buffer: 2, Rate: 1, RatePer: time.Hour})
	c := sh.Core()
	for i := range 3 {
		require.NoError(t, c.Write(zapcore.Entry{Level: zapcore.ErrorLevel, Message: fmt.Sprint("e", i)}, nil))
	}
	for range 3 {
		require.NoError(t, c.Write(zapcore.Entry{Level: zapcore.FatalLevel, Message: "disk on fire"}, nil))
	}
	st := sh.Stats()
	require.Equal(t, uint64(2), st.Suppressed, "errors over the limit")
	require.Equal(t, 2, st.Pending)
	sh.Attach(publisher(t, url), subject)
	got := snk.collect(300 * time.Millisecond)
	require.Len(t, got, 2)
	for _, a := range got {
		require.Equal(t, "disk on fire", a.Message, "fatal alerts displaced the queued error")
	}
}

// TestFatalReportsPendingRepeats: a process dying of a Fatal does not take
// its folded repeat counts and suppressed count with it.
func TestFatalReportsPendingRepeats(t *testing.T) {
	url, _ := testutil.StartNATS(t, testutil.NATSOptions{})
	snk := newSink(t, url)
	sh := newShipper(t, Options{DedupWindow: time.Hour, Rate: 2, RatePer: time.Hour})
	sh.Attach(publisher(t, url), subject)
	c := sh.Core()
	for range 5 {
		require.NoError(t, c.Write(zapcore.Entry{Level: zapcore.ErrorLevel, Message: "node unreachable"}, nil))
	}
	for i := range 3 {
		require.NoError(t, c.Write(zapcore.Entry{Level: zapcore.ErrorLevel, Message: fmt.Sprint("other ", i)}, nil))
	}
	require.NoError(t, c.Write(zapcore.Entry{Level: zapcore.FatalLevel, Message: "disk on fire"}, nil))
	got := map[string]uint32{}
	for _, a := range snk.collect(300 * time.Millisecond) {
		got[a.Message] += a.Count
	}
	require.Equal(t, map[string]uint32{"node unreachable": 5, "other 0": 1, "disk on fire": 1,
		"2 alerts suppressed by the rate limit": 1}, got)
}
