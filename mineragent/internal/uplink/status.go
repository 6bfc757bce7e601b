package uplink

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hashgate/hashgate/pkg/agentwire"
)

// Status is the link's state for /status.
type Status struct {
	Server  string `json:"server"` // gateway in use ("" before the first link)
	Linked  bool   `json:"linked"`
	Session uint64 `json:"session"`
	// Since is how long the link has been up (linked) or down.
	SinceS    float64 `json:"since_s"`
	RTTMillis float64 `json:"rtt_ms"`
	Miners    int     `json:"miners"`
	// Pending batches and shares wait for an acknowledgement (replayed
	// after a reconnect).
	PendingBatches int    `json:"pending_batches"`
	PendingShares  int    `json:"pending_shares"`
	LastAcked      uint64 `json:"last_acked"`
	LastBatch      uint64 `json:"last_batch"`
	Connects       uint64 `json:"connects"`
	Failovers      uint64 `json:"failovers"`
	Replayed       uint64 `json:"batches_replayed"`
	DroppedBatches uint64 `json:"batches_dropped"`
	DroppedShares  uint64 `json:"shares_dropped"`
	// Results counts the gateway's verdicts on shares by result.
	Results map[string]uint64 `json:"results"`
	// Bytes: wire is what crossed the network, raw before compression.
	WireUp   uint64 `json:"wire_bytes_up"`
	WireDown uint64 `json:"wire_bytes_down"`
	RawUp    uint64 `json:"raw_bytes_up"`
	RawDown  uint64 `json:"raw_bytes_down"`
}

// Linked reports whether a gateway link is up.
func (c *Client) Linked() bool { return c.linked.Load() }

// Unlinked returns for how long no link has been up (0 while linked).
func (c *Client) Unlinked() time.Duration {
	if c.linked.Load() {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.o.Now().Sub(c.since)
}

// Bytes returns the link counters summed over every link so far.
func (c *Client) Bytes() agentwire.Stats {
	c.mu.Lock()
	s, conn := c.bytesPrev, c.conn
	c.mu.Unlock()
	if conn != nil {
		s = s.Add(conn.Stats())
	}
	return s
}

// Status returns the link's state.
func (c *Client) Status() Status {
	b := c.Bytes()
	c.mu.Lock()
	st := Status{Server: c.server, Linked: c.conn != nil, Session: c.sessionID,
		SinceS: c.o.Now().Sub(c.since).Seconds(), RTTMillis: float64(c.rtt) / 1e6, Miners: len(c.miners),
		PendingBatches: len(c.queue), PendingShares: c.queued, LastAcked: c.lastAcked, LastBatch: c.nextBatch - 1}
	c.mu.Unlock()
	k := &c.counters
	st.Connects, st.Failovers = k.connects.Load(), k.failovers.Load()
	st.Replayed, st.DroppedBatches, st.DroppedShares = k.batchesReplayed.Load(), k.batchesDropped.Load(), k.sharesDropped.Load()
	st.Results = map[string]uint64{}
	for i := range k.results {
		if n := k.results[i].Load(); n > 0 {
			st.Results[agentwire.ResultCode(i).String()] = n
		}
	}
	st.WireUp, st.WireDown, st.RawUp, st.RawDown = b.WireWritten, b.WireRead, b.RawWritten, b.RawRead
	return st
}

// Register adds the link's metrics to reg.
func (c *Client) Register(reg prometheus.Registerer) {
	k := &c.counters
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	u := func(a interface{ Load() uint64 }) func() float64 { return func() float64 { return float64(a.Load()) } }
	reg.MustRegister(
		gauge("mineragent_upstream_linked", "1 while a gateway link is up.", func() float64 {
			if c.Linked() {
				return 1
			}
			return 0
		}),
		counter("mineragent_upstream_connects_total", "Links established.", u(&k.connects)),
		counter("mineragent_upstream_failovers_total", "Links established to another gateway than the previous one.", u(&k.failovers)),
		counter("mineragent_batches_sent_total", "Share batches and blocks sent for the first time.", u(&k.batchesSent)),
		counter("mineragent_batches_acked_total", "Batch acknowledgements received.", u(&k.batchesAcked)),
		counter("mineragent_batches_replayed_total", "Batches sent again after a reconnect.", u(&k.batchesReplayed)),
		counter("mineragent_batches_dropped_total", "Unacknowledged batches dropped by max_replay_age or max_replay_shares.", u(&k.batchesDropped)),
		counter("mineragent_shares_dropped_total", "Accepted shares dropped unacknowledged.", u(&k.sharesDropped)),
		gauge("mineragent_pending_shares", "Shares waiting for an acknowledgement.", func() float64 {
			c.mu.Lock()
			defer c.mu.Unlock()
			return float64(c.queued)
		}),
		counter("mineragent_upstream_wire_bytes_sent_total", "Bytes sent to gateways (compressed).", func() float64 { return float64(c.Bytes().WireWritten) }),
		counter("mineragent_upstream_wire_bytes_received_total", "Bytes received from gateways (compressed).", func() float64 { return float64(c.Bytes().WireRead) }),
		counter("mineragent_upstream_raw_bytes_sent_total", "Frame bytes sent before compression.", func() float64 { return float64(c.Bytes().RawWritten) }),
	)
	reg.MustRegister(resultCollector{c: c, desc: prometheus.NewDesc("mineragent_upstream_share_results_total",
		"The gateways' verdicts on shares.", []string{"result"}, nil)})
}

type resultCollector struct {
	c    *Client
	desc *prometheus.Desc
}

func (r resultCollector) Describe(ch chan<- *prometheus.Desc) { ch <- r.desc }
func (r resultCollector) Collect(ch chan<- prometheus.Metric) {
	for i := range r.c.counters.results {
		if n := r.c.counters.results[i].Load(); n > 0 {
			ch <- prometheus.MustNewConstMetric(r.desc, prometheus.CounterValue, float64(n), agentwire.ResultCode(i).String())
		}
	}
}
