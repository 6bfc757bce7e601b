package testutil

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// pollInterval is how often Eventually re-evaluates its condition.
const pollInterval = 10 * time.Millisecond

// Eventually calls cond immediately and then every 10 ms until it returns
// true, and fails the test (FailNow) if that has not happened within
// timeout. msgAndArgs are formatted as in testify: a format string followed
// by its arguments. It must be called from the test's goroutine; cond runs
// on that goroutine too.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msgAndArgs ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	for {
		if cond() {
			return
		}
		if !time.Now().Before(deadline) {
			require.Fail(t, "condition not met within "+timeout.String(), msgAndArgs...)
			return
		}
		<-ticker.C
	}
}
