// Package config holds the jobmaster's configuration: defaults, strict
// loading (unknown keys are errors) and validation that reports every
// problem at once.
package config

import (
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hashgate/hashgate/pkg/admin"
	"github.com/hashgate/hashgate/pkg/blockutil"
	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/confutil"
	"github.com/hashgate/hashgate/pkg/logx"
)

// Config is the jobmaster configuration (conf/jobmaster.json documents every
// key).
type Config struct {
	Coin            string            `json:"coin"`             // coin token in bus subjects, e.g. "btc"
	Network         string            `json:"network"`          // mainnet, testnet3, signet or regtest
	Instance        string            `json:"instance"`         // name in logs and bus messages; default host name
	RunDir          string            `json:"run_dir"`          // where <daemon>.pid and <daemon>.admin are written
	NATS            bus.Config        `json:"nats"`             // internal bus
	Nodes           []NodeConfig      `json:"nodes"`            // template sources in failover order
	PollInterval    confutil.Duration `json:"poll_interval"`    // getbestblockhash poll of the active node
	RefreshInterval confutil.Duration `json:"refresh_interval"` // template refresh on an unchanged tip
	EmptyJobs       bool              `json:"empty_jobs"`       // publish an empty-block job at once on a new tip
	EmptyTimeout    confutil.Duration `json:"empty_timeout"`    // give up on a foreign tip no node follows
	StaleGrace      confutil.Duration `json:"stale_grace"`      // how long jobs of the previous height stay submittable
	VersionMask     string            `json:"version_mask"`     // hex bits miners may roll (BIP310)
	Coinbase        CoinbaseConfig    `json:"coinbase"`         // coinbase layout and payouts
	Submit          SubmitConfig      `json:"submit"`           // found-block submission
	Admin           admin.Config      `json:"admin"`            // loopback admin endpoint
	Log             logx.Config       `json:"log"`              // logging
	ShutdownTimeout confutil.Duration `json:"shutdown_timeout"` // bound on graceful shutdown
}

// NodeConfig is one Bitcoin node (Bitcoin Core or btcd).
type NodeConfig struct {
	Name         string            `json:"name"`          // label in logs, metrics and health
	RPCURL       string            `json:"rpc_url"`       // http://host:port of the JSON-RPC server
	RPCUser      string            `json:"rpc_user"`      // JSON-RPC user
	RPCPass      string            `json:"rpc_pass"`      // password (or rpc_pass_env / rpc_pass_file)
	RPCPassEnv   string            `json:"rpc_pass_env"`  // environment variable holding the password
	RPCPassFile  string            `json:"rpc_pass_file"` // file holding the password
	ZMQHashBlock string            `json:"zmq_hashblock"` // Bitcoin Core -zmqpubhashblock endpoint; empty: none
	LongPoll     bool              `json:"longpoll"`      // keep a getblocktemplate long poll open
	Timeout      confutil.Duration `json:"timeout"`       // per-call timeout
}

// Password resolves the node's RPC password.
func (n NodeConfig) Password() (string, error) {
	return confutil.ResolveSecret(n.RPCPass, n.RPCPassEnv, n.RPCPassFile)
}

// CoinbaseConfig shapes the coinbase.
type CoinbaseConfig struct {
	Tag             string         `json:"tag"`              // pool tag after the extranonces; truncated to fit 100 bytes
	Extranonce1Size int            `json:"extranonce1_size"` // bytes the gateway assigns per session (default 4)
	Extranonce2Size int            `json:"extranonce2_size"` // bytes the miner rolls (default 8)
	Payouts         []PayoutConfig `json:"payouts"`          // where the block reward goes
}

// PayoutConfig is one payout output.
type PayoutConfig struct {
	Address string `json:"address"` // P2PKH, P2SH, P2WPKH, P2WSH or P2TR on the configured network
	Weight  uint64 `json:"weight"`  // share of the reward relative to the other payouts
}

// SubmitConfig tunes found-block submission.
type SubmitConfig struct {
	Retries       int               `json:"retries"`        // attempts per node on transport errors
	RetryInterval confutil.Duration `json:"retry_interval"` // pause between attempts
	Timeout       confutil.Duration `json:"timeout"`        // per submitblock call
	Workers       int               `json:"workers"`        // found blocks handled at once
}

// Default returns the defaults every file is applied on top of.
func Default() Config {
	host, _ := os.Hostname()
	return Config{
		Coin:            "btc",
		Network:         "mainnet",
		Instance:        host,
		RunDir:          "run",
		NATS:            bus.DefaultConfig(),
		PollInterval:    confutil.Duration(100 * time.Millisecond),
		RefreshInterval: confutil.Duration(30 * time.Second),
		EmptyJobs:       true,
		EmptyTimeout:    confutil.Duration(60 * time.Second),
		StaleGrace:      confutil.Duration(30 * time.Second),
		VersionMask:     "1fffe000",
		Coinbase:        CoinbaseConfig{Tag: "/hashgate/", Extranonce1Size: 4, Extranonce2Size: 8},
		Submit: SubmitConfig{Retries: 5, RetryInterval: confutil.Duration(200 * time.Millisecond),
			Timeout: confutil.Duration(10 * time.Second), Workers: 16},
		Admin:           admin.Config{Listen: "127.0.0.1:0"},
		Log:             logx.DefaultConfig(),
		ShutdownTimeout: confutil.Duration(10 * time.Second),
	}
}

