package hashrate

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hashgate/hashgate/pkg/testutil"
)

func TestSI(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0.00 H/s"},
		{999, "999.00 H/s"},
		{1000, "1.00 kH/s"},
		{1.5e12, "1.50 TH/s"},
		{2.5e18, "2.50 EH/s"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) { require.Equal(t, tc.want, SI(tc.in)) })
	}
	require.Equal(t, float64(1<<32), Rate(60, 60), "difficulty 60 in a minute is 2^32 H/s")
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no user", []string{}, "--user is required"},
		{"bad minutes", []string{"--user", "u", "--minutes", "0"}, "--minutes"},
		{"bad coin", []string{"--user", "u", "--coin", "a:b"}, "--coin"},
		{"bad until", []string{"--user", "u", "--until", "yesterday"}, "--until"},
		{"extra", []string{"--user", "u", "x"}, "unexpected argument"},
		{"unknown flag", []string{"--usr", "u"}, "flag provided but not defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			require.Equal(t, 2, Main(tc.args, &out, &errOut))
			require.Contains(t, errOut.String(), tc.want)
			require.Empty(t, out.String())
		})
	}
	var out, errOut bytes.Buffer
	require.Equal(t, 1, Main([]string{"-c", "/nonexistent.json", "--user", "u"}, &out, &errOut))
	require.Contains(t, errOut.String(), "nonexistent")
}

// TestReadFromRedis writes the documented hashes by hand, as a foreign
// writer would, and checks the command's figures.
func TestReadFromRedis(t *testing.T) {
	r := testutil.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr(), Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	until := time.Date(2024, 5, 1, 12, 3, 0, 0, time.UTC)
	m := until.Unix()
	f := func(back int64) string { return strconv.FormatInt(m-60*back, 10) }
	require.NoError(t, rdb.HSet(ctx, "btc:s:alice", f(0), "10", f(2), "30").Err())
	require.NoError(t, rdb.HSet(ctx, "btc:p:alice", f(0), "600", f(2), "1200.5").Err())
	require.NoError(t, rdb.HSet(ctx, "btc:s:alice:reject", f(2), "3").Err())
	require.NoError(t, rdb.HSet(ctx, "btc:s:alice:rig1", f(0), "4").Err())
	require.NoError(t, rdb.HSet(ctx, "btc:p:alice:rig1", f(0), "240").Err())

	rep, err := Read(ctx, rdb, Query{Coin: "btc", User: "alice", Minutes: 4, Until: until.Add(30 * time.Second)})
	require.NoError(t, err)
	require.Equal(t, m-180, rep.From)
	require.Equal(t, m, rep.Until)
	require.Len(t, rep.Minutes, 4)
	require.Equal(t, Minute{Minute: m - 120, Time: "2024-05-01T12:01:00Z", Shares: 30, Rejects: 3, Difficulty: 1200.5,
		Hashrate: 1200.5 * (1 << 32) / 60}, rep.Minutes[1])
	require.Equal(t, uint64(0), rep.Minutes[0].Shares)
	require.Equal(t, 10.0, rep.Average.Shares)
	require.Equal(t, 0.75, rep.Average.Rejects)
	require.Equal(t, 1800.5/4, rep.Average.Difficulty)
	require.Equal(t, 1800.5*(1<<32)/240, rep.Average.Hashrate)

	// The command end to end, with a config file that has only what it needs.
	cfgPath := filepath.Join(t.TempDir(), "mw.json")
	require.NoError(t, os.WriteFile(cfgPath, []byte(`{"redis": {"addr": "`+r.Addr()+`"}}`), 0o644))
	var out, errOut bytes.Buffer
	code := Main([]string{"-c", cfgPath, "--user", "alice", "--worker", "rig1", "--minutes", "2",
		"--until", until.Format(time.RFC3339), "--json"}, &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	var got Report
	require.NoError(t, json.Unmarshal(out.Bytes(), &got))
	require.Equal(t, "rig1", got.Worker)
	require.Equal(t, []uint64{0, 4}, []uint64{got.Minutes[0].Shares, got.Minutes[1].Shares})
	require.Equal(t, 240.0*(1<<32)/60, got.Minutes[1].Hashrate)
	require.Equal(t, 2.0, got.Average.Shares)

	out.Reset()
	code = Main([]string{"-c", cfgPath, "--user", "alice", "--minutes", "4", "--until", strconv.FormatInt(m, 10)}, &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	table := out.String()
	require.Contains(t, table, "2024-05-01 12:01")
	require.Contains(t, table, SI(1200.5*(1<<32)/60))
	lines := strings.Split(strings.TrimSpace(table), "\n")
	require.Len(t, lines, 1+1+4+1, "title, header, 4 minutes, average")
	require.Contains(t, lines[len(lines)-1], "average")
	require.Contains(t, lines[len(lines)-1], SI(1800.5*(1<<32)/240))
	t.Logf("\n%s", table)
}
