package main

import (
	"os"

	"go.uber.org/zap"

	"github.com/hashgate/hashgate/metawriter/internal/app"
	"github.com/hashgate/hashgate/metawriter/internal/config"
	"github.com/hashgate/hashgate/metawriter/internal/hashrate"
	"github.com/hashgate/hashgate/metawriter/internal/redisconn"
	"github.com/hashgate/hashgate/pkg/daemon"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "hashrate" {
		os.Exit(hashrate.Main(os.Args[2:], os.Stdout, os.Stderr))
	}
	daemon.Main(daemon.Spec[config.Config]{
		Name: app.Daemon,
		Load: config.Load,
		Common: func(c config.Config) daemon.Common {
			return daemon.Common{Log: c.Log, Instance: c.Instance, RunDir: c.RunDir}
		},
		New: func(c config.Config, env daemon.Env) (daemon.App, error) {
			redisconn.SetLogger(env.Logger)
			return app.New(c, env.Logger, env.Level, app.WithAlerts(env.Alerts))
		},
		Fields: func(c config.Config) []zap.Field {
			return []zap.Field{zap.String("redis", c.Redis.Addr), zap.String("consumer", c.Consumer.Durable),
				zap.Duration("retention", c.Retention.D())}
		},
	})
}
