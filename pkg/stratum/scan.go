package stratum

import (
	"unicode/utf16"
	"unicode/utf8"
)

// This file is the hand-written JSON scanner behind DecodeRequest. It works
// on byte indexes into one line, never allocates and never recurses deeper
// than maxDepth. Every function takes the index of the first byte of a value
// (whitespace already skipped) and returns the index just past it, or a
// non-zero reason.

// maxDepth bounds nesting inside skipped values (params of rare methods,
// unknown keys). mining.configure, the deepest real request, needs 3.
const maxDepth = 64

// reason is why a decode failed; rOK (0) means it did not.
type reason uint8

const (
	rOK reason = iota
	rNotObject
	rSyntax
	rTooDeep
	rTrailing
	rDuplicateKey
	rIDType
	rIDTooLong
	rMethodMissing
	rMethodType
	rMethodTooLong
	rMethodChars
	rParamsType
	rSubmitFew
	rSubmitMany
	rWorker
	rJobID
	rEN2
	rNTime
	rNonce
	rVersionBits
	rOverflow // internal: a decoded string did not fit its buffer
	numReasons
)

var reasons = [numReasons]struct {
	text  string
	reply *Error
}{
	rOK:            {"ok", nil},
	rNotObject:     {"request is not a JSON object", ErrMalformed},
	rSyntax:        {"malformed JSON", ErrMalformed},
	rTooDeep:       {"JSON nested too deeply", ErrMalformed},
	rTrailing:      {"data after the request object", ErrMalformed},
	rDuplicateKey:  {"duplicate id, method or params key", ErrMalformed},
	rIDType:        {"id must be a number, a string or null", ErrMalformed},
	rIDTooLong:     {"id longer than 64 bytes", ErrMalformed},
	rMethodMissing: {"method missing", ErrMalformed},
	rMethodType:    {"method must be a string", ErrMalformed},
	rMethodTooLong: {"method longer than 64 bytes", ErrMalformed},
	rMethodChars:   {"method must be printable ASCII", ErrMalformed},
	rParamsType:    {"params must be an array", ErrMalformed},
	rSubmitFew:     {"submit: fewer than 5 params", ErrMalformed},
	rSubmitMany:    {"submit: more than 6 params", ErrMalformed},
	rWorker:        {"submit: worker must be a printable ASCII string of at most 128 bytes", ErrMalformed},
	rJobID:         {"submit: job id must be a printable ASCII string of at most 64 bytes", ErrMalformed},
	rEN2:           {"submit: extranonce2 must be an even-length hex string of at most 32 bytes", ErrBadExtranonce2},
	rNTime:         {"submit: ntime must be 8 hex digits", ErrBadNTime},
	rNonce:         {"submit: nonce must be 8 hex digits", ErrMalformed},
	rVersionBits:   {"submit: version bits must be 8 hex digits", ErrBadVersionBits},
	rOverflow:      {"value too long", ErrMalformed},
}

// unhex maps an ASCII hex digit (either case) to its value and every other
// byte to 0xff.
var unhex = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c - 'a' + 10)
		t[c-'a'+'A'] = byte(c - 'a' + 10)
	}
	return t
}()

// strPlain marks the bytes that stand for themselves inside a JSON string:
// everything but '"', '\\' and control characters.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = false, false
	return t
}()

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipWS(b []byte, i int) int {
	for i < len(b) && isWS(b[i]) {
		i++
	}
	return i
}

// at returns b[i], or 0 past the end; 0 never starts or continues a token.
func at(b []byte, i int) byte {
	if i < len(b) {
		return b[i]
	}
	return 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// skipNumber scans a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func skipNumber(b []byte, i int) (int, reason) {
	if at(b, i) == '-' {
		i++
	}
	switch c := at(b, i); {
	case c == '0':
		i++
	case c >= '1' && c <= '9':
		for i++; isDigit(at(b, i)); i++ {
		}
	default:
		return 0, rSyntax
	}
	if at(b, i) == '.' {
		i++
		if !isDigit(at(b, i)) {
			return 0, rSyntax
		}
		for i++; isDigit(at(b, i)); i++ {
		}
	}
	if c := at(b, i); c == 'e' || c == 'E' {
		i++
		if c := at(b, i); c == '+' || c == '-' {
			i++
		}
		if !isDigit(at(b, i)) {
			return 0, rSyntax
		}
		for i++; isDigit(at(b, i)); i++ {
		}
	}
	return i, rOK
}

// validNumber reports whether s is exactly one JSON number.
func validNumber(s []byte) bool {
	end, r := skipNumber(s, 0)
	return r == rOK && end == len(s)
}

func skipLiteral(b []byte, i int, lit string) (int, reason) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, rSyntax
	}
	return i + len(lit), rOK
}

