package store

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hashgate/hashgate/metawriter/internal/layout"
	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/testutil"
)

// fixed "now" for the store tests: minutes around it are inside retention.
var now = time.Date(2024, 5, 1, 12, 0, 30, 0, time.UTC)

func newStore(t *testing.T, mod func(*Options)) (*Store, *redis.Client) {
	t.Helper()
	r := testutil.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr(), Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { _ = rdb.Close() })
	o := Options{
		Client: rdb, KeyPrefix: "metawriter", DedupTTL: 8 * 24 * time.Hour, Retention: 30 * 24 * time.Hour,
		EventTTL: 24 * time.Hour, EventMaxLen: 3, Now: func() time.Time { return now },
	}
	if mod != nil {
		mod(&o)
	}
	return New(o), rdb
}

func minute(back int) int64 { return now.Unix()/60*60 - int64(back)*60 }

func hgetall(t *testing.T, rdb *redis.Client, key string) map[string]string {
	t.Helper()
	m, err := rdb.HGetAll(context.Background(), key).Result()
	require.NoError(t, err)
	return m
}

func TestApplyStatsLayout(t *testing.T) {
	s, rdb := newStore(t, nil)
	ctx := context.Background()
	m := minute(1)
	f := strconv.FormatInt(m, 10)
	b := &bus.StatsBatch{Gateway: "gw1", Boot: 7, Minute: m, Part: 0, Parts: 1,
		Workers: []bus.WorkerStats{
			{User: "alice", Worker: "rig1", Accepted: 3, DiffSum: 1.5, GoalSum: 0.25, Rejected: 1},
			{User: "alice", Worker: "rig2", Accepted: 2, DiffSum: 1024, GoalSum: 0.5},
			{User: "bob", Worker: "default", Rejected: 4},
		},
		Monitor: []bus.MonitorStat{{Key: "share", Value: 5}, {Key: "pow", Value: 1025.5}, {Key: "zero", Value: 0}},
	}
	res, err := s.ApplyStats(ctx, "btc", b)
	require.NoError(t, err)
	require.Equal(t, Applied, res)

	require.Equal(t, map[string]string{f: "5"}, hgetall(t, rdb, "btc:s:alice"))
	require.Equal(t, map[string]string{f: "1025.5"}, hgetall(t, rdb, "btc:p:alice"))
	require.Equal(t, map[string]string{f: "0.75"}, hgetall(t, rdb, "btc:g:alice"))
	require.Equal(t, map[string]string{f: "1"}, hgetall(t, rdb, "btc:s:alice:reject"))
	require.Equal(t, map[string]string{f: "3"}, hgetall(t, rdb, "btc:s:alice:rig1"))
	require.Equal(t, map[string]string{f: "1.5"}, hgetall(t, rdb, "btc:p:alice:rig1"))
	require.Equal(t, map[string]string{f: "1"}, hgetall(t, rdb, "btc:s:alice:rig1:reject"))
	require.Equal(t, map[string]string{f: "2"}, hgetall(t, rdb, "btc:s:alice:rig2"))
	require.Equal(t, map[string]string{f: "1024"}, hgetall(t, rdb, "btc:p:alice:rig2"))
	require.Empty(t, hgetall(t, rdb, "btc:s:alice:rig2:reject"), "zero increments are skipped")
	require.Empty(t, hgetall(t, rdb, "btc:g:alice:rig1"), "no goal at worker level")
	require.Empty(t, hgetall(t, rdb, "btc:s:bob"))
	require.Equal(t, map[string]string{f: "4"}, hgetall(t, rdb, "btc:s:bob:reject"))
	require.Equal(t, map[string]string{f: "4"}, hgetall(t, rdb, "btc:s:bob:default:reject"))

	require.Equal(t, map[string]string{f: "5"}, hgetall(t, rdb, "btc:m:share"))
	require.Equal(t, map[string]string{f: "1025.5"}, hgetall(t, rdb, "btc:m:pow"))
	require.Equal(t, map[string]string{f: "5"}, hgetall(t, rdb, "btc:mh:gw1:share"))
	require.Empty(t, hgetall(t, rdb, "btc:m:zero"))

	members := func(k string) []string {
		v, err := rdb.SMembers(ctx, k).Result()
		require.NoError(t, err)
		return v
	}
	require.ElementsMatch(t, []string{"btc:s:alice", "btc:p:alice", "btc:g:alice", "btc:s:alice:reject",
		"btc:s:alice:rig1", "btc:p:alice:rig1", "btc:s:alice:rig1:reject", "btc:s:alice:rig2", "btc:p:alice:rig2",
		"btc:s:bob:reject", "btc:s:bob:default:reject"}, members(layout.MiningKeys))
	require.ElementsMatch(t, []string{"btc:m:share", "btc:m:pow"}, members(layout.MonitorKeys))
	require.Equal(t, []string{"gw1"}, members("btc:mk:share"))

	// Data keys expire retention + 1h after the write; indexes never.
	ttl, err := rdb.TTL(ctx, "btc:s:alice:rig1").Result()
	require.NoError(t, err)
	require.InDelta(t, (30*24*time.Hour + time.Hour).Seconds(), ttl.Seconds(), 5)
	ttl, err = rdb.TTL(ctx, "btc:mk:share").Result()
	require.NoError(t, err)
	require.Greater(t, ttl, 30*24*time.Hour)
	ttl, err = rdb.TTL(ctx, layout.MiningKeys).Result()
	require.NoError(t, err)
	require.Equal(t, time.Duration(-1), ttl)
	ttl, err = rdb.TTL(ctx, s.DoneKey("btc", "stats", b.ID())).Result()
	require.NoError(t, err)
	require.InDelta(t, (8 * 24 * time.Hour).Seconds(), ttl.Seconds(), 5)

	// The same batch again changes nothing; a second part is counted.
	res, err = s.ApplyStats(ctx, "btc", b)
	require.NoError(t, err)
	require.Equal(t, Duplicate, res)
	require.Equal(t, map[string]string{f: "5"}, hgetall(t, rdb, "btc:s:alice"))
	b2 := *b
	b2.Part, b2.Parts, b2.Monitor = 1, 2, nil
	res, err = s.ApplyStats(ctx, "btc", &b2)
	require.NoError(t, err)
	require.Equal(t, Applied, res)
	require.Equal(t, map[string]string{f: "10"}, hgetall(t, rdb, "btc:s:alice"))
	require.Equal(t, map[string]string{f: "5"}, hgetall(t, rdb, "btc:m:share"))

	// The same id on another coin is another batch.
	res, err = s.ApplyStats(ctx, "ltc", b)
	require.NoError(t, err)
	require.Equal(t, Applied, res)
	require.Equal(t, map[string]string{f: "5"}, hgetall(t, rdb, "ltc:s:alice"))
}

