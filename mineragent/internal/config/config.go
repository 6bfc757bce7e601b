// Package config holds the mineragent's configuration: defaults, strict
// loading and validation that reports every problem at once.
package config

import (
	"fmt"
	"math"
	"net"
	"time"

	"github.com/hashgate/hashgate/pkg/admin"
	"github.com/hashgate/hashgate/pkg/agentwire"
	"github.com/hashgate/hashgate/pkg/confutil"
	"github.com/hashgate/hashgate/pkg/logx"
	"github.com/hashgate/hashgate/pkg/stratumsrv"
	"github.com/hashgate/hashgate/pkg/vardiff"
)

// Config is the mineragent configuration (conf/mineragent.json documents
// every key).
type Config struct {
	Instance  string            `json:"instance"`   // name in logs
	RunDir    string            `json:"run_dir"`    // mineragent.pid and mineragent.admin
	AgentID   string            `json:"agent_id"`   // the id the gateways know this agent by
	Token     string            `json:"token"`      // the agent's secret, or:
	TokenEnv  string            `json:"token_env"`  // the environment variable holding it, or
	TokenFile string            `json:"token_file"` // the file holding it
	Upstream  Upstream          `json:"upstream"`   // the link to the pool
	Stratum   stratumsrv.Config `json:"stratum"`    // the farm's miners
	Vardiff   Vardiff           `json:"vardiff"`    // per-miner difficulty
	// BatchInterval is the longest a share waits before it goes upstream.
	BatchInterval confutil.Duration `json:"batch_interval"`
	// MaxReplayAge and MaxReplayShares bound what is kept for replay while
	// no gateway acknowledges it; older batches are dropped and counted.
	MaxReplayAge    confutil.Duration `json:"max_replay_age"`
	MaxReplayShares int               `json:"max_replay_shares"`
	// NoUpstreamTimeout: with no gateway for this long, miners are sent to
	// Fallback (client.reconnect) or disconnected, and new miners are
	// refused until a gateway is back.
	NoUpstreamTimeout confutil.Duration `json:"no_upstream_timeout"`
	Fallback          Fallback          `json:"fallback"`
	// DedupWindow is how long accepted shares are remembered to refuse
	// duplicates locally (later duplicates are refused by the gateway).
	DedupWindow confutil.Duration `json:"dedup_window"`
	// GCPercent is the Go garbage collector's target (GOGC): the heap may
	// grow this many percent above the live data between collections. The
	// agent allocates little, so a low value keeps it small at almost no
	// CPU cost.
	GCPercent int `json:"gc_percent"`
	// HeapProfile keeps Go's allocation sampling on, for
	// /debug/pprof/heap; off, the runtime does not keep the sample table
	// (up to 1.5 MB once enough call stacks were sampled).
	HeapProfile     bool              `json:"heap_profile"`
	Admin           admin.Config      `json:"admin"`
	Log             logx.Config       `json:"log"`
	ShutdownTimeout confutil.Duration `json:"shutdown_timeout"`
}

// Upstream configures the link to the pool's gateways.
type Upstream struct {
	Servers          []Server          `json:"servers"`           // in order of preference
	Codec            string            `json:"codec"`             // zstd (default), s2 or none
	DialTimeout      confutil.Duration `json:"dial_timeout"`      // TCP connect, per server
	HandshakeTimeout confutil.Duration `json:"handshake_timeout"` // Hello to Welcome
	PingInterval     confutil.Duration `json:"ping_interval"`     // liveness pings
	ReadTimeout      confutil.Duration `json:"read_timeout"`      // nothing received this long: the link is dead
	RetryInterval    confutil.Duration `json:"retry_interval"`    // pause after every server failed
	FailbackAfter    confutil.Duration `json:"failback_after"`    // on a later server this long: try the first again (0: never)
}

// Server is one gateway agent port.
type Server struct {
	Addr       string `json:"addr"`        // host:port
	TLS        bool   `json:"tls"`         // wrap the link in TLS
	ServerName string `json:"server_name"` // TLS name to verify (default: the host of addr)
	CAFile     string `json:"ca_file"`     // PEM roots to verify with (default: the system's)
}

// Vardiff configures per-miner difficulty.
type Vardiff struct {
	Target   confutil.Duration `json:"target"`
	Min      float64           `json:"min"`
	Max      float64           `json:"max"`
	Start    float64           `json:"start"`
	Retarget confutil.Duration `json:"retarget"`
}

// Fallback is where miners are sent when no gateway is reachable.
type Fallback struct {
	Host string `json:"host"` // "" = disconnect them cleanly instead
	Port int    `json:"port"`
}

