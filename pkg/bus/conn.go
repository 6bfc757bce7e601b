package bus

import (
	"fmt"
	"net/url"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/hashgate/hashgate/pkg/confutil"
)

// Config is the NATS section shared by every daemon's config.
type Config struct {
	// URL is the NATS server URL list, e.g. "nats://127.0.0.1:4222"
	// (comma-separated for a cluster).
	URL string `json:"url"`
	// User authenticates the connection; the password comes from Pass,
	// PassEnv (an environment variable name) or PassFile (a file path), at
	// most one of them.
	User     string `json:"user"`
	Pass     string `json:"pass"`
	PassEnv  string `json:"pass_env"`
	PassFile string `json:"pass_file"`
	// Prefix is the first subject token (default "hashgate").
	Prefix string `json:"prefix"`
	// ConnectTimeout bounds the first connection attempt (default "5s").
	ConnectTimeout confutil.Duration `json:"connect_timeout"`
}

// DefaultConfig returns the defaults for the NATS section.
func DefaultConfig() Config {
	return Config{URL: "nats://127.0.0.1:4222", Prefix: "hashgate", ConnectTimeout: confutil.Duration(5 * time.Second)}
}

// Validate records every problem of the section under field prefix f.
func (c Config) Validate(p *confutil.Problems, f string) {
	if c.URL == "" {
		p.Add(f+".url", "must be set")
	} else if u, err := url.Parse(c.URL); err != nil || u.Host == "" {
		p.Add(f+".url", "%q is not a URL like nats://127.0.0.1:4222", c.URL)
	}
	if err := ValidToken(c.Prefix); err != nil {
		p.Add(f+".prefix", "%v", err)
	}
	n := 0
	for _, s := range []string{c.Pass, c.PassEnv, c.PassFile} {
		if s != "" {
			n++
		}
	}
	if n > 1 {
		p.Add(f+".pass", "set at most one of pass, pass_env, pass_file")
	}
	if n > 0 && c.User == "" {
		p.Add(f+".user", "a password needs a user")
	}
	if n == 1 {
		if _, err := confutil.ResolveSecret(c.Pass, c.PassEnv, c.PassFile); err != nil {
			p.Add(f+".pass", "%v", err)
		}
	}
	if c.ConnectTimeout.D() <= 0 {
		p.Add(f+".connect_timeout", "must be positive")
	}
}

// Connect dials NATS with endless reconnects (250 ms apart) and logs
// connection changes. name identifies the client in the server's monitoring;
// extra options are applied after Connect's own.
func Connect(c Config, name string, lg *zap.Logger, extra ...nats.Option) (*nats.Conn, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	opts := []nats.Option{
		nats.Name(name),
		nats.Timeout(c.ConnectTimeout.D()),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if nc.IsClosed() {
				// Our own Close: nothing to warn about, and the callback
				// may run after the daemon (or test) that owned lg ended.
				return
			}
			lg.Warn("nats disconnected", zap.Error(err))
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			lg.Info("nats reconnected", zap.String("url", nc.ConnectedUrlRedacted()))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			lg.Error("nats async error", zap.String("subject", subj), zap.Error(err))
		}),
	}
	if c.User != "" {
		pass, err := confutil.ResolveSecret(c.Pass, c.PassEnv, c.PassFile)
		if err != nil {
			return nil, fmt.Errorf("nats password: %w", err)
		}
		opts = append(opts, nats.UserInfo(c.User, pass))
	}
	nc, err := nats.Connect(c.URL, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("connect nats %s: %w", c.URL, err)
	}
	return nc, nil
}
