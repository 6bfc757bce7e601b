package jobs

import (
	"sync"
	"time"
)

// Store keeps job records by id. Records of the current (highest) height are
// kept until a higher height arrives; older ones expire a grace period after
// that. It is safe for concurrent use.
type Store struct {
	grace time.Duration
	now   func() time.Time

	mu      sync.RWMutex
	height  int64
	records map[string]*entry
}

type entry struct {
	rec     *Record
	expires time.Time // zero while its height is current
}

// NewStore returns a Store with the given grace period.
func NewStore(grace time.Duration, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{grace: grace, now: now, records: make(map[string]*entry)}
}

// Add stores a record. A record of a new, higher height starts the grace
// period of every record below it. A record for a lower height than the
// current one (a stale template) is stored with an expiry already running.
func (s *Store) Add(r *Record) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	h := r.Job.Height
	e := &entry{rec: r}
	switch {
	case h > s.height:
		s.height = h
		for _, old := range s.records {
			if old.expires.IsZero() && old.rec.Job.Height < h {
				old.expires = now.Add(s.grace)
			}
		}
	case h < s.height:
		e.expires = now.Add(s.grace)
	}
	s.records[r.Job.ID] = e
	s.sweepLocked(now)
}

// Get returns the record with id if it exists and has not expired.
func (s *Store) Get(id string) (*Record, bool) {
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.records[id]
	if !ok || (!e.expires.IsZero() && now.After(e.expires)) {
		return nil, false
	}
	return e.rec, true
}

// Len returns the number of records held (expired ones included until the
// next sweep).
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.records)
}

// Sweep drops expired records.
func (s *Store) Sweep() {
	now := s.now()
	s.mu.Lock()
	s.sweepLocked(now)
	s.mu.Unlock()
}

func (s *Store) sweepLocked(now time.Time) {
	for id, e := range s.records {
		if !e.expires.IsZero() && now.After(e.expires) {
			delete(s.records, id)
		}
	}
}
