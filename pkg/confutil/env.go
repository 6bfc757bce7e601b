package confutil

import (
	"errors"
	"fmt"
	"sort"
	"unicode/utf8"
)

// substitution records that text[inStart:inEnd] of the input of expandEnv
// became out[outStart:outEnd] of its output.
type substitution struct {
	inStart, inEnd   int
	outStart, outEnd int
}

// offsetMap translates offsets in expanded text back to offsets in the text
// before expansion, so errors found after expansion point at the file.
type offsetMap []substitution

// original returns the offset in the unexpanded text corresponding to off in
// the expanded text. Offsets inside an inserted value map to the start of the
// reference that produced it.
func (m offsetMap) original(off int) int {
	// Find the last substitution starting at or before off.
	i := sort.Search(len(m), func(i int) bool { return m[i].outStart > off }) - 1
	if i < 0 {
		return off
	}
	s := m[i]
	if off < s.outEnd {
		return s.inStart
	}
	return off - s.outEnd + s.inEnd
}

// maxEnvErrors bounds how many environment reference problems are reported
// individually; a file with more has a bigger problem than any one of them.
const maxEnvErrors = 10

// lookupFunc reports the value of an environment variable and whether it is
// set, like os.LookupEnv.
type lookupFunc func(name string) (string, bool)

// expandEnv replaces ${NAME}, ${NAME:-default} and $$ in text, as described in
// the package documentation. Values from the environment are JSON-string
// escaped; defaults are copied as written. All unset variables and malformed
// references are reported together (up to maxEnvErrors of them), each as a
// *PositionError.
func expandEnv(text []byte, lookup lookupFunc) ([]byte, offsetMap, error) {
	var (
		out     = make([]byte, 0, len(text))
		subs    offsetMap
		errs    []error
		dropped int // problems beyond maxEnvErrors
	)
	fail := func(off int, err error) {
		if len(errs) < maxEnvErrors {
			errs = append(errs, positionErrorAt(text, off, "", err))
		} else {
			dropped++
		}
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c != '$' || i+1 >= len(text) || (text[i+1] != '$' && text[i+1] != '{') {
			out = append(out, c)
			continue
		}

		start, outStart := i, len(out)
		if text[i+1] == '$' {
			out = append(out, '$')
			i++
			subs = append(subs, substitution{start, i + 1, outStart, len(out)})
			continue
		}

		ref, end, ok := parseReference(text, i)
		if !ok {
			fail(start, errors.New("malformed environment reference; want ${NAME} or ${NAME:-default} (write $$ for a literal $)"))
			// Keep the rest of the text so later references are checked too.
			out = append(out, c)
			continue
		}
		i = end - 1

		value, set := lookup(ref.name)
		switch {
		case ref.hasDefault && (!set || value == ""):
			out = append(out, ref.def...)
		case !set:
			fail(start, fmt.Errorf("environment variable %s is not set", ref.name))
		default:
			out = appendJSONEscaped(out, value)
		}
		subs = append(subs, substitution{start, end, outStart, len(out)})
	}
	if dropped > 0 {
		errs = append(errs, fmt.Errorf("%d more environment reference problems", dropped))
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return out, subs, nil
}

// reference is one parsed ${...} environment reference.
type reference struct {
	name       string
	def        []byte
	hasDefault bool
}

// parseReference parses the reference starting with "${" at text[i]. It
// returns the reference and the offset just past its closing brace.
func parseReference(text []byte, i int) (ref reference, end int, ok bool) {
	j := i + 2
	nameStart := j
	for j < len(text) && isNameByte(text[j], j == nameStart) {
		j++
	}
	if j == nameStart || j >= len(text) {
		return reference{}, 0, false
	}
	ref.name = string(text[nameStart:j])

	switch {
	case text[j] == '}':
		return ref, j + 1, true
	case text[j] == ':' && j+1 < len(text) && text[j+1] == '-':
		defStart := j + 2
		for k := defStart; k < len(text); k++ {
			switch text[k] {
			case '}':
				ref.def, ref.hasDefault = text[defStart:k], true
				return ref, k + 1, true
			case '\n':
				return reference{}, 0, false
			}
		}
	}
	return reference{}, 0, false
}

// isNameByte reports whether c may appear in an environment variable name,
// at the first position when first is true.
func isNameByte(c byte, first bool) bool {
	switch {
	case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		return true
	case c >= '0' && c <= '9':
		return !first
	}
	return false
}

// appendJSONEscaped appends s to dst escaped for use inside a JSON string,
// without the surrounding quotes. Invalid UTF-8 becomes U+FFFD.
func appendJSONEscaped(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			dst = append(dst, '\\', byte(r))
		case r == '\n':
			dst = append(dst, '\\', 'n')
		case r == '\r':
			dst = append(dst, '\\', 'r')
		case r == '\t':
			dst = append(dst, '\\', 't')
		case r < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[r>>4], hex[r&0xf])
		default:
			// range yields utf8.RuneError for invalid bytes, which encodes
			// as U+FFFD, the same thing encoding/json would do.
			dst = utf8.AppendRune(dst, r)
		}
	}
	return dst
}
