// Package config holds the gateway's configuration: defaults, strict loading
// and validation that reports every problem at once.
package config

import (
	"encoding/hex"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/hashgate/hashgate/pkg/admin"
	"github.com/hashgate/hashgate/pkg/agentwire"
	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/confutil"
	"github.com/hashgate/hashgate/pkg/logx"
	"github.com/hashgate/hashgate/pkg/stratumsrv"
	"github.com/hashgate/hashgate/pkg/vardiff"
)

// Config is the gateway configuration (conf/gateway.json documents every
// key).
type Config struct {
	Coin            string            `json:"coin"`       // coin token in bus subjects
	Network         string            `json:"network"`    // mainnet, testnet3, signet or regtest
	Instance        string            `json:"instance"`   // name in logs and bus messages
	GatewayID       int               `json:"gateway_id"` // 0..255, unique per gateway: first byte of every extranonce1
	RunDir          string            `json:"run_dir"`    // <daemon>.pid, <daemon>.admin and the block spool
	NATS            bus.Config        `json:"nats"`       // internal bus
	Stratum         Stratum           `json:"stratum"`    // the miners' port
	Vardiff         Vardiff           `json:"vardiff"`    // difficulty
	Blocks          Blocks            `json:"blocks"`     // found-block delivery
	Stats           Stats             `json:"stats"`      // statistics to the metawriter
	Agent           AgentPort         `json:"agent"`      // the mineragents' port
	Admin           admin.Config      `json:"admin"`
	Log             logx.Config       `json:"log"`
	ShutdownTimeout confutil.Duration `json:"shutdown_timeout"`
}

// Stratum configures the miners' listener and sessions.
type Stratum struct {
	stratumsrv.Config
	VersionMask string            `json:"version_mask"` // pool version-rolling mask (hex)
	JobTimeout  confutil.Duration `json:"job_timeout"`  // jobmaster silence after which health degrades
}

// Vardiff configures per-worker difficulty.
type Vardiff struct {
	Target   confutil.Duration `json:"target"`   // desired interval between shares
	Min      float64           `json:"min"`      // lowest difficulty (fractional allowed, down to 1e-8)
	Max      float64           `json:"max"`      // highest difficulty
	Start    float64           `json:"start"`    // difficulty of a new session
	Retarget confutil.Duration `json:"retarget"` // minimum time between changes
}

// Blocks configures found-block delivery.
type Blocks struct {
	AckTimeout    confutil.Duration `json:"ack_timeout"`    // per request to the jobmaster
	FallbackAfter confutil.Duration `json:"fallback_after"` // submit to the nodes ourselves after this
	Nodes         []Node            `json:"nodes"`          // fallback submitblock targets
}

// Stats configures the statistics pipeline.
type Stats struct {
	Enabled    bool              `json:"enabled"`     // ship per-minute statistics and events through JetStream
	SpoolBytes int64             `json:"spool_bytes"` // bound on the on-disk spool used while NATS is unreachable
	FlushDelay confutil.Duration `json:"flush_delay"` // a minute is shipped this long after it ends
}

// AgentPort configures the port farms' mineragents connect to.
type AgentPort struct {
	Listen           string            `json:"listen"`            // "" disables the port
	TLSCertFile      string            `json:"tls_cert_file"`     // with tls_key_file: TLS on the port
	TLSKeyFile       string            `json:"tls_key_file"`      //
	MaxAgents        int               `json:"max_agents"`        // connected agents at most
	HandshakeTimeout confutil.Duration `json:"handshake_timeout"` // Hello to Welcome
	IdleTimeout      confutil.Duration `json:"idle_timeout"`      // nothing received this long: close
	ResumeWindow     confutil.Duration `json:"resume_window"`     // an agent process's state is kept this long after its link drops
	SuffixSize       int               `json:"suffix_size"`       // extranonce1 bytes an agent assigns per miner (1..4)
	Agents           []AgentAccount    `json:"agents"`
}