// TestAgentBatchesAddUp: batches crediting mineragent share batches add
// into the same per-worker minute as a gateway's, each applied once, with
// the shorter done-key TTL.
func TestAgentBatchesAddUp(t *testing.T) {
	s, rdb := newStore(t, func(o *Options) { o.AgentDedupTTL = 3 * time.Hour })
	ctx := context.Background()
	m := minute(1)
	gw := &bus.StatsBatch{Gateway: "gw1", Boot: 1, Minute: m, Parts: 1,
		Workers: []bus.WorkerStats{{User: "alice", Worker: "rig1", Accepted: 2, DiffSum: 2}}}
	res, err := s.ApplyStats(ctx, "btc", gw)
	require.NoError(t, err)
	require.Equal(t, Applied, res)
	for id := uint64(1); id <= 3; id++ {
		b, err := bus.AgentBatch("farm1", 77, m+5, id)
		require.NoError(t, err)
		b.Workers = []bus.WorkerStats{{User: "alice", Worker: "rig1", Accepted: 1, DiffSum: 1}}
		res, err := s.ApplyStats(ctx, "btc", b)
		require.NoError(t, err)
		require.Equal(t, Applied, res)
		res, err = s.ApplyStats(ctx, "btc", b) // credited again through another gateway
		require.NoError(t, err)
		require.Equal(t, Duplicate, res)
		ttl, err := rdb.TTL(ctx, s.DoneKey("btc", "stats", b.ID())).Result()
		require.NoError(t, err)
		require.InDelta(t, (3 * time.Hour).Seconds(), ttl.Seconds(), 5)
	}
	f := layout.Field(m)
	require.Equal(t, map[string]string{f: "5"}, hgetall(t, rdb, "btc:s:alice:rig1"))
	ttl, err := rdb.TTL(ctx, s.DoneKey("btc", "stats", gw.ID())).Result()
	require.NoError(t, err)
	require.InDelta(t, (8 * 24 * time.Hour).Seconds(), ttl.Seconds(), 5)
}

