package confutil_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashgate/hashgate/pkg/confutil"
	"github.com/stretchr/testify/require"
)

type testAdmin struct {
	Listen      string `json:"listen"`
	AllowRemote bool   `json:"allow_remote"`
}

type testPool struct {
	URL    string `json:"url"`
	Weight int    `json:"weight"`
}

type testConfig struct {
	Name    string            `json:"name"`
	RPCURL  string            `json:"rpc_url"`
	Timeout confutil.Duration `json:"timeout"`
	Admin   testAdmin         `json:"admin"`
	Pools   []testPool        `json:"pools"`
	Labels  map[string]string `json:"labels"`
	Extra   any               `json:"extra"`
}

func TestLoadExample(t *testing.T) {
	t.Setenv("CONFUTIL_TEST_POOL_HOST", "pool.example")
	var cfg testConfig
	require.NoError(t, confutil.Load(filepath.Join("testdata", "example.jsonc"), &cfg))
	require.Equal(t, testConfig{
		Name:    "gateway-1",
		RPCURL:  "http://127.0.0.1:18443/wallet//main",
		Timeout: confutil.Duration(90 * time.Second),
		Admin:   testAdmin{Listen: "127.0.0.1:7101"},
		Pools: []testPool{
			{URL: "stratum+tcp://pool.example:3333", Weight: 2},
			{URL: "price: $5", Weight: 1},
		},
		Labels: map[string]string{"region": "eu"},
	}, cfg)
}

