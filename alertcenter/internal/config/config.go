// Package config holds alertcenter's configuration: defaults, strict
// loading (unknown keys are errors) and validation that reports every
// problem at once.
package config

import (
	"net"
	"net/url"
	"os"
	"time"

	"github.com/hashgate/hashgate/pkg/admin"
	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/confutil"
	"github.com/hashgate/hashgate/pkg/logx"
)

// Config is the alertcenter configuration (conf/alertcenter.json documents
// every key).
type Config struct {
	Instance        string            `json:"instance"`         // name in logs and status; default host name
	RunDir          string            `json:"run_dir"`          // where alertcenter.pid and alertcenter.admin are written
	NATS            bus.Config        `json:"nats"`             // internal bus; alerts arrive on <prefix>.all.alert
	Redis           RedisConfig       `json:"redis"`            // where alert lines are stored
	Webhook         WebhookConfig     `json:"webhook"`          // optional chat/paging endpoint
	RateLimit       RateLimitConfig   `json:"rate_limit"`       // per sending host
	Admin           admin.Config      `json:"admin"`            // loopback admin endpoint
	Log             logx.Config       `json:"log"`              // logging
	ShutdownTimeout confutil.Duration `json:"shutdown_timeout"` // bound on graceful shutdown
}

// RedisConfig says where and how alert lines are kept.
type RedisConfig struct {
	Addr     string            `json:"addr"`      // host:port of the Redis server
	User     string            `json:"user"`      // ACL user; empty: the default user
	Pass     string            `json:"pass"`      // password (or pass_env / pass_file); empty: none
	PassEnv  string            `json:"pass_env"`  // environment variable holding the password
	PassFile string            `json:"pass_file"` // file holding the password
	DB       int               `json:"db"`        // database number
	Key      string            `json:"key"`       // list the lines are appended to (default "alert:message")
	MaxList  int               `json:"max_list"`  // the list is trimmed to its newest max_list lines
	Timeout  confutil.Duration `json:"timeout"`   // dial, read and write timeout per command
	Queue    int               `json:"queue"`     // lines held in memory while Redis is unreachable
	RetryMax confutil.Duration `json:"retry_max"` // longest pause between write attempts while it is
}

// Password resolves the Redis password ("" for none).
func (r RedisConfig) Password() (string, error) {
	return confutil.ResolveSecret(r.Pass, r.PassEnv, r.PassFile)
}

// WebhookConfig is the optional HTTP endpoint every alert line is POSTed to
// as JSON with a Slack/Mattermost-compatible "text" field.
type WebhookConfig struct {
	URL      string            `json:"url"`       // http(s) URL; empty: no webhook. Treated as a secret (never logged)
	Timeout  confutil.Duration `json:"timeout"`   // per attempt
	Deadline confutil.Duration `json:"deadline"`  // give up on an alert this long after it arrived
	RetryMin confutil.Duration `json:"retry_min"` // first pause between attempts; doubles up to retry_max
	RetryMax confutil.Duration `json:"retry_max"` // longest pause between attempts
	Queue    int               `json:"queue"`     // alerts waiting for the webhook; beyond it they skip the webhook
}

// RateLimitConfig caps what one sending host can put into Redis and the
// webhook.
type RateLimitConfig struct {
	PerHost int               `json:"per_host"` // alerts per host per "per" (bursts of as many); 0: no limit
	Per     confutil.Duration `json:"per"`      // the period of per_host
}

// Default returns the defaults every file is applied on top of.
func Default() Config {
	host, _ := os.Hostname()
	return Config{
		Instance: host,
		RunDir:   "run",
		NATS:     bus.DefaultConfig(),
		Redis: RedisConfig{Addr: "127.0.0.1:6379", Key: "alert:message", MaxList: 10000,
			Timeout: confutil.Duration(2 * time.Second), Queue: 10000, RetryMax: confutil.Duration(5 * time.Second)},
		Webhook: WebhookConfig{Timeout: confutil.Duration(5 * time.Second), Deadline: confutil.Duration(2 * time.Minute),
			RetryMin: confutil.Duration(500 * time.Millisecond), RetryMax: confutil.Duration(30 * time.Second), Queue: 1000},
		RateLimit:       RateLimitConfig{PerHost: 60, Per: confutil.Duration(time.Minute)},
		Admin:           admin.Config{Listen: "127.0.0.1:0"},
		Log:             logx.DefaultConfig(),
		ShutdownTimeout: confutil.Duration(10 * time.Second),
	}
}

// Load reads path over the defaults and validates the result.
func Load(path string) (Config, error) {
	cfg := Default()
	if err := confutil.Load(path, &cfg); err != nil {
		return Config{}, err
	}
	return cfg, cfg.Validate()
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var p confutil.Problems
	if c.Instance == "" {
		p.Add("instance", "must be set (default: host name)")
	}
	if c.RunDir == "" {
		p.Add("run_dir", "must be set")
	}
	c.NATS.Validate(&p, "nats")

	r := c.Redis
	if _, port, err := net.SplitHostPort(r.Addr); err != nil || port == "" {
		p.Add("redis.addr", "%q is not host:port", r.Addr)
	}
	if _, err := r.Password(); err != nil {
		p.Add("redis.pass", "%v", err)
	}
	if r.DB < 0 {
		p.Add("redis.db", "must not be negative")
	}
	if r.Key == "" {
		p.Add("redis.key", "must be set")
	}
	if r.MaxList < 1 {
		p.Add("redis.max_list", "must be at least 1")
	}
	if r.Timeout.D() <= 0 {
		p.Add("redis.timeout", "must be positive")
	}
	if r.Queue < 1 {
		p.Add("redis.queue", "must be at least 1")
	}
	if r.RetryMax.D() < 10*time.Millisecond {
		p.Add("redis.retry_max", "must be at least 10ms")
	}

	w := c.Webhook
	if w.URL != "" {
		// The URL may carry a token: never echo it.
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.Add("webhook.url", "is not an http(s) URL")
		}
	}
	if w.Timeout.D() <= 0 {
		p.Add("webhook.timeout", "must be positive")
	}
	if w.Deadline.D() < w.Timeout.D() {
		p.Add("webhook.deadline", "must be at least webhook.timeout")
	}
	if w.RetryMin.D() <= 0 {
		p.Add("webhook.retry_min", "must be positive")
	}
	if w.RetryMax.D() < w.RetryMin.D() {
		p.Add("webhook.retry_max", "must be at least webhook.retry_min")
	}
	if w.Queue < 1 {
		p.Add("webhook.queue", "must be at least 1")
	}

	if c.RateLimit.PerHost < 0 {
		p.Add("rate_limit.per_host", "must not be negative (0 disables the limit)")
	}
	if c.RateLimit.PerHost > 0 && c.RateLimit.Per.D() <= 0 {
		p.Add("rate_limit.per", "must be positive")
	}
	p.Merge("admin", c.Admin.Validate())
	p.Merge("log", c.Log.Validate())
	if c.ShutdownTimeout.D() <= 0 {
		p.Add("shutdown_timeout", "must be positive")
	}
	return p.Err()
}