// AgentAccount is one agent allowed on the port.
type AgentAccount struct {
	ID        string `json:"id"`
	Token     string `json:"token"`
	TokenEnv  string `json:"token_env"`
	TokenFile string `json:"token_file"`
	// ExtranoncePrefix (hex, 4 bytes) starts the extranonce1 of every miner
	// behind the agent: unique per agent, the same on every gateway (so a
	// failover keeps the miners' work valid), and with a first byte no
	// gateway uses as gateway_id.
	ExtranoncePrefix string `json:"extranonce_prefix"`
}

// Secret resolves the agent's token.
func (a AgentAccount) Secret() (string, error) {
	return confutil.ResolveSecret(a.Token, a.TokenEnv, a.TokenFile)
}

// Node is a fallback submission target.
type Node struct {
	Name        string            `json:"name"`
	RPCURL      string            `json:"rpc_url"`
	RPCUser     string            `json:"rpc_user"`
	RPCPass     string            `json:"rpc_pass"`
	RPCPassEnv  string            `json:"rpc_pass_env"`
	RPCPassFile string            `json:"rpc_pass_file"`
	Timeout     confutil.Duration `json:"timeout"`
}

// Password resolves the node's RPC password.
func (n Node) Password() (string, error) {
	return confutil.ResolveSecret(n.RPCPass, n.RPCPassEnv, n.RPCPassFile)
}

