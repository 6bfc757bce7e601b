package sconn

import (
	"context"
	"encoding/json"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// pair returns a client Conn and the server side of a loopback connection.
func pair(t *testing.T, kernelTS bool, bufSize int) (*Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	c, err := Dial(context.Background(), &net.Dialer{}, ln.Addr().String(), kernelTS, bufSize)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	srv := <-accepted
	t.Cleanup(func() { srv.Close() })
	return c, srv
}

func TestReadLineTimestamps(t *testing.T) {
	for _, kts := range []bool{false, true} {
		t.Run(map[bool]string{false: "user", true: "kernel"}[kts], func(t *testing.T) {
			c, srv := pair(t, kts, 256)
			if kts && runtime.GOOS == "linux" {
				require.True(t, c.KernelTimestamps())
			}
			before := time.Now().UnixNano()
			_, err := srv.Write([]byte("{\"a\":1}\n\n{\"b\":2}\r\n{\"c\""))
			require.NoError(t, err)
			line, rx, err := c.ReadLine()
			require.NoError(t, err)
			require.Equal(t, `{"a":1}`, string(line))
			require.GreaterOrEqual(t, rx, before)
			require.LessOrEqual(t, rx, time.Now().UnixNano())
			line, rx2, err := c.ReadLine()
			require.NoError(t, err)
			require.Equal(t, `{"b":2}`, string(line))
			require.Equal(t, rx, rx2, "lines of one read share its timestamp")

			// A partial line survives a deadline.
			require.NoError(t, c.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
			_, _, err = c.ReadLine()
			require.True(t, IsTimeout(err), "%v", err)
			require.NoError(t, c.SetReadDeadline(time.Time{}))
			time.Sleep(5 * time.Millisecond)
			mid := time.Now().UnixNano()
			_, err = srv.Write([]byte(":3}\n"))
			require.NoError(t, err)
			line, rx3, err := c.ReadLine()
			require.NoError(t, err)
			require.Equal(t, `{"c":3}`, string(line))
			require.GreaterOrEqual(t, rx3, mid)
		})
	}
}

func TestReadLineGrowsAndLimits(t *testing.T) {
	c, srv := pair(t, true, 256)
	long := strings.Repeat("x", 5000)
	go srv.Write([]byte(long + "\n"))
	line, _, err := c.ReadLine()
	require.NoError(t, err)
	require.Equal(t, long, string(line))

	go srv.Write([]byte(strings.Repeat("y", MaxLine+10)))
	_, _, err = c.ReadLine()
	require.ErrorIs(t, err, ErrLineTooLong)
}

func TestParseSubscribeResult(t *testing.T) {
	tests := []struct {
		name, raw string
		want      Subscription
		bad       bool
	}{
		{"standard", `[[["mining.set_difficulty","aa"],["mining.notify","01020304"]],"01020304",8]`,
			Subscription{SessionID: "01020304", Extranonce1: []byte{1, 2, 3, 4}, EN2Size: 8}, false},
		{"one pair", `[["mining.notify","ff"],"00ff",4]`,
			Subscription{SessionID: "ff", Extranonce1: []byte{0, 0xff}, EN2Size: 4}, false},
		{"no sid", `[[],"0a",2]`, Subscription{Extranonce1: []byte{0x0a}, EN2Size: 2}, false},
		{"short", `[[],"0a"]`, Subscription{}, true},
		{"bad hex", `[[],"zz",4]`, Subscription{}, true},
		{"bad size", `[[],"00",0]`, Subscription{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSubscribeResult(json.RawMessage(tc.raw))
			if tc.bad {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestParseHelpers(t *testing.T) {
	m, ok := ParseConfigureResult(json.RawMessage(`{"version-rolling":true,"version-rolling.mask":"1fffe000"}`))
	require.True(t, ok)
	require.Equal(t, uint32(0x1fffe000), m)
	_, ok = ParseConfigureResult(json.RawMessage(`{"version-rolling":false}`))
	require.False(t, ok)

	host, port, wait := ParseReconnect(json.RawMessage(`["pool.example",  "3334", 5]`))
	require.Equal(t, "pool.example", host)
	require.Equal(t, 3334, port)
	require.Equal(t, 5*time.Second, wait)

	addr, err := ParseURL("stratum+tcp://127.0.0.1:3333")
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:3333", addr)
	_, err = ParseURL("stratum+tcp://nohost")
	require.Error(t, err)
	require.Equal(t, uint64(7), ParseID(json.RawMessage(" 7")))
	require.Equal(t, uint64(0), ParseID(json.RawMessage("null")))
}
