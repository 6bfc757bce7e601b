package stratumsrv

import (
	"fmt"
	"net"
	"time"

	"github.com/panjf2000/gnet/v2"
	"go.uber.org/zap"

	"github.com/hashgate/hashgate/pkg/confutil"
	"github.com/hashgate/hashgate/pkg/session"
)

// Config is the miners' listener and session policy: the "stratum"
// section of the gateway's and the mineragent's configs (embedded there).
type Config struct {
	Listen          string            `json:"listen"`            // e.g. "0.0.0.0:3333"
	Loops           int               `json:"loops"`             // gnet event loops; 0 = one per core
	MaxConnections  int               `json:"max_connections"`   // refuse new connections above this (stay below the fd limit)
	MaxLine         int               `json:"max_line"`          // longest request line in bytes
	IdleTimeout     confutil.Duration `json:"idle_timeout"`      // close sessions silent this long
	AuthTimeout     confutil.Duration `json:"auth_timeout"`      // close sessions not authorized this long after connecting
	MaxPendingBytes int               `json:"max_pending_bytes"` // close slow readers whose outbound buffer exceeds this
	MaxBadRequests  int               `json:"max_bad_requests"`  // malformed requests tolerated per connection
	ResumeWindow    confutil.Duration `json:"resume_window"`     // how long a disconnected session's extranonce1 is kept for resume
	StaleGrace      confutil.Duration `json:"stale_grace"`       // previous-height jobs still checked for blocks
	MaxWorkers      int               `json:"max_workers"`       // distinct workers per connection
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Listen: "0.0.0.0:3333", MaxConnections: 19000, MaxLine: 16 << 10,
		IdleTimeout: confutil.Duration(10 * time.Minute), AuthTimeout: confutil.Duration(60 * time.Second),
		MaxPendingBytes: 256 << 10, MaxBadRequests: 20, ResumeWindow: confutil.Duration(10 * time.Minute),
		StaleGrace: confutil.Duration(30 * time.Second), MaxWorkers: 64,
	}
}

// Validate adds every problem to p, fields named under prefix.
func (c Config) Validate(p *confutil.Problems, prefix string) {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		p.Add(prefix+".listen", "%q is not host:port", c.Listen)
	}
	if c.Loops < 0 || c.Loops > 256 {
		p.Add(prefix+".loops", "must be 0..256")
	}
	if c.MaxConnections < 1 || c.MaxConnections > 19900 {
		p.Add(prefix+".max_connections", "must be 1..19900 (one process holds at most about 19,990 sockets here)")
	}
	if c.MaxLine < 512 || c.MaxLine > 1<<20 {
		p.Add(prefix+".max_line", "must be 512..1048576")
	}
	if c.IdleTimeout.D() <= 0 || c.AuthTimeout.D() <= 0 || c.ResumeWindow.D() < 0 || c.StaleGrace.D() < 0 {
		p.Add(prefix, "idle_timeout and auth_timeout must be positive; resume_window and stale_grace not negative")
	}
	if c.MaxPendingBytes < 4096 {
		p.Add(prefix+".max_pending_bytes", "must be at least 4096")
	}
	if c.MaxBadRequests < 0 {
		p.Add(prefix+".max_bad_requests", "must not be negative")
	}
	if c.MaxWorkers < 1 {
		p.Add(prefix+".max_workers", "must be at least 1")
	}
}

// ServerOptions returns the Options of a server with these settings.
func (c Config) ServerOptions(env *session.Env, lg *zap.Logger, m *Metrics) Options {
	return Options{Env: env, MaxConnections: c.MaxConnections, MaxLine: c.MaxLine, MaxPending: c.MaxPendingBytes,
		IdleTimeout: c.IdleTimeout.D(), AuthTimeout: c.AuthTimeout.D(), Logger: lg, Metrics: m}
}

// Start runs the gnet engine on listen with loops event loops (0: one per
// core) and returns once it listens, or with the reason it could not. The
// engine's end (Stop, or its failure) is sent on the returned channel.
func (s *Server) Start(listen string, loops int) (<-chan error, error) {
	opts := []gnet.Option{
		gnet.WithMulticore(loops == 0), gnet.WithTicker(true), gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		// SO_REUSEADDR: a restarted daemon binds at once although the
		// connections its predecessor closed are in TIME-WAIT.
		gnet.WithReusePort(false), gnet.WithReuseAddr(true), gnet.WithLogger(s.lg.Named("gnet").Sugar()),
		gnet.WithReadBufferCap(16 << 10), gnet.WithWriteBufferCap(4 << 10),
	}
	if loops > 0 {
		opts = append(opts, gnet.WithNumEventLoop(loops))
	}
	done := make(chan error, 1)
	go func() { done <- gnet.Run(s, "tcp://"+listen, opts...) }()
	select {
	case <-s.Booted():
		return done, nil
	case err := <-done:
		return nil, fmt.Errorf("stratum listen %s: %w", listen, err)
	}
}
