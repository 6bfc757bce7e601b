package confutil

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeEnv is a lookupFunc backed by a map.
func fakeEnv(vars map[string]string) lookupFunc {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

func TestExpandEnv(t *testing.T) {
	env := fakeEnv(map[string]string{
		"HOST":    "10.0.0.5:8332",
		"EMPTY":   "",
		"QUOTE":   `pa"ss\word`,
		"CTRL":    "a\nb\tc\x01",
		"UNICODE": "héllo",
		"_x1":     "underscore",
	})
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr []string // substrings of the error; nil means success
	}{
		{name: "no references", in: `{"a": "b"}`, want: `{"a": "b"}`},
		{name: "plain", in: `"http://${HOST}/"`, want: `"http://10.0.0.5:8332/"`},
		{name: "default unused", in: `"${HOST:-x}"`, want: `"10.0.0.5:8332"`},
		{name: "default for unset", in: `"http://${NODE_RPC:-127.0.0.1:18443}"`, want: `"http://127.0.0.1:18443"`},
		{name: "default for empty", in: `"${EMPTY:-fallback}"`, want: `"fallback"`},
		{name: "empty default", in: `"${UNSET:-}"`, want: `""`},
		{name: "set but empty without default", in: `"${EMPTY}"`, want: `""`},
		{name: "default copied verbatim", in: `"${UNSET:-a\"b}"`, want: `"a\"b"`},
		{name: "value is json escaped", in: `"${QUOTE}"`, want: `"pa\"ss\\word"`},
		{name: "control characters escaped", in: `"${CTRL}"`, want: `"a\nb\tc\u0001"`},
		{name: "unicode kept", in: `"${UNICODE}"`, want: `"héllo"`},
		{name: "underscore and digits", in: `"${_x1}"`, want: `"underscore"`},
		{name: "dollar dollar", in: `"pa$$word"`, want: `"pa$word"`},
		{name: "dollar dollar brace", in: `"$${HOST}"`, want: `"${HOST}"`},
		{name: "lone dollar kept", in: `"$5 and $HOST"`, want: `"$5 and $HOST"`},
		{name: "dollar at end", in: `"x" $`, want: `"x" $`},
		{name: "unset", in: "{\n  \"a\": \"${NOPE}\"\n}", wantErr: []string{"line 2, column 9: environment variable NOPE is not set"}},
		{
			name:    "all unset reported",
			in:      `"${A1}${B2}"`,
			wantErr: []string{"environment variable A1 is not set", "environment variable B2 is not set"},
		},
		{name: "bad name", in: `"${1X}"`, wantErr: []string{"line 1, column 2: malformed environment reference"}},
		{name: "empty name", in: `"${}"`, wantErr: []string{"malformed environment reference"}},
		{name: "unterminated", in: `"${HOST"`, wantErr: []string{"malformed environment reference"}},
		{name: "bad operator", in: `"${HOST:=x}"`, wantErr: []string{"malformed environment reference"}},
		{name: "default across newline", in: "\"${X:-a\n}\"", wantErr: []string{"malformed environment reference"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := expandEnv([]byte(tc.in), env)
			if tc.wantErr != nil {
				require.Error(t, err)
				for _, s := range tc.wantErr {
					require.ErrorContains(t, err, s)
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, string(got))
		})
	}
}

func TestOffsetMap(t *testing.T) {
	// "ab${V}cd$$e" with V=XYZW expands to "abXYZWcd$e".
	in := []byte("ab${V}cd$$e")
	out, subs, err := expandEnv(in, fakeEnv(map[string]string{"V": "XYZW"}))
	require.NoError(t, err)
	require.Equal(t, "abXYZWcd$e", string(out))

	tests := []struct {
		out, in int
	}{
		{0, 0}, {1, 1}, // before any reference
		{2, 2}, {5, 2}, // inside the value: start of "${V}"
		{6, 6}, {7, 7}, // "cd" after the reference
		{8, 8},   // the "$" from "$$"
		{9, 10},  // "e"
		{10, 11}, // end of text
	}
	for _, tc := range tests {
		require.Equal(t, tc.in, subs.original(tc.out), "output offset %d", tc.out)
	}
}

func TestExpandEnvBoundsErrors(t *testing.T) {
	in := []byte(`"` + strings.Repeat("${UNSET}", maxEnvErrors+5) + `"`)
	_, _, err := expandEnv(in, fakeEnv(nil))
	require.Error(t, err)
	joined, ok := err.(interface{ Unwrap() []error })
	require.True(t, ok)
	require.Len(t, joined.Unwrap(), maxEnvErrors+1)
	require.ErrorContains(t, err, "5 more environment reference problems")
}
