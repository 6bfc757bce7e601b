package blocksink

import "github.com/prometheus/client_golang/prometheus"

// Fallback results, the label values of pool_gateway_block_fallback_total.
const (
	fallbackAccepted    = "accepted"    // a node holds it in its best chain
	fallbackSideChain   = "sidechain"   // a node holds it off the best chain
	fallbackRejected    = "rejected"    // nodes answered but none holds it
	fallbackUnreachable = "unreachable" // no node answered
	fallbackImpossible  = "impossible"  // no raw block or no nodes configured
)

// metrics are one Sink's collectors.
type metrics struct {
	blocks   *prometheus.CounterVec
	pending  prometheus.GaugeFunc
	fallback *prometheus.CounterVec
}

func newMetrics(pending func() float64) *metrics {
	return &metrics{
		blocks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pool_gateway_blocks_total",
			Help: "Found blocks by final outcome and by who reported it (jobmaster, fallback, or none when given up).",
		}, []string{"status", "via"}),
		pending: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pool_gateway_block_spool_pending",
			Help: "Found blocks without a final outcome yet (spooled or queued).",
		}, pending),
		fallback: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pool_gateway_block_fallback_total",
			Help: "The gateway's own submissions of found blocks to nodes, by result.",
		}, []string{"result"}),
	}
}

// Register registers the sink's collectors with reg. It panics if they are
// already registered there, like prometheus.MustRegister.
func (s *Sink) Register(reg prometheus.Registerer) {
	reg.MustRegister(s.m.blocks, s.m.pending, s.m.fallback)
}
