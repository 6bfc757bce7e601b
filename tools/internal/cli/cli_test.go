package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRunUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want error
		out  string
	}{
		{"no command", nil, ErrUsage, "Usage:"},
		{"unknown command", []string{"dig"}, ErrUsage, `unknown command "dig"`},
		{"mine without url", []string{"mine", "-user", "a.b"}, ErrUsage, "need -url"},
		{"load bad url", []string{"load", "-url", "nohost"}, ErrUsage, "want stratum+tcp://host:port"},
		{"load too many per process", []string{"load", "-url", "stratum+tcp://127.0.0.1:1", "-conns", "40000"}, ErrUsage, "raise -procs"},
		{"load bad report", []string{"load", "-url", "stratum+tcp://127.0.0.1:1", "-report", "xml"}, ErrUsage, "text or json"},
		{"load bad src", []string{"load", "-url", "stratum+tcp://127.0.0.1:1", "-src", "127.0.0.9-127.0.0.1"}, ErrUsage, "-src"},
		{"stray args", []string{"mine", "extra"}, ErrUsage, "unexpected arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := Run(tc.args, &stdout, &stderr)
			require.ErrorIs(t, err, tc.want)
			require.Contains(t, stdout.String()+stderr.String(), tc.out)
		})
	}
	var stdout bytes.Buffer
	require.NoError(t, Run([]string{"version"}, &stdout, &stdout))
	require.Contains(t, stdout.String(), "hgminer")
}

func TestParsePID(t *testing.T) {
	pid, err := parsePID("")
	require.NoError(t, err)
	require.Zero(t, pid)
	pid, err = parsePID("4242")
	require.NoError(t, err)
	require.Equal(t, 4242, pid)
	f := filepath.Join(t.TempDir(), "gateway.pid")
	require.NoError(t, os.WriteFile(f, []byte("777\n"), 0o600))
	pid, err = parsePID("@" + f)
	require.NoError(t, err)
	require.Equal(t, 777, pid)
	for _, bad := range []string{"x", "-3", "@/nonexistent/file"} {
		_, err := parsePID(bad)
		require.Error(t, err, bad)
	}
}
