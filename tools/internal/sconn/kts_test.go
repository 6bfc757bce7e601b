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
	sent := time.Now().UnixNano()
	_, err := srv.Write([]byte("x\n"))
	require.NoError(t, err)
	time.Sleep(50 * time.Millisecond)
	_, rx, err := c.ReadLine()
	require.NoError(t, err)
	require.Less(t, rx-sent, int64(25*time.Millisecond), "timestamp %v after the write", time.Duration(rx-sent))
}
