package testutil

import (
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"
)

// NATS harness defaults.
const (
	defaultNATSMaxPayload = 8 << 20 // 8 MiB: a full block's hex plus envelope
	natsReadyTimeout      = 10 * time.Second
	natsStartTries        = 3
	natsJSMaxMemory       = 256 << 20
	natsJSMaxStore        = 1 << 30
)

// NATSOptions configures StartNATS and StartNATSOnPort. The zero value is a
// plain core-NATS server without authentication.
type NATSOptions struct {
	// JetStream enables JetStream with its store under StoreDir.
	JetStream bool
	// User and Pass, when User is set, require user/password authentication
	// (pass them with nats.UserInfo; the returned URL carries no
	// credentials).
	User, Pass string
	// MaxPayload is the largest message the server accepts; zero means 8 MiB.
	MaxPayload int32
	// StoreDir is the JetStream store directory. Empty means a fresh
	// directory under t.TempDir(). Pass the same directory to a server
	// restarted with StartNATSOnPort to keep streams across the restart.
	StoreDir string
}

// StartNATS runs an embedded nats-server on 127.0.0.1 at a port chosen by
// FreePort, waits up to 10 s until it accepts connections, and registers a
// t.Cleanup that shuts it down. It returns the client URL
// ("nats://127.0.0.1:port") and the server; NATSPort recovers the port for a
// restart with StartNATSOnPort.
func StartNATS(t testing.TB, opts NATSOptions) (url string, srv *server.Server) {
	t.Helper()
	var lastErr string
	for range natsStartTries {
		url, srv, lastErr = startNATS(t, FreePort(t), opts)
		if srv != nil {
			return url, srv
		}
	}
	t.Fatalf("start nats-server: %s", lastErr)
	return "", nil
}

// StartNATSOnPort is StartNATS on a given port, typically the port of a
// server the test shut down to simulate a restart. It fails the test if the
// port can't be bound.
func StartNATSOnPort(t testing.TB, port int, opts NATSOptions) (url string, srv *server.Server) {
	t.Helper()
	url, srv, errMsg := startNATS(t, port, opts)
	if srv == nil {
		t.Fatalf("start nats-server on port %d: %s", port, errMsg)
	}
	return url, srv
}

// NATSPort returns the TCP port srv listens on for clients.
func NATSPort(t testing.TB, srv *server.Server) int {
	t.Helper()
	addr, ok := srv.Addr().(*net.TCPAddr)
	require.True(t, ok, "nats-server has no TCP listener")
	return addr.Port
}

// startNATS makes one attempt; on failure it returns a nil server and the
// reason.
func startNATS(t testing.TB, port int, opts NATSOptions) (string, *server.Server, string) {
	t.Helper()
	maxPayload := opts.MaxPayload
	if maxPayload <= 0 {
		maxPayload = defaultNATSMaxPayload
	}
	sopts := &server.Options{
		ServerName: "hashgate-test-" + strconv.Itoa(port),
		Host:       "127.0.0.1",
		Port:       port,
		NoLog:      true,
		NoSigs:     true,
		MaxPayload: maxPayload,
		Username:   opts.User,
		Password:   opts.Pass,
	}
	if pending := 2 * int64(maxPayload); pending > server.MAX_PENDING_SIZE {
		sopts.MaxPending = pending // the server requires MaxPending >= MaxPayload
	}
	if opts.JetStream {
		dir := opts.StoreDir
		if dir == "" {
			dir = filepath.Join(t.TempDir(), "jetstream")
		}
		sopts.JetStream = true
		sopts.StoreDir = dir
		sopts.JetStreamMaxMemory = natsJSMaxMemory
		sopts.JetStreamMaxStore = natsJSMaxStore
	}

	// Fail fast on a taken port; ReadyForConnections would wait 10 s.
	if !canListen(port) {
		return "", nil, "127.0.0.1:" + strconv.Itoa(port) + " is in use"
	}
	srv, err := server.NewServer(sopts)
	if err != nil {
		return "", nil, err.Error()
	}
	srv.Start()
	if !srv.ReadyForConnections(natsReadyTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return "", nil, "not ready for connections within " + natsReadyTimeout.String()
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return "nats://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), srv, ""
}
