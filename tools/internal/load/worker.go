package load

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/hashgate/hashgate/pkg/blockutil"
	"github.com/hashgate/hashgate/pkg/stratum"
	"github.com/hashgate/hashgate/tools/internal/hist"
	"github.com/hashgate/hashgate/tools/internal/procstat"
	"github.com/hashgate/hashgate/tools/internal/sconn"
	"github.com/hashgate/hashgate/tools/internal/work"
)

// Worker phases; connections read the phase to choose their read deadline.
const (
	phaseConnecting int32 = iota // dialling and handshakes; no shares
	phaseSubmitting              // between "go" and "stop"
	phaseStopping                // no new shares; waiting for replies
	phaseClosing                 // connections are being closed
)

// minDrain is how long connections keep reading after "stop".
const minDrain = time.Second

// Control commands from the parent, one per line on the worker's stdin.
const (
	cmdConnect = "connect"
	cmdGo      = "go"   // "go <unix ns>"
	cmdStop    = "stop" // stop submitting, report, exit
)

// event is one JSON line from a worker to the parent.
type event struct {
	Ev        string        `json:"ev"` // hello, connected, result
	Worker    int           `json:"worker"`
	PID       int           `json:"pid,omitempty"`
	Connected *connectedEv  `json:"connected,omitempty"`
	Result    *WorkerResult `json:"result,omitempty"`
}

// connectedEv reports a worker's connect phase.
type connectedEv struct {
	OK        int            `json:"ok"`
	Failed    int            `json:"failed"`
	Errors    map[string]int `json:"errors,omitempty"`
	DialStart int64          `json:"dial_start"` // unix ns of the first dial
	LastReady int64          `json:"last_ready"` // unix ns the last connection became ready
	Latency   *hist.Hist     `json:"latency"`    // per connection: dial → first job
	KernelTS  bool           `json:"kernel_ts"`
}

// JobTimes is when each connection of a worker first received a job:
// Base + Offsets[i] (unix ns).
type JobTimes struct {
	ID      string  `json:"id"`
	Clean   bool    `json:"clean"`
	Base    int64   `json:"base"`
	Offsets []int64 `json:"offsets"`
}

// WorkerResult is a worker's measurements after "stop".
type WorkerResult struct {
	GoAt          int64             `json:"go_at"`
	StopAt        int64             `json:"stop_at"`
	Connected     int               `json:"connected"`
	Dropped       int               `json:"dropped"`
	DropReasons   map[string]int    `json:"drop_reasons,omitempty"`
	Submitted     uint64            `json:"submitted"`
	Accepted      uint64            `json:"accepted"`
	Rejected      map[string]uint64 `json:"rejected,omitempty"`
	Unanswered    uint64            `json:"unanswered"`
	NoShare       uint64            `json:"no_share"`
	BlockOnly     uint64            `json:"block_only"`
	Late          uint64            `json:"late"`
	Blocks        uint64            `json:"blocks"`
	Resuggests    uint64            `json:"resuggests"`
	Notifies      uint64            `json:"notifies"`
	SetDiffs      uint64            `json:"set_diffs"`
	SubmitLatency *hist.Hist        `json:"submit_latency"`
	// CPUSeconds is this worker process's CPU time from go to stop;
	// RSSBytes its resident memory at stop (both 0 if unreadable).
	CPUSeconds float64    `json:"cpu_s"`
	RSSBytes   int64      `json:"rss_bytes"`
	Jobs       []JobTimes `json:"jobs,omitempty"`
}

// worker is one process's share of the connections.
type worker struct {
	spec WorkerSpec
	lg   *zap.Logger

	phase    atomic.Int32
	goAt     atomic.Int64
	graceEnd atomic.Int64

	dialSem  chan struct{}
	dialRate *rate.Limiter
	conns    []*lconn

	jobs    notifyCache
	targets targetCache
	rec     recorder

	submitted, accepted, noShare, late, blocks atomic.Uint64
	blockOnly                                  atomic.Uint64
	resuggests, notifies, setDiffs             atomic.Uint64
	submitLat, connectLat                      hist.Hist

	mu        sync.Mutex // guards the maps and times below
	rejected  map[string]uint64
	dropped   map[string]int
	connErrs  map[string]int
	dialStart int64
	lastReady int64
}

