package bus

import (
	"context"
	"encoding/hex"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/hashgate/hashgate/pkg/testutil"
)

func sampleStats() *StatsBatch {
	return &StatsBatch{Gateway: "gw-1", Boot: 1713571000000000000, Minute: 1713571740, Part: 0, Parts: 2,
		Workers: []WorkerStats{
			{User: "alice", Worker: "rig1", Accepted: 12, DiffSum: 12288.5, GoalSum: 1.5e-9, Rejected: 1},
			{User: "bob", Worker: "default", Accepted: 0, Rejected: 3},
		},
		Monitor: []MonitorStat{{Key: "pow", Value: 12288.5}, {Key: "connections", Value: 2}, {Key: "reject_duplicate", Value: 1}}}
}

func sampleEvent() *Event {
	return &Event{Gateway: "gw-1", Boot: 1713571700000000000, Seq: 42, Time: 1713571745, Kind: EventConnected,
		User: "alice", Worker: "rig1", Peer: "10.0.0.7", Coin: "btc"}
}

func TestStatsAndEventGolden(t *testing.T) {
	for name, m := range map[string]message{"stats": sampleStats(), "event": sampleEvent()} {
		path := filepath.Join("testdata", name+".hex")
		enc := m.Marshal()
		if *update {
			require.NoError(t, os.WriteFile(path, []byte(hex.EncodeToString(enc)+"\n"), 0o644))
		}
		want, err := os.ReadFile(path)
		require.NoError(t, err)
		require.Equal(t, strings.TrimSpace(string(want)), hex.EncodeToString(enc), name)
		got := newLikeStats(m)
		require.NoError(t, got.Unmarshal(enc))
		require.Equal(t, m, got)
		for i := 0; i < len(enc); i++ {
			require.Error(t, newLikeStats(m).Unmarshal(enc[:i]), "%s cut at %d", name, i)
		}
	}
	require.Equal(t, "gw-1.1713571000000000000.1713571740.0", sampleStats().ID())
	require.Equal(t, "gw-1.1713571700000000000.42", sampleEvent().ID())
}

func newLikeStats(m message) message {
	switch m.(type) {
	case *StatsBatch:
		return &StatsBatch{}
	case *Event:
		return &Event{}
	}
	return newLike(m)
}

func TestStatsRejectsPoison(t *testing.T) {
	b := sampleStats()
	b.Workers[0].DiffSum = math.Inf(1)
	require.Error(t, (&StatsBatch{}).Unmarshal(b.Marshal()))
	b = sampleStats()
	b.Minute = 1713571741
	require.ErrorContains(t, (&StatsBatch{}).Unmarshal(b.Marshal()), "malformed")
	b = sampleStats()
	b.Part = 2
	require.Error(t, (&StatsBatch{}).Unmarshal(b.Marshal()))
}

// TestStatsStreamDedup: the stream de-duplicates a resent batch by its id.
func TestStatsStreamDedup(t *testing.T) {
	url, _ := testutil.StartNATS(t, testutil.NATSOptions{JetStream: true})
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := EnsureStatsStream(ctx, js, "hashgate")
	require.NoError(t, err)
	_, err = EnsureStatsStream(ctx, js, "hashgate")
	require.NoError(t, err, "idempotent")
	b := sampleStats()
	for i := 0; i < 3; i++ {
		ack, err := js.Publish(ctx, Subject("hashgate", "btc", TopicStats), b.Marshal(), jetstream.WithMsgID(b.ID()))
		require.NoError(t, err)
		require.Equal(t, i > 0, ack.Duplicate)
	}
	info, err := s.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(1), info.State.Msgs)
}

func FuzzStatsBatch(f *testing.F) { fuzzStats(f, sampleStats()) }
func FuzzEvent(f *testing.F)      { fuzzStats(f, sampleEvent()) }

func fuzzStats(f *testing.F, m message) {
	f.Add(m.Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		a := newLikeStats(m)
		if a.Unmarshal(b) != nil {
			return
		}
		c := newLikeStats(m)
		require.NoError(t, c.Unmarshal(a.Marshal()))
		require.Equal(t, a, c)
	})
}
