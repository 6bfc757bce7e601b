package engine

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the engine's Prometheus collectors.
type Metrics struct {
	Jobs           *prometheus.CounterVec
	TipToJob       *prometheus.HistogramVec
	TemplateFetch  prometheus.Histogram
	TemplateErrors prometheus.Counter
	Height         prometheus.Gauge
}

// NewMetrics creates unregistered collectors.
func NewMetrics() *Metrics {
	return &Metrics{
		Jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pool_jobmaster_jobs_total", Help: "Jobs published, by kind (empty, full).",
		}, []string{"kind"}),
		TipToJob: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pool_jobmaster_tip_to_job_seconds",
			Help:    "Time from noticing a new tip to publishing its first job, by kind.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"kind"}),
		TemplateFetch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "pool_jobmaster_template_fetch_seconds", Help: "getblocktemplate round trips (with failover).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		TemplateErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pool_jobmaster_template_errors_total", Help: "Template fetches that failed or were refused.",
		}),
		Height: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pool_jobmaster_job_height", Help: "Height of the last published job.",
		}),
	}
}

// Register registers the collectors.
func (m *Metrics) Register(reg prometheus.Registerer) {
	reg.MustRegister(m.Jobs, m.TipToJob, m.TemplateFetch, m.TemplateErrors, m.Height)
}