func TestApplyStatsExpired(t *testing.T) {
	s, rdb := newStore(t, func(o *Options) { o.Retention = 2 * time.Hour })
	res, err := s.ApplyStats(context.Background(), "btc", &bus.StatsBatch{Gateway: "g", Minute: minute(180), Parts: 1,
		Workers: []bus.WorkerStats{{User: "u", Worker: "w", Accepted: 1}}})
	require.NoError(t, err)
	require.Equal(t, Expired, res)
	require.Empty(t, hgetall(t, rdb, "btc:s:u"))
}

// TestConflictWritesNothing: a key of the wrong type is detected before
// the first write, so the batch is not half applied and not marked done.
func TestConflictWritesNothing(t *testing.T) {
	s, rdb := newStore(t, nil)
	ctx := context.Background()
	m := minute(1)
	b := &bus.StatsBatch{Gateway: "g", Minute: m, Parts: 1, Workers: []bus.WorkerStats{
		{User: "u", Worker: "a", Accepted: 1, DiffSum: 2},
		{User: "v", Worker: "b", Accepted: 1, DiffSum: 2},
	}}
	tests := []struct {
		name  string
		setup func()
		want  string
	}{
		{"wrong key type", func() { require.NoError(t, rdb.Set(ctx, "btc:s:v:b", "x", 0).Err()) }, "btc:s:v:b is not a hash"},
		{"field not an integer", func() { require.NoError(t, rdb.HSet(ctx, "btc:s:v", layout.Field(m), "1.5").Err()) }, "not an integer"},
		{"field not a number", func() { require.NoError(t, rdb.HSet(ctx, "btc:p:v", layout.Field(m), "abc").Err()) }, "not a number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, rdb.FlushDB(ctx).Err())
			tc.setup()
			_, err := s.ApplyStats(ctx, "btc", b)
			var ce *ConflictError
			require.ErrorAs(t, err, &ce)
			require.Contains(t, ce.Error(), tc.want)
			require.False(t, IsRedisDown(err))
			require.Empty(t, hgetall(t, rdb, "btc:s:u"), "nothing of the batch was written")
			n, err := rdb.Exists(ctx, s.DoneKey("btc", "stats", b.ID()), layout.MiningKeys).Result()
			require.NoError(t, err)
			require.Zero(t, n)
		})
	}
	// Once the operator removed the key, the batch applies.
	require.NoError(t, rdb.FlushDB(ctx).Err())
	res, err := s.ApplyStats(ctx, "btc", b)
	require.NoError(t, err)
	require.Equal(t, Applied, res)
}

func TestApplyEventJSON(t *testing.T) {
	s, rdb := newStore(t, nil)
	ctx := context.Background()
	events := []*bus.Event{
		{Gateway: "g", Boot: 1, Seq: 1, Kind: bus.EventConnected, User: "alice", Worker: "rig1", Peer: "10.0.0.1"},
		{Gateway: "g", Boot: 1, Seq: 2, Kind: bus.EventNewWorker, User: "alice", Worker: "rig1", Coin: "btc"},
		{Gateway: "g", Boot: 1, Seq: 3, Kind: bus.EventBlock, User: "alice", Worker: "rig1", Name: "BTC", Hash: "00ab"},
		{Gateway: "g", Boot: 1, Seq: 4, Kind: bus.EventDisconnected, User: "a<b", Worker: "w", Peer: "::1"},
		{Gateway: "g", Boot: 1, Seq: 5, Kind: bus.EventBlock, User: "bob", Worker: "x", Hash: "00cd"},
	}
	for _, e := range events {
		res, err := s.ApplyEvent(ctx, "btc", e)
		require.NoError(t, err)
		require.Equal(t, Applied, res)
		res, err = s.ApplyEvent(ctx, "btc", e)
		require.NoError(t, err)
		require.Equal(t, Duplicate, res)
	}
	list := func(k string) []string {
		v, err := rdb.LRange(ctx, k, 0, -1).Result()
		require.NoError(t, err)
		return v
	}
	require.Equal(t, []string{
		`{"user":"alice","worker":"rig1","coin":"btc","peer":"10.0.0.1","event":"connected"}`,
		`{"user":"a<b","worker":"w","coin":"btc","peer":"::1","event":"disconnected"}`,
	}, list(layout.NewEvent))
	require.Equal(t, []string{`{"user":"alice","worker":"rig1","coin":"btc"}`}, list(layout.NewWorker))
	require.Equal(t, []string{
		`{"name":"BTC","hash":"00ab","user":"alice","worker":"rig1"}`,
		`{"name":"BTC","hash":"00cd","user":"bob","worker":"x"}`,
	}, list(layout.NewBlock))
	ttl, err := rdb.TTL(ctx, layout.NewBlock).Result()
	require.NoError(t, err)
	require.InDelta(t, (24 * time.Hour).Seconds(), ttl.Seconds(), 5)

	// event_max_len keeps the newest entries.
	for i := range 5 {
		_, err := s.ApplyEvent(ctx, "btc", &bus.Event{Gateway: "h", Seq: uint64(i), Kind: bus.EventConnected, User: strconv.Itoa(i)})
		require.NoError(t, err)
	}
	l := list(layout.NewEvent)
	require.Len(t, l, 3)
	require.Contains(t, l[2], `"user":"4"`)
}

