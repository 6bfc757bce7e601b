package procstat

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReadSelf(t *testing.T) {
	s, err := Read(os.Getpid())
	require.NoError(t, err)
	require.Greater(t, s.RSSBytes, int64(1<<20))
	require.GreaterOrEqual(t, s.CPUSeconds, 0.0)
}

func TestParseStat(t *testing.T) {
	// A command name with spaces and a parenthesis.
	line := "4242 (my (evil) cmd) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 150 0 0 20 0 8 0 12345 1000000 2000 18446744073709551615"
	cpu, err := parseStat([]byte(line))
	require.NoError(t, err)
	require.InDelta(t, 4.0, cpu, 1e-9)
	_, err = parseStat([]byte("1 (x) S 1 2"))
	require.Error(t, err)
}

func TestParseRSS(t *testing.T) {
	rss, err := parseRSS([]byte("Name:\tgateway\nVmPeak:\t 9000 kB\nVmRSS:\t   2048 kB\n"))
	require.NoError(t, err)
	require.Equal(t, int64(2048*1024), rss)
	_, err = parseRSS([]byte("Name: x\n"))
	require.Error(t, err)
}

func TestParseMetrics(t *testing.T) {
	page := `# HELP pool_gateway_shares_total Shares by result.
# TYPE pool_gateway_shares_total counter
pool_gateway_shares_total{result="accepted"} 1234
pool_gateway_shares_total{result="stale"} 5
pool_gateway_notify_broadcast_seconds_sum 0.25
pool_gateway_notify_broadcast_seconds_count 10
process_cpu_seconds_total 12.5
process_resident_memory_bytes 3.3554432e+07
weird{label="a b}c"} 7
`
	m, err := ParseMetrics(strings.NewReader(page))
	require.NoError(t, err)
	require.Equal(t, 1239.0, m.Sum("pool_gateway_shares_total"))
	require.Equal(t, 1234.0, m.Sum("pool_gateway_shares_total", `result="accepted"`))
	require.Equal(t, map[string]float64{"accepted": 1234, "stale": 5}, m.ByLabel("pool_gateway_shares_total", "result"))
	require.Equal(t, 10.0, m.Sum("pool_gateway_notify_broadcast_seconds_count"))
	require.Equal(t, 12.5, m["process_cpu_seconds_total"])
	require.Equal(t, 33554432.0, m["process_resident_memory_bytes"])
	require.Equal(t, 7.0, m.Sum("weird"))
}
