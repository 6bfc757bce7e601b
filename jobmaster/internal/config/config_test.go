package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestExampleConfig loads conf/jobmaster.json as shipped, with the variables
// shell/devnet.sh exports, so the documented example cannot rot.
func TestExampleConfig(t *testing.T) {
	t.Setenv("NODE_RPC_PASS", "pw")
	t.Setenv("NATS_PASS", "pw")
	cfg, err := Load(filepath.Join("..", "..", "..", "conf", "jobmaster.json"))
	require.NoError(t, err)
	require.Equal(t, "regtest", cfg.Network)
	require.Len(t, cfg.Nodes, 1)
	require.Equal(t, "http://127.0.0.1:18443", cfg.Nodes[0].RPCURL)
	require.Equal(t, uint32(0x1fffe000), cfg.Mask())
	payouts, err := cfg.Payouts()
	require.NoError(t, err)
	require.Len(t, payouts, 1)

	t.Setenv("NODE_RPC", "127.0.0.1:20001")
	t.Setenv("HASHGATE_NET", "mainnet")
	_, err = Load(filepath.Join("..", "..", "..", "conf", "jobmaster.json"))
	require.ErrorContains(t, err, "coinbase.payouts[0].address", "a regtest payout address on mainnet is refused")
}

func TestValidateReportsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(path, []byte(`{
		"coin": "b.tc",
		"network": "litecoin",
		"nodes": [{"name": "a", "rpc_url": "ftp://x", "rpc_user": ""}, {"name": "a", "rpc_url": "http://h:1", "rpc_user": "u", "rpc_pass": "p", "rpc_pass_env": "X"}],
		"poll_interval": "1ms",
		"version_mask": "ffffffff",
		"coinbase": {"extranonce2_size": 0, "payouts": []},
		"admin": {"listen": "0.0.0.0:1"}
	}`), 0o644))
	_, err := Load(path)
	require.Error(t, err)
	for _, want := range []string{"coin", "network", "nodes[0].rpc_url", "nodes[0].rpc_user", "nodes[1].name",
		"nodes[1].rpc_pass", "poll_interval", "version_mask", "coinbase.extranonce2_size", "coinbase.payouts", "admin"} {
		require.Contains(t, err.Error(), want)
	}
	require.GreaterOrEqual(t, strings.Count(err.Error(), "\n"), 10, "one line per problem")
}

func TestUnknownKeyIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "typo.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"pol_interval": "1s"}`), 0o644))
	_, err := Load(path)
	require.ErrorContains(t, err, "pol_interval")
}
