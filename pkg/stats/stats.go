// Package stats keeps the gateway's share counters per user, worker and
// unix minute, plus pool-wide counters. Sessions hold a *Worker and update
// it with one uncontended mutex per share; closed minutes accumulate until
// Drain hands them to whoever ships them (the statistics issue) and are
// shown on /status.
//
// Safe for concurrent use.
package stats

import (
	"sort"
	"sync"
	"time"
)

// Reason is why a share was rejected.
type Reason uint8

// Reject reasons, each counted separately.
const (
	NotSubscribed Reason = iota
	Unauthorized
	Malformed
	BadExtranonce2
	UnknownJob
	Stale
	BadNTime
	BadVersion
	Duplicate
	LowDifficulty
	NumReasons
)

var reasonNames = [NumReasons]string{"not_subscribed", "unauthorized", "malformed", "bad_extranonce2",
	"unknown_job", "stale", "bad_ntime", "bad_version", "duplicate", "low_difficulty"}

func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// Minute is one worker's counts for one unix minute.
type Minute struct {
	Minute   int64              `json:"minute"` // unix seconds, multiple of 60
	Accepted uint64             `json:"accepted"`
	DiffSum  float64            `json:"diff_sum"` // sum of credited difficulty (× 2^32 = hashes)
	GoalSum  float64            `json:"goal_sum"` // sum of difficulty / network difficulty
	Rejected uint64             `json:"rejected"`
	Reasons  [NumReasons]uint64 `json:"-"`
	Blocks   uint64             `json:"blocks"`
}

// Worker accumulates one user.worker's minutes.
type Worker struct {
	User, Name string

	mu     sync.Mutex
	cur    Minute
	closed []Minute
	total  Minute
	last   time.Time

	refs int // sessions holding the worker; guarded by Table.mu
}

func minuteOf(t time.Time) int64 { return t.Unix() / 60 * 60 }

func (w *Worker) roll(now time.Time) {
	m := minuteOf(now)
	if w.cur.Minute != m {
		if w.cur.Accepted+w.cur.Rejected > 0 {
			w.closed = append(w.closed, w.cur)
			if len(w.closed) > 120 { // nobody drained for two hours: keep the newest
				w.closed = w.closed[len(w.closed)-120:]
			}
		}
		w.cur = Minute{Minute: m}
	}
}

// Accept counts an accepted share credited at diff on a job whose network
// difficulty is netDiff.
func (w *Worker) Accept(now time.Time, diff, netDiff float64, block bool) {
	w.mu.Lock()
	w.roll(now)
	w.last = now
	w.cur.Accepted++
	w.cur.DiffSum += diff
	w.total.Accepted++
	w.total.DiffSum += diff
	if netDiff > 0 {
		w.cur.GoalSum += diff / netDiff
		w.total.GoalSum += diff / netDiff
	}
	if block {
		w.cur.Blocks++
		w.total.Blocks++
	}
	w.mu.Unlock()
}

// Reject counts a rejected share.
func (w *Worker) Reject(now time.Time, r Reason) {
	w.mu.Lock()
	w.roll(now)
	w.last = now
	w.cur.Rejected++
	w.cur.Reasons[r]++
	w.total.Rejected++
	w.total.Reasons[r]++
	w.mu.Unlock()
}

// KeepIdle is how long a worker no session holds stays in the table.
const KeepIdle = time.Hour

// Table holds the workers of the connected sessions, and of those gone
// until their last minutes are drained and KeepIdle has passed.
type Table struct {
	mu      sync.Mutex
	workers map[string]*Worker
}

// NewTable returns an empty table.
func NewTable() *Table { return &Table{workers: map[string]*Worker{}} }

// Worker returns (creating) the entry for user.worker, for a session that
// authorized it; the session gives it back with Release when it closes.
// Called on authorize, not per share.
func (t *Table) Worker(user, name string) *Worker {
	key := user + "." + name
	t.mu.Lock()
	defer t.mu.Unlock()
	w, ok := t.workers[key]
	if !ok {
		w = &Worker{User: user, Name: name}
		t.workers[key] = w
	}
	w.refs++
	return w
}

// Release gives back a worker Worker returned. A worker no session holds is
// forgotten by Drain once its minutes are all drained and it has been idle
// for KeepIdle (so /status still shows workers that just left).
func (t *Table) Release(w *Worker) {
	t.mu.Lock()
	w.refs--
	t.mu.Unlock()
}

// WorkerSummary is one worker on /status.
type WorkerSummary struct {
	User     string            `json:"user"`
	Worker   string            `json:"worker"`
	Accepted uint64            `json:"accepted"`
	DiffSum  float64           `json:"diff_sum"`
	Rejected uint64            `json:"rejected"`
	Reasons  map[string]uint64 `json:"reject_reasons,omitempty"`
	Blocks   uint64            `json:"blocks"`
	Current  Minute            `json:"current_minute"`
	LastSeen time.Time         `json:"last_seen"`
}

// Snapshot returns up to limit workers, most recently active first.
func (t *Table) Snapshot(limit int) []WorkerSummary {
	t.mu.Lock()
	ws := make([]*Worker, 0, len(t.workers))
	for _, w := range t.workers {
		ws = append(ws, w)
	}
	t.mu.Unlock()
	out := make([]WorkerSummary, 0, len(ws))
	for _, w := range ws {
		w.mu.Lock()
		s := WorkerSummary{User: w.User, Worker: w.Name, Accepted: w.total.Accepted, DiffSum: w.total.DiffSum,
			Rejected: w.total.Rejected, Blocks: w.total.Blocks, Current: w.cur, LastSeen: w.last}
		for r := Reason(0); r < NumReasons; r++ {
			if n := w.total.Reasons[r]; n > 0 {
				if s.Reasons == nil {
					s.Reasons = map[string]uint64{}
				}
				s.Reasons[r.String()] = n
			}
		}
		w.mu.Unlock()
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LastSeen.After(out[j].LastSeen) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// Drain returns and forgets every closed minute of every worker (minutes
// before now's; with all, the current minute too, as at shutdown), keyed by
// "user.worker".
func (t *Table) Drain(now time.Time, all bool) map[string][]Minute {
	t.mu.Lock()
	ws := make([]*Worker, 0, len(t.workers))
	for _, w := range t.workers {
		ws = append(ws, w)
	}
	t.mu.Unlock()
	out := map[string][]Minute{}
	for _, w := range ws {
		w.mu.Lock()
		w.roll(now)
		if all && w.cur.Accepted+w.cur.Rejected > 0 {
			w.closed = append(w.closed, w.cur)
			w.cur = Minute{Minute: w.cur.Minute}
		}
		if len(w.closed) > 0 {
			out[w.User+"."+w.Name] = w.closed
			w.closed = nil
		}
		w.mu.Unlock()
	}
	// Forget the workers of closed sessions whose minutes are all out.
	t.mu.Lock()
	for key, w := range t.workers {
		if w.refs > 0 {
			continue
		}
		w.mu.Lock()
		done := len(w.closed) == 0 && w.cur.Accepted+w.cur.Rejected == 0 && now.Sub(w.last) > KeepIdle
		w.mu.Unlock()
		if done {
			delete(t.workers, key)
		}
	}
	t.mu.Unlock()
	return out
}

// Len returns the number of workers held.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.workers)
}
