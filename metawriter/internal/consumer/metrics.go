package consumer

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the consumer's Prometheus collectors.
type Metrics struct {
	// Batches counts statistics batches by result: applied, duplicate,
	// expired, undecodable, redis_error, conflict, held_back (handed back
	// unattempted during a Redis outage).
	Batches *prometheus.CounterVec
	// Events counts events by the same results.
	Events *prometheus.CounterVec
	// Apply times one Redis apply (a single script call), failures included.
	Apply prometheus.Histogram
	// RedisUp is 1 while Redis takes writes, 0 during an outage.
	RedisUp prometheus.Gauge
}

// NewMetrics builds the collectors; Register exposes them.
func NewMetrics() *Metrics {
	return &Metrics{
		Batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pool_metawriter_batches_total",
			Help: "Statistics batches handled, by result.",
		}, []string{"result"}),
		Events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pool_metawriter_events_total",
			Help: "Events handled, by result.",
		}, []string{"result"}),
		Apply: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pool_metawriter_apply_seconds",
			Help:    "Time to apply one message to Redis (one Lua script call).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}),
		RedisUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pool_metawriter_redis_up",
			Help: "1 while Redis takes writes, 0 during an outage.",
		}),
	}
}

// Register registers every collector with reg.
func (m *Metrics) Register(reg prometheus.Registerer) {
	reg.MustRegister(m.Batches, m.Events, m.Apply, m.RedisUp)
}
