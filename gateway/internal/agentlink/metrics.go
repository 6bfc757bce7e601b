package agentlink

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the agent port's Prometheus collectors.
type Metrics struct {
	Connected     prometheus.Gauge
	Closed        *prometheus.CounterVec
	Batches       *prometheus.CounterVec
	Shares        *prometheus.CounterVec
	Blocks        prometheus.Counter
	CreditLatency prometheus.Histogram
	CreditRetries prometheus.Counter
}

// NewMetrics returns unregistered collectors.
func NewMetrics() *Metrics {
	return &Metrics{
		Connected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pool_gateway_agents",
			Help: "Connected mineragents."}),
		Closed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pool_gateway_agent_links_closed_total",
			Help: "Agent links closed or refused, by reason."}, []string{"reason"}),
		Batches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pool_gateway_agent_batches_total",
			Help: "Agent share batches and blocks: new, or duplicate (a replay already processed)."}, []string{"kind"}),
		Shares: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pool_gateway_agent_shares_total",
			Help: "Shares from agents by the gateway's verdict."}, []string{"result"}),
		Blocks: prometheus.NewCounter(prometheus.CounterOpts{Name: "pool_gateway_agent_block_candidates_total",
			Help: "Agent shares that met the network target."}),
		CreditLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "pool_gateway_agent_credit_seconds",
			Help: "Time to store one agent batch's credit in JetStream.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		CreditRetries: prometheus.NewCounter(prometheus.CounterOpts{Name: "pool_gateway_agent_credit_retries_total",
			Help: "Failed attempts to store an agent batch's credit (retried)."}),
	}
}

// Register adds the collectors to reg.
func (m *Metrics) Register(reg prometheus.Registerer) {
	reg.MustRegister(m.Connected, m.Closed, m.Batches, m.Shares, m.Blocks, m.CreditLatency, m.CreditRetries)
}
