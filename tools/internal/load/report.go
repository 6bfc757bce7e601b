package load

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashgate/hashgate/tools/internal/hist"
	"github.com/hashgate/hashgate/tools/internal/procstat"
)

// Report is the result of a load run. Times are milliseconds unless the
// name says otherwise.
type Report struct {
	Target      string  `json:"target"`
	Conns       int     `json:"conns"`
	Procs       int     `json:"procs"`
	Sources     int     `json:"sources"`
	ShareRate   float64 `json:"share_rate_per_conn"`
	DurationS   float64 `json:"duration_s"`
	Timestamps  string  `json:"timestamps"` // kernel or user
	Interrupted bool    `json:"interrupted,omitempty"`

	Connect     ConnectReport  `json:"connect"`
	FanoutClean FanoutReport   `json:"fanout_clean"`
	FanoutAll   FanoutReport   `json:"fanout_all"`
	Submit      SubmitReport   `json:"submit"`
	Dropped     int            `json:"dropped"`
	DropReasons map[string]int `json:"drop_reasons,omitempty"`
	Blocks      BlocksReport   `json:"blocks"`
	Gateway     *GatewayReport `json:"gateway,omitempty"`
	LoadGen     LoadGenReport  `json:"loadgen"`
}

// LoadGenReport is what the load generator itself cost (it shares the
// machine with the gateway).
type LoadGenReport struct {
	// CPURunS is the workers' CPU seconds during the run; CPURunCores per
	// wall second.
	CPURunS     float64 `json:"cpu_run_s"`
	CPURunCores float64 `json:"cpu_run_cores"`
	// RSSMB is the workers' resident memory at the end (with one process,
	// the whole program's); RSSPerConnKB that over the connections.
	RSSMB        float64 `json:"rss_mb"`
	RSSPerConnKB float64 `json:"rss_per_conn_kb"`
}

