package logx

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/hashgate/hashgate/pkg/confutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Config selects the level and the output format of a daemon's log. It is
// embedded in every daemon config as "log".
type Config struct {
	Level  string `json:"level"`  // debug, info, warn or error; empty means info
	Format string `json:"format"` // json or console; empty means json
}

// Accepted Config values.
const (
	FormatJSON    = "json"
	FormatConsole = "console"
)

// levels maps the accepted level names to zap levels. DPanic, Panic and Fatal
// are not selectable: a daemon must always log its errors.
var levels = map[string]zapcore.Level{
	"debug": zapcore.DebugLevel,
	"info":  zapcore.InfoLevel,
	"warn":  zapcore.WarnLevel,
	"error": zapcore.ErrorLevel,
}

// Sampling parameters, as in etcd's DefaultZapLoggerConfig.
const (
	sampleTick       = time.Second
	sampleFirst      = 100
	sampleThereafter = 100
)

// DefaultConfig returns the default logging config: info level, JSON format.
func DefaultConfig() Config {
	return Config{Level: "info", Format: FormatJSON}
}

// Validate reports every invalid field of c at once. Empty fields are valid
// and mean the defaults.
func (c Config) Validate() error {
	var p confutil.Problems
	if _, err := parseLevel(c.Level); err != nil {
		p.Add("level", "%v", err)
	}
	switch c.Format {
	case "", FormatJSON, FormatConsole:
	default:
		p.Add("format", "unknown format %q; want %s or %s", c.Format, FormatJSON, FormatConsole)
	}
	return p.Err()
}

// parseLevel converts a Config level name into a zap level.
func parseLevel(name string) (zapcore.Level, error) {
	if name == "" {
		return zapcore.InfoLevel, nil
	}
	if l, ok := levels[name]; ok {
		return l, nil
	}
	return 0, fmt.Errorf("unknown level %q; want debug, info, warn or error", name)
}

// New builds a daemon's root logger writing to stderr, as described in the
// package documentation, and returns it with the AtomicLevel that controls
// it. Every entry carries the fields daemon and instance.
//
// Each core in extra receives the entries that pass the AtomicLevel and the
// sampler (its own Enabled method may filter further); changing the level
// affects all cores at once. New returns an error if cfg is invalid.
func New(cfg Config, daemon, instance string, extra ...zapcore.Core) (*zap.Logger, zap.AtomicLevel, error) {
	return newLogger(cfg, daemon, instance, stderrSink{}, extra...)
}

// newLogger is New with the destination injected, for tests.
func newLogger(cfg Config, daemon, instance string, sink zapcore.WriteSyncer, extra ...zapcore.Core) (*zap.Logger, zap.AtomicLevel, error) {
	if err := cfg.Validate(); err != nil {
		return nil, zap.AtomicLevel{}, fmt.Errorf("log config: %w", err)
	}
	lvl, _ := parseLevel(cfg.Level) // validated above
	level := zap.NewAtomicLevelAt(lvl)

	encCfg := encoderConfig()
	var enc zapcore.Encoder
	if cfg.Format == FormatConsole {
		enc = zapcore.NewConsoleEncoder(encCfg)
	} else {
		enc = zapcore.NewJSONEncoder(encCfg)
	}
	sink = zapcore.Lock(sink)

	cores := []zapcore.Core{zapcore.NewCore(enc, sink, level)}
	for _, c := range extra {
		if c != nil {
			cores = append(cores, &levelCore{Core: c, level: level})
		}
	}
	core := zapcore.NewSamplerWithOptions(zapcore.NewTee(cores...), sampleTick, sampleFirst, sampleThereafter)

	lg := zap.New(core,
		zap.AddCaller(),
		zap.AddStacktrace(zapcore.ErrorLevel),
		zap.ErrorOutput(sink),
	).With(zap.String("daemon", daemon), zap.String("instance", instance))
	return lg, level, nil
}

// encoderConfig returns etcd's encoder settings with ISO-8601 timestamps.
func encoderConfig() zapcore.EncoderConfig {
	return zapcore.EncoderConfig{
		TimeKey:        "ts",
		LevelKey:       "level",
		NameKey:        "logger",
		CallerKey:      "caller",
		FunctionKey:    zapcore.OmitKey,
		MessageKey:     "msg",
		StacktraceKey:  "stacktrace",
		LineEnding:     zapcore.DefaultLineEnding,
		EncodeLevel:    zapcore.LowercaseLevelEncoder,
		EncodeTime:     zapcore.ISO8601TimeEncoder,
		EncodeDuration: zapcore.StringDurationEncoder,
		EncodeCaller:   zapcore.ShortCallerEncoder,
	}
}

// levelCore gates a core behind the logger's AtomicLevel, so that extra cores
// follow level changes made through /loglevel.
type levelCore struct {
	zapcore.Core
	level zap.AtomicLevel
}

// Enabled reports whether both the AtomicLevel and the wrapped core accept l.
func (c *levelCore) Enabled(l zapcore.Level) bool {
	return c.level.Enabled(l) && c.Core.Enabled(l)
}

// With keeps the gate on the derived core.
func (c *levelCore) With(fields []zapcore.Field) zapcore.Core {
	return &levelCore{Core: c.Core.With(fields), level: c.level}
}

// Check lets the wrapped core add itself only when the level allows it.
func (c *levelCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if !c.level.Enabled(e.Level) {
		return ce
	}
	return c.Core.Check(e, ce)
}

// Level reports the effective minimum level, for zapcore.LevelOf.
func (c *levelCore) Level() zapcore.Level {
	return max(c.level.Level(), zapcore.LevelOf(c.Core))
}

// stderrSink writes to os.Stderr, looked up on every call so tests and
// daemons that redirect it are honoured. Sync errors are ignored: stderr is
// usually a pipe or a terminal, which cannot be synced and would otherwise
// make every "defer lg.Sync()" report a spurious error.
type stderrSink struct{}

func (stderrSink) Write(p []byte) (int, error) { return os.Stderr.Write(p) }

func (stderrSink) Sync() error {
	err := os.Stderr.Sync()
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTTY) || errors.Is(err, syscall.ENOTSUP) {
		return nil // not a regular file
	}
	return err
}
