//go:build linux

package sconn

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The kernel's time is when the bytes arrived, not when they were read.
func TestKernelTimestampIsArrival(t *testing.T) {
	c, srv := pair(t, true, 256)
	// Warm up: Linux turns receive timestamping on lazily (deferred work);
	// one exchange first makes sure the measured line gets a stamp.
	_, err := srv.Write([]byte("warm\n"))
	require.NoError(t, err)
	_, _, err = c.ReadLine()
	require.NoError(t, err)
	time.Sleep(50 * time.Millisecond)
	sent := time.Now().UnixNano()
	_, err = srv.Write([]byte("x\n"))
	require.NoError(t, err)
	time.Sleep(200 * time.Millisecond)
	beforeRead := time.Now().UnixNano()
	_, rx, err := c.ReadLine()
	require.NoError(t, err)
	// Ordering, not a wall-clock bound (a loaded machine may delay anything):
	// the stamp falls between the write and the moment we started reading.
	require.GreaterOrEqual(t, rx, sent, "stamp before the write?")
	require.Less(t, rx, beforeRead, "timestamp %v after the write is the read time, not the arrival", time.Duration(rx-sent))
}