func TestLoadErrorsNamePath(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"nmae": "x"}`), 0o644))

	tests := []struct {
		name    string
		path    string
		wantErr string
		wantIs  error
	}{
		{name: "missing file", path: filepath.Join(dir, "missing.json"), wantErr: "config " + filepath.Join(dir, "missing.json") + ": ", wantIs: os.ErrNotExist},
		{name: "bad content", path: bad, wantErr: "config " + bad + `: line 1, column 2: unknown field "nmae"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var cfg testConfig
			err := confutil.Load(tc.path, &cfg)
			require.ErrorContains(t, err, tc.wantErr)
			if tc.wantIs != nil {
				require.ErrorIs(t, err, tc.wantIs)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	t.Setenv("CONFUTIL_TEST_HOST", `10.1.2.3:8332`)
	t.Setenv("CONFUTIL_TEST_PASS", `p"a\ss`)

	tests := []struct {
		name string
		in   string
		want testConfig
	}{
		{name: "plain json", in: `{"name": "a", "admin": {"listen": "127.0.0.1:1"}}`, want: testConfig{Name: "a", Admin: testAdmin{Listen: "127.0.0.1:1"}}},
		{name: "comments", in: "// c\n{\"name\": /* inline */ \"a\" // tail\n}", want: testConfig{Name: "a"}},
		{name: "url with double slash", in: `{"rpc_url": "http://x//y"}`, want: testConfig{RPCURL: "http://x//y"}},
		{name: "env", in: `{"rpc_url": "http://${CONFUTIL_TEST_HOST}"}`, want: testConfig{RPCURL: "http://10.1.2.3:8332"}},
		{name: "env needing escapes", in: `{"name": "${CONFUTIL_TEST_PASS}"}`, want: testConfig{Name: `p"a\ss`}},
		{name: "env default", in: `{"rpc_url": "http://${CONFUTIL_TEST_UNSET:-127.0.0.1:18443}"}`, want: testConfig{RPCURL: "http://127.0.0.1:18443"}},
		{name: "env in comment ignored", in: `{"name": "a"} // ${CONFUTIL_TEST_UNSET}`, want: testConfig{Name: "a"}},
		{name: "duration", in: `{"timeout": "250ms"}`, want: testConfig{Timeout: confutil.Duration(250 * time.Millisecond)}},
		{name: "trailing whitespace", in: "{}\n\n  \t", want: testConfig{}},
		{name: "interface field takes anything", in: `{"extra": {"x": [1, {"y": 2}]}}`, want: testConfig{Extra: map[string]any{"x": []any{1.0, map[string]any{"y": 2.0}}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got testConfig
			require.NoError(t, confutil.Decode([]byte(tc.in), &got))
			require.Equal(t, tc.want, got)
		})
	}
}

func TestDecodeKeepsDefaults(t *testing.T) {
	cfg := testConfig{Name: "default", Timeout: confutil.Duration(time.Second)}
	require.NoError(t, confutil.Decode([]byte(`{"rpc_url": "u", "timeout": null}`), &cfg))
	require.Equal(t, testConfig{Name: "default", RPCURL: "u", Timeout: confutil.Duration(time.Second)}, cfg)
}

// TestDecodeErrors pins the exact error text for each kind of mistake, since
// those messages are what an operator sees when a daemon refuses its config.
func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		wantErr   string
		wantLine  int // 0: not a *PositionError
		wantCol   int
		wantField string
	}{
		{
			name:     "syntax error",
			in:       "{\n  \"name\": x\n}",
			wantErr:  "line 2, column 11: invalid character 'x' looking for beginning of value",
			wantLine: 2, wantCol: 11,
		},
		{
			name:     "trailing comma",
			in:       "{\n  \"name\": \"a\",\n}",
			wantErr:  "line 3, column 1: invalid character '}' looking for beginning of object key string",
			wantLine: 3, wantCol: 1,
		},
		{
			name:     "syntax error after comment keeps column",
			in:       "/* c */ {\"name\": \"a\" \"b\"}",
			wantErr:  "line 1, column 22: invalid character '\"' after object key:value pair",
			wantLine: 1, wantCol: 22,
		},
		{
			name:     "syntax error after env expansion keeps column",
			in:       `{"rpc_url": "${CONFUTIL_TEST_UNSET:-a-long-default-value}", x}`,
			wantErr:  "line 1, column 61: invalid character 'x' looking for beginning of object key string",
			wantLine: 1, wantCol: 61,
		},
		{
			name:     "type error",
			in:       "{\n  \"name\": 12\n}",
			wantErr:  `line 2, column 11: field "name": cannot unmarshal number into string`,
			wantLine: 2, wantCol: 11, wantField: "name",
		},
		{
			name:     "nested type error with index",
			in:       "{\"pools\": [\n  {\"url\": \"a\"},\n  {\"weight\": \"heavy\"}\n]}",
			wantErr:  `line 3, column 14: field "pools[1].weight": cannot unmarshal string into int`,
			wantLine: 3, wantCol: 14, wantField: "pools[1].weight",
		},
		{
			name:     "object where string expected",
			in:       `{"admin": {"listen": {"a": 1}}}`,
			wantErr:  `line 1, column 22: field "admin.listen": cannot unmarshal object into string`,
			wantLine: 1, wantCol: 22, wantField: "admin.listen",
		},
		{
			name:     "top-level type error",
			in:       `[1, 2]`,
			wantErr:  "line 1, column 1: cannot unmarshal array into confutil_test.testConfig",
			wantLine: 1, wantCol: 1,
		},
		{
			name:     "unknown field",
			in:       "{\n  \"name\": \"a\",\n  \"nmae\": \"b\"\n}",
			wantErr:  `line 3, column 3: unknown field "nmae"`,
			wantLine: 3, wantCol: 3, wantField: "nmae",
		},
		{
			name: "unknown nested field after a known one of the same name",
			in: `{"pools": [{"url": "a"}],
 "admin": {"listen": "x", "url": "b"}}`,
			wantErr:  `line 2, column 27: unknown field "admin.url"`,
			wantLine: 2, wantCol: 27, wantField: "admin.url",
		},
		{
			name:     "bad duration",
			in:       "{\n\"timeout\": 30\n}",
			wantErr:  `line 2, column 12: field "timeout": duration must be a string such as "30s" or "100ms", not number 30`,
			wantLine: 2, wantCol: 12, wantField: "timeout",
		},
		{
			name:     "negative duration",
			in:       `{"timeout": "-5s"}`,
			wantErr:  `line 1, column 13: field "timeout": invalid duration "-5s": must not be negative`,
			wantLine: 1, wantCol: 13, wantField: "timeout",
		},
		{
			name:     "trailing data",
			in:       "{}\n{}",
			wantErr:  "line 2, column 1: unexpected data after the top-level JSON value",
			wantLine: 2, wantCol: 1,
		},
		{
			name:     "stray closing brace",
			in:       `{"name": "a"}}`,
			wantErr:  "line 1, column 14: unexpected data after the top-level JSON value",
			wantLine: 1, wantCol: 14,
		},
		{
			name:     "unterminated block comment",
			in:       "{}\n  /* never closed",
			wantErr:  "line 2, column 3: unterminated block comment",
			wantLine: 2, wantCol: 3,
		},
		{
			name:     "unterminated object",
			in:       "{\"name\": \"a\"\n",
			wantErr:  "line 2, column 1: unexpected end of input: unterminated string, object or array",
			wantLine: 2, wantCol: 1,
		},
		{
			name:     "unset variable",
			in:       `{"rpc_url": "http://${CONFUTIL_TEST_UNSET}"}`,
			wantErr:  "line 1, column 21: environment variable CONFUTIL_TEST_UNSET is not set",
			wantLine: 1, wantCol: 21,
		},
		{name: "empty", in: "  // only a comment\n", wantErr: "no JSON value: the config is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var cfg testConfig
			err := confutil.Decode([]byte(tc.in), &cfg)
			require.Error(t, err)
			require.Equal(t, tc.wantErr, err.Error())

			var pe *confutil.PositionError
			if tc.wantLine == 0 {
				require.False(t, errors.As(err, &pe), "unexpected *PositionError")
				return
			}
			require.ErrorAs(t, err, &pe)
			require.Equal(t, tc.wantLine, pe.Line)
			require.Equal(t, tc.wantCol, pe.Column)
			require.Equal(t, tc.wantField, pe.Field)
		})
	}
}

