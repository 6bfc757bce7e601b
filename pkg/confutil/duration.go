package confutil

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Duration is a time.Duration written in config files as a Go duration
// string such as "100ms", "30s" or "1h30m". Plain numbers are rejected
// because their unit would be a guess, and so are negative durations.
//
// A JSON null leaves the value unchanged, like encoding/json does for other
// types, so a default survives an explicit null.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String returns the duration in time.Duration's format, e.g. "1m30s".
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON encodes d as a JSON string such as "30s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(time.Duration(d).String())), nil
}

// UnmarshalJSON decodes a JSON string holding a non-negative duration in
// time.ParseDuration syntax.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) == 0 || b[0] != '"' {
		return fmt.Errorf("duration must be a string such as \"30s\" or \"100ms\", not %s %s", jsonKind(b), abbreviate(b))
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: want a value such as \"30s\", \"100ms\" or \"1h30m\"", s)
	}
	if v < 0 {
		return fmt.Errorf("invalid duration %q: must not be negative", s)
	}
	*d = Duration(v)
	return nil
}

// jsonKind names the kind of the JSON value starting b.
func jsonKind(b []byte) string {
	if len(b) == 0 {
		return "empty value"
	}
	switch c := b[0]; {
	case c == '{':
		return "object"
	case c == '[':
		return "array"
	case c == 't' || c == 'f':
		return "boolean"
	case c == '-' || (c >= '0' && c <= '9'):
		return "number"
	}
	return "value"
}

// abbreviate shortens raw JSON for use in an error message.
func abbreviate(b []byte) string {
	const limit = 32
	if len(b) > limit {
		return string(b[:limit]) + "..."
	}
	return string(b)
}
