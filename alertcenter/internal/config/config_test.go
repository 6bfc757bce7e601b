package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var example = filepath.Join("..", "..", "..", "conf", "alertcenter.json")

// TestExampleConfig loads conf/alertcenter.json as shipped, with the
// variables shell/devnet.sh exports, so the documented example cannot rot.
func TestExampleConfig(t *testing.T) {
	t.Setenv("NATS_PASS", "pw")
	t.Setenv("ALERT_WEBHOOK_URL", "")
	t.Setenv("REDIS_ADDR", "")
	cfg, err := Load(example)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:6379", cfg.Redis.Addr)
	require.Equal(t, "alert:message", cfg.Redis.Key)
	require.Equal(t, 10000, cfg.Redis.MaxList)
	require.Empty(t, cfg.Webhook.URL, "no webhook unless configured")
	require.Equal(t, 60, cfg.RateLimit.PerHost)
	require.Equal(t, time.Minute, cfg.RateLimit.Per.D())
	require.Equal(t, "127.0.0.1:0", cfg.Admin.Listen)
	pass, err := cfg.Redis.Password()
	require.NoError(t, err)
	require.Empty(t, pass)

	t.Setenv("REDIS_ADDR", "127.0.0.1:26379")
	t.Setenv("REDIS_PASS", "rpw")
	t.Setenv("ALERT_WEBHOOK_URL", "https://chat.example/hooks/abc")
	t.Setenv("ALERTCENTER_ADMIN_PORT", "27001")
	cfg, err = Load(example)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:26379", cfg.Redis.Addr)
	require.Equal(t, "https://chat.example/hooks/abc", cfg.Webhook.URL)
	require.Equal(t, "127.0.0.1:27001", cfg.Admin.Listen)
	pass, err = cfg.Redis.Password()
	require.NoError(t, err)
	require.Equal(t, "rpw", pass)
}

func TestValidateReportsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(path, []byte(`{
		"nats": {"url": "", "prefix": "a.b"},
		"redis": {"addr": "nohost", "key": "", "max_list": 0, "queue": 0, "pass": "x", "pass_env": "Y"},
		"webhook": {"url": "ftp://secret-token@x", "retry_min": "0s", "queue": 0},
		"rate_limit": {"per_host": -1},
		"admin": {"listen": "0.0.0.0:1"}
	}`), 0o644))
	_, err := Load(path)
	require.Error(t, err)
	for _, want := range []string{"nats.url", "nats.prefix", "redis.addr", "redis.key", "redis.max_list",
		"redis.queue", "redis.pass", "webhook.url", "webhook.retry_min", "webhook.queue", "rate_limit.per_host", "admin"} {
		require.Contains(t, err.Error(), want)
	}
	require.NotContains(t, err.Error(), "secret-token", "the webhook URL is never echoed")
	require.GreaterOrEqual(t, strings.Count(err.Error(), "\n"), 11, "one line per problem")
}

func TestUnknownKeyIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "typo.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"redis": {"max_lists": 5}}`), 0o644))
	_, err := Load(path)
	require.ErrorContains(t, err, "max_lists")
}
