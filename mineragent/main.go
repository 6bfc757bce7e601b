package main

import (
	"go.uber.org/zap"

	"github.com/hashgate/hashgate/mineragent/internal/app"
	"github.com/hashgate/hashgate/mineragent/internal/config"
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
			return app.New(c, env.Logger, env.Level)
		},
		Fields: func(c config.Config) []zap.Field {
			return []zap.Field{zap.String("agent_id", c.AgentID), zap.String("stratum", c.Stratum.Listen)}
		},
		// The agent has no NATS connection: its errors stay in its own log.
		NoAlerts: true,
	})
}
