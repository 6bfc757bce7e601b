package stratum

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStringParams(t *testing.T) {
	tests := []struct {
		params string
		want   []string
		err    error
	}{
		{`[]`, []string{}, nil},
		{`["a", "b\u00e9"]`, []string{"a", "bé"}, nil},
		{`["ua", null, "host", 3333]`, []string{"ua", "", "host", "3333"}, nil},
		{`[-1.5e3]`, []string{"-1.5e3"}, nil},
		{`[true]`, nil, ErrParamType},
		{`[[1]]`, nil, ErrParamType},
		{`[{}]`, nil, ErrParamType},
		{`{}`, nil, ErrParams},
		{``, nil, ErrParams},
		{`[1,`, nil, ErrParams},
	}
	for _, tc := range tests {
		r := Request{Params: []byte(tc.params)}
		got, err := r.StringParams()
		require.Equal(t, tc.err, err, tc.params)
		require.Equal(t, tc.want, got, tc.params)
	}
}

func TestParseSubscribe(t *testing.T) {
	tests := []struct {
		params  string
		ua, sid string
		err     error
	}{
		{`[]`, "", "", nil},
		{`["cgminer/4.12.1"]`, "cgminer/4.12.1", "", nil},
		{`["cgminer/4.12.1", "e26d7ac5"]`, "cgminer/4.12.1", "e26d7ac5", nil},
		{`["ua", null, "stratum.example.com", 3333]`, "ua", "", nil},
		{`[null]`, "", "", nil},
		{`[1]`, "", "", ErrParamType},
		{`["ua", 5]`, "", "", ErrParamType},
		{`{"agent":"x"}`, "", "", ErrParams},
	}
	for _, tc := range tests {
		ua, sid, err := ParseSubscribe([]byte(tc.params))
		require.Equal(t, tc.err, err, tc.params)
		require.Equal(t, tc.ua, ua, tc.params)
		require.Equal(t, tc.sid, sid, tc.params)
	}
}

func TestParseAuthorize(t *testing.T) {
	tests := []struct {
		params     string
		user, pass string
		err        error
	}{
		{`["alice.rig01", "x"]`, "alice.rig01", "x", nil},
		{`["alice.rig01"]`, "alice.rig01", "", nil},
		{`["alice.rig01", null]`, "alice.rig01", "", nil},
		{`["alice", "d=4096", "extra"]`, "alice", "d=4096", nil},
		{`[]`, "", "", ErrMissingParam},
		{`[null, "x"]`, "", "", ErrMissingParam},
		{`[1, "x"]`, "", "", ErrParamType},
		{`["a", 1]`, "", "", ErrParamType},
		{`"a"`, "", "", ErrParams},
	}
	for _, tc := range tests {
		user, pass, err := ParseAuthorize([]byte(tc.params))
		require.Equal(t, tc.err, err, tc.params)
		require.Equal(t, tc.user, user, tc.params)
		require.Equal(t, tc.pass, pass, tc.params)
	}
}

func TestParseDifficulty(t *testing.T) {
	tests := []struct {
		params string
		want   float64
		err    error
	}{
		{`[2048]`, 2048, nil},
		{`[0.5]`, 0.5, nil},
		{`[1e-8]`, 1e-8, nil},
		{`["4096"]`, 4096, nil},
		{`[" 4096"]`, 0, ErrParamType},
		{`["0.001", "ignored"]`, 0.001, nil},
		{`[0]`, 0, ErrBadDifficulty},
		{`[-1]`, 0, ErrBadDifficulty},
		{`["-0.5"]`, 0, ErrBadDifficulty},
		{`[1e999]`, 0, ErrBadDifficulty},
		{`["1e999"]`, 0, ErrBadDifficulty},
		{`["NaN"]`, 0, ErrParamType},
		{`["Inf"]`, 0, ErrParamType},
		{`["0x10"]`, 0, ErrParamType},
		{`["1_000"]`, 0, ErrParamType},
		{`[true]`, 0, ErrParamType},
		{`[null]`, 0, ErrParamType},
		{`[]`, 0, ErrMissingParam},
		{`5`, 0, ErrParams},
	}
	for _, tc := range tests {
		got, err := ParseDifficulty([]byte(tc.params))
		require.Equal(t, tc.err, err, tc.params)
		require.Equal(t, tc.want, got, tc.params)
	}
}

func TestParseConfigure(t *testing.T) {
	exts, opts, err := ParseConfigure([]byte(`[["version-rolling","minimum-difficulty","subscribe-extranonce"],{"version-rolling.mask":"1fffe000","version-rolling.min-bit-count":2,"minimum-difficulty.value":2048}]`))
	require.NoError(t, err)
	require.Equal(t, []string{"version-rolling", "minimum-difficulty", "subscribe-extranonce"}, exts)
	require.Equal(t, map[string]json.RawMessage{
		"version-rolling.mask":          json.RawMessage(`"1fffe000"`),
		"version-rolling.min-bit-count": json.RawMessage(`2`),
		"minimum-difficulty.value":      json.RawMessage(`2048`),
	}, opts)

	exts, opts, err = ParseConfigure([]byte(`[["version-rolling"]]`))
	require.NoError(t, err)
	require.Equal(t, []string{"version-rolling"}, exts)
	require.NotNil(t, opts)
	require.Empty(t, opts)

	exts, opts, err = ParseConfigure([]byte(`[[], null]`))
	require.NoError(t, err)
	require.Equal(t, []string{}, exts)
	require.Empty(t, opts)

	for _, bad := range []string{`[]`, `["version-rolling"]`, `[[1]]`, `[["a"], []]`, `[["a"], "x"]`, `{}`} {
		_, _, err := ParseConfigure([]byte(bad))
		require.Error(t, err, bad)
	}
}
