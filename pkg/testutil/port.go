package testutil

import (
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"
)

// The range FreePort draws from. It stays below the kernel's ephemeral range
// (32768–60999 on this project's machines) so that outgoing connections made
// by any process can't occupy a port a test is about to listen on.
const (
	minTestPort = 20000
	maxTestPort = 32767
)

// usedPorts remembers every port handed out in this process.
var usedPorts = struct {
	sync.Mutex
	m map[int]struct{}
}{m: make(map[int]struct{})}

// FreePort returns a random TCP port in [20000, 32767] that 127.0.0.1 could
// listen on at the moment of the call and that no earlier FreePort call in
// this process returned. Another process may still take it before the
// caller binds it, so harnesses that start external servers retry with a
// new port on "address already in use". It is safe for concurrent use.
func FreePort(t testing.TB) int {
	t.Helper()
	usedPorts.Lock()
	defer usedPorts.Unlock()

	const attempts = 2000
	for range attempts {
		port := minTestPort + rand.IntN(maxTestPort-minTestPort+1)
		if _, taken := usedPorts.m[port]; taken {
			continue
		}
		if !canListen(port) {
			continue
		}
		usedPorts.m[port] = struct{}{}
		return port
	}
	t.Fatalf("testutil: no free TCP port in [%d, %d] after %d attempts", minTestPort, maxTestPort, attempts)
	return 0
}

// canListen reports whether 127.0.0.1:port can be bound right now.
func canListen(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}
