package bus

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/hashgate/hashgate/pkg/confutil"
	"github.com/hashgate/hashgate/pkg/testutil"
)

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	var p confutil.Problems
	ok.Validate(&p, "nats")
	require.NoError(t, p.Err())

	t.Setenv("HG_TEST_NATS_PASS", "")
	bad := Config{URL: "not a url", Prefix: "a.b", User: "", PassEnv: "HG_TEST_NATS_PASS", Pass: "x"}
	var q confutil.Problems
	bad.Validate(&q, "nats")
	err := q.Err()
	for _, want := range []string{"nats.url", "nats.prefix", "nats.pass", "nats.user", "nats.connect_timeout"} {
		require.ErrorContains(t, err, want)
	}

	unset := DefaultConfig()
	unset.User, unset.PassEnv = "hashgate", "HG_TEST_NATS_PASS"
	var r confutil.Problems
	unset.Validate(&r, "nats")
	require.ErrorContains(t, r.Err(), "HG_TEST_NATS_PASS", "an unset password variable is reported by -t")
}

// TestConnectQuietClose: closing our own connection logs no "disconnected"
// warning (the callbacks run on NATS's goroutine, possibly after the
// daemon or test that owned the logger is gone), while a server going away
// does warn.
func TestConnectQuietClose(t *testing.T) {
	url, srv := testutil.StartNATS(t, testutil.NATSOptions{})
	core, logs := observer.New(zap.DebugLevel)
	c := DefaultConfig()
	c.URL = url

	closed := make(chan struct{})
	nc, err := Connect(c, "quiet-close", zap.New(core), nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	require.NoError(t, err)
	nc.Close()
	// The closed callback is queued after the disconnect callback.
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("closed callback did not run")
	}
	require.Zero(t, logs.FilterMessage("nats disconnected").Len(), "our own Close is not a disconnection to warn about")

	nc, err = Connect(c, "server-gone", zap.New(core))
	require.NoError(t, err)
	defer nc.Close()
	srv.Shutdown()
	testutil.Eventually(t, 5*time.Second, func() bool {
		return logs.FilterMessage("nats disconnected").Len() == 1
	}, "a lost server is warned about")
}
