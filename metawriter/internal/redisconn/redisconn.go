// Package redisconn builds the go-redis client from the redis config
// section, the same way for the daemon and the hashrate command.
package redisconn

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"go.uber.org/zap"

	"github.com/hashgate/hashgate/metawriter/internal/config"
)

// New returns a client for c named name (CLIENT SETNAME) with pool
// connections (0: c.Pool). It does not dial. Commands are not retried by
// the client: the consumer retries through redelivery, and the apply
// script makes a retry harmless anyway. RESP2 is used so any Redis from
// 6.0 on works.
func New(c config.RedisConfig, name string, pool int) (*redis.Client, error) {
	pass, err := c.Secret()
	if err != nil {
		return nil, fmt.Errorf("redis password: %w", err)
	}
	if pool <= 0 {
		pool = c.Pool
	}
	return redis.NewClient(&redis.Options{
		Addr:                  c.Addr,
		ClientName:            name,
		Username:              c.Username,
		Password:              pass,
		DB:                    c.DB,
		PoolSize:              pool,
		DialTimeout:           c.Timeout.D(),
		DialerRetries:         1, // the caller's own loop retries, with back-off
		ReadTimeout:           c.Timeout.D(),
		WriteTimeout:          c.Timeout.D(),
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		Protocol:              2,
		DisableIdentity:       true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	}), nil
}

// SetLogger sends go-redis's own log lines (pool dial failures and the
// like, which it otherwise prints to stderr) to lg at Debug: the daemon
// reports Redis outages itself, once. It replaces a process-wide setting of
// go-redis, so only a daemon's main calls it.
func SetLogger(lg *zap.Logger) {
	redis.SetLogger(zapLogging{lg.Named("redis").WithOptions(zap.AddCallerSkip(1))})
}

type zapLogging struct{ lg *zap.Logger }

func (z zapLogging) Printf(_ context.Context, format string, v ...any) {
	if ce := z.lg.Check(zap.DebugLevel, "go-redis"); ce != nil {
		ce.Write(zap.String("detail", fmt.Sprintf(format, v...)))
	}
}
