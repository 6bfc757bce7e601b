// Package daemon is the common main of every hashgate daemon: flags (-c,
// -t, -version), config loading and checking, the zap logger, the alert
// shipper, the signal context, the pid file, and running the daemon's app
// until SIGINT/SIGTERM. Keeping os.Exit in Main alone lets every deferred
// cleanup in Run happen.
//
// Alerts: unless Spec.NoAlerts is set, Run tees an alert.Shipper's core into
// the logger, so every entry at Error level or above (rate limited and
// de-duplicated, see pkg/alert) is queued for alertcenter. The app receives
// the shipper in Env and calls Env.Alerts.Attach(nc, bus.AlertSubject(prefix))
// as soon as it has a NATS connection; until then alerts wait in the
// shipper's bounded queue. A panic that escapes App.Run is logged at Error
// (and so shipped) before it continues.
package daemon

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/hashgate/hashgate/pkg/alert"
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
	New func(cfg C, env Env) (App, error)
	// Fields are logged with the "starting" line.
	Fields func(C) []zap.Field
	// Reload, if set, applies the fields of a re-read config that can change
	// without a restart (SIGHUP). The log level is always applied by Run.
	// It is called from Run's signal goroutine, concurrently with the app.
	Reload func(app App, cfg C) error
	// NoAlerts keeps the daemon's log entries off the alert bus (for
	// alertcenter, whose own errors must not loop back to it); Env.Alerts
	// is then nil.
	NoAlerts bool
}

// Env is what Run hands the app besides its config.
type Env struct {
	// Logger is the root logger (fields daemon and instance set).
	Logger *zap.Logger
	// Level controls Logger (and the alert core); serve it at /loglevel.
	Level zap.AtomicLevel
	// Alerts ships Logger's error-and-worse entries; the app calls
	// Alerts.Attach once connected to NATS. Nil with Spec.NoAlerts; every
	// method of a nil *alert.Shipper is a no-op.
	Alerts *alert.Shipper
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
	var (
		shipper *alert.Shipper
		extra   []zapcore.Core
	)
	if !s.NoAlerts {
		shipper = alert.NewShipper(alert.Options{Daemon: s.Name, Instance: common.Instance})
		defer shipper.Close() // after the Sync below: last chance for queued alerts
		extra = append(extra, shipper.Core())
	}
	lg, level, err := logx.New(common.Log, s.Name, common.Instance, extra...)
	if err != nil {
		return err
	}
	defer func() { _ = lg.Sync() }() // also flushes queued alerts (bounded)
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

	a, err := s.New(cfg, Env{Logger: lg, Level: level, Alerts: shipper})
	if err != nil {
		return err
	}
	// Registered before the app starts: an early SIGHUP must not take the
	// default action (terminate).
	go reloadOnHUP(lifecycle.HUP(ctx), s, cfgPath, a, level, lg)
	defer func() {
		if r := recover(); r != nil {
			// Our bug: make it an alert, flush, and let it crash as before.
			lg.Error("panic", zap.Any("panic", r))
			_ = lg.Sync()
			panic(r)
		}
	}()
	if err := a.Run(ctx); err != nil {
		lg.Error(s.Name+" stopped", zap.Error(err))
		return err
	}
	return nil
}

// reloadOnHUP re-reads the config on every SIGHUP: a config with problems is
// refused whole (logged), otherwise the log level is applied and the
// daemon's Reload gets the rest.
func reloadOnHUP[C any](hup <-chan struct{}, s Spec[C], cfgPath string, a App, level zap.AtomicLevel, lg *zap.Logger) {
	for range hup {
		cfg, err := s.Load(cfgPath)
		if err != nil {
			lg.Warn("config reload refused; nothing changed", zap.String("config", cfgPath), zap.Error(err))
			continue
		}
		if l, err := zapcore.ParseLevel(orDefault(s.Common(cfg).Log.Level, "info")); err == nil && l != level.Level() {
			level.SetLevel(l)
			lg.Info("log level changed", zap.Stringer("level", l))
		}
		if s.Reload == nil {
			lg.Info("config reloaded: only the log level applies without a restart")
			continue
		}
		if err := s.Reload(a, cfg); err != nil {
			lg.Warn("config reload incomplete", zap.Error(err))
		}
	}
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}