// Default returns the defaults every file is applied on top of.
func Default() Config {
	host, _ := os.Hostname()
	vd := vardiff.DefaultConfig()
	return Config{
		Coin: "btc", Network: "mainnet", Instance: host, RunDir: "run",
		NATS: bus.DefaultConfig(),
		Stratum: Stratum{Config: stratumsrv.DefaultConfig(), VersionMask: "1fffe000",
			JobTimeout: confutil.Duration(3 * time.Minute)},
		Vardiff: Vardiff{Target: confutil.Duration(vd.Target), Min: vd.Min, Max: vd.Max, Start: vd.Start,
			Retarget: confutil.Duration(vd.Retarget)},
		Blocks: Blocks{AckTimeout: confutil.Duration(2 * time.Second), FallbackAfter: confutil.Duration(3 * time.Second)},
		Stats:  Stats{Enabled: true, SpoolBytes: 1 << 30, FlushDelay: confutil.Duration(5 * time.Second)},
		Agent: AgentPort{MaxAgents: 64, HandshakeTimeout: confutil.Duration(10 * time.Second),
			IdleTimeout: confutil.Duration(30 * time.Second), ResumeWindow: confutil.Duration(10 * time.Minute), SuffixSize: 2},
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
	for i := range cfg.Blocks.Nodes {
		if cfg.Blocks.Nodes[i].Timeout == 0 {
			cfg.Blocks.Nodes[i].Timeout = confutil.Duration(5 * time.Second)
		}
	}
	return cfg, cfg.Validate()
}

// VardiffConfig converts the section for the vardiff package.
func (c Config) VardiffConfig() vardiff.Config {
	return vardiff.Config{Target: c.Vardiff.Target.D(), Min: c.Vardiff.Min, Max: c.Vardiff.Max,
		Start: c.Vardiff.Start, Retarget: c.Vardiff.Retarget.D()}
}

// Mask returns the pool version-rolling mask (valid after Validate).
func (c Config) Mask() uint32 {
	m, _ := strconv.ParseUint(c.Stratum.VersionMask, 16, 32)
	return uint32(m)
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var p confutil.Problems
	if err := bus.ValidToken(c.Coin); err != nil {
		p.Add("coin", "%v", err)
	}
	switch c.Network {
	case "mainnet", "testnet3", "signet", "regtest":
	default:
		p.Add("network", "%q: want mainnet, testnet3, signet or regtest", c.Network)
	}
	if c.Instance == "" {
		p.Add("instance", "must be set")
	}
	if c.GatewayID < 0 || c.GatewayID > 255 {
		p.Add("gateway_id", "must be 0..255 (unique per gateway)")
	}
	if c.RunDir == "" {
		p.Add("run_dir", "must be set")
	}
	c.NATS.Validate(&p, "nats")
	s := c.Stratum
	s.Config.Validate(&p, "stratum")
	if s.JobTimeout.D() <= 0 {
		p.Add("stratum.job_timeout", "must be positive")
	}
	if m, err := strconv.ParseUint(s.VersionMask, 16, 32); err != nil {
		p.Add("stratum.version_mask", "%q is not a 32-bit hex mask", s.VersionMask)
	} else if m&0xe0000000 != 0 {
		p.Add("stratum.version_mask", "%08x would let miners change the top three version bits", m)
	}
	if err := c.VardiffConfig().Validate(); err != nil {
		p.Merge("vardiff", err)
	}
	if v := c.Vardiff; math.IsNaN(v.Start) || v.Start < v.Min || v.Start > v.Max {
		p.Add("vardiff.start", "must be within [min, max]")
	}
	if c.Blocks.AckTimeout.D() <= 0 || c.Blocks.FallbackAfter.D() <= 0 {
		p.Add("blocks", "ack_timeout and fallback_after must be positive")
	}
	for i, n := range c.Blocks.Nodes {
		f := fmt.Sprintf("blocks.nodes[%d]", i)
		if n.Name == "" || n.RPCURL == "" || n.RPCUser == "" {
			p.Add(f, "name, rpc_url and rpc_user must be set")
		}
		if _, err := n.Password(); err != nil {
			p.Add(f+".rpc_pass", "%v", err)
		}
	}
	if c.Stats.SpoolBytes < 1<<20 || c.Stats.FlushDelay.D() < 0 || c.Stats.FlushDelay.D() > 50*time.Second {
		p.Add("stats", "spool_bytes must be at least 1 MiB and flush_delay 0..50s")
	}
	c.validateAgent(&p)
	p.Merge("admin", c.Admin.Validate())
	p.Merge("log", c.Log.Validate())
	if c.ShutdownTimeout.D() <= 0 {
		p.Add("shutdown_timeout", "must be positive")
	}
	return p.Err()
}

func (c Config) validateAgent(p *confutil.Problems) {
	a := c.Agent
	if a.Listen == "" {
		return
	}
	if _, _, err := net.SplitHostPort(a.Listen); err != nil {
		p.Add("agent.listen", "%q is not host:port", a.Listen)
	}
	if (a.TLSCertFile == "") != (a.TLSKeyFile == "") {
		p.Add("agent.tls_cert_file", "set both tls_cert_file and tls_key_file, or neither")
	}
	if a.MaxAgents < 1 || a.HandshakeTimeout.D() <= 0 || a.IdleTimeout.D() <= 0 || a.ResumeWindow.D() <= 0 {
		p.Add("agent", "max_agents, handshake_timeout, idle_timeout and resume_window must be positive")
	}
	if a.SuffixSize < 1 || a.SuffixSize > 4 {
		p.Add("agent.suffix_size", "must be 1..4")
	}
	if len(a.Agents) == 0 {
		p.Add("agent.agents", "the port is enabled but no agent may use it")
	}
	ids, prefixes := map[string]bool{}, map[string]bool{}
	for i, ag := range a.Agents {
		f := fmt.Sprintf("agent.agents[%d]", i)
		if err := agentwire.ValidAgentID(ag.ID); err != nil {
			p.Add(f+".id", "%v", err)
		} else if ids[ag.ID] {
			p.Add(f+".id", "%q twice", ag.ID)
		}
		ids[ag.ID] = true
		if tok, err := ag.Secret(); err != nil || tok == "" {
			p.Add(f+".token", "no token: %v", err)
		}
		raw, err := hex.DecodeString(ag.ExtranoncePrefix)
		switch {
		case err != nil || len(raw) != 4:
			p.Add(f+".extranonce_prefix", "%q: want 4 bytes of hex", ag.ExtranoncePrefix)
		case int(raw[0]) == c.GatewayID:
			p.Add(f+".extranonce_prefix", "%q starts with this gateway's id %d: direct miners' extranonce1s do too",
				ag.ExtranoncePrefix, c.GatewayID)
		case prefixes[string(raw)]:
			p.Add(f+".extranonce_prefix", "%q is used by another agent", ag.ExtranoncePrefix)
		}
		prefixes[string(raw)] = true
	}
}
