package confutil

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Load reads the config file at path and decodes it into dst with Decode.
// Every error is prefixed with "config <path>: ".
//
// dst must be a non-nil pointer, normally to a config struct already holding
// its defaults. On error dst may have been partly written.
func Load(path string, dst any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if err := Decode(data, dst); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// Decode strips comments from data, expands environment references and
// decodes the single JSON value that remains into dst, rejecting unknown
// fields and trailing data. The package documentation describes each step.
//
// Errors that can be tied to a place in data are *PositionError values;
// problems with several environment references are joined with errors.Join.
// dst must be a non-nil pointer. On error dst may have been partly written.
func Decode(data []byte, dst any) error {
	return decode(data, dst, os.LookupEnv)
}

// decode is Decode with an injectable environment.
func decode(data []byte, dst any, lookup lookupFunc) error {
	stripped, bad, ok := stripComments(data)
	if !ok {
		return positionErrorAt(data, bad, "", errors.New("unterminated block comment"))
	}
	text, subs, err := expandEnv(stripped, lookup)
	if err != nil {
		return err
	}

	dec := json.NewDecoder(bytes.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return describeDecodeError(err, data, text, subs, dst)
	}

	// Exactly one top-level value: anything but whitespace after it is a
	// mistake such as a second object or a stray brace.
	off := int(dec.InputOffset())
	for off < len(text) && isSpace(text[off]) {
		off++
	}
	if off < len(text) {
		return positionErrorAt(data, subs.original(off), "", errors.New("unexpected data after the top-level JSON value"))
	}
	return nil
}

// PositionError is a config error tied to a place in the config text.
type PositionError struct {
	// Line is the 1-based line number.
	Line int
	// Column is the 1-based column, counted in bytes.
	Column int
	// Field is the JSON path of the offending value, such as "admin.listen"
	// or "pools[2].url". It is empty for the top-level value and for errors
	// that do not concern a field (syntax errors, environment references).
	Field string
	// Err is the underlying error, for example a *json.SyntaxError.
	Err error

	msg string // replaces the default message when set
}

// Error returns "line L, column C: " followed by the message, which names the
// field when one is known.
func (e *PositionError) Error() string {
	msg := e.msg
	if msg == "" {
		msg = e.Err.Error()
		if e.Field != "" {
			msg = fmt.Sprintf("field %q: %s", e.Field, msg)
		}
	}
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, msg)
}

// Unwrap returns the underlying error.
func (e *PositionError) Unwrap() error { return e.Err }

// positionErrorAt builds a *PositionError for byte offset off of text.
func positionErrorAt(text []byte, off int, field string, err error) *PositionError {
	line, col := lineColumn(text, off)
	return &PositionError{Line: line, Column: col, Field: field, Err: err}
}

// lineColumn converts a byte offset into a 1-based line and byte column.
// Offsets past the end are clamped to the end.
func lineColumn(text []byte, off int) (line, col int) {
	off = max(0, min(off, len(text)))
	before := text[:off]
	line = 1 + bytes.Count(before, []byte{'\n'})
	col = off - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

// isSpace reports whether c is JSON whitespace.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

// unknownFieldPrefix starts encoding/json's error for a field that dst does
// not have; encoding/json offers no typed error for it.
const unknownFieldPrefix = "json: unknown field "

// describeDecodeError turns an encoding/json error for text (the expanded
// form of data) into an error pointing into data.
func describeDecodeError(err error, data, text []byte, subs offsetMap, dst any) error {
	var (
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		invalid   *json.InvalidUnmarshalError
	)
	switch {
	case errors.Is(err, io.EOF):
		return errors.New("no JSON value: the config is empty")

	case errors.Is(err, io.ErrUnexpectedEOF):
		return positionErrorAt(data, len(data), "", errors.New("unexpected end of input: unterminated string, object or array"))

	case errors.As(err, &syntaxErr):
		// Offset counts the bytes read, including the offending one.
		off := subs.original(int(syntaxErr.Offset) - 1)
		return positionErrorAt(data, off, "", syntaxErr)

	case errors.As(err, &typeErr):
		off, field := int(typeErr.Offset), typeErr.Field
		if start, path, ok := locateValueEndingAt(text, off); ok {
			off, field = start, path
		}
		pe := positionErrorAt(data, subs.original(off), field, typeErr)
		pe.msg = fmt.Sprintf("cannot unmarshal %s into %s", typeErr.Value, typeErr.Type)
		if field != "" {
			pe.msg = fmt.Sprintf("field %q: %s", field, pe.msg)
		}
		return pe

	case errors.As(err, &invalid):
		return err // a programming error: dst is not a non-nil pointer

	case strings.HasPrefix(err.Error(), unknownFieldPrefix):
		name, uerr := strconv.Unquote(strings.TrimPrefix(err.Error(), unknownFieldPrefix))
		if uerr != nil {
			return err
		}
		p, ok := findProblem(text, dst, func(p problem) bool {
			return p.err == nil && p.key == name
		})
		if !ok {
			return fmt.Errorf("unknown field %q", name)
		}
		pe := positionErrorAt(data, subs.original(p.start), p.path, err)
		pe.msg = fmt.Sprintf("unknown field %q", p.path)
		return pe

	default:
		// Most likely an error from a field's UnmarshalJSON or UnmarshalText
		// (a bad Duration, say), which encoding/json returns bare.
		p, ok := findProblem(text, dst, func(p problem) bool {
			return p.err != nil && p.err.Error() == err.Error()
		})
		if !ok {
			return err
		}
		return positionErrorAt(data, subs.original(p.start), p.path, err)
	}
}
