package work

import (
	"sync"
	"sync/atomic"
	"time"
)

// Table holds the jobs sessions may submit against. Reads are lock-free;
// Add is serialised by a mutex.
type Table struct {
	grace time.Duration
	now   func() time.Time

	mu   sync.Mutex // serialises writers
	snap atomic.Pointer[snapshot]
}

type snapshot struct {
	jobs    map[string]*entry
	current *Job
	height  int64
}

type entry struct {
	job *Job
	// staleSince is when a higher height arrived (zero while current).
	staleSince time.Time
}

// NewTable returns an empty table; jobs of a previous height stay for grace.
func NewTable(grace time.Duration, now func() time.Time) *Table {
	if now == nil {
		now = time.Now
	}
	t := &Table{grace: grace, now: now}
	t.snap.Store(&snapshot{jobs: map[string]*entry{}})
	return t
}

// Add inserts a job and reports whether it starts a new height (sessions
// must then drop older work). A job below the current height is refused
// (false, false).
func (t *Table) Add(j *Job) (added, newHeight bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.snap.Load()
	if _, dup := old.jobs[j.ID]; dup || (old.current != nil && j.Height < old.height) {
		return false, false
	}
	now := t.now()
	newHeight = old.current == nil || j.Height > old.height || (j.Clean && j.PrevHash != old.current.PrevHash)
	next := &snapshot{jobs: make(map[string]*entry, len(old.jobs)+1), current: j, height: j.Height}
	for id, e := range old.jobs {
		if !e.staleSince.IsZero() && now.Sub(e.staleSince) > t.grace {
			continue // past its grace period
		}
		if newHeight && e.staleSince.IsZero() {
			e = &entry{job: e.job, staleSince: now}
		}
		next.jobs[id] = e
	}
	next.jobs[j.ID] = &entry{job: j}
	t.snap.Store(next)
	return true, newHeight
}

// Get returns the job with id. stale is true for a job of an older tip that
// is still inside its grace period (good only for blocks). It does not
// allocate when called as Get(string(b)) with a byte slice b.
func (t *Table) Get(id string) (j *Job, stale, ok bool) {
	s := t.snap.Load()
	e, ok := s.jobs[id]
	if !ok {
		return nil, false, false
	}
	if !e.staleSince.IsZero() {
		if t.now().Sub(e.staleSince) > t.grace {
			return nil, false, false
		}
		return e.job, true, true
	}
	return e.job, false, true
}

// Current returns the newest job, or nil.
func (t *Table) Current() *Job { return t.snap.Load().current }

// Len returns the number of jobs held.
func (t *Table) Len() int { return len(t.snap.Load().jobs) }