// TestSweep: fields older than the retention go, newer ones stay, index
// entries of vanished keys go; the second sweep deletes by range.
func TestSweep(t *testing.T) {
	s, rdb := newStore(t, func(o *Options) { o.Retention = 2 * time.Hour })
	ctx := context.Background()
	old, edge, recent := minute(200), minute(120), minute(10) // cutoff is minute(120)
	for _, k := range []string{"btc:s:u", "btc:p:u:w", "btc:m:pow", "btc:mh:gw1:pow", "btc:mh:gw2:pow"} {
		require.NoError(t, rdb.HSet(ctx, k, layout.Field(old), "1", layout.Field(edge-60), "2", layout.Field(edge), "3",
			layout.Field(recent), "4").Err())
	}
	require.NoError(t, rdb.SAdd(ctx, layout.MiningKeys, "btc:s:u", "btc:p:u:w", "btc:s:gone").Err())
	require.NoError(t, rdb.SAdd(ctx, layout.MonitorKeys, "btc:m:pow", "btc:m:gone").Err())
	require.NoError(t, rdb.SAdd(ctx, "btc:mk:pow", "gw1", "gw2", "gw3").Err())

	res, err := s.Sweep(ctx)
	require.NoError(t, err)
	require.True(t, res.Full, "first sweep scans everything")
	require.Equal(t, edge, res.Cutoff)
	require.Equal(t, int64(10), res.Fields, "two old fields in each of five hashes")
	require.Equal(t, int64(3), res.Unindexed, "btc:s:gone, btc:m:gone and host gw3")
	want := map[string]string{layout.Field(edge): "3", layout.Field(recent): "4"}
	for _, k := range []string{"btc:s:u", "btc:p:u:w", "btc:m:pow", "btc:mh:gw1:pow", "btc:mh:gw2:pow"} {
		require.Equal(t, want, hgetall(t, rdb, k), k)
	}
	mk, err := rdb.SMembers(ctx, "btc:mk:pow").Result()
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"gw1", "gw2"}, mk)
	idx, err := rdb.SMembers(ctx, layout.MiningKeys).Result()
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"btc:s:u", "btc:p:u:w"}, idx)

	// An hour later: only the gap is deleted, by name.
	now = now.Add(time.Hour)
	defer func() { now = now.Add(-time.Hour) }()
	res, err = s.Sweep(ctx)
	require.NoError(t, err)
	require.False(t, res.Full)
	require.Equal(t, int64(5), res.Fields, "the edge field of each hash")
	require.Equal(t, map[string]string{layout.Field(recent): "4"}, hgetall(t, rdb, "btc:s:u"))

	// A hash whose fields are all gone disappears and leaves the index.
	now = now.Add(2 * time.Hour)
	defer func() { now = now.Add(-2 * time.Hour) }()
	_, err = s.Sweep(ctx)
	require.NoError(t, err)
	n, err := rdb.Exists(ctx, "btc:s:u").Result()
	require.NoError(t, err)
	require.Zero(t, n)
	_, err = s.Sweep(ctx)
	require.NoError(t, err)
	idx, err = rdb.SMembers(ctx, layout.MiningKeys).Result()
	require.NoError(t, err)
	require.Empty(t, idx)

	ok, err := s.TryLockSweep(ctx, "a", time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = s.TryLockSweep(ctx, "b", time.Minute)
	require.NoError(t, err)
	require.False(t, ok)
}

