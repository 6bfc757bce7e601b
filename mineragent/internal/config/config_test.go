package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hashgate/hashgate/pkg/agentwire"
)

// TestExampleConfig loads conf/mineragent.json as shipped, so the
// documented example cannot rot.
func TestExampleConfig(t *testing.T) {
	t.Setenv("AGENT_TOKEN", "secret")
	cfg, err := Load(filepath.Join("..", "..", "..", "conf", "mineragent.json"))
	require.NoError(t, err)
	require.Equal(t, "devnet-agent", cfg.AgentID)
	require.Equal(t, "127.0.0.1:3340", cfg.Upstream.Servers[0].Addr)
	require.Equal(t, agentwire.CodecZstd, cfg.CodecValue())
	tok, err := cfg.Secret()
	require.NoError(t, err)
	require.Equal(t, "secret", tok)

	t.Setenv("AGENT_UPSTREAM", "10.0.0.1:4000")
	t.Setenv("VARDIFF_MIN", "0.00000001")
	cfg, err = Load(filepath.Join("..", "..", "..", "conf", "mineragent.json"))
	require.NoError(t, err)
	require.Equal(t, "10.0.0.1:4000", cfg.Upstream.Servers[0].Addr)
	require.Equal(t, 1e-8, cfg.Vardiff.Min)
}

func TestValidateReportsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(path, []byte(`{
		"agent_id": "bad id!",
		"upstream": {"servers": [{"addr": "nohost"}, {"addr": "h:1", "ca_file": "x"}], "codec": "lz4",
			"ping_interval": "20s", "read_timeout": "30s"},
		"stratum": {"listen": "nope", "max_connections": 50000},
		"batch_interval": "10s",
		"max_replay_age": "2h",
		"fallback": {"host": "pool.example", "port": 0}
	}`), 0o644))
	_, err := Load(path)
	require.Error(t, err)
	for _, want := range []string{"agent_id", "token", "upstream.servers[0].addr", "upstream.servers[1]",
		"upstream.codec", "upstream.read_timeout", "stratum.listen", "stratum.max_connections",
		"batch_interval", "max_replay_age", "fallback.port"} {
		require.Contains(t, err.Error(), want)
	}
}
