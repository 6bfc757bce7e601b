package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hashgate/hashgate/pkg/noderpc"
	"github.com/hashgate/hashgate/tools/internal/procstat"
)

// handle is the parent's end of one worker, a child process or (with one
// process) a goroutine.
type handle struct {
	idx    int
	ctrl   io.WriteCloser
	events chan event
	errc   chan error // one value when the worker has ended
	cmd    *exec.Cmd
	pid    int
}

// decodeEvents reads JSON events from r into h.events until EOF.
func (h *handle) decodeEvents(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var ev event
		if err := dec.Decode(&ev); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("worker %d: bad event: %w", h.idx, err)
		}
		h.events <- ev
	}
}

// startProc re-executes exe as a load-worker child.
func startProc(exe string, spec WorkerSpec, extraArgs []string) (*handle, error) {
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	args := append([]string{"load-worker", "-spec", string(b)}, extraArgs...)
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker %d: %w", spec.Index, err)
	}
	h := &handle{idx: spec.Index, ctrl: stdin, events: make(chan event, 4), errc: make(chan error, 1), cmd: cmd,
		pid: cmd.Process.Pid}
	go func() {
		derr := h.decodeEvents(stdout)
		werr := cmd.Wait()
		close(h.events)
		if werr != nil {
			h.errc <- fmt.Errorf("worker %d (pid %d): %w", h.idx, h.pid, werr)
			return
		}
		h.errc <- derr
	}()
	return h, nil
}

// startInProc runs the worker in this process over pipes.
func startInProc(ctx context.Context, spec WorkerSpec, lg *zap.Logger) *handle {
	ctrlR, ctrlW := io.Pipe()
	evR, evW := io.Pipe()
	h := &handle{idx: spec.Index, ctrl: ctrlW, events: make(chan event, 4), errc: make(chan error, 1),
		pid: os.Getpid()}
	werr := make(chan error, 1)
	go func() {
		err := RunWorker(ctx, spec, ctrlR, evW, lg)
		evW.Close()
		ctrlR.Close()
		werr <- err
	}()
	go func() {
		derr := h.decodeEvents(evR)
		err := <-werr
		close(h.events)
		h.errc <- errors.Join(err, derr)
	}()
	return h
}

// send writes one control line.
func (h *handle) send(cmd string) error {
	_, err := io.WriteString(h.ctrl, cmd+"\n")
	return err
}

