package load

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// MaxConnsPerProc keeps every worker process well below the machine's
// open-file limit (20,000 per process, about 19,990 of them sockets).
const MaxConnsPerProc = 19000

// Config configures a load run (the parent process).
type Config struct {
	// Addr is the gateway's Stratum address, host:port.
	Addr string
	// Conns is the number of connections over all processes.
	Conns int
	// Procs is the number of worker processes (1: in this process).
	Procs int
	// Sources are the local IPs to dial from, round robin; empty lets the
	// kernel choose.
	Sources []string
	// UserPrefix names the workers <prefix>.<index>; Pass is their password.
	UserPrefix, Pass string
	// ShareRate is shares per second per connection (0: idle connections).
	ShareRate float64
	// Duration is the measured run after everyone is connected.
	Duration time.Duration
	// AdminURL is the gateway's admin base URL (for /metrics); optional.
	AdminURL string
	// PID is the gateway's pid for /proc readings; 0: use /metrics if any.
	PID int
	// GenerateURL is a btcd RPC URL with credentials; with GenerateEvery
	// the run calls `generate 1` periodically so that clean jobs arrive.
	GenerateURL   string
	GenerateEvery time.Duration
	// SuggestDiff is sent with mining.suggest_difficulty (the gateway
	// clamps it to its vardiff.min); 0 sends none.
	SuggestDiff float64
	// VersionRolling negotiates BIP310 version rolling.
	VersionRolling bool
	// AllowBlocks submits shares that also meet the network target; off,
	// they are skipped so a regtest run does not flood the node.
	AllowBlocks bool
	// ConnectTimeout bounds the connect phase.
	ConnectTimeout time.Duration
	// HandshakeTimeout bounds one connection's subscribe/authorize/first job.
	HandshakeTimeout time.Duration
	// DialParallel bounds connections being set up at once per process.
	DialParallel int
	// ConnectRate bounds new connections per second over all processes
	// (0: unbounded).
	ConnectRate float64
	// KernelTimestamps uses the kernel's receive times (SO_TIMESTAMPNS).
	KernelTimestamps bool
	// Exe is this program, re-executed for worker processes.
	Exe string
	// Grace is how long to wait for outstanding submit replies at the end.
	Grace time.Duration
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Procs < 1 {
		c.Procs = 1
	}
	if c.UserPrefix == "" {
		c.UserPrefix = "load"
	}
	if c.Pass == "" {
		c.Pass = "x"
	}
	if c.Duration <= 0 {
		c.Duration = 60 * time.Second
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 2 * time.Minute
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 60 * time.Second
	}
	if c.DialParallel <= 0 {
		c.DialParallel = 512
	}
	if c.Grace <= 0 {
		c.Grace = 3 * time.Second
	}
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("-url is required"))
	}
	if c.Conns < 1 {
		errs = append(errs, errors.New("-conns must be at least 1"))
	}
	if c.Procs > 0 && c.Conns > 0 && (c.Conns+c.Procs-1)/c.Procs > MaxConnsPerProc {
		errs = append(errs, fmt.Errorf("%d connections over %d processes is more than %d per process (the open-file limit): raise -procs",
			c.Conns, c.Procs, MaxConnsPerProc))
	}
	if c.ShareRate < 0 {
		errs = append(errs, errors.New("-share-rate must not be negative"))
	}
	if c.GenerateEvery > 0 && c.GenerateURL == "" {
		errs = append(errs, errors.New("-generate-every needs -generate-url"))
	}
	if c.PID < 0 {
		errs = append(errs, errors.New("-pid must be positive"))
	}
	return errors.Join(errs...)
}

// ParseSources parses "127.0.0.2-127.0.0.9", "10.0.0.1,10.0.0.2" or a mix;
// "auto" gives 127.0.0.2-127.0.0.9 for a loopback destination and nothing
// otherwise, "" and "none" give nothing (the kernel chooses).
func ParseSources(s, destAddr string) ([]string, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "", "none":
		return nil, nil
	case "auto":
		host, _, err := net.SplitHostPort(destAddr)
		if err != nil {
			return nil, nil
		}
		if ip, err := netip.ParseAddr(host); err == nil && ip.Is4() && ip.IsLoopback() {
			return ParseSources("127.0.0.2-127.0.0.9", destAddr)
		}
		return nil, nil
	}
	var out []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := netip.ParseAddr(strings.TrimSpace(lo))
		if err != nil {
			return nil, fmt.Errorf("source %q: %w", part, err)
		}
		if !isRange {
			out = append(out, a.String())
			continue
		}
		b, err := netip.ParseAddr(strings.TrimSpace(hi))
		if err != nil {
			return nil, fmt.Errorf("source %q: %w", part, err)
		}
		if b.Less(a) || a.Is4() != b.Is4() {
			return nil, fmt.Errorf("source range %q is empty", part)
		}
		for ip := a; ; ip = ip.Next() {
			out = append(out, ip.String())
			if len(out) > 4096 {
				return nil, fmt.Errorf("source range %q: more than 4096 addresses", part)
			}
			if ip == b {
				break
			}
		}
	}
	return out, nil
}

// WorkerSpec is what one worker process is told (as JSON on its command
// line).
type WorkerSpec struct {
	Index            int           `json:"index"`
	Addr             string        `json:"addr"`
	First            int           `json:"first"` // global index of the first connection
	Count            int           `json:"count"`
	Sources          []string      `json:"sources,omitempty"`
	UserPrefix       string        `json:"user_prefix"`
	Pass             string        `json:"pass"`
	ShareRate        float64       `json:"share_rate"`
	SuggestDiff      float64       `json:"suggest_diff"`
	VersionRolling   bool          `json:"version_rolling"`
	AllowBlocks      bool          `json:"allow_blocks"`
	HandshakeTimeout time.Duration `json:"handshake_timeout"`
	DialParallel     int           `json:"dial_parallel"`
	ConnectRate      float64       `json:"connect_rate"` // this process's share
	KernelTimestamps bool          `json:"kernel_timestamps"`
	Grace            time.Duration `json:"grace"`
}

// specs splits c over its processes.
func (c *Config) specs() []WorkerSpec {
	out := make([]WorkerSpec, c.Procs)
	for k := range out {
		first, next := k*c.Conns/c.Procs, (k+1)*c.Conns/c.Procs
		out[k] = WorkerSpec{Index: k, Addr: c.Addr, First: first, Count: next - first, Sources: c.Sources,
			UserPrefix: c.UserPrefix, Pass: c.Pass, ShareRate: c.ShareRate, SuggestDiff: c.SuggestDiff,
			VersionRolling: c.VersionRolling, AllowBlocks: c.AllowBlocks, HandshakeTimeout: c.HandshakeTimeout,
			DialParallel: c.DialParallel, ConnectRate: c.ConnectRate / float64(c.Procs),
			KernelTimestamps: c.KernelTimestamps, Grace: c.Grace}
	}
	return out
}
