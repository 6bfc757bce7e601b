// Package blocksink makes sure a found block is never lost, whatever is
// down: every block is written to a spool file (fsynced) before anything
// else, handed to the jobmaster over NATS with an acknowledgement and
// retries, and if no final answer comes within FallbackAfter (or the
// jobmaster cannot use it), submitted to the configured nodes directly and
// confirmed with getblockheader/getblock (btcd answers submitblock null even
// for orphans). The spool entry is removed only when the block has a final
// outcome; after a restart, pending entries are replayed.
//
// Concurrency: Submit is safe for concurrent use and never blocks (it runs
// on gnet event loops). One goroutine (Run) does the work.
package blocksink

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/noderpc"
)

// Node is a fallback submission target.
type Node struct {
	Name   string
	Client *noderpc.Client
}

// Options configure a Sink.
type Options struct {
	Conn          *nats.Conn
	Subject       string
	AckTimeout    time.Duration
	FallbackAfter time.Duration
	SpoolDir      string
	Nodes         []Node
	Logger        *zap.Logger
	Now           func() time.Time
	Retry         time.Duration
	MaxAge        time.Duration
}

// Result is a block's outcome.
type Result struct {
	Hash   chainhash.Hash
	Status bus.BlockStatus
	Reason string
	Via    string // "jobmaster" or "fallback"
}

// Sink delivers found blocks.
type Sink struct {
	o       Options
	lg      *zap.Logger
	in      chan item
	results chan Result
	pending atomic.Int64
	m       *metrics

	items map[chainhash.Hash]*entry // owned by Run
}

type item struct {
	fb  *bus.FoundBlock
	raw []byte
}

type entry struct {
	item
	path       string
	first      time.Time
	nextTry    time.Time
	fallbackOK bool // fallback already tried
	done       bool
}

// New opens the spool directory and loads pending blocks.
func New(o Options) (*Sink, error) {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = 2 * time.Second
	}
	if o.FallbackAfter <= 0 {
		o.FallbackAfter = 3 * time.Second
	}
	if o.Retry <= 0 {
		o.Retry = 2 * time.Second
	}
	if o.MaxAge <= 0 {
		o.MaxAge = time.Hour
	}
	if err := os.MkdirAll(filepath.Join(o.SpoolDir, "failed"), 0o700); err != nil {
		return nil, fmt.Errorf("block spool %s: %w", o.SpoolDir, err)
	}
	s := &Sink{o: o, lg: o.Logger, in: make(chan item, 1024), results: make(chan Result, 64),
		m: newMetrics(), items: map[chainhash.Hash]*entry{}}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// Register registers the sink's collectors.
func (s *Sink) Register(reg prometheus.Registerer) { s.m.register(reg) }

// Pending returns the blocks without a final outcome.
func (s *Sink) Pending() int { return int(s.pending.Load()) }

// Results delivers outcomes (latest kept when nobody reads).
func (s *Sink) Results() <-chan Result { return s.results }

// Submit queues a found block. It never blocks: with the queue full the
// spool file is written by a new goroutine and picked up by Run.
func (s *Sink) Submit(fb *bus.FoundBlock, raw []byte) {
	s.pending.Add(1)
	s.m.pending.Inc()
	select {
	case s.in <- item{fb: fb, raw: raw}:
	default:
		go func() {
			if _, err := s.writeSpool(fb, raw); err != nil {
				s.lg.Error("spool found block", zap.String("block_hash", fb.BlockHash.String()), zap.Error(err))
			}
			s.in <- item{fb: fb, raw: raw}
		}()
	}
}

// Spool file: "HGBK" | u32 fb length | fb | u32 raw length | raw | u32 crc32(all before).
var spoolMagic = []byte("HGBK")

func encodeSpool(fb *bus.FoundBlock, raw []byte) []byte {
	f := fb.Marshal()
	b := make([]byte, 0, 16+len(f)+len(raw))
	b = append(b, spoolMagic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(f)))
	b = append(b, f...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(raw)))
	b = append(b, raw...)
	return binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

func decodeSpool(b []byte) (*bus.FoundBlock, []byte, error) {
	if len(b) < 16 || !bytes.Equal(b[:4], spoolMagic) {
		return nil, nil, errors.New("not a spool file")
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, nil, errors.New("checksum mismatch")
	}
	n := int(binary.LittleEndian.Uint32(body[4:8]))
	if 8+n+4 > len(body) {
		return nil, nil, errors.New("truncated")
	}
	var fb bus.FoundBlock
	if err := fb.Unmarshal(body[8 : 8+n]); err != nil {
		return nil, nil, err
	}
	rest := body[8+n:]
	m := int(binary.LittleEndian.Uint32(rest[:4]))
	if 4+m != len(rest) {
		return nil, nil, errors.New("bad block length")
	}
	var raw []byte
	if m > 0 {
		raw = append([]byte(nil), rest[4:]...)
	}
	return &fb, raw, nil
}