// await returns the next event of kind ev from every handle.
func await(ctx context.Context, hs []*handle, ev string, timeout time.Duration) ([]event, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	out := make([]event, len(hs))
	for i, h := range hs {
		select {
		case e, ok := <-h.events:
			if !ok {
				err := <-h.errc
				h.errc <- err
				return nil, fmt.Errorf("worker %d ended before %q: %v", h.idx, ev, err)
			}
			if e.Ev != ev {
				return nil, fmt.Errorf("worker %d: got event %q, want %q", h.idx, e.Ev, ev)
			}
			out[i] = e
		case <-t.C:
			return nil, fmt.Errorf("worker %d: no %q event within %s", h.idx, ev, timeout)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return out, nil
}

// stopAll ends every worker: close the control pipes, then kill children
// that have not exited within a few seconds.
func stopAll(hs []*handle) {
	for _, h := range hs {
		h.ctrl.Close()
	}
	deadline := time.After(10 * time.Second)
	for _, h := range hs {
		select {
		case err := <-h.errc:
			h.errc <- err
		case <-deadline:
			if h.cmd != nil && h.cmd.Process != nil {
				_ = h.cmd.Process.Kill()
			}
		}
	}
}

// gwSample is one reading of the gateway.
type gwSample struct {
	at      time.Time
	cpu     float64
	rss     int64
	ok      bool
	metrics procstat.Metrics
}

// probe samples the gateway from /proc and/or /metrics.
type probe struct {
	pid   int
	admin string
	lg    *zap.Logger
}

func (p *probe) sample(ctx context.Context) gwSample {
	s := gwSample{at: time.Now()}
	if p.admin != "" {
		m, err := procstat.Scrape(ctx, strings.TrimSuffix(p.admin, "/")+"/metrics")
		if err != nil {
			p.lg.Warn("gateway metrics unavailable", zap.Error(err))
		} else {
			s.metrics = m
		}
	}
	if p.pid > 0 {
		ps, err := procstat.Read(p.pid)
		if err != nil {
			p.lg.Warn("gateway /proc unreadable", zap.Int("pid", p.pid), zap.Error(err))
		} else {
			s.cpu, s.rss, s.ok = ps.CPUSeconds, ps.RSSBytes, true
		}
	} else if s.metrics != nil {
		if _, has := s.metrics["process_cpu_seconds_total"]; has {
			s.cpu = s.metrics["process_cpu_seconds_total"]
			s.rss = int64(s.metrics["process_resident_memory_bytes"])
			s.ok = true
		}
	}
	return s
}

// generator calls btcd's `generate 1` every interval until stopped.
type generator struct {
	mu        sync.Mutex
	generated int
	errors    int
	lastErr   error
}

func (g *generator) run(ctx context.Context, cl *noderpc.Client, every time.Duration) {
	t := time.NewTimer(every / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		hashes, err := cl.Generate(cctx, 1)
		cancel()
		g.mu.Lock()
		if err != nil {
			if ctx.Err() == nil {
				g.errors++
				g.lastErr = err
			}
		} else {
			g.generated += len(hashes)
		}
		g.mu.Unlock()
		t.Reset(every)
	}
}

// Run runs a load test as described by cfg and returns its report.
// workerArgs are passed to child workers after their spec (log flags).
func Run(ctx context.Context, cfg Config, lg *zap.Logger, workerArgs []string) (*Report, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if lg == nil {
		lg = zap.NewNop()
	}
	pr := &probe{pid: cfg.PID, admin: cfg.AdminURL, lg: lg}
	var gcl *noderpc.Client
	if cfg.GenerateURL != "" && cfg.GenerateEvery > 0 {
		var err error
		gcl, err = noderpc.New(noderpc.Options{URL: cfg.GenerateURL})
		if err != nil {
			return nil, fmt.Errorf("generate url: %w", err)
		}
		defer gcl.Close()
	}

	// Start the workers and wait until each has said hello.
	specs := cfg.specs()
	hs := make([]*handle, 0, len(specs))
	defer func() { stopAll(hs) }()
	for _, s := range specs {
		if cfg.Procs == 1 {
			hs = append(hs, startInProc(context.WithoutCancel(ctx), s, lg.Named("worker")))
			continue
		}
		if cfg.Exe == "" {
			return nil, errors.New("load: no executable to start workers from")
		}
		h, err := startProc(cfg.Exe, s, workerArgs)
		if err != nil {
			return nil, err
		}
		hs = append(hs, h)
	}
	if _, err := await(ctx, hs, "hello", 30*time.Second); err != nil {
		return nil, err
	}
	lg.Info("load workers started", zap.Int("procs", len(hs)), zap.Int("conns", cfg.Conns),
		zap.Int("sources", len(cfg.Sources)))

	// Connect phase.
	before := pr.sample(ctx)
	for _, h := range hs {
		if err := h.send(cmdConnect); err != nil {
			return nil, fmt.Errorf("worker %d: %w", h.idx, err)
		}
	}
	connected, err := await(ctx, hs, "connected", cfg.ConnectTimeout+cfg.HandshakeTimeout)
	if err != nil {
		return nil, err
	}
	afterConnect := pr.sample(ctx)
	nOK := 0
	for _, e := range connected {
		nOK += e.Connected.OK
	}
	lg.Info("connect phase done", zap.Int("connected", nOK), zap.Int("failed", cfg.Conns-nOK))

	// Measured run.
	goAt := time.Now()
	for _, h := range hs {
		if err := h.send(cmdGo + " " + strconv.FormatInt(goAt.UnixNano(), 10)); err != nil {
			return nil, fmt.Errorf("worker %d: %w", h.idx, err)
		}
	}
	gen := &generator{}
	genCtx, genStop := context.WithCancel(ctx)
	genDone := make(chan struct{})
	if gcl != nil {
		go func() {
			defer close(genDone)
			gen.run(genCtx, gcl, cfg.GenerateEvery)
		}()
	} else {
		close(genDone)
	}
	select {
	case <-ctx.Done():
	case <-time.After(cfg.Duration):
	}
	end := pr.sample(context.WithoutCancel(ctx))
	genStop()
	<-genDone
	for _, h := range hs {
		if err := h.send(cmdStop); err != nil {
			return nil, fmt.Errorf("worker %d: %w", h.idx, err)
		}
	}
	results, err := await(context.WithoutCancel(ctx), hs, "result", cfg.Grace+60*time.Second)
	if err != nil {
		return nil, err
	}
	for _, h := range hs {
		if err := <-h.errc; err != nil {
			lg.Warn("load worker ended with an error", zap.Int("worker", h.idx), zap.Error(err))
		}
		h.errc <- nil
	}

	rep := buildReport(&cfg, connected, results, gwSamples{before: before, connected: afterConnect, end: end})
	gen.mu.Lock()
	rep.Blocks.Generated, rep.Blocks.GenerateErrors = gen.generated, gen.errors
	if gen.lastErr != nil {
		rep.Blocks.LastError = gen.lastErr.Error()
	}
	gen.mu.Unlock()
	if cfg.GenerateEvery > 0 {
		rep.Blocks.GenerateEvery = cfg.GenerateEvery.String()
	}
	if ctx.Err() != nil {
		rep.Interrupted = true
	}
	return rep, nil
}
