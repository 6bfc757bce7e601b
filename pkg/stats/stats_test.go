package stats

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMinutes(t *testing.T) {
	tab := NewTable()
	w := tab.Worker("alice", "rig1")
	require.Same(t, w, tab.Worker("alice", "rig1"))
	t0 := time.Unix(6000, 0) // minute 6000
	w.Accept(t0, 2, 4, false)
	w.Accept(t0.Add(10*time.Second), 3, 4, true)
	w.Reject(t0.Add(20*time.Second), Duplicate)
	w.Reject(t0.Add(70*time.Second), LowDifficulty) // next minute
	d := tab.Drain(t0.Add(125*time.Second), false)
	got := d["alice.rig1"]
	require.Len(t, got, 2)
	require.Equal(t, int64(6000), got[0].Minute)
	require.Equal(t, uint64(2), got[0].Accepted)
	require.Equal(t, 5.0, got[0].DiffSum)
	require.Equal(t, 1.25, got[0].GoalSum)
	require.Equal(t, uint64(1), got[0].Blocks)
	require.Equal(t, uint64(1), got[0].Reasons[Duplicate])
	require.Equal(t, int64(6060), got[1].Minute)
	require.Equal(t, uint64(1), got[1].Reasons[LowDifficulty])
	require.Empty(t, tab.Drain(t0.Add(130*time.Second), false), "drained minutes are gone")
	w.Accept(t0.Add(140*time.Second), 1, 4, false)
	require.Empty(t, tab.Drain(t0.Add(141*time.Second), false), "the open minute stays")
	open := tab.Drain(t0.Add(141*time.Second), true)["alice.rig1"]
	require.Len(t, open, 1, "unless all is asked (shutdown)")
	require.Equal(t, uint64(1), open[0].Accepted)

	s := tab.Snapshot(10)
	require.Len(t, s, 1)
	require.Equal(t, uint64(3), s[0].Accepted)
	require.Equal(t, uint64(1), s[0].Reasons["duplicate"])
	require.Equal(t, "low_difficulty", LowDifficulty.String())
}

// TestWorkersForgottenAfterRelease: a worker no session holds is dropped
// once its last minute is drained and it has been idle for KeepIdle.
func TestWorkersForgottenAfterRelease(t *testing.T) {
	tbl := NewTable()
	t0 := time.Unix(1700000000, 0) // minute boundary + 20 s
	a := tbl.Worker("alice", "rig1")
	b := tbl.Worker("bob", "rig2")
	a.Accept(t0, 1, 100, false)
	tbl.Release(a)
	if got := tbl.Drain(t0, false); len(got) != 0 || tbl.Len() != 2 {
		t.Fatalf("the current minute is not drained yet: %v, %d workers", got, tbl.Len())
	}
	got := tbl.Drain(t0.Add(time.Minute), false)
	if len(got["alice.rig1"]) != 1 || got["alice.rig1"][0].Accepted != 1 {
		t.Fatalf("alice's minute: %v", got)
	}
	if tbl.Len() != 2 {
		t.Fatalf("alice left a minute ago: still shown, want 2 workers, have %d", tbl.Len())
	}
	tbl.Drain(t0.Add(KeepIdle+time.Minute), false)
	if tbl.Len() != 1 {
		t.Fatalf("alice is released, drained and idle for KeepIdle: want only bob, have %d workers", tbl.Len())
	}
	if again := tbl.Worker("alice", "rig1"); again == a {
		t.Fatal("a forgotten worker comes back as a new entry")
	}
	_ = b
}