func (s *Sink) spoolPath(h chainhash.Hash) string {
	return filepath.Join(s.o.SpoolDir, h.String()+".blk")
}

// writeSpool writes the block durably: temp file, fsync, rename, fsync dir.
func (s *Sink) writeSpool(fb *bus.FoundBlock, raw []byte) (string, error) {
	path := s.spoolPath(fb.BlockHash)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	tmp, err := os.CreateTemp(s.o.SpoolDir, ".blk-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(encodeSpool(fb, raw)); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	if d, err := os.Open(s.o.SpoolDir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return path, nil
}

// load reads pending spool files (oldest found first); corrupt ones move to
// failed/.
func (s *Sink) load() error {
	names, err := filepath.Glob(filepath.Join(s.o.SpoolDir, "*.blk"))
	if err != nil {
		return err
	}
	type loaded struct {
		e  *entry
		at int64
	}
	var all []loaded
	for _, p := range names {
		b, err := os.ReadFile(p)
		var fb *bus.FoundBlock
		var raw []byte
		if err == nil {
			fb, raw, err = decodeSpool(b)
		}
		if err != nil {
			s.lg.Error("corrupt block spool file moved aside", zap.String("file", p), zap.Error(err))
			_ = os.Rename(p, filepath.Join(s.o.SpoolDir, "failed", filepath.Base(p)))
			continue
		}
		all = append(all, loaded{&entry{item: item{fb: fb, raw: raw}, path: p, first: s.o.Now()}, fb.FoundUnixNano})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].at < all[j].at })
	for _, l := range all {
		s.items[l.e.fb.BlockHash] = l.e
		s.pending.Add(1)
		s.m.pending.Inc()
	}
	if len(all) > 0 {
		s.lg.Warn("replaying spooled found blocks", zap.Int("blocks", len(all)))
	}
	return nil
}

// Run delivers blocks until ctx is done.
func (s *Sink) Run(ctx context.Context) error {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for _, e := range s.sorted() {
		s.attempt(ctx, e)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case it := <-s.in:
			s.accept(ctx, it)
		case <-tick.C:
			now := s.o.Now()
			for _, e := range s.sorted() {
				if !now.Before(e.nextTry) {
					s.attempt(ctx, e)
				}
			}
		}
	}
}

func (s *Sink) sorted() []*entry {
	out := make([]*entry, 0, len(s.items))
	for _, e := range s.items {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].fb.FoundUnixNano < out[j].fb.FoundUnixNano })
	return out
}

// accept spools a new block and tries to deliver it.
func (s *Sink) accept(ctx context.Context, it item) {
	h := it.fb.BlockHash
	if _, dup := s.items[h]; dup {
		s.pending.Add(-1) // counted again by Submit
		s.m.pending.Dec()
		return
	}
	path, err := s.writeSpool(it.fb, it.raw)
	if err != nil {
		s.lg.Error("spool found block; delivering from memory", zap.String("block_hash", h.String()), zap.Error(err))
	}
	e := &entry{item: it, path: path, first: s.o.Now()}
	s.items[h] = e
	s.attempt(ctx, e)
}

// attempt asks the jobmaster, falling back to the nodes.
func (s *Sink) attempt(ctx context.Context, e *entry) {
	now := s.o.Now()
	h := e.fb.BlockHash
	lg := s.lg.With(zap.String("block_hash", h.String()), zap.String("job_id", e.fb.JobID),
		zap.String("worker", e.fb.User+"."+e.fb.Worker))
	if now.Sub(e.first) > s.o.MaxAge {
		lg.Error("found block undeliverable for too long; kept in spool/failed")
		if e.path != "" {
			_ = os.Rename(e.path, filepath.Join(s.o.SpoolDir, "failed", filepath.Base(e.path)))
		}
		s.finish(e, Result{Hash: h, Status: bus.BlockUnreachable, Reason: "gave up", Via: "none"}, false)
		return
	}
	// Ask the jobmaster until FallbackAfter has passed since the block was
	// found, one AckTimeout at a time.
	deadline := e.first.Add(s.o.FallbackAfter)
	for {
		res, err := s.request(ctx, e)
		if err == nil {
			s.m.blocks.WithLabelValues(string(res.Status), "jobmaster").Inc()
			switch res.Status {
			case bus.BlockUnreachable, bus.BlockUnknownJob:
				lg.Warn("jobmaster could not submit the block; submitting it ourselves", zap.String("status", string(res.Status)),
					zap.String("reason", res.Reason))
			default:
				s.finish(e, Result{Hash: h, Status: res.Status, Reason: res.Reason, Via: "jobmaster"}, true)
				return
			}
			break
		}
		if ctx.Err() != nil || !s.o.Now().Before(deadline) {
			lg.Warn("no answer from the jobmaster; submitting the block ourselves", zap.Error(err))
			break
		}
	}
	if !e.fallbackOK {
		e.fallbackOK = true
		if r, ok := s.fallback(ctx, e, lg); ok {
			s.finish(e, r, true)
			return
		}
	}
	e.nextTry = s.o.Now().Add(s.o.Retry)
}