func TestSweepDisabled(t *testing.T) {
	s, rdb := newStore(t, func(o *Options) { o.Retention = 0 })
	ctx := context.Background()
	require.NoError(t, rdb.HSet(ctx, "btc:s:u", "60", "1").Err())
	require.NoError(t, rdb.SAdd(ctx, layout.MiningKeys, "btc:s:u").Err())
	res, err := s.Sweep(ctx)
	require.NoError(t, err)
	require.Zero(t, res.Fields)
	require.Len(t, hgetall(t, rdb, "btc:s:u"), 1)
	_, err = s.ApplyStats(ctx, "btc", &bus.StatsBatch{Gateway: "g", Minute: 120, Parts: 1,
		Workers: []bus.WorkerStats{{User: "u", Worker: "w", Accepted: 1}}})
	require.NoError(t, err)
	ttl, err := rdb.TTL(ctx, "btc:s:u:w").Result()
	require.NoError(t, err)
	require.Equal(t, time.Duration(-1), ttl, "no expiry without retention")
}

// TestLargeBatchAndScriptFlush: one script call handles a big batch, and a
// server that lost its script cache (restart, SCRIPT FLUSH) gets it again.
func TestLargeBatchAndScriptFlush(t *testing.T) {
	s, rdb := newStore(t, nil)
	ctx := context.Background()
	require.NoError(t, rdb.ScriptFlush(ctx).Err())
	b := &bus.StatsBatch{Gateway: "g", Minute: minute(1), Parts: 1}
	for i := range 10000 {
		b.Workers = append(b.Workers, bus.WorkerStats{User: "u" + strconv.Itoa(i%500), Worker: "w" + strconv.Itoa(i),
			Accepted: 2, DiffSum: 3, GoalSum: 0.5, Rejected: 1})
	}
	start := time.Now()
	res, err := s.ApplyStats(ctx, "btc", b)
	require.NoError(t, err)
	require.Equal(t, Applied, res)
	t.Logf("10000 workers applied in %s", time.Since(start))
	require.Equal(t, map[string]string{layout.Field(minute(1)): "40"}, hgetall(t, rdb, "btc:s:u7"))
	require.Equal(t, map[string]string{layout.Field(minute(1)): "10"}, hgetall(t, rdb, "btc:g:u7"))
	n, err := rdb.SCard(ctx, layout.MiningKeys).Result()
	require.NoError(t, err)
	require.Equal(t, int64(500*4+10000*3), n)
}

// TestIndexSetConflict: a wrong-typed index set is a conflict too.
func TestIndexSetConflict(t *testing.T) {
	s, rdb := newStore(t, nil)
	ctx := context.Background()
	require.NoError(t, rdb.Set(ctx, layout.MiningKeys, "x", 0).Err())
	_, err := s.ApplyStats(ctx, "btc", &bus.StatsBatch{Gateway: "g", Minute: minute(1), Parts: 1,
		Workers: []bus.WorkerStats{{User: "u", Worker: "w", Accepted: 1}}})
	var ce *ConflictError
	require.ErrorAs(t, err, &ce)
	require.Contains(t, ce.Error(), "mining:keys is a string, not a set")
	require.NoError(t, rdb.Del(ctx, layout.MiningKeys).Err())
	require.NoError(t, rdb.Set(ctx, "btc:mk:pow", "x", 0).Err())
	_, err = s.ApplyStats(ctx, "btc", &bus.StatsBatch{Gateway: "g", Minute: minute(1), Parts: 1,
		Monitor: []bus.MonitorStat{{Key: "pow", Value: 1}}})
	require.ErrorAs(t, err, &ce)
	require.Contains(t, ce.Error(), "btc:mk:pow is a string, not a set")
	require.Empty(t, hgetall(t, rdb, "btc:m:pow"))
}
