package confutil

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// TestStripCommentsGolden compares stripComments on every
// testdata/strip/*.jsonc file with the matching .golden file. Run with
// -update to rewrite the golden files after reviewing a change.
func TestStripCommentsGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "strip", "*.jsonc"))
	require.NoError(t, err)
	require.NotEmpty(t, inputs)

	for _, in := range inputs {
		t.Run(filepath.Base(in), func(t *testing.T) {
			data, err := os.ReadFile(in)
			require.NoError(t, err)

			got, _, ok := stripComments(data)
			require.True(t, ok)

			golden := strings.TrimSuffix(in, ".jsonc") + ".golden"
			if *update {
				require.NoError(t, os.WriteFile(golden, got, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			require.Equal(t, string(want), string(got))

			// Offsets must survive: same length, line breaks in place.
			require.Len(t, got, len(data))
			for i := range data {
				if data[i] == '\n' || data[i] == '\r' {
					require.Equal(t, data[i], got[i], "line break at offset %d", i)
				}
			}
		})
	}
}

func TestStripComments(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantBad int // offset of an unterminated block comment, -1 if none
	}{
		{name: "empty", in: "", want: "", wantBad: -1},
		{name: "line comment", in: "1 // x\n2", want: "1     \n2", wantBad: -1},
		{name: "line comment at EOF", in: "1 //x", want: "1    ", wantBad: -1},
		{name: "block comment keeps newlines", in: "1 /* a\nb */ 2", want: "1     \n     2", wantBad: -1},
		{name: "comment markers in string", in: `"http://x//y /* z */"`, want: `"http://x//y /* z */"`, wantBad: -1},
		{name: "escaped quote in string", in: `"a\"//b" // c`, want: `"a\"//b"     `, wantBad: -1},
		{name: "escaped backslash ends string", in: `"a\\" // c`, want: `"a\\"     `, wantBad: -1},
		{name: "lone slash kept", in: `1 / 2`, want: `1 / 2`, wantBad: -1},
		{name: "block comment star run", in: `/***/1`, want: `     1`, wantBad: -1},
		{name: "unterminated block comment", in: "1 /* x", wantBad: 2},
		{name: "unterminated block comment with star", in: "1 /*/", wantBad: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, bad, ok := stripComments([]byte(tc.in))
			if tc.wantBad >= 0 {
				require.False(t, ok)
				require.Equal(t, tc.wantBad, bad)
				return
			}
			require.True(t, ok)
			require.Equal(t, tc.want, string(got))
		})
	}
}

func TestStripCommentsDoesNotModifyInput(t *testing.T) {
	in := []byte("{} // comment")
	orig := bytes.Clone(in)
	_, _, ok := stripComments(in)
	require.True(t, ok)
	require.Equal(t, orig, in)
}

// FuzzStripComments checks the invariants Decode relies on for positions:
// the output has the input's length and line breaks, and text without a
// slash is returned unchanged.
func FuzzStripComments(f *testing.F) {
	for _, s := range []string{`{"a": "//"} // c`, "/* x\n */ 1", `"\"/*"`, `/*`, `"\`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, _, ok := stripComments(data)
		if !ok {
			return
		}
		require.Len(t, got, len(data))
		for i := range data {
			if data[i] == '\n' || data[i] == '\r' {
				require.Equal(t, data[i], got[i])
			}
		}
		if !bytes.ContainsRune(data, '/') {
			require.Equal(t, data, got)
		}
	})
}
