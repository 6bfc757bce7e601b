//go:build race

package agentwire

// raceEnabled shortens the heaviest simulations under the race detector.
const raceEnabled = true
