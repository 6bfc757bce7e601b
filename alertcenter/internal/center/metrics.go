package center

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Result values of pool_alertcenter_alerts_total. One alert counts once as
// received (or invalid), then as rate_limited or once for each
// destination's outcome.
const (
	ResultReceived       = "received"        // decoded from the bus
	ResultInvalid        = "invalid"         // undecodable message
	ResultRateLimited    = "rate_limited"    // over its host's limit (reported by a summary)
	ResultStored         = "stored"          // line written to Redis
	ResultDropped        = "dropped"         // line lost: Redis queue full, or shutdown before Redis came back
	ResultWebhookSent    = "webhook_sent"    // webhook answered 2xx
	ResultWebhookFailed  = "webhook_failed"  // refused or deadline passed
	ResultWebhookDropped = "webhook_dropped" // webhook queue full, or shutdown
)

var results = []string{ResultReceived, ResultInvalid, ResultRateLimited, ResultStored, ResultDropped,
	ResultWebhookSent, ResultWebhookFailed, ResultWebhookDropped}

// Metrics counts alerts by result, for Prometheus and /status. The zero
// value is not usable; use NewMetrics. Safe for concurrent use.
type Metrics struct {
	alerts *prometheus.CounterVec
	counts map[string]*atomic.Uint64 // fixed keys: results
}

// NewMetrics builds the collectors (not registered).
func NewMetrics() *Metrics {
	m := &Metrics{
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pool_alertcenter_alerts_total",
			Help: "Alerts by result: received, invalid, rate_limited, stored, dropped, webhook_sent, webhook_failed, webhook_dropped.",
		}, []string{"result"}),
		counts: make(map[string]*atomic.Uint64, len(results)),
	}
	for _, r := range results {
		m.alerts.WithLabelValues(r) // export zeros
		m.counts[r] = new(atomic.Uint64)
	}
	return m
}

// Register adds the collectors to reg.
func (m *Metrics) Register(reg prometheus.Registerer) { reg.MustRegister(m.alerts) }

// Add counts n alerts with result r (one of the Result constants).
func (m *Metrics) Add(r string, n int) {
	if n <= 0 {
		return
	}
	m.alerts.WithLabelValues(r).Add(float64(n))
	m.counts[r].Add(uint64(n))
}

// Snapshot returns the counts by result.
func (m *Metrics) Snapshot() map[string]uint64 {
	out := make(map[string]uint64, len(m.counts))
	for r, c := range m.counts {
		out[r] = c.Load()
	}
	return out
}