// RunWorker runs one worker: it reads commands from ctrl and writes JSON
// events to out (see the package documentation for the exchange). It
// returns after reporting its result, or when ctrl closes.
func RunWorker(ctx context.Context, spec WorkerSpec, ctrl io.Reader, out io.Writer, lg *zap.Logger) error {
	if lg == nil {
		lg = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := &worker{spec: spec, lg: lg, rejected: map[string]uint64{}, dropped: map[string]int{},
		connErrs: map[string]int{}}
	w.dialSem = make(chan struct{}, max(1, spec.DialParallel))
	if spec.ConnectRate > 0 {
		w.dialRate = rate.NewLimiter(rate.Limit(spec.ConnectRate), 1)
	}
	w.jobs.m = map[string]*work.Job{}
	w.targets.m = map[float64]blockutil.Target{}
	w.rec.jobs = map[string]*jobRec{}

	var omu sync.Mutex
	enc := json.NewEncoder(out)
	emit := func(ev event) error {
		omu.Lock()
		defer omu.Unlock()
		ev.Worker = spec.Index
		return enc.Encode(ev)
	}

	cmds := make(chan string)
	go func() {
		defer cancel() // the parent is gone or done: stop everything
		defer close(cmds)
		sc := bufio.NewScanner(ctrl)
		for sc.Scan() {
			select {
			case cmds <- strings.TrimSpace(sc.Text()):
			case <-ctx.Done():
				return
			}
		}
	}()
	next := func(want string) (string, error) {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case c, ok := <-cmds:
			if !ok {
				return "", errors.New("load worker: control channel closed")
			}
			if f := strings.Fields(c); len(f) == 0 || f[0] != want {
				return "", fmt.Errorf("load worker: got command %q, want %q", c, want)
			}
			return c, nil
		}
	}

	if err := emit(event{Ev: "hello", PID: os.Getpid()}); err != nil {
		return err
	}
	if _, err := next(cmdConnect); err != nil {
		return err
	}

	// Connect phase.
	w.conns = make([]*lconn, spec.Count)
	var ready, done sync.WaitGroup
	for i := range w.conns {
		c := newConn(w, spec.First+i)
		w.conns[i] = c
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			c.run(ctx, &ready)
		}()
	}
	stopClosing := context.AfterFunc(ctx, func() {
		for _, c := range w.conns {
			c.close()
		}
	})
	defer stopClosing()
	ready.Wait()
	ok, kts := 0, false
	for _, c := range w.conns {
		if c.ready.Load() {
			ok++
			kts = kts || c.conn.KernelTimestamps()
		}
	}
	w.mu.Lock()
	cev := &connectedEv{OK: ok, Failed: spec.Count - ok, Errors: w.connErrs, DialStart: w.dialStart,
		LastReady: w.lastReady, Latency: &w.connectLat, KernelTS: kts}
	err := emit(event{Ev: "connected", Connected: cev})
	w.mu.Unlock()
	if err != nil {
		return err
	}
	lg.Info("connect phase done", zap.Int("connected", ok), zap.Int("failed", spec.Count-ok))

	// Measured run.
	c, err := next(cmdGo)
	if err != nil {
		w.shutdown(&done)
		return err
	}
	goAt := time.Now().UnixNano()
	if f := strings.Fields(c); len(f) > 1 {
		if v, err := strconv.ParseInt(f[1], 10, 64); err == nil {
			goAt = v
		}
	}
	w.goAt.Store(goAt)
	self0, _ := procstat.Read(os.Getpid())
	w.setPhase(phaseSubmitting)
	_, err = next(cmdStop)
	stopAt := time.Now().UnixNano()
	self1, _ := procstat.Read(os.Getpid())
	w.graceEnd.Store(stopAt + int64(spec.Grace))
	w.setPhase(phaseStopping)
	if err == nil {
		// Keep reading for at least minDrain, so that a job sent just
		// before the stop reaches every connection, and for outstanding
		// submit replies, at most Grace.
		drainEnd := stopAt + int64(min(minDrain, spec.Grace))
		for now := time.Now().UnixNano(); now < w.graceEnd.Load() && (now < drainEnd || w.pendingTotal() > 0); now = time.Now().UnixNano() {
			time.Sleep(20 * time.Millisecond)
		}
	}
	w.shutdown(&done)
	unanswered := w.pendingTotal() // final: every connection goroutine has ended
	if err != nil {
		return err
	}

	res := w.result(goAt, stopAt, ok, unanswered)
	res.CPUSeconds, res.RSSBytes = self1.CPUSeconds-self0.CPUSeconds, self1.RSSBytes
	return emit(event{Ev: "result", Result: res})
}

