// Package jobfeed takes jobs from the jobmaster over NATS: it subscribes to
// the job subject, asks for the current job on start and after every
// reconnect, prepares each job once (decode, checks, the mining.notify lines
// every session shares), adds it to the table and hands it to the
// broadcaster.
//
// Concurrency: NATS callbacks only decode and queue; one goroutine (Run)
// applies jobs in arrival order.
package jobfeed

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/work"
)

// Broadcaster sends a job to the sessions.
type Broadcaster interface {
	Broadcast(ctx context.Context, j *work.Job, clean bool) time.Duration
}

// Options configure a Feed.
type Options struct {
	Conn        *nats.Conn
	Prefix      string
	Coin        string
	Table       *work.Table
	Broadcaster Broadcaster
	Logger      *zap.Logger
	Now         func() time.Time
}

// Feed is the job subscription.
type Feed struct {
	o     Options
	lg    *zap.Logger
	queue chan *bus.Job
	last  atomic.Int64 // unix nanos of the last job received
	jobs  atomic.Uint64
}

// New returns a feed.
func New(o Options) *Feed {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Feed{o: o, lg: o.Logger, queue: make(chan *bus.Job, 64)}
}

// LastJob returns when the last job arrived (zero if none).
func (f *Feed) LastJob() time.Time {
	if n := f.last.Load(); n > 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Jobs returns how many jobs were received.
func (f *Feed) Jobs() uint64 { return f.jobs.Load() }

func (f *Feed) enqueue(data []byte, via string) {
	var b bus.Job
	if err := b.Unmarshal(data); err != nil {
		f.lg.Error("undecodable job from the bus", zap.String("via", via), zap.Error(err))
		return
	}
	select {
	case f.queue <- &b:
	default:
		// Jobs are applied far faster than they come; a full queue means
		// Run is stuck. Drop the oldest: the latest job wins.
		select {
		case <-f.queue:
		default:
		}
		f.queue <- &b
	}
}

// Run subscribes and applies jobs until ctx is done.
func (f *Feed) Run(ctx context.Context) error {
	nc := f.o.Conn
	sub, err := nc.Subscribe(bus.Subject(f.o.Prefix, f.o.Coin, bus.TopicJob), func(m *nats.Msg) {
		f.enqueue(m.Data, "publish")
	})
	if err != nil {
		return fmt.Errorf("subscribe jobs: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	ask := make(chan struct{}, 1)
	ask <- struct{}{}
	nc.SetReconnectHandler(func(*nats.Conn) {
		f.lg.Info("nats reconnected; asking for the current job")
		select {
		case ask <- struct{}{}:
		default:
		}
	})
	go f.askLoop(ctx, ask)
	for {
		select {
		case <-ctx.Done():
			return nil
		case b := <-f.queue:
			f.apply(ctx, b)
		}
	}
}

// askLoop requests the current job when asked, retrying until it gets one.
func (f *Feed) askLoop(ctx context.Context, ask <-chan struct{}) {
	subj := bus.Subject(f.o.Prefix, f.o.Coin, bus.TopicJobCurrent)
	for {
		select {
		case <-ctx.Done():
			return
		case <-ask:
		}
		for ctx.Err() == nil {
			m, err := f.o.Conn.RequestWithContext(withTimeout(ctx, 2*time.Second), subj, nil)
			if err == nil {
				f.enqueue(m.Data, "request")
				break
			}
			if !errors.Is(err, context.Canceled) {
				f.lg.Debug("current job not available yet", zap.Error(err))
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
}

func withTimeout(ctx context.Context, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(ctx, d)
	go func() { <-c.Done(); cancel() }()
	return c
}

func (f *Feed) apply(ctx context.Context, b *bus.Job) {
	now := f.o.Now()
	j, err := work.Prepare(b, now)
	if err != nil {
		f.lg.Error("job refused", zap.String("job_id", b.ID), zap.Error(err))
		return
	}
	added, newHeight := f.o.Table.Add(j)
	if !added {
		return // a duplicate (request and publish both delivered it) or older
	}
	f.last.Store(now.UnixNano())
	f.jobs.Add(1)
	clean := newHeight || b.Clean
	took := f.o.Broadcaster.Broadcast(ctx, j, clean)
	f.lg.Info("job broadcast", zap.String("job_id", b.ID), zap.Int64("height", b.Height), zap.Bool("clean", clean),
		zap.Bool("empty", b.Empty), zap.Duration("took", took))
}
