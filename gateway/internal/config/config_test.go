package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestExampleConfig loads conf/gateway.json as shipped with the variables
// shell/devnet.sh exports, so the documented example cannot rot.
func TestExampleConfig(t *testing.T) {
	t.Setenv("NODE_RPC_PASS", "pw")
	t.Setenv("NATS_PASS", "pw")
	cfg, err := Load(filepath.Join("..", "..", "..", "conf", "gateway.json"))
	require.NoError(t, err)
	require.Equal(t, 1, cfg.GatewayID)
	require.Equal(t, "127.0.0.1:3333", cfg.Stratum.Listen)
	require.Equal(t, uint32(0x1fffe000), cfg.Mask())
	require.Len(t, cfg.Blocks.Nodes, 1)

	t.Setenv("GATEWAY_ID", "7")
	t.Setenv("VARDIFF_MIN", "0.00000001")
	t.Setenv("VARDIFF_START", "0.0001")
	cfg, err = Load(filepath.Join("..", "..", "..", "conf", "gateway.json"))
	require.NoError(t, err)
	require.Equal(t, 7, cfg.GatewayID)
	require.Equal(t, 1e-8, cfg.Vardiff.Min)
}

func TestValidateReportsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(path, []byte(`{
		"gateway_id": 300,
		"network": "doge",
		"stratum": {"listen": "nope", "max_connections": 50000, "version_mask": "e0000000", "max_line": 10},
		"vardiff": {"min": 0, "start": -1},
		"blocks": {"nodes": [{"name": ""}]}
	}`), 0o644))
	_, err := Load(path)
	require.Error(t, err)
	for _, want := range []string{"gateway_id", "network", "stratum.listen", "stratum.max_connections",
		"stratum.version_mask", "stratum.max_line", "vardiff", "blocks.nodes[0]"} {
		require.Contains(t, err.Error(), want)
	}
}

func TestAgentPort(t *testing.T) {
	t.Setenv("NODE_RPC_PASS", "pw")
	t.Setenv("NATS_PASS", "pw")
	t.Setenv("AGENT_LISTEN", "127.0.0.1:3334")
	t.Setenv("AGENT_TOKEN", "secret")
	cfg, err := Load(filepath.Join("..", "..", "..", "conf", "gateway.json"))
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:3334", cfg.Agent.Listen)
	tok, err := cfg.Agent.Agents[0].Secret()
	require.NoError(t, err)
	require.Equal(t, "secret", tok)

	// Every problem at once.
	cfg.GatewayID = 255
	cfg.Agent.SuffixSize = 9
	cfg.Agent.Agents = append(cfg.Agent.Agents,
		AgentAccount{ID: "devnet-agent", Token: "x", ExtranoncePrefix: "ff000001"},
		AgentAccount{ID: "bad id", ExtranoncePrefix: "0102"})
	err = cfg.Validate()
	require.Error(t, err)
	for _, want := range []string{"agent.suffix_size", "agent.agents[0].extranonce_prefix", "agent.agents[1].id",
		"agent.agents[1].extranonce_prefix", "agent.agents[2].id", "agent.agents[2].token", "agent.agents[2].extranonce_prefix"} {
		require.Contains(t, err.Error(), want)
	}
}
