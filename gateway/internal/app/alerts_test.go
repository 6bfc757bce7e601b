package app

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/hashgate/hashgate/pkg/alert"
	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/testutil"
)

// TestErrorLogsBecomeAlerts: once Run has attached the shipper to its NATS
// connection, an Error the gateway logs (here: an undecodable job on the
// bus) arrives on <prefix>.all.alert.
func TestErrorLogsBecomeAlerts(t *testing.T) {
	f := newFixture(t, nil)
	alerts := make(chan *bus.Alert, 64)
	_, err := f.nc.Subscribe(bus.AlertSubject("hashgate"), func(m *nats.Msg) {
		var a bus.Alert
		if err := a.Unmarshal(m.Data); err != nil {
			t.Errorf("undecodable alert: %v", err)
			return
		}
		alerts <- &a
	})
	require.NoError(t, err)
	require.NoError(t, f.nc.Flush())

	sh := alert.NewShipper(alert.Options{Daemon: Daemon, Instance: f.cfg.Instance, Host: "gw-host"})
	t.Cleanup(sh.Close)
	lg := zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel), zaptest.WrapOptions(zap.AddCaller(),
		zap.WrapCore(func(c zapcore.Core) zapcore.Core { return zapcore.NewTee(c, sh.Core()) })))
	a, err := New(f.cfg, lg, zap.NewAtomicLevel(), WithAlerts(sh))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Error("gateway did not stop")
		}
	})
	testutil.Eventually(t, 10*time.Second, func() bool {
		c, err := net.Dial("tcp", f.cfg.Stratum.Listen)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, "stratum port listening")

	// Garbage on the job subject until the feed, subscribed by now or
	// shortly, complains.
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		require.NoError(t, f.nc.Publish(bus.Subject("hashgate", "btc", bus.TopicJob), []byte("not a job")))
		select {
		case got := <-alerts:
			require.Equal(t, "gw-host", got.Host)
			require.Equal(t, "gateway", got.Daemon)
			require.Equal(t, "gw-test", got.Instance)
			require.Equal(t, "error", got.Level)
			require.Equal(t, "undecodable job from the bus", got.Message)
			require.Regexp(t, `^jobfeed/jobfeed\.go:\d+$`, got.Caller)
			require.Contains(t, got.Fields, "logger=jobs")
			require.Contains(t, got.Fields, "via=")
			return
		case <-tick.C:
		case <-deadline:
			t.Fatal("no alert within 10s")
		}
	}
}
