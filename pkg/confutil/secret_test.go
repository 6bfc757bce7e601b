package confutil_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hashgate/hashgate/pkg/confutil"
	"github.com/stretchr/testify/require"
)

func TestResolveSecret(t *testing.T) {
	const secret = "s3cr3t-value"
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	withNewline := write("nl", secret+"\n")
	withCRLF := write("crlf", secret+"\r\n")
	plain := write("plain", secret)
	empty := write("empty", "\n")
	t.Setenv("CONFUTIL_TEST_SECRET", secret)
	t.Setenv("CONFUTIL_TEST_EMPTY", "")

	tests := []struct {
		name             string
		value, env, file string
		want             string
		wantErr          string
	}{
		{name: "none given", want: ""},
		{name: "value", value: secret, want: secret},
		{name: "env", env: "CONFUTIL_TEST_SECRET", want: secret},
		{name: "file with newline", file: withNewline, want: secret},
		{name: "file with crlf", file: withCRLF, want: secret},
		{name: "file without newline", file: plain, want: secret},
		{name: "value and env", value: secret, env: "CONFUTIL_TEST_SECRET", wantErr: "secret given more than once"},
		{name: "env and file", env: "CONFUTIL_TEST_SECRET", file: plain, wantErr: "secret given more than once"},
		{name: "all three", value: secret, env: "CONFUTIL_TEST_SECRET", file: plain, wantErr: "secret given more than once"},
		{name: "env unset", env: "CONFUTIL_TEST_UNSET_SECRET", wantErr: "secret environment variable CONFUTIL_TEST_UNSET_SECRET is unset or empty"},
		{name: "env empty", env: "CONFUTIL_TEST_EMPTY", wantErr: "CONFUTIL_TEST_EMPTY is unset or empty"},
		{name: "file missing", file: filepath.Join(dir, "nope"), wantErr: "read secret: open " + filepath.Join(dir, "nope")},
		{name: "file empty", file: empty, wantErr: "secret file " + empty + " is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := confutil.ResolveSecret(tc.value, tc.env, tc.file)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				require.NotContains(t, err.Error(), secret, "error leaks the secret")
				require.Empty(t, got)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}
