package stratum

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
)

// Helpers for the params of the rare methods. They take the raw params array
// (Request.Params) and use encoding/json, so they allocate; they never run
// per share. Their results do not alias params (so Request.Params may be
// overwritten afterwards), and they are safe for concurrent use.

// Errors returned by the params helpers.
var (
	ErrParams        = errors.New("stratum: params must be a JSON array")
	ErrParamType     = errors.New("stratum: param has the wrong type")
	ErrMissingParam  = errors.New("stratum: required param missing")
	ErrBadDifficulty = errors.New("stratum: difficulty must be a finite number > 0")
)

// splitParams unmarshals a params array into its raw elements.
func splitParams(params []byte) ([]json.RawMessage, error) {
	p := bytes.TrimSpace(params)
	if len(p) == 0 || p[0] != '[' {
		return nil, ErrParams
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(p, &elems); err != nil {
		return nil, ErrParams
	}
	return elems, nil
}

// paramString returns a string element, or "" for null. ok is false for any
// other type.
func paramString(raw json.RawMessage) (s string, ok bool) {
	switch {
	case len(raw) == 0 || raw[0] == 'n':
		return "", true
	case raw[0] == '"':
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false
		}
		return s, true
	}
	return "", false
}

// StringParams returns r.Params as strings: strings as decoded, numbers as
// their JSON text ("3333"), null as "". Any other element type is
// ErrParamType. It allocates.
func (r *Request) StringParams() ([]string, error) {
	elems, err := splitParams(r.Params)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(elems))
	for k, e := range elems {
		if s, ok := paramString(e); ok {
			out[k] = s
			continue
		}
		if validNumber(e) {
			out[k] = string(e)
			continue
		}
		return nil, ErrParamType
	}
	return out, nil
}

// ParseSubscribe parses mining.subscribe params. Accepted forms: [],
// ["user agent"], ["user agent", "session id"] (cgminer's resume form), and
// ["user agent", null, "host", port] (extra elements are ignored). null
// counts as "". It allocates.
func ParseSubscribe(params []byte) (userAgent, sessionID string, err error) {
	elems, err := splitParams(params)
	if err != nil {
		return "", "", err
	}
	var ok bool
	if len(elems) > 0 {
		if userAgent, ok = paramString(elems[0]); !ok {
			return "", "", ErrParamType
		}
	}
	if len(elems) > 1 {
		if sessionID, ok = paramString(elems[1]); !ok {
			return "", "", ErrParamType
		}
	}
	return userAgent, sessionID, nil
}

// ParseAuthorize parses mining.authorize params: ["user.worker", "password"].
// The password may be absent or null (""); the user is required. Extra
// elements are ignored. It allocates.
func ParseAuthorize(params []byte) (user, pass string, err error) {
	elems, err := splitParams(params)
	if err != nil {
		return "", "", err
	}
	if len(elems) == 0 || elems[0][0] == 'n' {
		return "", "", ErrMissingParam
	}
	var ok bool
	if user, ok = paramString(elems[0]); !ok {
		return "", "", ErrParamType
	}
	if len(elems) > 1 {
		if pass, ok = paramString(elems[1]); !ok {
			return "", "", ErrParamType
		}
	}
	return user, pass, nil
}

// ParseDifficulty parses mining.suggest_difficulty params: [2048], [0.5] or
// the numeric string form ["2048"]. NaN, infinities, zero and negative
// values are ErrBadDifficulty. It allocates.
func ParseDifficulty(params []byte) (float64, error) {
	elems, err := splitParams(params)
	if err != nil {
		return 0, err
	}
	if len(elems) == 0 {
		return 0, ErrMissingParam
	}
	num := []byte(elems[0])
	if num[0] == '"' {
		var s string
		if err := json.Unmarshal(num, &s); err != nil {
			return 0, ErrParamType
		}
		num = []byte(s)
	}
	// Only JSON number syntax: strconv would also take "inf", "0x1p4", "1_0".
	if !validNumber(num) {
		return 0, ErrParamType
	}
	d, err := strconv.ParseFloat(string(num), 64)
	if err != nil || math.IsNaN(d) || math.IsInf(d, 0) || d <= 0 {
		return 0, ErrBadDifficulty
	}
	return d, nil
}

// ParseConfigure parses mining.configure params (BIP310):
//
//	[["version-rolling","minimum-difficulty","subscribe-extranonce"],
//	 {"version-rolling.mask":"1fffe000","version-rolling.min-bit-count":2,
//	  "minimum-difficulty.value":2048}]
//
// exts lists the requested extensions in order; opts maps each option key to
// its raw JSON value (empty, not nil, when the object is absent). The first
// param is required and must be an array of strings; the second, if present,
// must be an object or null. It allocates.
func ParseConfigure(params []byte) (exts []string, opts map[string]json.RawMessage, err error) {
	elems, err := splitParams(params)
	if err != nil {
		return nil, nil, err
	}
	if len(elems) == 0 {
		return nil, nil, ErrMissingParam
	}
	if elems[0][0] != '[' {
		return nil, nil, ErrParamType
	}
	if err := json.Unmarshal(elems[0], &exts); err != nil {
		return nil, nil, ErrParamType
	}
	if exts == nil {
		exts = []string{}
	}
	opts = map[string]json.RawMessage{}
	if len(elems) > 1 && elems[1][0] != 'n' {
		if elems[1][0] != '{' {
			return nil, nil, ErrParamType
		}
		if err := json.Unmarshal(elems[1], &opts); err != nil {
			return nil, nil, ErrParamType
		}
	}
	return exts, opts, nil
}
