package confutil

// This file finds where in the config text an encoding/json error happened.
// encoding/json reports an offset for type errors only, and nothing at all
// for unknown fields or for errors returned by UnmarshalJSON/UnmarshalText
// methods. The helpers below walk the already validated JSON a second time
// with a token reader to recover the position and the JSON path. They run only
// after decoding failed, and only to improve the message: if they cannot find
// the spot, the caller falls back to a message without a position.

import (
	"bytes"
	"encoding"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
)

// tokenReader yields JSON tokens together with their byte spans.
type tokenReader struct {
	data []byte
	dec  *json.Decoder
	end  int // offset just past the previous token
}

func newTokenReader(data []byte) *tokenReader {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // never fail on numbers too large for float64
	return &tokenReader{data: data, dec: dec}
}

// next returns the next token and the offsets of its first byte and of the
// byte just past it.
func (r *tokenReader) next() (tok json.Token, start, end int, err error) {
	tok, err = r.dec.Token()
	if err != nil {
		return nil, 0, 0, err
	}
	// Between two tokens there is only whitespace and the separators that
	// Token consumes silently.
	start = r.end
	for start < len(r.data) && (isSpace(r.data[start]) || r.data[start] == ',' || r.data[start] == ':') {
		start++
	}
	r.end = int(r.dec.InputOffset())
	return tok, start, r.end, nil
}

// skipRest consumes tokens up to and including the delimiter closing the
// object or array whose opening delimiter was just read, and returns the
// offset just past it.
func (r *tokenReader) skipRest() (end int, err error) {
	for depth := 1; depth > 0; {
		tok, _, e, err := r.next()
		if err != nil {
			return 0, err
		}
		if d, ok := tok.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
			} else {
				depth--
			}
		}
		end = e
	}
	return end, nil
}

// frame is one level of nesting while walking tokens untyped.
type frame struct {
	array     bool
	index     int    // next element index, arrays only
	key       string // current key, objects only
	expectKey bool   // objects only
}

// joinPath appends a key to a JSON path.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// indexPath appends an array index to a JSON path.
func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// locateValueEndingAt finds the first value (scalar or opening delimiter)
// whose token ends at offset end, which is how encoding/json reports type
// errors, and returns where that value starts and its JSON path.
func locateValueEndingAt(data []byte, end int) (start int, path string, ok bool) {
	r := newTokenReader(data)
	var stack []frame
	pathOf := func() string {
		p := ""
		for _, f := range stack {
			if f.array {
				p = indexPath(p, f.index)
			} else {
				p = joinPath(p, f.key)
			}
		}
		return p
	}
	for {
		tok, s, e, err := r.next()
		if err != nil {
			return 0, "", false
		}
		if d, isDelim := tok.(json.Delim); isDelim && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return 0, "", false
			}
			if top := &stack[len(stack)-1]; top.array {
				top.index++
			} else {
				top.expectKey = true
			}
			continue
		}
		if n := len(stack); n > 0 && !stack[n-1].array && stack[n-1].expectKey {
			stack[n-1].key, _ = tok.(string)
			stack[n-1].expectKey = false
			continue
		}

		// tok is a value.
		if e == end {
			return s, pathOf(), true
		}
		if d, isDelim := tok.(json.Delim); isDelim {
			stack = append(stack, frame{array: d == '[', expectKey: d == '{'})
			continue
		}
		if len(stack) == 0 {
			return 0, "", false // a lone scalar that did not match
		}
		if top := &stack[len(stack)-1]; top.array {
			top.index++
		} else {
			top.expectKey = true
		}
	}
}

// problem is a spot in the config that encoding/json rejects: an unknown key
// (err == nil) or a value whose UnmarshalJSON/UnmarshalText method fails.
type problem struct {
	key   string // the unknown key
	path  string // JSON path of the key or value
	start int    // offset of the key or value
	err   error  // the method's error
}