func (s *Sink) request(ctx context.Context, e *entry) (*bus.BlockResult, error) {
	if s.o.Conn == nil {
		return nil, errors.New("no bus connection")
	}
	cctx, cancel := context.WithTimeout(ctx, s.o.AckTimeout)
	defer cancel()
	m, err := s.o.Conn.RequestWithContext(cctx, s.o.Subject, e.fb.Marshal())
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			// Nobody listening yet: wait a little rather than spin.
			select {
			case <-time.After(min(s.o.AckTimeout, 200*time.Millisecond)):
			case <-ctx.Done():
			}
		}
		return nil, err
	}
	var res bus.BlockResult
	if err := res.Unmarshal(m.Data); err != nil {
		return nil, fmt.Errorf("jobmaster reply: %w", err)
	}
	return &res, nil
}

// fallback submits to every node and confirms; ok is true if a node holds
// the block (or rejected it for good).
func (s *Sink) fallback(ctx context.Context, e *entry, lg *zap.Logger) (Result, bool) {
	h := e.fb.BlockHash
	if len(e.raw) == 0 {
		lg.Error("cannot submit the block ourselves: the job came without its transactions")
		return Result{}, false
	}
	if len(s.o.Nodes) == 0 {
		lg.Error("no fallback nodes configured; the block waits for the jobmaster")
		return Result{}, false
	}
	hexBlock := hex.EncodeToString(e.raw)
	type out struct {
		state  string // best, side, rejected, ""
		reason string
	}
	outs := make([]out, len(s.o.Nodes))
	var wg sync.WaitGroup
	for i, n := range s.o.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			reject, err := n.Client.SubmitBlock(cctx, hexBlock)
			if err != nil {
				outs[i] = out{reason: fmt.Sprintf("%s: %v", n.Name, err)}
				if !noderpc.IsTransport(err) {
					outs[i].state = "rejected"
				}
				return
			}
			if info, err := n.Client.GetBlockHeader(cctx, h); err == nil {
				if info.Confirmations >= 1 {
					outs[i].state = "best"
				} else {
					outs[i].state = "side"
				}
				return
			}
			if _, err := n.Client.GetBlockHex(cctx, h); err == nil {
				outs[i].state = "side"
				return
			}
			if reject != "" {
				outs[i] = out{state: "rejected", reason: n.Name + ": " + reject}
			}
		}()
	}
	wg.Wait()
	var reasons []string
	best, side, rejected := 0, 0, 0
	for _, o := range outs {
		switch o.state {
		case "best":
			best++
		case "side":
			side++
		case "rejected":
			rejected++
		}
		if o.reason != "" {
			reasons = append(reasons, o.reason)
		}
	}
	r := Result{Hash: h, Via: "fallback", Reason: strings.Join(reasons, "; ")}
	switch {
	case best > 0:
		r.Status = bus.BlockAccepted
	case side > 0:
		r.Status = bus.BlockSideChain
	case rejected == len(outs):
		r.Status = bus.BlockRejected
	default:
		s.m.fallback.WithLabelValues("unreachable").Inc()
		lg.Error("fallback submission reached no node", zap.String("reason", r.Reason))
		return r, false
	}
	s.m.fallback.WithLabelValues(string(r.Status)).Inc()
	s.m.blocks.WithLabelValues(string(r.Status), "fallback").Inc()
	lg.Info("block submitted by the gateway", zap.String("status", string(r.Status)), zap.String("reason", r.Reason))
	return r, true
}

// finish records a final outcome and removes the spool file.
func (s *Sink) finish(e *entry, r Result, removeFile bool) {
	delete(s.items, e.fb.BlockHash)
	s.pending.Add(-1)
	s.m.pending.Dec()
	if removeFile && e.path != "" {
		_ = os.Remove(e.path)
	}
	select {
	case s.results <- r:
	default:
		select {
		case <-s.results:
		default:
		}
		s.results <- r
	}
}

type metrics struct {
	blocks   *prometheus.CounterVec
	pending  prometheus.Gauge
	fallback *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		blocks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pool_gateway_blocks_total", Help: "Found blocks by outcome and by who submitted them.",
		}, []string{"status", "via"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pool_gateway_block_spool_pending", Help: "Found blocks without a final outcome yet.",
		}),
		fallback: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pool_gateway_block_fallback_total", Help: "Gateway's own submissions by result.",
		}, []string{"result"}),
	}
}

func (m *metrics) register(reg prometheus.Registerer) {
	reg.MustRegister(m.blocks, m.pending, m.fallback)
}
