package stratumsrv

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the server's collectors.
type Metrics struct {
	Connections prometheus.Gauge
	Closed      *prometheus.CounterVec
	Broadcast   prometheus.Histogram
}

// NewMetrics creates unregistered collectors.
func NewMetrics() *Metrics {
	return &Metrics{
		Connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pool_gateway_connections", Help: "Open Stratum connections.",
		}),
		Closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pool_gateway_conn_closed_total", Help: "Closed connections by reason.",
		}, []string{"reason"}),
		Broadcast: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "pool_gateway_notify_broadcast_seconds", Help: "Time to queue a job's notify on every session.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
	}
}

// Register registers the collectors.
func (m *Metrics) Register(reg prometheus.Registerer) {
	reg.MustRegister(m.Connections, m.Closed, m.Broadcast)
}
