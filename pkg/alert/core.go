package alert

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap/zapcore"

	"github.com/hashgate/hashgate/pkg/bus"
)

// core is the zapcore.Core of a Shipper. With fields are encoded once, when
// With is called; entries are turned into bus.Alerts in Write.
type core struct {
	s    *Shipper
	with []byte // encoded With fields, clipped to MaxAlertFields; never mutated once set
}

var _ zapcore.Core = (*core)(nil)

// Enabled reports whether l is at or above the shipper's MinLevel (Error
// by default). The logger's own AtomicLevel is applied by pkg/logx.
func (c *core) Enabled(l zapcore.Level) bool { return l >= c.s.o.MinLevel }

// Level reports the minimum level, for zapcore.LevelOf.
func (c *core) Level() zapcore.Level { return c.s.o.MinLevel }

// With returns a core whose alerts carry fields after the parent's.
func (c *core) With(fields []zapcore.Field) zapcore.Core {
	if len(fields) == 0 {
		return c
	}
	with := appendFields(slices.Clip(c.with), fields)
	if len(with) > bus.MaxAlertFields {
		with = []byte(clip(string(with), bus.MaxAlertFields))
	}
	return &core{s: c.s, with: with}
}

// Check adds the core for entries it ships.
func (c *core) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

// Write turns the entry into an alert and hands it to the shipper without
// blocking; entries above Error are flushed synchronously (bounded by
// FlushTimeout) because the process exits or panics next. Delivery
// problems are not reported as write errors: they are counted in Stats.
func (c *core) Write(e zapcore.Entry, fields []zapcore.Field) error {
	if !c.Enabled(e.Level) {
		return nil
	}
	c.s.offer(c.alert(e, fields), e.Level)
	if e.Level > zapcore.ErrorLevel {
		_ = c.s.Flush(c.s.o.FlushTimeout)
	}
	return nil
}

// Sync flushes queued alerts to NATS, bounded by FlushTimeout.
func (c *core) Sync() error { return c.s.Flush(c.s.o.FlushTimeout) }

// alert builds the bus message for an entry.
func (c *core) alert(e zapcore.Entry, fields []zapcore.Field) *bus.Alert {
	var fb []byte
	if e.LoggerName != "" {
		fb = append(fb, "logger="...)
		fb = appendText(fb, e.LoggerName)
	}
	if len(c.with) > 0 {
		if len(fb) > 0 {
			fb = append(fb, ' ')
		}
		fb = append(fb, c.with...)
	}
	fb = appendFields(fb, fields)
	caller := ""
	if e.Caller.Defined {
		caller = clip(e.Caller.TrimmedPath(), bus.MaxAlertCaller)
	}
	o := &c.s.o
	return &bus.Alert{
		Host: o.Host, Daemon: o.Daemon, Instance: o.Instance, Level: e.Level.String(),
		Time: e.Time.UnixNano(), Caller: caller, Message: clip(e.Message, bus.MaxAlertMessage),
		Fields: clip(string(fb), bus.MaxAlertFields), Count: 1,
	}
}

// identity keys are already in the alert's own fields (pkg/logx adds them
// to every logger with With).
func identityKey(k string) bool { return k == "daemon" || k == "instance" }

// appendFields appends fields as space-separated key=value pairs, stopping
// once MaxAlertFields is exceeded (the caller clips).
func appendFields(dst []byte, fields []zapcore.Field) []byte {
	for _, f := range fields {
		if len(dst) > bus.MaxAlertFields {
			break
		}
		if f.Type == zapcore.SkipType || identityKey(f.Key) {
			continue
		}
		m := zapcore.NewMapObjectEncoder()
		f.AddTo(m)
		keys := make([]string, 0, len(m.Fields))
		for k := range m.Fields {
			if k != "errorVerbose" { // pkg/errors stack dumps: far too long
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			if len(dst) > 0 {
				dst = append(dst, ' ')
			}
			dst = appendText(dst, k)
			dst = append(dst, '=')
			dst = appendValue(dst, m.Fields[k])
		}
	}
	return dst
}

// appendValue renders one field value compactly.
func appendValue(dst []byte, v any) []byte {
	switch v := v.(type) {
	case string:
		return appendText(dst, v)
	case []byte:
		return appendText(dst, string(v))
	case bool:
		return strconv.AppendBool(dst, v)
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, uintptr, float32, float64,
		complex64, complex128:
		return fmt.Append(dst, v)
	case time.Time:
		return v.UTC().AppendFormat(dst, time.RFC3339Nano)
	case time.Duration:
		return append(dst, v.String()...)
	case nil:
		return append(dst, "null"...)
	}
	// Objects, arrays and reflected values: JSON, as zap's JSON encoder
	// would write them.
	if b, err := json.Marshal(v); err == nil {
		return append(dst, b...)
	}
	return appendText(dst, fmt.Sprint(v))
}

// appendText appends s bare when it is a plain token, else quoted, so a
// value can't run into the next pair or break the line.
func appendText(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, `""`...)
	}
	for _, r := range s {
		if r <= ' ' || r == '"' || r == '=' || r == utf8.RuneError || !unicode.IsPrint(r) {
			return strconv.AppendQuote(dst, s)
		}
	}
	return append(dst, s...)
}

// clip cuts s to at most n bytes on a rune boundary, marking the cut with
// "…".
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
