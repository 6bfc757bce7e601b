package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StatsStream returns the JetStream stream name holding <prefix>.*.stats and
// <prefix>.*.event for a prefix.
func StatsStream(prefix string) string {
	return strings.ToUpper(prefix) + "_STATS"
}

// DedupWindow is how long JetStream remembers message ids. Consumers keep
// their own longer record (metawriter stores batch ids in Redis).
const DedupWindow = 2 * time.Hour

// EnsureStatsStream creates (or updates) the file-backed stream that carries
// statistics and events, with a 7-day retention so an outage of the
// consumer loses nothing. Gateways and metawriters both call it; it is
// idempotent.
func EnsureStatsStream(ctx context.Context, js jetstream.JetStream, prefix string) (jetstream.Stream, error) {
	cfg := jetstream.StreamConfig{
		Name:       StatsStream(prefix),
		Subjects:   []string{prefix + ".*." + TopicStats, prefix + ".*." + TopicEvent},
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		MaxAge:     7 * 24 * time.Hour,
		Duplicates: DedupWindow,
	}
	s, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil && errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		s, err = js.Stream(ctx, cfg.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
	}
	return s, nil
}