// Default returns the defaults every file is applied on top of.
func Default() Config {
	vd := vardiff.DefaultConfig()
	return Config{
		Instance: "mineragent", RunDir: "run",
		Upstream: Upstream{Codec: "zstd", DialTimeout: confutil.Duration(500 * time.Millisecond),
			HandshakeTimeout: confutil.Duration(3 * time.Second), PingInterval: confutil.Duration(5 * time.Second),
			ReadTimeout: confutil.Duration(30 * time.Second), RetryInterval: confutil.Duration(time.Second),
			FailbackAfter: confutil.Duration(10 * time.Minute)},
		Stratum: stratumsrv.DefaultConfig(),
		Vardiff: Vardiff{Target: confutil.Duration(vd.Target), Min: vd.Min, Max: vd.Max, Start: vd.Start,
			Retarget: confutil.Duration(vd.Retarget)},
		BatchInterval: confutil.Duration(100 * time.Millisecond),
		MaxReplayAge:  confutil.Duration(10 * time.Minute), MaxReplayShares: 1 << 20,
		NoUpstreamTimeout: confutil.Duration(2 * time.Minute),
		DedupWindow:       confutil.Duration(30 * time.Second),
		GCPercent:         10,
		Admin:             admin.Config{Listen: "127.0.0.1:0"},
		Log:               logx.DefaultConfig(),
		ShutdownTimeout:   confutil.Duration(10 * time.Second),
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

// Secret resolves the agent's token.
func (c Config) Secret() (string, error) {
	return confutil.ResolveSecret(c.Token, c.TokenEnv, c.TokenFile)
}

// VardiffConfig converts the section for the vardiff package.
func (c Config) VardiffConfig() vardiff.Config {
	return vardiff.Config{Target: c.Vardiff.Target.D(), Min: c.Vardiff.Min, Max: c.Vardiff.Max,
		Start: c.Vardiff.Start, Retarget: c.Vardiff.Retarget.D()}
}

// CodecValue returns the upstream codec (valid after Validate).
func (c Config) CodecValue() agentwire.Codec {
	switch c.Upstream.Codec {
	case "s2":
		return agentwire.CodecS2
	case "none":
		return agentwire.CodecNone
	}
	return agentwire.CodecZstd
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var p confutil.Problems
	if c.Instance == "" {
		p.Add("instance", "must be set")
	}
	if c.RunDir == "" {
		p.Add("run_dir", "must be set")
	}
	if err := agentwire.ValidAgentID(c.AgentID); err != nil {
		p.Add("agent_id", "%v", err)
	}
	if tok, err := c.Secret(); err != nil {
		p.Add("token", "%v", err)
	} else if tok == "" || len(tok) > agentwire.MaxTokenLen {
		p.Add("token", "must be 1..%d bytes (token, token_env or token_file)", agentwire.MaxTokenLen)
	}
	u := c.Upstream
	if len(u.Servers) == 0 {
		p.Add("upstream.servers", "list at least one gateway agent port")
	}
	for i, s := range u.Servers {
		if _, _, err := net.SplitHostPort(s.Addr); err != nil {
			p.Add(fmt.Sprintf("upstream.servers[%d].addr", i), "%q is not host:port", s.Addr)
		}
		if !s.TLS && (s.ServerName != "" || s.CAFile != "") {
			p.Add(fmt.Sprintf("upstream.servers[%d]", i), "server_name and ca_file need tls: true")
		}
	}
	switch u.Codec {
	case "zstd", "s2", "none":
	default:
		p.Add("upstream.codec", "%q: want zstd, s2 or none", u.Codec)
	}
	if u.DialTimeout.D() <= 0 || u.HandshakeTimeout.D() <= 0 || u.PingInterval.D() <= 0 || u.RetryInterval.D() <= 0 {
		p.Add("upstream", "dial_timeout, handshake_timeout, ping_interval and retry_interval must be positive")
	}
	if u.ReadTimeout.D() < 2*u.PingInterval.D() {
		p.Add("upstream.read_timeout", "must be at least twice ping_interval")
	}
	if u.FailbackAfter.D() < 0 {
		p.Add("upstream.failback_after", "must not be negative")
	}
	c.Stratum.Validate(&p, "stratum")
	if err := c.VardiffConfig().Validate(); err != nil {
		p.Merge("vardiff", err)
	}
	if v := c.Vardiff; math.IsNaN(v.Start) || v.Start < v.Min || v.Start > v.Max {
		p.Add("vardiff.start", "must be within [min, max]")
	}
	if c.BatchInterval.D() < time.Millisecond || c.BatchInterval.D() > 5*time.Second {
		p.Add("batch_interval", "must be 1ms..5s")
	}
	if c.MaxReplayAge.D() <= 0 || c.MaxReplayAge.D() > time.Hour {
		p.Add("max_replay_age", "must be positive and at most 1h (gateways credit nothing older)")
	}
	if c.MaxReplayShares < 1000 {
		p.Add("max_replay_shares", "must be at least 1000")
	}
	if c.NoUpstreamTimeout.D() <= 0 {
		p.Add("no_upstream_timeout", "must be positive")
	}
	if c.Fallback.Host != "" && (c.Fallback.Port < 1 || c.Fallback.Port > 65535) {
		p.Add("fallback.port", "must be 1..65535 with fallback.host")
	}
	if c.DedupWindow.D() < time.Second || c.DedupWindow.D() > time.Hour {
		p.Add("dedup_window", "must be 1s..1h")
	}
	if c.GCPercent < 10 || c.GCPercent > 1000 {
		p.Add("gc_percent", "must be 10..1000")
	}
	p.Merge("admin", c.Admin.Validate())
	p.Merge("log", c.Log.Validate())
	if c.ShutdownTimeout.D() <= 0 {
		p.Add("shutdown_timeout", "must be positive")
	}
	return p.Err()
}