// setPhase changes the phase and interrupts every connection's read so
// that it picks the new deadline.
func (w *worker) setPhase(p int32) {
	w.phase.Store(p)
	now := time.Now()
	for _, c := range w.conns {
		if c.conn != nil && c.ready.Load() {
			_ = c.conn.SetReadDeadline(now)
		}
	}
}

// shutdown closes every connection and waits for their goroutines.
func (w *worker) shutdown(done *sync.WaitGroup) {
	w.phase.Store(phaseClosing)
	for _, c := range w.conns {
		c.close()
	}
	done.Wait()
}

func (w *worker) pendingTotal() uint64 {
	var n uint64
	for _, c := range w.conns {
		n += uint64(c.pendingCount.Load())
	}
	return n
}

func (w *worker) result(goAt, stopAt int64, connected int, unanswered uint64) *WorkerResult {
	w.mu.Lock()
	defer w.mu.Unlock()
	return &WorkerResult{
		GoAt: goAt, StopAt: stopAt, Connected: connected,
		Dropped: sumInts(w.dropped), DropReasons: w.dropped,
		Submitted: w.submitted.Load(), Accepted: w.accepted.Load(), Rejected: w.rejected,
		Unanswered: unanswered, NoShare: w.noShare.Load(), BlockOnly: w.blockOnly.Load(), Late: w.late.Load(), Blocks: w.blocks.Load(),
		Resuggests: w.resuggests.Load(), Notifies: w.notifies.Load(), SetDiffs: w.setDiffs.Load(),
		SubmitLatency: &w.submitLat, Jobs: w.rec.export(),
	}
}

func sumInts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// errReason turns a connection error into a short, aggregatable reason.
func errReason(err error) string {
	var errno syscall.Errno
	switch {
	case errors.Is(err, io.EOF):
		return "closed by gateway"
	case errors.As(err, &errno):
		return errno.Error()
	case sconn.IsTimeout(err):
		return "timeout"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && len(s)-i < 60 {
		return s[i+2:]
	}
	return s
}

// ---------------------------------------------------------------------------
// Shared per-process caches

// notifyCache parses each distinct mining.notify line once per process:
// every connection receives the same bytes for a job.
type notifyCache struct {
	mu sync.RWMutex
	m  map[string]*work.Job
}

func (c *notifyCache) get(line []byte) (*work.Job, error) {
	c.mu.RLock()
	j, ok := c.m[string(line)]
	c.mu.RUnlock()
	if ok {
		return j, nil
	}
	n, err := stratum.ParseNotify(line)
	if err != nil {
		return nil, err
	}
	j, err = work.NewJob(n)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.m) >= 64 {
		clear(c.m)
	}
	c.m[string(line)] = j
	c.mu.Unlock()
	return j, nil
}

// targetCache converts difficulties to targets once per process.
type targetCache struct {
	mu sync.Mutex
	m  map[float64]blockutil.Target
}

func (c *targetCache) get(d float64) (blockutil.Target, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.m[d]; ok {
		return t, nil
	}
	t, err := work.ShareTarget(d)
	if err != nil {
		return t, err
	}
	if len(c.m) >= 256 {
		clear(c.m)
	}
	c.m[d] = t
	return t, nil
}

// recorder keeps, per job id, when each connection first received it.
type recorder struct {
	mu   sync.Mutex
	jobs map[string]*jobRec
}

type jobRec struct {
	clean bool
	times []int64
}

func (r *recorder) add(id string, clean bool, rx int64) {
	r.mu.Lock()
	j := r.jobs[id]
	if j == nil {
		j = &jobRec{clean: clean}
		r.jobs[id] = j
	}
	j.times = append(j.times, rx)
	r.mu.Unlock()
}

func (r *recorder) export() []JobTimes {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]JobTimes, 0, len(r.jobs))
	for id, j := range r.jobs {
		base := j.times[0]
		for _, t := range j.times {
			base = min(base, t)
		}
		off := make([]int64, len(j.times))
		for i, t := range j.times {
			off[i] = t - base
		}
		out = append(out, JobTimes{ID: id, Clean: j.clean, Base: base, Offsets: off})
	}
	return out
}
