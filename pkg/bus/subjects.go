package bus

import (
	"fmt"
	"strings"
)

// Topics of the internal bus (see the package documentation).
const (
	TopicJob         = "job"
	TopicJobCurrent  = "job.current"
	TopicBlock       = "block"
	TopicBlockResult = "block.result"
	TopicTip         = "tip"
	TopicStats       = "stats"
	TopicEvent       = "event"
	TopicAlert       = "alert"
)

// Subject returns <prefix>.<coin>.<topic>.
func Subject(prefix, coin, topic string) string {
	return prefix + "." + coin + "." + topic
}

// ValidToken reports whether s can be one token of a NATS subject (a prefix
// or a coin name): non-empty, no dots, wildcards or white space.
func ValidToken(s string) error {
	if s == "" {
		return fmt.Errorf("bus: empty subject token")
	}
	if strings.ContainsAny(s, ".*> \t\r\n") {
		return fmt.Errorf("bus: subject token %q may not contain '.', '*', '>' or white space", s)
	}
	return nil
}
