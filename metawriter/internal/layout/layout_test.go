package layout

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestKeys(t *testing.T) {
	require.Equal(t, "btc:s:alice", Shares("btc", "alice", ""))
	require.Equal(t, "btc:s:alice:rig1", Shares("btc", "alice", "rig1"))
	require.Equal(t, "btc:p:alice:rig1", Pow("btc", "alice", "rig1"))
	require.Equal(t, "btc:g:alice", Goal("btc", "alice"))
	require.Equal(t, "btc:s:alice:reject", Rejects("btc", "alice", ""))
	require.Equal(t, "btc:s:alice:rig1:reject", Rejects("btc", "alice", "rig1"))
	require.Equal(t, "btc:m:pow", Monitor("btc", "pow"))
	require.Equal(t, "btc:mh:gw1:pow", MonitorHost("btc", "gw1", "pow"))
	require.Equal(t, "btc:mk:pow", MonitorHosts("btc", "pow"))
	require.Equal(t, "1714564800", Field(1714564800))
}

func TestSplitMonitor(t *testing.T) {
	tests := []struct {
		in, coin, key string
		ok            bool
	}{
		{"btc:m:pow", "btc", "pow", true},
		{"btc:m:reject_stale", "btc", "reject_stale", true},
		{"btc:m:", "", "", false},
		{"btc:mh:gw:pow", "", "", false},
		{"nocolon", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			coin, key, ok := SplitMonitor(tc.in)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.coin, coin)
			require.Equal(t, tc.key, key)
		})
	}
	require.True(t, ValidCoin("btc"))
	require.False(t, ValidCoin("b:c"))
	require.False(t, ValidCoin(""))
}

// TestJSONShapes: field order and names are the original metawriter's.
func TestJSONShapes(t *testing.T) {
	require.Equal(t, `{"user":"u","worker":"w","coin":"btc","peer":"1.2.3.4","event":"connected"}`,
		string(EventJSON("u", "w", "btc", "1.2.3.4", "connected")))
	require.Equal(t, `{"user":"u","worker":"w","coin":"btc"}`, string(WorkerJSON("u", "w", "btc")))
	require.Equal(t, `{"name":"BTC","hash":"00ab","user":"u","worker":"w"}`, string(BlockJSON("BTC", "00ab", "u", "w")))
	require.Equal(t, `{"user":"a\"<&>","worker":"","coin":"btc"}`, string(WorkerJSON(`a"<&>`, "", "btc")))
}
