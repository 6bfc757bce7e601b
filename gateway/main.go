package main

import (
	"go.uber.org/zap"

	"github.com/hashgate/hashgate/gateway/internal/app"
	"github.com/hashgate/hashgate/gateway/internal/config"
	"github.com/hashgate/hashgate/pkg/daemon"
)

func main() {
	daemon.Main(daemon.Spec[config.Config]{
		Name: app.Daemon,
		Load: config.Load,
		Common: func(c config.Config) daemon.Common {
			return daemon.Common{Log: c.Log, Instance: c.Instance, RunDir: c.RunDir}
		},
		New: func(c config.Config, env daemon.Env) (daemon.App, error) {
			return app.New(c, env.Logger, env.Level, app.WithAlerts(env.Alerts))
		},
		Reload: func(a daemon.App, c config.Config) error { return a.(*app.App).Reload(c) },
		Fields: func(c config.Config) []zap.Field {
			return []zap.Field{zap.String("network", c.Network), zap.String("stratum", c.Stratum.Listen)}
		},
	})
}
