package bus

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hashgate/hashgate/pkg/confutil"
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
