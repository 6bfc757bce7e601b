package testutil

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRedisRestartKeepsAcknowledgedWrites checks the harness contract the
// metawriter tests rely on: Stop, Kill and Start keep the port and every
// write Redis acknowledged.
func TestRedisRestartKeepsAcknowledgedWrites(t *testing.T) {
	r := StartRedisWith(t, RedisOptions{Password: "pw"})
	require.NoError(t, r.Ping())
	port := r.Port

	v, err := r.Do("HINCRBY", "h", "60", "5")
	require.NoError(t, err)
	require.Equal(t, int64(5), v)

	r.Stop(t)
	require.False(t, r.Running())
	require.Error(t, r.Ping(), "a stopped server does not answer")
	r.Start(t)
	require.Equal(t, port, r.Port)
	v, err = r.Do("HINCRBY", "h", "60", "1")
	require.NoError(t, err)
	require.Equal(t, int64(6), v, "the graceful stop kept the write")

	r.Kill(t)
	require.False(t, r.Running())
	r.Start(t)
	v, err = r.Do("HGET", "h", "60")
	require.NoError(t, err)
	require.Equal(t, "6", v, "SIGKILL kept the acknowledged write (appendfsync always)")

	_, err = r.Do("NOSUCHCOMMAND")
	require.ErrorIs(t, err, errRedisReply)
	v, err = r.Do("HGETALL", "h")
	require.NoError(t, err)
	require.Equal(t, []any{"60", "6"}, v)
	_, err = r.Do("GET", "missing")
	require.NoError(t, err)
}

// TestRedisNeedsPassword checks that the password is really required.
func TestRedisNeedsPassword(t *testing.T) {
	r := StartRedisWith(t, RedisOptions{Password: "secret"})
	anon := &Redis{Port: r.Port}
	_, err := anon.Do("GET", "x")
	require.ErrorContains(t, err, "NOAUTH")
}
