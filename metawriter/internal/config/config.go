// Package config holds the metawriter's configuration: defaults, strict
// loading (unknown keys are errors) and validation that reports every
// problem at once.
package config

import (
	"net"
	"os"
	"strings"
	"time"

	"github.com/hashgate/hashgate/pkg/admin"
	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/confutil"
	"github.com/hashgate/hashgate/pkg/logx"
)

// StreamMaxAge is how long the stats stream keeps messages
// (bus.EnsureStatsStream); DedupTTL must be longer, so that no message the
// stream can still redeliver has lost its done key.
const StreamMaxAge = 7 * 24 * time.Hour

// Config is the metawriter configuration (conf/metawriter.json documents
// every key).
type Config struct {
	Instance        string            `json:"instance"`         // name in logs and /status; default host name
	RunDir          string            `json:"run_dir"`          // where metawriter.pid and metawriter.admin are written
	NATS            bus.Config        `json:"nats"`             // internal bus; the stats stream is <prefix>.*.stats and <prefix>.*.event
	Redis           RedisConfig       `json:"redis"`            // where the statistics go
	Consumer        ConsumerConfig    `json:"consumer"`         // the durable JetStream consumer
	Retention       confutil.Duration `json:"retention"`        // minute fields older than this are removed; "0s" keeps them forever
	SweepInterval   confutil.Duration `json:"sweep_interval"`   // how often old minute fields are removed
	DedupTTL        confutil.Duration `json:"dedup_ttl"`        // how long applied batch ids are remembered; > 168h
	AgentDedupTTL   confutil.Duration `json:"agent_dedup_ttl"`  // the same for mineragent share batches (10 a second per agent); ≥ 10m
	EventTTL        confutil.Duration `json:"event_ttl"`        // expiry of newblock/newworker/newevent after their last push; "0s": none
	EventMaxLen     int64             `json:"event_max_len"`    // newest entries kept in each event list; 0: unlimited
	Admin           admin.Config      `json:"admin"`            // loopback admin endpoint
	Log             logx.Config       `json:"log"`              // logging
	ShutdownTimeout confutil.Duration `json:"shutdown_timeout"` // bound on graceful shutdown
}

// RedisConfig locates the Redis server (standalone or behind a proxy that
// supports Lua scripts; not Redis Cluster).
type RedisConfig struct {
	Addr         string            `json:"addr"`          // host:port
	Username     string            `json:"username"`      // ACL user; empty: default user
	Password     string            `json:"password"`      // password (or password_env / password_file); empty: none
	PasswordEnv  string            `json:"password_env"`  // environment variable holding the password
	PasswordFile string            `json:"password_file"` // file holding the password
	DB           int               `json:"db"`            // database number
	Pool         int               `json:"pool"`          // connections in the pool
	Timeout      confutil.Duration `json:"timeout"`       // dial, read and write timeout per command
	KeyPrefix    string            `json:"key_prefix"`    // prefix of the metawriter's own keys (done ids, sweep state)
}

// Secret resolves the Redis password ("" when none is configured).
func (r RedisConfig) Secret() (string, error) {
	return confutil.ResolveSecret(r.Password, r.PasswordEnv, r.PasswordFile)
}

// Validate records every problem of the section under field prefix f.
func (r RedisConfig) Validate(p *confutil.Problems, f string) {
	if _, _, err := net.SplitHostPort(r.Addr); err != nil {
		p.Add(f+".addr", "%q is not host:port", r.Addr)
	}
	if _, err := r.Secret(); err != nil {
		p.Add(f+".password", "%v", err)
	}
	if r.DB < 0 || r.DB > 15 {
		p.Add(f+".db", "must be 0..15")
	}
	if r.Pool < 1 || r.Pool > 1000 {
		p.Add(f+".pool", "must be 1..1000")
	}
	if r.Timeout.D() < 100*time.Millisecond {
		p.Add(f+".timeout", "must be at least 100ms")
	}
	if r.KeyPrefix == "" || strings.ContainsAny(r.KeyPrefix, " \t\r\n") {
		p.Add(f+".key_prefix", "must be a non-empty key prefix without blanks")
	}
}

// ConsumerConfig tunes the durable pull consumer. Every metawriter with the
// same durable name shares one consumer and so the work.
type ConsumerConfig struct {
	Durable       string            `json:"durable"`         // consumer name shared by all metawriters
	Batch         int               `json:"batch"`           // messages asked for per pull
	FetchWait     confutil.Duration `json:"fetch_wait"`      // how long one pull waits for messages
	AckWait       confutil.Duration `json:"ack_wait"`        // unacknowledged messages are redelivered after this
	MaxDeliver    int               `json:"max_deliver"`     // delivery attempts; -1: unlimited
	MaxAckPending int               `json:"max_ack_pending"` // messages out without an ack, over all metawriters
	RetryMin      confutil.Duration `json:"retry_min"`       // first redelivery delay after a Redis failure
	RetryMax      confutil.Duration `json:"retry_max"`       // the delay doubles up to this
}

