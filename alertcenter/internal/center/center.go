package center

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/hashgate/hashgate/pkg/bus"
)

// Options configure a Center.
type Options struct {
	Store   *Store   // required
	Webhook *Webhook // nil: no webhook
	Limiter *Limiter // nil: no per-host limit
	// LimitText describes the limit in summary lines, e.g. "60/1m0s".
	LimitText string
	// Instance is this alertcenter's name, put in summary alerts.
	Instance string
	// SweepEvery is how often suppressed counts are checked for a summary
	// (default 1s).
	SweepEvery time.Duration
	Logger     *zap.Logger
	Metrics    *Metrics
}

// Center routes alerts from the bus to the Store and the Webhook. Handle is
// safe for concurrent use.
type Center struct {
	o  Options
	lg *zap.Logger
	m  *Metrics
}

// New builds a Center.
func New(o Options) *Center {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics()
	}
	if o.SweepEvery <= 0 {
		o.SweepEvery = time.Second
	}
	return &Center{o: o, lg: o.Logger, m: o.Metrics}
}

// Handle takes one bus message (the NATS callback). It never blocks on
// Redis or the webhook.
func (c *Center) Handle(data []byte) {
	var a bus.Alert
	if err := a.Unmarshal(data); err != nil {
		c.m.Add(ResultInvalid, 1)
		c.lg.Debug("undecodable alert message", zap.Error(err))
		return
	}
	c.m.Add(ResultReceived, 1)
	now := time.Now()
	if !c.o.Limiter.Allow(a.Host, now) {
		c.m.Add(ResultRateLimited, 1)
		return
	}
	c.emit(&a, now)
}

// emit logs the line and hands it to the destinations.
func (c *Center) emit(a *bus.Alert, now time.Time) {
	line := Line(a)
	c.lg.Info("alert", zap.String("line", line))
	c.o.Store.Add(line)
	if c.o.Webhook != nil {
		c.o.Webhook.Add(a, line, now)
	}
}

// Run reports suppressed counts, one summary line per host once it is
// under its limit again, until ctx is done.
func (c *Center) Run(ctx context.Context) error {
	t := time.NewTicker(c.o.SweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			for _, s := range c.o.Limiter.Due(now) {
				host := s.Host
				if host == overflowKey {
					host = "(other hosts)"
				}
				c.emit(&bus.Alert{
					Host: host, Daemon: "alertcenter", Instance: c.o.Instance, Level: "warn", Time: now.UnixNano(),
					Message: fmt.Sprintf("%d alerts suppressed by the rate limit", s.Count),
					Fields:  "limit=" + c.o.LimitText, Count: 1,
				}, now)
			}
		}
	}
}
