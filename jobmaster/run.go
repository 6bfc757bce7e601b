package main

import (
	"fmt"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/hashgate/hashgate/jobmaster/internal/app"
	"github.com/hashgate/hashgate/jobmaster/internal/config"
	"github.com/hashgate/hashgate/pkg/lifecycle"
	"github.com/hashgate/hashgate/pkg/logx"
	"github.com/hashgate/hashgate/pkg/version"
)

// run loads the config, then runs the daemon until SIGINT/SIGTERM. With
// check set it only validates the config.
func run(cfgPath string, check bool) error {
	cfg, err := config.Load(cfgPath)
	if check {
		if err != nil {
			return fmt.Errorf("config %s has problems:\n%w", cfgPath, err)
		}
		fmt.Printf("config %s is valid\n", cfgPath)
		return nil
	}
	if err != nil {
		return err
	}
	lg, level, err := logx.New(cfg.Log, app.Daemon, cfg.Instance)
	if err != nil {
		return err
	}
	defer func() { _ = lg.Sync() }()
	lg.Info("starting", zap.String("version", version.String()), zap.String("config", cfgPath),
		zap.String("network", cfg.Network), zap.Int("nodes", len(cfg.Nodes)))

	ctx, stop := lifecycle.SignalContext()
	defer stop()
	removePID, err := lifecycle.WritePIDFile(filepath.Join(cfg.RunDir, app.Daemon+".pid"))
	if err != nil {
		return err
	}
	defer removePID()

	a, err := app.New(cfg, lg, level)
	if err != nil {
		return err
	}
	if err := a.Run(ctx); err != nil {
		lg.Error("jobmaster stopped", zap.Error(err))
		return err
	}
	return nil
}
