package center

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Store tunables.
const (
	storeBatch    = 200                    // lines per MULTI
	storeRetryMin = 100 * time.Millisecond // first pause after a failed write
	storeWarnEach = 30 * time.Second       // repeat of the "still unreachable" warning
)

// StoreOptions configure a Store.
type StoreOptions struct {
	Client   redis.Cmdable // the Redis client; the Store does not close it
	Key      string        // the list
	MaxList  int           // the list is trimmed to this many newest lines
	Queue    int           // lines held while Redis is unreachable
	RetryMax time.Duration // longest pause between attempts
	Logger   *zap.Logger
	Metrics  *Metrics
}

// Store appends lines to a Redis list from a bounded in-memory queue; see
// the package documentation. Add is safe for concurrent use; Run must be
// called once.
type Store struct {
	o      StoreOptions
	lg     *zap.Logger
	signal chan struct{} // capacity 1: the queue is not empty

	mu      sync.Mutex
	queue   []entry // oldest first
	nextSeq uint64
	// inflight is the last seq of the batch being written (0: none);
	// evictedInflight counts its lines Add pushed out of the queue
	// meanwhile, so each line is counted stored or dropped, never both.
	inflight        uint64
	evictedInflight int

	down     atomic.Bool               // the last write failed
	since    atomic.Pointer[time.Time] // first failure of the current outage
	lastErr  atomic.Pointer[string]
	writtenN atomic.Uint64
}

type entry struct {
	seq  uint64
	line string
}

// NewStore builds a Store.
func NewStore(o StoreOptions) *Store {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics()
	}
	return &Store{o: o, lg: o.Logger, signal: make(chan struct{}, 1)}
}

// Add queues a line without blocking. When the queue is full the oldest
// line gives way (the list keeps the newest lines anyway).
func (s *Store) Add(line string) {
	s.mu.Lock()
	dropped := 0
	for len(s.queue) >= s.o.Queue {
		if s.queue[0].seq <= s.inflight {
			s.evictedInflight++ // being written: counted when the write ends
		} else {
			dropped++
		}
		s.queue[0] = entry{}
		s.queue = s.queue[1:]
	}
	s.nextSeq++
	s.queue = append(s.queue, entry{seq: s.nextSeq, line: line})
	s.mu.Unlock()
	s.o.Metrics.Add(ResultDropped, dropped)
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

// Pending returns how many lines wait for Redis.
func (s *Store) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// Check reports nil while Redis takes the writes, else what is wrong.
func (s *Store) Check() error {
	if !s.down.Load() {
		return nil
	}
	msg := "unreachable"
	if p := s.lastErr.Load(); p != nil {
		msg = *p
	}
	since := ""
	if t := s.since.Load(); t != nil {
		since = fmt.Sprintf(" for %s", time.Since(*t).Round(time.Second))
	}
	return fmt.Errorf("redis failing%s (%s); %d lines queued", since, msg, s.Pending())
}

// Written returns how many lines reached Redis.
func (s *Store) Written() uint64 { return s.writtenN.Load() }

// Run writes queued lines until ctx is done; Flush then gets the rest out.
func (s *Store) Run(ctx context.Context) error {
	pause := storeRetryMin
	var lastWarn time.Time
	for {
		if ctx.Err() != nil {
			break
		}
		batch := s.peek()
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
			case <-s.signal:
			}
			continue
		}
		err := s.write(ctx, batch)
		if err == nil {
			pause = storeRetryMin
			continue
		}
		if ctx.Err() != nil {
			break
		}
		if s.fail(err) || time.Since(lastWarn) >= storeWarnEach {
			lastWarn = time.Now()
			s.lg.Warn("redis write failed; alert lines stay queued", zap.String("addr", s.addr()),
				zap.Int("queued", s.Pending()), zap.Error(err))
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
		pause = min(2*pause, s.o.RetryMax)
	}
	return nil
}

// Flush writes what is queued, retrying until ctx is done; lines still
// queued then are lost (counted as dropped). Call it after Run returned.
func (s *Store) Flush(drain context.Context) {
	for drain.Err() == nil {
		batch := s.peek()
		if len(batch) == 0 {
			return
		}
		if err := s.write(drain, batch); err != nil {
			select {
			case <-drain.Done():
			case <-time.After(storeRetryMin):
			}
		}
	}
	if n := s.Pending(); n > 0 {
		s.o.Metrics.Add(ResultDropped, n)
		s.lg.Warn("alert lines not written to redis before shutdown", zap.Int("lost", n))
	}
}

// peek returns up to storeBatch of the oldest queued lines.
func (s *Store) peek() []entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := min(len(s.queue), storeBatch)
	if n > 0 {
		s.inflight = s.queue[n-1].seq
	}
	return append([]entry(nil), s.queue[:n]...)
}

// write appends batch and trims the list in one MULTI; on success the
// lines leave the queue (those still there: Add may have pushed some out).
func (s *Store) write(ctx context.Context, batch []entry) error {
	args := make([]any, len(batch))
	for i, e := range batch {
		args[i] = e.line
	}
	_, err := s.o.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.RPush(ctx, s.o.Key, args...)
		p.LTrim(ctx, s.o.Key, int64(-s.o.MaxList), -1)
		return nil
	})
	s.mu.Lock()
	evicted := s.evictedInflight
	s.inflight, s.evictedInflight = 0, 0
	if err != nil {
		s.mu.Unlock()
		s.o.Metrics.Add(ResultDropped, evicted) // pushed out while their write failed
		return err
	}
	// Every line of the batch is in Redis, also those Add pushed out of
	// the queue meanwhile.
	last := batch[len(batch)-1].seq
	n := 0
	for n < len(s.queue) && s.queue[n].seq <= last {
		s.queue[n] = entry{}
		n++
	}
	s.queue = s.queue[n:]
	s.mu.Unlock()
	s.writtenN.Add(uint64(len(batch)))
	s.o.Metrics.Add(ResultStored, len(batch))
	if s.down.Swap(false) {
		var since time.Duration
		if t := s.since.Load(); t != nil {
			since = time.Since(*t).Round(time.Millisecond)
		}
		s.lg.Info("redis writable again", zap.String("addr", s.addr()), zap.Duration("outage", since),
			zap.Int("still_queued", s.Pending()))
	}
	return nil
}

// fail records a failed write; it reports whether an outage just began.
func (s *Store) fail(err error) bool {
	msg := err.Error()
	s.lastErr.Store(&msg)
	if s.down.Swap(true) {
		return false
	}
	now := time.Now()
	s.since.Store(&now)
	return true
}

func (s *Store) addr() string {
	if c, ok := s.o.Client.(interface{ Options() *redis.Options }); ok {
		return c.Options().Addr
	}
	return ""
}