// nodeDefaults fills per-node defaults.
func (n *NodeConfig) defaults() {
	if n.Timeout == 0 {
		n.Timeout = confutil.Duration(5 * time.Second)
	}
}

// Load reads path over the defaults and validates the result.
func Load(path string) (Config, error) {
	cfg := Default()
	if err := confutil.Load(path, &cfg); err != nil {
		return Config{}, err
	}
	for i := range cfg.Nodes {
		cfg.Nodes[i].defaults()
	}
	return cfg, cfg.Validate()
}

// Params returns the network parameters (valid after Validate).
func (c Config) Params() *chaincfg.Params {
	p, _ := blockutil.NetParams(c.Network)
	return p
}

// Mask returns the version-rolling mask (valid after Validate).
func (c Config) Mask() uint32 {
	m, _ := strconv.ParseUint(c.VersionMask, 16, 32)
	return uint32(m)
}

// Payouts decodes the payout addresses (valid after Validate).
func (c Config) Payouts() ([]blockutil.Payout, error) {
	params := c.Params()
	out := make([]blockutil.Payout, 0, len(c.Coinbase.Payouts))
	for i, po := range c.Coinbase.Payouts {
		a, err := blockutil.DecodeAddress(po.Address, params)
		if err != nil {
			return nil, fmt.Errorf("coinbase.payouts[%d]: %w", i, err)
		}
		out = append(out, blockutil.Payout{Address: a, Weight: po.Weight})
	}
	return out, nil
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var p confutil.Problems
	if err := bus.ValidToken(c.Coin); err != nil {
		p.Add("coin", "%v", err)
	}
	params, err := blockutil.NetParams(c.Network)
	if err != nil {
		p.Add("network", "%v", err)
	}
	if c.Instance == "" {
		p.Add("instance", "must be set (default: host name)")
	}
	if c.RunDir == "" {
		p.Add("run_dir", "must be set")
	}
	c.NATS.Validate(&p, "nats")
	if len(c.Nodes) == 0 {
		p.Add("nodes", "at least one node is required")
	}
	names := map[string]bool{}
	for i, n := range c.Nodes {
		f := fmt.Sprintf("nodes[%d]", i)
		switch {
		case n.Name == "":
			p.Add(f+".name", "must be set")
		case names[n.Name]:
			p.Add(f+".name", "%q is used twice", n.Name)
		}
		names[n.Name] = true
		if u, err := url.Parse(n.RPCURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.Add(f+".rpc_url", "%q is not an http(s)://host:port URL", n.RPCURL)
		}
		if n.RPCUser == "" {
			p.Add(f+".rpc_user", "must be set")
		}
		if _, err := n.Password(); err != nil {
			p.Add(f+".rpc_pass", "%v", err)
		}
		if n.ZMQHashBlock != "" && !strings.Contains(n.ZMQHashBlock, "://") {
			p.Add(f+".zmq_hashblock", "%q is not a ZMQ endpoint like tcp://127.0.0.1:28332", n.ZMQHashBlock)
		}
		if n.Timeout.D() <= 0 {
			p.Add(f+".timeout", "must be positive")
		}
	}
	if c.PollInterval.D() < 10*time.Millisecond {
		p.Add("poll_interval", "must be at least 10ms")
	}
	if c.RefreshInterval.D() < time.Second {
		p.Add("refresh_interval", "must be at least 1s")
	}
	if c.EmptyTimeout.D() <= 0 {
		p.Add("empty_timeout", "must be positive")
	}
	if c.StaleGrace.D() < 0 {
		p.Add("stale_grace", "must not be negative")
	}
	if m, err := strconv.ParseUint(c.VersionMask, 16, 32); err != nil {
		p.Add("version_mask", "%q is not a 32-bit hex mask", c.VersionMask)
	} else if m&0xe0000000 != 0 {
		p.Add("version_mask", "%08x would let miners change the top three version bits (BIP9 marker)", m)
	}
	cb := c.Coinbase
	if cb.Extranonce1Size < 0 || cb.Extranonce1Size > 16 {
		p.Add("coinbase.extranonce1_size", "must be 0..16")
	}
	if cb.Extranonce2Size < 1 || cb.Extranonce2Size > 16 {
		p.Add("coinbase.extranonce2_size", "must be 1..16")
	}
	if len(cb.Payouts) == 0 || len(cb.Payouts) > blockutil.MaxPayouts {
		p.Add("coinbase.payouts", "need 1..%d payouts", blockutil.MaxPayouts)
	}
	for i, po := range cb.Payouts {
		f := fmt.Sprintf("coinbase.payouts[%d]", i)
		if params != nil {
			if _, err := blockutil.DecodeAddress(po.Address, params); err != nil {
				p.Add(f+".address", "%v", err)
			}
		}
		if po.Weight == 0 {
			p.Add(f+".weight", "must be positive")
		}
	}
	if c.Submit.Retries < 1 {
		p.Add("submit.retries", "must be at least 1")
	}
	if c.Submit.RetryInterval.D() < 0 {
		p.Add("submit.retry_interval", "must not be negative")
	}
	if c.Submit.Timeout.D() <= 0 {
		p.Add("submit.timeout", "must be positive")
	}
	if c.Submit.Workers < 1 {
		p.Add("submit.workers", "must be at least 1")
	}
	p.Merge("admin", c.Admin.Validate())
	p.Merge("log", c.Log.Validate())
	if c.ShutdownTimeout.D() <= 0 {
		p.Add("shutdown_timeout", "must be positive")
	}
	return p.Err()
}
