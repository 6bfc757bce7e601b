package engine

import (
	"fmt"
	"strconv"
)

func parseBits(s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("bits %q: %w", s, err)
	}
	return uint32(v), nil
}
