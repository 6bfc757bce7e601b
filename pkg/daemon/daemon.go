// Package daemon is the common main of every hashgate daemon: flags (-c,
// -t, -version), config loading and checking, the zap logger, the signal
// context, the pid file, and running the daemon's app until SIGINT/SIGTERM.
// Keeping os.Exit in Main alone lets every deferred cleanup in Run happen.
package daemon

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/hashgate/hashgate/pkg/lifecycle"
	"github.com/hashgate/hashgate/pkg/logx"
	"github.com/hashgate/hashgate/pkg/version"
)

// App is a wired daemon.
type App interface {
	// Run runs until ctx is done or a component fails.
	Run(ctx context.Context) error
}

// Common are the config fields every daemon has.
type Common struct {
	Log      logx.Config
	Instance string
	RunDir   string
}

// Spec describes a daemon whose config type is C.
type Spec[C any] struct {
	// Name is the daemon's name (binary, pid file, logs).
	Name string
	// Load reads and validates a config file, reporting every problem.
	Load func(path string) (C, error)
	// Common extracts the shared fields.
	Common func(C) Common
	// New wires the app.
	New func(cfg C, lg *zap.Logger, level zap.AtomicLevel) (App, error)
	// Fields are logged with the "starting" line.
	Fields func(C) []zap.Field
}

// Main parses the command line and runs the daemon; it exits the process.
func Main[C any](s Spec[C]) {
	fs := flag.NewFlagSet(s.Name, flag.ExitOnError)
	cfgPath := fs.String("c", "conf/"+s.Name+".json", "config file")
	check := fs.Bool("t", false, "check the config file, print every problem and exit")
	showVersion := fs.Bool("version", false, "print the version and exit")
	_ = fs.Parse(os.Args[1:])
	if *showVersion {
		fmt.Println(s.Name, version.String())
		return
	}
	if err := Run(s, *cfgPath, *check, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", s.Name, err)
		os.Exit(1)
	}
}

// Run loads the config and, unless check is set, runs the daemon until
// SIGINT or SIGTERM. With check it only reports whether the config is valid
// (to out) or returns every problem.
func Run[C any](s Spec[C], cfgPath string, check bool, out io.Writer) error {
	cfg, err := s.Load(cfgPath)
	if check {
		if err != nil {
			return fmt.Errorf("config %s has problems:\n%w", cfgPath, err)
		}
		fmt.Fprintf(out, "config %s is valid\n", cfgPath)
		return nil
	}
	if err != nil {
		return err
	}
	common := s.Common(cfg)
	lg, level, err := logx.New(common.Log, s.Name, common.Instance)
	if err != nil {
		return err
	}
	defer func() { _ = lg.Sync() }()
	fields := []zap.Field{zap.String("version", version.String()), zap.String("config", cfgPath)}
	if s.Fields != nil {
		fields = append(fields, s.Fields(cfg)...)
	}
	lg.Info("starting", fields...)

	ctx, stop := lifecycle.SignalContext()
	defer stop()
	removePID, err := lifecycle.WritePIDFile(filepath.Join(common.RunDir, s.Name+".pid"))
	if err != nil {
		return err
	}
	defer removePID()

	a, err := s.New(cfg, lg, level)
	if err != nil {
		return err
	}
	if err := a.Run(ctx); err != nil {
		lg.Error(s.Name+" stopped", zap.Error(err))
		return err
	}
	return nil
}