func TestDecodeErrorUnwrapsJSONErrors(t *testing.T) {
	var cfg testConfig
	err := confutil.Decode([]byte(`{"name": true}`), &cfg)
	var typeErr *json.UnmarshalTypeError
	require.ErrorAs(t, err, &typeErr)
	require.Equal(t, "name", typeErr.Field)

	err = confutil.Decode([]byte(`{"name" "x"}`), &cfg)
	var syntaxErr *json.SyntaxError
	require.ErrorAs(t, err, &syntaxErr)
}

func TestDecodeRejectsNonPointer(t *testing.T) {
	var cfg testConfig
	err := confutil.Decode([]byte(`{}`), cfg)
	var invalid *json.InvalidUnmarshalError
	require.ErrorAs(t, err, &invalid)
}

// embedded exercises field lookup through embedded structs and tags.
type embeddedBase struct {
	Level string `json:"level"`
}

type embeddedConfig struct {
	embeddedBase
	Skip    string `json:"-"`
	Renamed string `json:"other,omitempty"`
	Plain   int
}

func TestDecodeUnknownFieldWithEmbedding(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{name: "promoted field is known", in: `{"level": "x", "other": "y", "Plain": 1, "plain": 2}`},
		{name: "dash field is unknown", in: `{"level": "x", "Skip": "y"}`, wantErr: `line 1, column 16: unknown field "Skip"`},
		{name: "go name of renamed field is unknown", in: `{"Renamed": "y"}`, wantErr: `line 1, column 2: unknown field "Renamed"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var cfg embeddedConfig
			err := confutil.Decode([]byte(tc.in), &cfg)
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tc.wantErr)
		})
	}
}