// Default returns the defaults every file is applied on top of.
func Default() Config {
	host, _ := os.Hostname()
	return Config{
		Instance: host,
		RunDir:   "run",
		NATS:     bus.DefaultConfig(),
		Redis: RedisConfig{
			Addr: "127.0.0.1:6379", Pool: 10, Timeout: confutil.Duration(5 * time.Second),
			KeyPrefix: "metawriter",
		},
		Consumer: ConsumerConfig{
			Durable: "metawriter", Batch: 64, FetchWait: confutil.Duration(5 * time.Second),
			AckWait: confutil.Duration(30 * time.Second), MaxDeliver: -1, MaxAckPending: 1000,
			RetryMin: confutil.Duration(time.Second), RetryMax: confutil.Duration(5 * time.Second),
		},
		Retention:       confutil.Duration(30 * 24 * time.Hour),
		SweepInterval:   confutil.Duration(time.Hour),
		DedupTTL:        confutil.Duration(8 * 24 * time.Hour),
		AgentDedupTTL:   confutil.Duration(3 * time.Hour),
		EventTTL:        confutil.Duration(30 * 24 * time.Hour),
		EventMaxLen:     1_000_000,
		Admin:           admin.Config{Listen: "127.0.0.1:0"},
		Log:             logx.DefaultConfig(),
		ShutdownTimeout: confutil.Duration(10 * time.Second),
	}
}

// Load reads path over the defaults and validates the result.
func Load(path string) (Config, error) {
	cfg, err := Read(path)
	if err != nil {
		return Config{}, err
	}
	return cfg, cfg.Validate()
}

// Read reads path over the defaults without validating anything but the
// syntax: the hashrate command uses it and checks only the redis section,
// so an analyst needs no NATS password.
func Read(path string) (Config, error) {
	cfg := Default()
	if err := confutil.Load(path, &cfg); err != nil {
		return Config{}, err
	}
	return cfg, nil
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
	c.Redis.Validate(&p, "redis")

	cc := c.Consumer
	if err := bus.ValidToken(cc.Durable); err != nil {
		p.Add("consumer.durable", "%v", err)
	}
	if cc.Batch < 1 || cc.Batch > 10000 {
		p.Add("consumer.batch", "must be 1..10000")
	}
	if cc.FetchWait.D() < 100*time.Millisecond {
		p.Add("consumer.fetch_wait", "must be at least 100ms")
	}
	if cc.AckWait.D() < time.Second {
		p.Add("consumer.ack_wait", "must be at least 1s")
	} else if cc.AckWait.D() <= 2*c.Redis.Timeout.D() {
		p.Add("consumer.ack_wait", "must exceed twice redis.timeout (%s), or slow applies get redelivered while still running", c.Redis.Timeout)
	}
	if cc.MaxDeliver != -1 && cc.MaxDeliver < 1 {
		p.Add("consumer.max_deliver", "must be -1 (unlimited) or positive")
	}
	if cc.MaxAckPending < cc.Batch {
		p.Add("consumer.max_ack_pending", "must be at least consumer.batch (%d)", cc.Batch)
	}
	if cc.RetryMin.D() <= 0 {
		p.Add("consumer.retry_min", "must be positive")
	}
	if cc.RetryMax.D() < cc.RetryMin.D() {
		p.Add("consumer.retry_max", "must be at least consumer.retry_min")
	}

	if r := c.Retention.D(); r != 0 && r < time.Hour {
		p.Add("retention", "must be 0s (keep forever) or at least 1h")
	}
	if c.SweepInterval.D() < time.Second {
		p.Add("sweep_interval", "must be at least 1s")
	}
	if c.DedupTTL.D() <= StreamMaxAge {
		p.Add("dedup_ttl", "must be longer than the stats stream's max age (%s)", StreamMaxAge)
	}
	if c.AgentDedupTTL.D() < 10*time.Minute || c.AgentDedupTTL.D() < 4*c.Consumer.AckWait.D() {
		p.Add("agent_dedup_ttl", "must be at least 10m and 4 × consumer.ack_wait")
	}
	if c.EventMaxLen < 0 {
		p.Add("event_max_len", "must not be negative")
	}
	p.Merge("admin", c.Admin.Validate())
	p.Merge("log", c.Log.Validate())
	if c.ShutdownTimeout.D() <= c.Redis.Timeout.D() {
		p.Add("shutdown_timeout", "must exceed redis.timeout (%s), so the message being applied can finish", c.Redis.Timeout)
	}
	return p.Err()
}