// hex4 decodes the four hex digits of a \u escape at b[i:i+4].
func hex4(b []byte, i int) (rune, bool) {
	if len(b)-i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		v := unhex[c]
		if v == 0xff {
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	return r, true
}

// skipString validates a JSON string starting at its opening quote: no raw
// control characters, only the escapes JSON defines. Bytes >= 0x80 are not
// checked for UTF-8 validity here.
func skipString(b []byte, i int) (int, reason) {
	i++ // opening quote
	for {
		for i < len(b) && strPlain[b[i]] {
			i++
		}
		switch at(b, i) {
		case '"': // at returns 0 past the end, so this is a real quote
			return i + 1, rOK
		case '\\':
			switch at(b, i+1) {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if _, ok := hex4(b, i+2); !ok {
					return 0, rSyntax
				}
				i += 6
			default:
				return 0, rSyntax
			}
		default: // control character or end of input
			return 0, rSyntax
		}
	}
}

// decodeString decodes the JSON string starting at the opening quote b[i]
// into dst, resolving escapes (surrogate pairs included; a lone surrogate
// becomes U+FFFD as in encoding/json). It returns rOverflow if the decoded
// text does not fit in dst.
func decodeString(b []byte, i int, dst []byte) (n, next int, r reason) {
	i++
	for {
		j := i
		for j < len(b) && strPlain[b[j]] {
			j++
		}
		if j-i > len(dst)-n {
			return 0, 0, rOverflow
		}
		n += copy(dst[n:], b[i:j])
		i = j
		if i >= len(b) {
			return 0, 0, rSyntax
		}
		switch b[i] {
		case '"':
			return n, i + 1, rOK
		case '\\':
		default: // control character
			return 0, 0, rSyntax
		}
		var ch byte
		switch at(b, i+1) {
		case '"':
			ch = '"'
		case '\\':
			ch = '\\'
		case '/':
			ch = '/'
		case 'b':
			ch = '\b'
		case 'f':
			ch = '\f'
		case 'n':
			ch = '\n'
		case 'r':
			ch = '\r'
		case 't':
			ch = '\t'
		case 'u':
			r1, ok := hex4(b, i+2)
			if !ok {
				return 0, 0, rSyntax
			}
			i += 6
			if utf16.IsSurrogate(r1) {
				dec := utf8.RuneError
				if at(b, i) == '\\' && at(b, i+1) == 'u' {
					if r2, ok := hex4(b, i+2); ok {
						if d := utf16.DecodeRune(r1, r2); d != utf8.RuneError {
							dec = d
							i += 6
						}
					}
				}
				r1 = dec
			}
			if len(dst)-n < utf8.RuneLen(r1) {
				return 0, 0, rOverflow
			}
			n += utf8.EncodeRune(dst[n:], r1)
			continue
		default:
			return 0, 0, rSyntax
		}
		if n >= len(dst) {
			return 0, 0, rOverflow
		}
		dst[n] = ch
		n++
		i += 2
	}
}

// skipValue skips any JSON value, validating it.
func skipValue(b []byte, i, depth int) (int, reason) {
	switch c := at(b, i); c {
	case '"':
		return skipString(b, i)
	case '{':
		if depth >= maxDepth {
			return 0, rTooDeep
		}
		i = skipWS(b, i+1)
		if at(b, i) == '}' {
			return i + 1, rOK
		}
		for {
			if at(b, i) != '"' {
				return 0, rSyntax
			}
			var r reason
			if i, r = skipString(b, i); r != rOK {
				return 0, r
			}
			i = skipWS(b, i)
			if at(b, i) != ':' {
				return 0, rSyntax
			}
			if i, r = skipValue(b, skipWS(b, i+1), depth+1); r != rOK {
				return 0, r
			}
			i = skipWS(b, i)
			switch at(b, i) {
			case ',':
				i = skipWS(b, i+1)
			case '}':
				return i + 1, rOK
			default:
				return 0, rSyntax
			}
		}
	case '[':
		if depth >= maxDepth {
			return 0, rTooDeep
		}
		i = skipWS(b, i+1)
		if at(b, i) == ']' {
			return i + 1, rOK
		}
		for {
			var r reason
			if i, r = skipValue(b, i, depth+1); r != rOK {
				return 0, r
			}
			i = skipWS(b, i)
			switch at(b, i) {
			case ',':
				i = skipWS(b, i+1)
			case ']':
				return i + 1, rOK
			default:
				return 0, rSyntax
			}
		}
	case 't':
		return skipLiteral(b, i, "true")
	case 'f':
		return skipLiteral(b, i, "false")
	case 'n':
		return skipLiteral(b, i, "null")
	default:
		if c == '-' || isDigit(c) {
			return skipNumber(b, i)
		}
		return 0, rSyntax
	}
}

// printableASCII reports whether s holds only bytes 0x20..0x7e.
func printableASCII(s []byte) bool {
	for _, c := range s {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// parseHex32 parses a JSON string of exactly 8 hex digits (either case) as
// a big-endian uint32, the Stratum encoding of ntime, nonce and version.
func parseHex32(b []byte, i int) (v uint32, next int, ok bool) {
	if len(b)-i < 10 || b[i] != '"' || b[i+9] != '"' {
		return 0, 0, false
	}
	for _, c := range b[i+1 : i+9] {
		d := unhex[c]
		if d == 0xff {
			return 0, 0, false
		}
		v = v<<4 | uint32(d)
	}
	return v, i + 10, true
}

// parseHexBytes decodes a JSON string of hex digit pairs into dst.
func parseHexBytes(b []byte, i int, dst []byte) (n, next int, ok bool) {
	if at(b, i) != '"' {
		return 0, 0, false
	}
	i++
	for {
		c := at(b, i)
		if c == '"' {
			return n, i + 1, true
		}
		hi, lo := unhex[c], unhex[at(b, i+1)]
		if hi == 0xff || lo == 0xff || n >= len(dst) {
			return 0, 0, false
		}
		dst[n] = hi<<4 | lo
		n++
		i += 2
	}
}
