package load

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hashgate/hashgate/tools/internal/procstat"
)

func TestParseSources(t *testing.T) {
	tests := []struct {
		name, in, dest string
		want           []string
		bad            bool
	}{
		{"range", "127.0.0.2-127.0.0.4", "127.0.0.1:3333", []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}, false},
		{"list and range", "10.0.0.1, 10.0.0.9-10.0.0.10", "x:1", []string{"10.0.0.1", "10.0.0.9", "10.0.0.10"}, false},
		{"auto loopback", "auto", "127.0.0.1:3333", []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5",
			"127.0.0.6", "127.0.0.7", "127.0.0.8", "127.0.0.9"}, false},
		{"auto remote", "auto", "192.0.2.1:3333", nil, false},
		{"none", "none", "127.0.0.1:1", nil, false},
		{"reversed", "127.0.0.9-127.0.0.2", "", nil, true},
		{"garbage", "127.0.0.x", "", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSources(tc.in, tc.dest)
			if tc.bad {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestSpecsSplit(t *testing.T) {
	cfg := Config{Addr: "127.0.0.1:1", Conns: 10, Procs: 3, ConnectRate: 300}
	cfg.Defaults()
	require.NoError(t, cfg.Validate())
	specs := cfg.specs()
	require.Len(t, specs, 3)
	next := 0
	for k, s := range specs {
		require.Equal(t, k, s.Index)
		require.Equal(t, next, s.First)
		next += s.Count
		require.InDelta(t, 100, s.ConnectRate, 1e-9)
	}
	require.Equal(t, 10, next)

	cfg = Config{Addr: "a:1", Conns: 40000, Procs: 2, GenerateEvery: time.Second}
	err := cfg.Validate()
	require.ErrorContains(t, err, "raise -procs")
	require.ErrorContains(t, err, "-generate-url")
}

func TestFanoutReport(t *testing.T) {
	const ms = int64(time.Millisecond)
	base := time.Now().UnixNano()
	connected := []event{
		{Ev: "connected", Connected: &connectedEv{OK: 3, DialStart: base - 100*ms, LastReady: base - 10*ms, KernelTS: true}},
		{Ev: "connected", Connected: &connectedEv{OK: 2, Failed: 1, Errors: map[string]int{"timeout": 1},
			DialStart: base - 90*ms, LastReady: base - 5*ms}},
	}
	results := []event{
		{Ev: "result", Result: &WorkerResult{GoAt: base, StopAt: base + 10_000*ms, Accepted: 50, Submitted: 51,
			Rejected: map[string]uint64{"21 Job not found (=stale)": 1},
			Jobs: []JobTimes{
				{ID: "old", Clean: true, Base: base - 50*ms, Offsets: []int64{0, 1, 2}}, // before the run: ignored
				{ID: "a", Clean: true, Base: base + 1000*ms, Offsets: []int64{0, 2 * ms, 4 * ms}},
				{ID: "b", Clean: false, Base: base + 2000*ms, Offsets: []int64{0, 1 * ms, 1 * ms}},
			}}},
		{Ev: "result", Result: &WorkerResult{GoAt: base, StopAt: base + 10_000*ms, Accepted: 50, Submitted: 50,
			Jobs: []JobTimes{
				{ID: "a", Clean: true, Base: base + 1001*ms, Offsets: []int64{0, 9 * ms}},
				{ID: "b", Clean: false, Base: base + 2000*ms, Offsets: []int64{3 * ms, 0}},
			}}},
	}
	cfg := &Config{Addr: "127.0.0.1:1", Conns: 6, Procs: 2, ShareRate: 1}
	r := buildReport(cfg, connected, results, gwSamples{})
	require.Equal(t, 5, r.Connect.Connected)
	require.Equal(t, 1, r.Connect.Failed)
	require.InDelta(t, 0.095, r.Connect.TotalS, 1e-6)
	require.Equal(t, "kernel", r.Timestamps)

	require.Equal(t, 1, r.FanoutClean.Jobs)
	require.Equal(t, 5, r.FanoutClean.ClientsMin)
	require.InDelta(t, 10.0, r.FanoutClean.MaxSpread, 1e-9) // 1001+9 − 1000
	require.Equal(t, 2, r.FanoutAll.Jobs)
	require.InDelta(t, 10.0, r.FanoutAll.MaxSpread, 1e-9)
	require.InDelta(t, (10.0+3.0)/2, r.FanoutAll.MeanSpread, 1e-9)
	require.InDelta(t, 2.0, r.FanoutClean.PerJob[0].P50, 1e-9) // delays 0,1,2,4,10 ms

	require.Equal(t, uint64(100), r.Submit.Accepted)
	require.Equal(t, uint64(1), r.Submit.RejectedTotal)
	require.InDelta(t, 10.0, r.Submit.AcceptedPerS, 1e-9)
	require.Nil(t, r.Gateway)
}

func TestAcceptedReply(t *testing.T) {
	tests := []struct {
		line string
		id   uint64
		ok   bool
	}{
		{`{"id":123,"result":true,"error":null}`, 123, true},
		{`{"id":18446744073709551615,"result":true,"error":null}`, 0, false}, // 20 digits: slow path
		{`{"id":"7","result":true,"error":null}`, 0, false},
		{`{"id":7,"result":null,"error":[21,"Job not found (=stale)",null]}`, 0, false},
		{`{"id":,"result":true,"error":null}`, 0, false},
		{`{"id":null,"method":"mining.notify","params":[]}`, 0, false},
	}
	for _, tc := range tests {
		id, ok := acceptedReply([]byte(tc.line))
		require.Equal(t, tc.ok, ok, tc.line)
		require.Equal(t, tc.id, id, tc.line)
	}
}

// TestAgentUpstreamReport: against a mineragent, the report gives its
// link's bandwidth and bytes per share from the /metrics deltas.
func TestAgentUpstreamReport(t *testing.T) {
	parse := func(text string) procstat.Metrics {
		m, err := procstat.ParseMetrics(strings.NewReader(text))
		require.NoError(t, err)
		return m
	}
	at := time.Now()
	before := parse(`mineragent_upstream_wire_bytes_sent_total 1000
mineragent_upstream_wire_bytes_received_total 500
mineragent_upstream_raw_bytes_sent_total 3000
mineragent_upstream_share_results_total{result="accepted"} 10
mineragent_upstream_share_results_total{result="duplicate"} 1
mineragent_shares_total{result="accepted"} 10
`)
	after := parse(`mineragent_upstream_wire_bytes_sent_total 86000
mineragent_upstream_wire_bytes_received_total 3000
mineragent_upstream_raw_bytes_sent_total 200000
mineragent_upstream_share_results_total{result="accepted"} 10010
mineragent_upstream_share_results_total{result="duplicate"} 7
mineragent_shares_total{result="accepted"} 10010
mineragent_shares_total{result="duplicate"} 3
`)
	gw := gwSamples{connected: gwSample{at: at, metrics: before}, end: gwSample{at: at.Add(10 * time.Second), metrics: after}}
	r := buildReport(&Config{Addr: "127.0.0.1:1", Conns: 1, Procs: 1}, nil, nil, gw)
	require.NotNil(t, r.Gateway)
	require.Equal(t, map[string]float64{"accepted": 10000, "duplicate": 3}, r.Gateway.Shares)
	u := r.Gateway.Upstream
	require.NotNil(t, u)
	require.Equal(t, 85000.0, u.WireBytesSent)
	require.Equal(t, 10000.0, u.SharesAccepted)
	require.Equal(t, 8.5, u.BytesPerShare)
	require.Equal(t, 68.0, u.KbitPerSecUp) // 85,000 B in 10 s
	require.Equal(t, 2.0, u.KbitPerSecDown)

	var out strings.Builder
	r.WriteText(&out)
	require.Contains(t, out.String(), "68.00 kbit/s up")
}