var (
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// findProblem walks data alongside the Go type of dst and returns the first
// problem, in document order, for which match returns true.
func findProblem(data []byte, dst any, match func(problem) bool) (problem, bool) {
	t := reflect.TypeOf(dst)
	if t == nil {
		return problem{}, false
	}
	w := &typedWalker{r: newTokenReader(data), match: match}
	w.value(t, "")
	return w.found, w.ok
}

// typedWalker walks JSON tokens and a Go type in step, approximating the
// rules encoding/json uses to match keys with struct fields.
type typedWalker struct {
	r     *tokenReader
	match func(problem) bool
	found problem
	ok    bool
	err   bool // the token reader failed; stop
}

// stopped reports whether the walk is over.
func (w *typedWalker) stopped() bool { return w.ok || w.err }

// value consumes one JSON value that encoding/json decodes into type t.
func (w *typedWalker) value(t reflect.Type, path string) {
	tok, start, end, err := w.r.next()
	if err != nil {
		w.err = true
		return
	}
	delim, isDelim := tok.(json.Delim)

	// Values with their own decoding methods: rerun the method to see
	// whether this is the value that failed.
	if t != nil && t.Kind() != reflect.Interface {
		base := t
		for base.Kind() == reflect.Pointer {
			base = base.Elem()
		}
		ptr := reflect.PointerTo(base)
		switch {
		case ptr.Implements(jsonUnmarshalerType):
			if isDelim {
				if end, err = w.r.skipRest(); err != nil {
					w.err = true
					return
				}
			}
			raw := w.r.data[start:end]
			u := reflect.New(base).Interface().(json.Unmarshaler)
			if err := u.UnmarshalJSON(raw); err != nil {
				w.report(problem{path: path, start: start, err: err})
			}
			return
		case ptr.Implements(textUnmarshalerType):
			if s, isString := tok.(string); isString {
				u := reflect.New(base).Interface().(encoding.TextUnmarshaler)
				if err := u.UnmarshalText([]byte(s)); err != nil {
					w.report(problem{path: path, start: start, err: err})
				}
				return
			}
		}
		t = base
	}

	if !isDelim {
		return // a scalar
	}
	switch {
	case delim == '{' && t != nil && t.Kind() == reflect.Struct:
		w.structFields(typeFields(t, nil), path)
	case delim == '{' && t != nil && t.Kind() == reflect.Map:
		w.objectElems(t.Elem(), path)
	case delim == '[' && t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
		w.arrayElems(t.Elem(), path)
	default:
		// Decoded into an interface (or a type error): nothing is unknown.
		if _, err := w.r.skipRest(); err != nil {
			w.err = true
		}
	}
}

// report records p if the caller is looking for it.
func (w *typedWalker) report(p problem) {
	if !w.ok && w.match(p) {
		w.found, w.ok = p, true
	}
}

// structFields walks the members of an object decoded into a struct.
func (w *typedWalker) structFields(fields map[string]reflect.Type, path string) {
	for !w.stopped() {
		tok, start, _, err := w.r.next()
		if err != nil {
			w.err = true
			return
		}
		key, isKey := tok.(string)
		if !isKey {
			return // the closing '}'
		}
		keyPath := joinPath(path, key)
		ft, known := lookupField(fields, key)
		if !known {
			w.report(problem{key: key, path: keyPath, start: start})
			ft = nil // skip the value
		}
		w.value(ft, keyPath)
	}
}

// objectElems walks the members of an object decoded into a map.
func (w *typedWalker) objectElems(elem reflect.Type, path string) {
	for !w.stopped() {
		tok, _, _, err := w.r.next()
		if err != nil {
			w.err = true
			return
		}
		key, isKey := tok.(string)
		if !isKey {
			return
		}
		w.value(elem, joinPath(path, key))
	}
}

// arrayElems walks the elements of an array decoded into a slice or array.
func (w *typedWalker) arrayElems(elem reflect.Type, path string) {
	for i := 0; !w.stopped(); i++ {
		if !w.r.dec.More() {
			// Consume the closing ']'.
			if _, _, _, err := w.r.next(); err != nil {
				w.err = true
			}
			return
		}
		w.value(elem, indexPath(path, i))
	}
}

// typeFields returns the JSON names of the fields of struct type t, including
// fields promoted from embedded structs, mapped to their types. seen guards
// against embedding cycles and may be nil.
func typeFields(t reflect.Type, seen map[reflect.Type]bool) map[string]reflect.Type {
	if seen == nil {
		seen = make(map[reflect.Type]bool)
	}
	seen[t] = true
	fields := make(map[string]reflect.Type)
	var embedded []reflect.Type
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				embedded = append(embedded, ft)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	// Promoted fields lose to fields declared at a shallower depth.
	for _, et := range embedded {
		if seen[et] {
			continue
		}
		for name, ft := range typeFields(et, seen) {
			if _, dup := fields[name]; !dup {
				fields[name] = ft
			}
		}
	}
	return fields
}

// lookupField finds key among fields the way encoding/json does: an exact
// match first, then a case-insensitive one.
func lookupField(fields map[string]reflect.Type, key string) (reflect.Type, bool) {
	if ft, ok := fields[key]; ok {
		return ft, true
	}
	for name, ft := range fields {
		if strings.EqualFold(name, key) {
			return ft, true
		}
	}
	return nil, false
}