// ConnectReport is the connect phase.
type ConnectReport struct {
	Connected int            `json:"connected"`
	Failed    int            `json:"failed"`
	Errors    map[string]int `json:"errors,omitempty"`
	// TotalS is from the first dial to the last connection having its
	// first job (subscribed, authorized, in the broadcast set).
	TotalS float64 `json:"total_s"`
	// Per connection, dial → first job.
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// FanoutReport describes how one job reached every client: per job, each
// client's receive time minus the earliest client's.
type FanoutReport struct {
	Jobs       int `json:"jobs"`
	ClientsMin int `json:"clients_min"`
	ClientsMax int `json:"clients_max"`
	// Over every (job, client) pair.
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
	// MaxSpread is the largest last-minus-first of one job; MeanSpread
	// the average over jobs.
	MaxSpread  float64     `json:"max_spread_ms"`
	MeanSpread float64     `json:"mean_spread_ms"`
	PerJob     []JobReport `json:"per_job,omitempty"`
}

// JobReport is one job's fan-out.
type JobReport struct {
	ID      string  `json:"id"`
	Clean   bool    `json:"clean"`
	At      string  `json:"at"` // earliest receipt, RFC 3339
	Clients int     `json:"clients"`
	P50     float64 `json:"p50_ms"`
	P99     float64 `json:"p99_ms"`
	Spread  float64 `json:"spread_ms"`
}

// SubmitReport is the share traffic of the measured run.
type SubmitReport struct {
	Submitted     uint64            `json:"submitted"`
	Accepted      uint64            `json:"accepted"`
	RejectedTotal uint64            `json:"rejected_total"`
	Rejected      map[string]uint64 `json:"rejected,omitempty"`
	Unanswered    uint64            `json:"unanswered"`
	NoShare       uint64            `json:"no_share"`
	// BlockOnly counts shares not sent because the share difficulty was
	// at the network's, so every share would have been a block.
	BlockOnly    uint64  `json:"block_only"`
	Late         uint64  `json:"late"`
	BlockShares  uint64  `json:"block_shares"`
	Resuggests   uint64  `json:"resuggests"`
	AcceptedPerS float64 `json:"accepted_per_s"`
	RejectedPerS float64 `json:"rejected_per_s"`
	// Reply latency, send → reply received.
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// BlocksReport is what -generate-url did.
type BlocksReport struct {
	GenerateEvery  string `json:"generate_every,omitempty"`
	Generated      int    `json:"generated"`
	GenerateErrors int    `json:"generate_errors"`
	LastError      string `json:"last_error,omitempty"`
}

// GatewayReport is the gateway's cost, from /proc (or its /metrics).
type GatewayReport struct {
	PID         int     `json:"pid,omitempty"`
	Source      string  `json:"source"` // proc or metrics
	CPUConnectS float64 `json:"cpu_connect_s"`
	CPURunS     float64 `json:"cpu_run_s"`
	// CPURunCores is CPU seconds per wall second during the run.
	CPURunCores    float64 `json:"cpu_run_cores"`
	CPUPerShareUs  float64 `json:"cpu_us_per_accepted_share,omitempty"`
	RSSBeforeMB    float64 `json:"rss_before_mb"`
	RSSConnectedMB float64 `json:"rss_connected_mb"`
	RSSEndMB       float64 `json:"rss_end_mb"`
	RSSPerConnKB   float64 `json:"rss_per_conn_kb"`
	// From /metrics, deltas over the measured run.
	Shares         map[string]float64 `json:"shares,omitempty"`
	Broadcasts     float64            `json:"broadcasts,omitempty"`
	BroadcastAvgMs float64            `json:"broadcast_avg_ms,omitempty"`
	Connections    float64            `json:"connections,omitempty"`
	// Upstream is set when the target is a mineragent: its link to the
	// pool during the run.
	Upstream *UpstreamReport `json:"upstream,omitempty"`
}

// UpstreamReport is a mineragent's pool link over the measured run, from
// its /metrics.
type UpstreamReport struct {
	WireBytesSent     float64 `json:"wire_bytes_sent"`
	WireBytesReceived float64 `json:"wire_bytes_received"`
	RawBytesSent      float64 `json:"raw_bytes_sent"`
	KbitPerSecUp      float64 `json:"kbit_per_s_up"`
	KbitPerSecDown    float64 `json:"kbit_per_s_down"`
	// SharesAccepted are the gateways' accepted verdicts on the agent's
	// shares; BytesPerShare the wire bytes sent per such share (everything
	// included: logins, pings, framing).
	SharesAccepted float64 `json:"shares_accepted"`
	BytesPerShare  float64 `json:"bytes_per_share"`
}

type gwSamples struct{ before, connected, end gwSample }

func ms(ns int64) float64 { return float64(ns) / 1e6 }

func round(v float64, digits int) float64 {
	p := math.Pow10(digits)
	return math.Round(v*p) / p
}

// buildReport merges the workers' events.
func buildReport(cfg *Config, connected, results []event, gw gwSamples) *Report {
	r := &Report{Target: cfg.Addr, Conns: cfg.Conns, Procs: cfg.Procs, Sources: len(cfg.Sources),
		ShareRate: cfg.ShareRate, Timestamps: "user", DropReasons: map[string]int{}}

	// Connect.
	var lat hist.Hist
	var first, last int64
	r.Connect.Errors = map[string]int{}
	for _, e := range connected {
		c := e.Connected
		r.Connect.Connected += c.OK
		r.Connect.Failed += c.Failed
		for k, v := range c.Errors {
			r.Connect.Errors[k] += v
		}
		if c.Latency != nil {
			lat.Merge(c.Latency)
		}
		if c.DialStart != 0 && (first == 0 || c.DialStart < first) {
			first = c.DialStart
		}
		last = max(last, c.LastReady)
		if c.KernelTS {
			r.Timestamps = "kernel"
		}
	}
	if first != 0 && last >= first {
		r.Connect.TotalS = round(float64(last-first)/1e9, 3)
	}
	r.Connect.P50, r.Connect.P99, r.Connect.Max = round(ms(lat.Quantile(0.5)), 3), round(ms(lat.Quantile(0.99)), 3),
		round(ms(lat.Max()), 3)

	// Submit and fan-out.
	var subLat hist.Hist
	var goAt, stopAt int64
	r.Submit.Rejected = map[string]uint64{}
	jobs := map[string]*mergedJob{}
	for _, e := range results {
		w := e.Result
		if goAt == 0 || w.GoAt < goAt {
			goAt = w.GoAt
		}
		stopAt = max(stopAt, w.StopAt)
		r.Dropped += w.Dropped
		for k, v := range w.DropReasons {
			r.DropReasons[k] += v
		}
		s := &r.Submit
		s.Submitted += w.Submitted
		s.Accepted += w.Accepted
		for k, v := range w.Rejected {
			s.Rejected[k] += v
			s.RejectedTotal += v
		}
		s.Unanswered += w.Unanswered
		s.NoShare += w.NoShare
		s.BlockOnly += w.BlockOnly
		s.Late += w.Late
		s.BlockShares += w.Blocks
		s.Resuggests += w.Resuggests
		if w.SubmitLatency != nil {
			subLat.Merge(w.SubmitLatency)
		}
		r.LoadGen.CPURunS += w.CPUSeconds
		r.LoadGen.RSSMB += float64(w.RSSBytes) / (1 << 20)
		for _, j := range w.Jobs {
			m := jobs[j.ID]
			if m == nil {
				m = &mergedJob{id: j.ID, clean: j.Clean, first: j.Base}
				jobs[j.ID] = m
			}
			m.first = min(m.first, j.Base)
			m.parts = append(m.parts, j)
		}
	}
	run := float64(stopAt-goAt) / 1e9
	r.DurationS = round(run, 3)
	if run > 0 {
		r.Submit.AcceptedPerS = round(float64(r.Submit.Accepted)/run, 1)
		r.Submit.RejectedPerS = round(float64(r.Submit.RejectedTotal)/run, 2)
	}
	if run > 0 {
		r.LoadGen.CPURunCores = round(r.LoadGen.CPURunS/run, 3)
	}
	if r.Connect.Connected > 0 {
		r.LoadGen.RSSPerConnKB = round(r.LoadGen.RSSMB*1024/float64(r.Connect.Connected), 2)
	}
	r.LoadGen.CPURunS, r.LoadGen.RSSMB = round(r.LoadGen.CPURunS, 3), round(r.LoadGen.RSSMB, 1)
	r.Submit.P50, r.Submit.P99, r.Submit.Max = round(ms(subLat.Quantile(0.5)), 3),
		round(ms(subLat.Quantile(0.99)), 3), round(ms(subLat.Max()), 3)

	// Only jobs that first arrived during the run, when every client was
	// connected, say something about fan-out.
	var inRun []*mergedJob
	for _, m := range jobs {
		if m.first >= goAt && m.first <= stopAt {
			inRun = append(inRun, m)
		}
	}
	sort.Slice(inRun, func(i, k int) bool { return inRun[i].first < inRun[k].first })
	r.FanoutClean = fanout(inRun, true)
	r.FanoutAll = fanout(inRun, false)

	// Gateway.
	if gw.before.ok && gw.end.ok {
		g := &GatewayReport{PID: cfg.PID, Source: "proc"}
		if cfg.PID == 0 {
			g.Source = "metrics"
		}
		g.CPUConnectS = round(gw.connected.cpu-gw.before.cpu, 3)
		g.CPURunS = round(gw.end.cpu-gw.connected.cpu, 3)
		if wall := gw.end.at.Sub(gw.connected.at).Seconds(); wall > 0 {
			g.CPURunCores = round((gw.end.cpu-gw.connected.cpu)/wall, 3)
		}
		if r.Submit.Accepted > 0 {
			g.CPUPerShareUs = round((gw.end.cpu-gw.connected.cpu)/float64(r.Submit.Accepted)*1e6, 2)
		}
		g.RSSBeforeMB = round(float64(gw.before.rss)/(1<<20), 1)
		g.RSSConnectedMB = round(float64(gw.connected.rss)/(1<<20), 1)
		g.RSSEndMB = round(float64(gw.end.rss)/(1<<20), 1)
		if r.Connect.Connected > 0 {
			g.RSSPerConnKB = round(float64(gw.end.rss-gw.before.rss)/1024/float64(r.Connect.Connected), 2)
		}
		r.Gateway = g
	}
	if gw.connected.metrics != nil && gw.end.metrics != nil {
		if r.Gateway == nil {
			r.Gateway = &GatewayReport{Source: "metrics"}
		}
		g := r.Gateway
		a, b := gw.connected.metrics, gw.end.metrics
		g.Shares = map[string]float64{}
		for _, name := range []string{"pool_gateway_shares_total", "mineragent_shares_total"} {
			before := a.ByLabel(name, "result")
			for k, v := range b.ByLabel(name, "result") {
				if d := v - before[k]; d != 0 {
					g.Shares[k] = d
				}
			}
		}
		n := b.Sum("pool_gateway_notify_broadcast_seconds_count") - a.Sum("pool_gateway_notify_broadcast_seconds_count")
		sum := b.Sum("pool_gateway_notify_broadcast_seconds_sum") - a.Sum("pool_gateway_notify_broadcast_seconds_sum")
		g.Broadcasts = n
		if n > 0 {
			g.BroadcastAvgMs = round(sum/n*1e3, 3)
		}
		g.Connections = b.Sum("pool_gateway_connections")
		g.Upstream = upstreamReport(a, b, gw.end.at.Sub(gw.connected.at).Seconds())
	}
	return r
}

// upstreamReport reads a mineragent's link counters (nil for a gateway).
func upstreamReport(a, b procstat.Metrics, wall float64) *UpstreamReport {
	const sent = "mineragent_upstream_wire_bytes_sent_total"
	if _, ok := b[sent]; !ok {
		return nil
	}
	d := func(name string, match ...string) float64 { return b.Sum(name, match...) - a.Sum(name, match...) }
	u := &UpstreamReport{WireBytesSent: d(sent), WireBytesReceived: d("mineragent_upstream_wire_bytes_received_total"),
		RawBytesSent:   d("mineragent_upstream_raw_bytes_sent_total"),
		SharesAccepted: d("mineragent_upstream_share_results_total", `result="accepted"`)}
	if wall > 0 {
		u.KbitPerSecUp = round(u.WireBytesSent*8/1000/wall, 2)
		u.KbitPerSecDown = round(u.WireBytesReceived*8/1000/wall, 2)
	}
	if u.SharesAccepted > 0 {
		u.BytesPerShare = round(u.WireBytesSent/u.SharesAccepted, 2)
	}
	return u
}

type mergedJob struct {
	id    string
	clean bool
	first int64
	parts []JobTimes
}

// fanout summarises jobs (clean ones only when cleanOnly).
func fanout(jobs []*mergedJob, cleanOnly bool) FanoutReport {
	var f FanoutReport
	var all hist.Hist
	var spreadSum float64
	for _, m := range jobs {
		if cleanOnly && !m.clean {
			continue
		}
		var delays []int64
		for _, p := range m.parts {
			for _, off := range p.Offsets {
				delays = append(delays, p.Base-m.first+off)
			}
		}
		slices.Sort(delays)
		n := len(delays)
		if n == 0 {
			continue
		}
		for _, d := range delays {
			all.Record(d)
		}
		spread := ms(delays[n-1])
		f.Jobs++
		if f.ClientsMin == 0 || n < f.ClientsMin {
			f.ClientsMin = n
		}
		f.ClientsMax = max(f.ClientsMax, n)
		f.MaxSpread = max(f.MaxSpread, round(spread, 3))
		spreadSum += spread
		f.PerJob = append(f.PerJob, JobReport{ID: m.id, Clean: m.clean,
			At: time.Unix(0, m.first).UTC().Format(time.RFC3339Nano), Clients: n,
			P50: round(ms(delays[quantileIndex(n, 0.5)]), 3), P99: round(ms(delays[quantileIndex(n, 0.99)]), 3),
			Spread: round(spread, 3)})
	}
	if f.Jobs > 0 {
		f.MeanSpread = round(spreadSum/float64(f.Jobs), 3)
	}
	f.P50, f.P99, f.Max = round(ms(all.Quantile(0.5)), 3), round(ms(all.Quantile(0.99)), 3), round(ms(all.Max()), 3)
	return f
}

// quantileIndex is the index of quantile q in a sorted slice of n values.
func quantileIndex(n int, q float64) int {
	i := int(math.Ceil(q*float64(n))) - 1
	return max(0, min(n-1, i))
}

// WriteText prints the report for people.
func (r *Report) WriteText(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	src := "kernel-chosen source address"
	if r.Sources > 0 {
		src = fmt.Sprintf("%d source addresses", r.Sources)
	}
	p("hgminer load: %d connections to %s from %d process(es), %s, %g shares/s per connection, %.1f s measured run",
		r.Conns, r.Target, r.Procs, src, r.ShareRate, r.DurationS)
	if r.Interrupted {
		p("  (interrupted: the run was cut short)")
	}
	c := r.Connect
	p("connect      %d connected, %d failed in %.3f s (per connection dial → first job: p50 %.2f ms, p99 %.2f ms, max %.2f ms)",
		c.Connected, c.Failed, c.TotalS, c.P50, c.P99, c.Max)
	if len(c.Errors) > 0 {
		p("             connect errors: %s", joinCounts(c.Errors))
	}
	for _, x := range []struct {
		name string
		f    FanoutReport
	}{{"clean jobs", r.FanoutClean}, {"all jobs", r.FanoutAll}} {
		if x.f.Jobs == 0 {
			p("fan-out      %s: none arrived during the run (use -generate-url/-generate-every)", x.name)
			continue
		}
		p("fan-out      %s: %d, each to %d..%d clients; receive time − first receive: p50 %.3f ms, p99 %.3f ms, max %.3f ms; spread mean %.3f ms, max %.3f ms (%s timestamps)",
			x.name, x.f.Jobs, x.f.ClientsMin, x.f.ClientsMax, x.f.P50, x.f.P99, x.f.Max, x.f.MeanSpread, x.f.MaxSpread, r.Timestamps)
	}
	s := r.Submit
	p("submit       %d sent, %d accepted (%.1f/s), %d rejected (%.2f/s), %d unanswered; reply p50 %.3f ms, p99 %.3f ms, max %.3f ms",
		s.Submitted, s.Accepted, s.AcceptedPerS, s.RejectedTotal, s.RejectedPerS, s.Unanswered, s.P50, s.P99, s.Max)
	if len(s.Rejected) > 0 {
		p("             rejects: %s", joinCounts(s.Rejected))
	}
	if s.Late > 0 || s.NoShare > 0 || s.Resuggests > 0 || s.BlockShares > 0 {
		p("             late %d (load generator behind schedule), no share found %d, re-suggested difficulty %d, block shares %d",
			s.Late, s.NoShare, s.Resuggests, s.BlockShares)
	}
	if s.BlockOnly > 0 {
		p("             %d shares not sent: the share difficulty was the network's, so every share would be a block;", s.BlockOnly)
		p("             run the gateway with vardiff.min below the network difficulty (regtest: 4.66e-10), or -allow-blocks")
	}
	p("connections  %d dropped during the run%s", r.Dropped, optCounts(r.DropReasons))
	if r.Blocks.GenerateEvery != "" {
		p("blocks       generated %d (every %s), %d errors %s", r.Blocks.Generated, r.Blocks.GenerateEvery,
			r.Blocks.GenerateErrors, r.Blocks.LastError)
	}
	p("load gen     CPU %.3f s in the run (%.1f %% of a core), RSS %.1f MB (%.2f KiB per connection)",
		r.LoadGen.CPURunS, r.LoadGen.CPURunCores*100, r.LoadGen.RSSMB, r.LoadGen.RSSPerConnKB)
	if g := r.Gateway; g != nil {
		// The process observed is the server the miners dial: a gateway, or a
		// mineragent when it reports an upstream link.
		row, who := "gateway   ", "gateway"
		if g.Upstream != nil {
			row, who = "mineragent", "mineragent"
		}
		if g.PID > 0 {
			who = fmt.Sprintf("%s pid %d", who, g.PID)
		}
		p("%s   %s (%s): CPU %.3f s in the run (%.1f %% of a core), %.2f µs per accepted share; %.3f s while connecting",
			row, who, g.Source, g.CPURunS, g.CPURunCores*100, g.CPUPerShareUs, g.CPUConnectS)
		p("             RSS %.1f MB before, %.1f MB connected, %.1f MB at the end: %.2f KiB per connection",
			g.RSSBeforeMB, g.RSSConnectedMB, g.RSSEndMB, g.RSSPerConnKB)
		if g.Shares != nil {
			shares := joinCounts(g.Shares)
			if shares == "" {
				shares = "none"
			}
			p("             metrics: shares %s; %g broadcasts, avg %.3f ms to queue; %g connections",
				shares, g.Broadcasts, g.BroadcastAvgMs, g.Connections)
		}
		if u := g.Upstream; u != nil {
			p("upstream     agent link: %.2f kbit/s up, %.2f kbit/s down; %.2f bytes per share accepted upstream (%g shares); %.0f bytes sent (%.0f before compression)",
				u.KbitPerSecUp, u.KbitPerSecDown, u.BytesPerShare, u.SharesAccepted, u.WireBytesSent, u.RawBytesSent)
		}
	}
}

func joinCounts[V int | uint64 | float64](m map[string]V) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %v", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func optCounts(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	return " (" + joinCounts(m) + ")"
}
