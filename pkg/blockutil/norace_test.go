//go:build !race

package blockutil

const raceEnabled = false
