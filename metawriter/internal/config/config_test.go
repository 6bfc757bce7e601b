package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var example = filepath.Join("..", "..", "..", "conf", "metawriter.json")

// TestExampleConfig loads conf/metawriter.json as shipped, with the variables
// shell/devnet.sh exports, so the documented example cannot rot.
func TestExampleConfig(t *testing.T) {
	t.Setenv("NATS_PASS", "pw")
	cfg, err := Load(example)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:6379", cfg.Redis.Addr)
	require.Equal(t, "metawriter", cfg.Consumer.Durable)
	require.Equal(t, -1, cfg.Consumer.MaxDeliver)
	require.Equal(t, 720*time.Hour, cfg.Retention.D())
	require.Equal(t, 192*time.Hour, cfg.DedupTTL.D())
	require.Equal(t, "hashgate", cfg.NATS.Prefix)

	t.Setenv("REDIS_ADDR", "127.0.0.1:20002")
	t.Setenv("METAWRITER_ADMIN_PORT", "20003")
	t.Setenv("HASHGATE_RUN", "/tmp/run")
	cfg, err = Load(example)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:20002", cfg.Redis.Addr)
	require.Equal(t, "127.0.0.1:20003", cfg.Admin.Listen)
	require.Equal(t, "/tmp/run", cfg.RunDir)
}

// TestReadNeedsNoNATSPassword: the hashrate command reads the same file
// without the daemon's secrets.
func TestReadNeedsNoNATSPassword(t *testing.T) {
	t.Setenv("NATS_PASS", "")
	_, err := Load(example)
	require.ErrorContains(t, err, "NATS_PASS")
	cfg, err := Read(example)
	require.NoError(t, err)
	require.Equal(t, "metawriter", cfg.Redis.KeyPrefix)
}

func TestValidateReportsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(path, []byte(`{
		"nats": {"url": "nope", "prefix": "a.b"},
		"redis": {"addr": "nohost", "db": 99, "pool": 0, "timeout": "1ms", "key_prefix": "", "password": "x", "password_env": "Y"},
		"consumer": {"durable": "a.b", "batch": 0, "fetch_wait": "1ms", "ack_wait": "100ms", "max_deliver": 0,
		             "max_ack_pending": -1, "retry_min": "0s", "retry_max": "0s"},
		"retention": "10m",
		"sweep_interval": "1ms",
		"dedup_ttl": "24h",
		"agent_dedup_ttl": "1m",
		"event_max_len": -1,
		"admin": {"listen": "0.0.0.0:1"}
	}`), 0o644))
	_, err := Load(path)
	require.Error(t, err)
	for _, want := range []string{"nats.url", "nats.prefix", "redis.addr", "redis.password", "redis.db", "redis.pool",
		"redis.timeout", "redis.key_prefix", "consumer.durable", "consumer.batch", "consumer.fetch_wait",
		"consumer.ack_wait", "consumer.max_deliver", "consumer.max_ack_pending", "consumer.retry_min",
		"retention", "sweep_interval", "dedup_ttl", "agent_dedup_ttl", "event_max_len", "admin"} {
		require.Contains(t, err.Error(), want)
	}
	require.GreaterOrEqual(t, strings.Count(err.Error(), "\n"), 20, "one line per problem")
}

func TestAckWaitMustExceedRedisTimeout(t *testing.T) {
	cfg := Default()
	cfg.NATS.Pass = ""
	cfg.Consumer.AckWait = cfg.Redis.Timeout
	require.ErrorContains(t, cfg.Validate(), "consumer.ack_wait")
}

func TestUnknownKeyIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "typo.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"retension": "1h"}`), 0o644))
	_, err := Load(path)
	require.ErrorContains(t, err, "retension")
}
