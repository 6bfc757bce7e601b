package stratum

import (
	"bytes"
	"errors"
)

// DefaultMaxLine is the longest request line, without its newline, that a
// connection may send: 16 KiB. The longest legitimate request is a
// mining.configure or mining.subscribe of a few hundred bytes, so anything
// near this limit is abuse (nats' MAX_CONTROL_LINE_SIZE defence).
const DefaultMaxLine = 16 << 10

// Framing errors returned by SplitLine.
var (
	// ErrIncomplete means no newline has arrived yet: keep the bytes and
	// call SplitLine again when more have been read.
	ErrIncomplete = errors.New("stratum: incomplete line")
	// ErrLineTooLong means the next line is longer than the limit. The
	// connection should be closed with reason line_too_long; there is no
	// way to resynchronise on a newline-delimited stream that a peer
	// refuses to terminate.
	ErrLineTooLong = errors.New("stratum: line too long")
)

// SplitLine returns the next newline-terminated line in buf.
//
// line excludes the '\n' and a trailing '\r'; advance is the number of bytes
// consumed including the newline. A line that is empty or holds only
// whitespace (space, tab, '\r') is returned as an empty, non-nil line with a
// positive advance: the caller skips it.
//
// Errors: ErrIncomplete when buf holds no newline and at most max bytes;
// ErrLineTooLong when the line is longer than max bytes (with or without its
// newline having arrived). On error line is nil and advance is 0. max <= 0
// means DefaultMaxLine. SplitLine looks at no more than max+1 bytes, so a
// large buffer costs no more than a full one.
//
// Buffer lifetime: line aliases buf and is only valid as long as buf is (in
// gnet, until the next Discard); DecodeRequest copies what it keeps.
// SplitLine never allocates and is safe for concurrent use on distinct or
// read-only buffers.
func SplitLine(buf []byte, max int) (line []byte, advance int, err error) {
	if max <= 0 {
		max = DefaultMaxLine
	}
	window := buf
	if len(window) > max {
		window = window[:max+1] // a newline at index max ends a line of max bytes
	}
	i := bytes.IndexByte(window, '\n')
	if i < 0 {
		if len(buf) > max {
			return nil, 0, ErrLineTooLong
		}
		return nil, 0, ErrIncomplete
	}
	line = buf[:i:i]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	for _, c := range line {
		if c != ' ' && c != '\t' && c != '\r' {
			return line, i + 1, nil
		}
	}
	return line[:0], i + 1, nil
}
