//go:build race

package work

// raceEnabled: the race detector's instrumentation allocates where a
// normal build does not (crypto/sha256 AppendBinary), so allocation guards
// only hold without it.
const raceEnabled = true
