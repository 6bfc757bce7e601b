package logx

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in      string
		want    zapcore.Level
		wantErr bool
	}{
		{in: "", want: zapcore.InfoLevel},
		{in: "debug", want: zapcore.DebugLevel},
		{in: "info", want: zapcore.InfoLevel},
		{in: "warn", want: zapcore.WarnLevel},
		{in: "error", want: zapcore.ErrorLevel},
		{in: "fatal", wantErr: true},
		{in: "panic", wantErr: true},
		{in: "INFO", wantErr: true},
		{in: "verbose", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseLevel(tc.in)
			if tc.wantErr {
				require.ErrorContains(t, err, "unknown level")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr []string
	}{
		{name: "default", cfg: DefaultConfig()},
		{name: "zero value", cfg: Config{}},
		{name: "console debug", cfg: Config{Level: "debug", Format: "console"}},
		{name: "bad level", cfg: Config{Level: "trace"}, wantErr: []string{`level: unknown level "trace"`}},
		{name: "bad format", cfg: Config{Format: "text"}, wantErr: []string{`format: unknown format "text"; want json or console`}},
		{
			name:    "both bad reported together",
			cfg:     Config{Level: "loud", Format: "xml"},
			wantErr: []string{`level: unknown level "loud"`, `format: unknown format "xml"`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == nil {
				require.NoError(t, err)
				return
			}
			for _, s := range tc.wantErr {
				require.ErrorContains(t, err, s)
			}
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	require.Equal(t, Config{Level: "info", Format: "json"}, DefaultConfig())
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	lg, _, err := New(Config{Level: "chatty"}, "gateway", "gw-1")
	require.ErrorContains(t, err, `log config: level: unknown level "chatty"`)
	require.Nil(t, lg)
}

func TestNewReturnsWorkingLevel(t *testing.T) {
	lg, level, err := New(Config{Level: "warn"}, "gateway", "gw-1")
	require.NoError(t, err)
	require.Equal(t, zapcore.WarnLevel, level.Level())
	require.False(t, lg.Core().Enabled(zapcore.InfoLevel))
	level.SetLevel(zapcore.DebugLevel)
	require.True(t, lg.Core().Enabled(zapcore.DebugLevel))
}

func TestFormats(t *testing.T) {
	tests := []struct {
		format string
		check  func(t *testing.T, line string)
	}{
		{
			format: "json",
			check: func(t *testing.T, line string) {
				var m map[string]any
				require.NoError(t, json.Unmarshal([]byte(line), &m))
				require.Equal(t, "warn", m["level"])
				require.Equal(t, "job stale", m["msg"])
				require.Equal(t, "jobs", m["logger"])
				require.Equal(t, "gateway", m["daemon"])
				require.Equal(t, "gw-1", m["instance"])
				require.EqualValues(t, 840000, m["height"])
				require.Regexp(t, `^logx/logx_test\.go:\d+$`, m["caller"])
				// ISO-8601 with milliseconds and zone offset.
				require.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d{4})$`, m["ts"])
			},
		},
		{
			format: "console",
			check: func(t *testing.T, line string) {
				require.False(t, json.Valid([]byte(line)), "console output must not be JSON: %s", line)
				parts := strings.Split(line, "\t")
				require.GreaterOrEqual(t, len(parts), 5, line)
				require.Regexp(t, `^\d{4}-\d\d-\d\dT`, parts[0])
				require.Equal(t, "warn", parts[1])
				require.Equal(t, "jobs", parts[2])
				require.Regexp(t, `^logx/logx_test\.go:\d+$`, parts[3])
				require.Equal(t, "job stale", parts[4])
				require.Contains(t, line, `"daemon": "gateway"`)
				require.Contains(t, line, `"height": 840000`)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.format, func(t *testing.T) {
			var buf bytes.Buffer
			lg, _, err := newLogger(Config{Format: tc.format}, "gateway", "gw-1", zapcore.AddSync(&buf))
			require.NoError(t, err)

			lg.Named("jobs").Debug("hidden at info")
			lg.Named("jobs").Warn("job stale", zap.Int("height", 840000))
			require.NoError(t, lg.Sync())

			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			require.Len(t, lines, 1, buf.String())
			tc.check(t, lines[0])
		})
	}
}

func TestErrorHasStacktrace(t *testing.T) {
	var buf bytes.Buffer
	lg, _, err := newLogger(DefaultConfig(), "gateway", "gw-1", zapcore.AddSync(&buf))
	require.NoError(t, err)
	lg.Error("node unreachable")

	var m map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &m))
	require.Contains(t, m["stacktrace"], "TestErrorHasStacktrace")
}

func TestExtraCoreFollowsLevel(t *testing.T) {
	var buf bytes.Buffer
	obsCore, observed := observer.New(zapcore.DebugLevel)
	lg, level, err := newLogger(DefaultConfig(), "blockmaster", "bm-1", zapcore.AddSync(&buf), obsCore)
	require.NoError(t, err)

	tests := []struct {
		name     string
		level    zapcore.Level // AtomicLevel setting
		log      func(msg string)
		received bool
	}{
		{name: "debug below info", level: zapcore.InfoLevel, log: func(m string) { lg.Debug(m) }, received: false},
		{name: "info at info", level: zapcore.InfoLevel, log: func(m string) { lg.Info(m) }, received: true},
		{name: "warn above info", level: zapcore.InfoLevel, log: func(m string) { lg.Warn(m) }, received: true},
		{name: "error above info", level: zapcore.InfoLevel, log: func(m string) { lg.Error(m) }, received: true},
		{name: "info below error", level: zapcore.ErrorLevel, log: func(m string) { lg.Info(m) }, received: false},
		{name: "error at error", level: zapcore.ErrorLevel, log: func(m string) { lg.Error(m) }, received: true},
		{name: "debug after lowering", level: zapcore.DebugLevel, log: func(m string) { lg.Debug(m) }, received: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			level.SetLevel(tc.level)
			tc.log(tc.name)

			entries := observed.FilterMessage(tc.name).All()
			if !tc.received {
				require.Empty(t, entries)
				require.NotContains(t, buf.String(), tc.name)
				return
			}
			require.Len(t, entries, 1)
			require.Equal(t, map[string]any{"daemon": "blockmaster", "instance": "bm-1"}, entries[0].ContextMap())
			require.Contains(t, buf.String(), tc.name, "stderr core must get the entry too")
		})
	}
}

func TestExtraCoreOwnLevelStillApplies(t *testing.T) {
	// An alert shipper that only wants errors keeps its own threshold even
	// when the logger runs at debug.
	obsCore, observed := observer.New(zapcore.ErrorLevel)
	lg, _, err := newLogger(Config{Level: "debug"}, "jobmaster", "jm-1", zapcore.AddSync(&bytes.Buffer{}), obsCore, nil)
	require.NoError(t, err)

	lg.Debug("d")
	lg.Warn("w")
	lg.Error("e")
	lg.With(zap.String("job_id", "7")).Error("e2")

	got := observed.All()
	require.Len(t, got, 2)
	require.Equal(t, "e", got[0].Message)
	require.Equal(t, "e2", got[1].Message)
	require.Equal(t, "7", got[1].ContextMap()["job_id"])
}

func TestSampling(t *testing.T) {
	obsCore, observed := observer.New(zapcore.DebugLevel)
	lg, _, err := newLogger(DefaultConfig(), "gateway", "gw-1", zapcore.AddSync(&bytes.Buffer{}), obsCore)
	require.NoError(t, err)

	// Within one second the first 100 copies pass, then every 100th.
	for range 1000 {
		lg.Info("same message")
	}
	n := observed.FilterMessage("same message").Len()
	require.GreaterOrEqual(t, n, sampleFirst)
	require.Less(t, n, 1000, "sampling must drop repeated messages")
}

func TestStderrSinkOnPipe(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	orig := os.Stderr
	os.Stderr = w
	t.Cleanup(func() { os.Stderr = orig })

	lg, _, err := New(DefaultConfig(), "gateway", "gw-1")
	require.NoError(t, err)
	lg.Info("to the pipe")
	// Syncing a pipe fails with EINVAL; the logger must not report that.
	require.NoError(t, lg.Sync())
	require.NoError(t, w.Close())

	out, err := io.ReadAll(r)
	require.NoError(t, err)
	require.Contains(t, string(out), `"msg":"to the pipe"`)
}
