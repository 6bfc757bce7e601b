// Package blocks turns found-block share data into a block, checks it, and
// submits it to every node in parallel.
//
// The block is rebuilt from the jobmaster's own copy of the job (the gateway
// sends only job id, extranonces, ntime, nonce and version), its proof of work
// is checked against the job's bits, and it is submitted to every configured
// node with retries on transport errors. Acceptance is confirmed with
// getblockheader (and getblock, because btcd answers getblockheader only for
// main-chain blocks and submitblock null even for a side-chain block). The
// same share data always rebuilds the same bytes, and a block already handled
// is answered from memory, so a duplicate submission is harmless.
//
// Concurrency: Submitter is safe for concurrent use.
package blocks

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/hashgate/hashgate/jobmaster/internal/jobs"
	"github.com/hashgate/hashgate/jobmaster/internal/nodes"
	"github.com/hashgate/hashgate/pkg/blockutil"
	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/noderpc"
)

// MaxFutureTime is how far ahead of our clock a block's ntime may be.
const MaxFutureTime = blockutil.MaxFutureBlockTime

// Options configure a Submitter.
type Options struct {
	Pool          *nodes.Pool
	Store         *jobs.Store
	VersionMask   uint32
	Retries       int
	RetryInterval time.Duration
	Timeout       time.Duration
	Logger        *zap.Logger
	Metrics       *Metrics
	Now           func() time.Time
}

// Submitter handles found blocks.
type Submitter struct {
	o  Options
	lg *zap.Logger

	mu   sync.Mutex
	seen map[chainhash.Hash]*attempt
	ring []chainhash.Hash // insertion order, to bound seen
}

type attempt struct {
	done chan struct{}
	res  *bus.BlockResult
}

const maxSeen = 1024

// New returns a Submitter.
func New(o Options) *Submitter {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Submitter{o: o, lg: o.Logger, seen: map[chainhash.Hash]*attempt{}}
}

// Build rebuilds the block for fb and checks it against its job. It returns
// a result with status BlockInvalid or BlockUnknownJob when the share cannot
// become a block, else the raw block and its hash.
func (s *Submitter) Build(fb *bus.FoundBlock) ([]byte, *jobs.Record, *bus.BlockResult) {
	res := &bus.BlockResult{JobID: fb.JobID, User: fb.User, Worker: fb.Worker}
	rec, ok := s.o.Store.Get(fb.JobID)
	if !ok {
		res.Status, res.Reason = bus.BlockUnknownJob, fmt.Sprintf("job %q is unknown or past its grace period", fb.JobID)
		return nil, nil, res
	}
	job := rec.Job
	res.Height = job.Height
	invalid := func(format string, args ...any) ([]byte, *jobs.Record, *bus.BlockResult) {
		res.Status, res.Reason = bus.BlockInvalid, fmt.Sprintf(format, args...)
		return nil, rec, res
	}
	if len(fb.Extranonce1) != int(job.Extranonce1Size) || len(fb.Extranonce2) != int(job.Extranonce2Size) {
		return invalid("extranonce sizes %d+%d, job wants %d+%d",
			len(fb.Extranonce1), len(fb.Extranonce2), job.Extranonce1Size, job.Extranonce2Size)
	}
	if diff := uint32(fb.Version^job.Version) &^ s.o.VersionMask; diff != 0 {
		return invalid("version %08x changes bits %08x outside the rolling mask %08x",
			uint32(fb.Version), diff, s.o.VersionMask)
	}
	if fb.NTime < job.MinTime {
		return invalid("ntime %d is before the job's mintime %d", fb.NTime, job.MinTime)
	}
	if limit := s.o.Now().Add(MaxFutureTime).Unix(); int64(fb.NTime) > limit {
		return invalid("ntime %d is more than two hours ahead", fb.NTime)
	}
	cbTx, err := rec.Coinbase.MsgTx(fb.Extranonce1, fb.Extranonce2)
	if err != nil {
		return invalid("coinbase: %v", err)
	}
	root := blockutil.MerkleRootFromBranch(cbTx.TxHash(), job.MerkleBranch)
	hdr := blockutil.MakeHeader(fb.Version, &job.PrevHash, &root, fb.NTime, job.Bits, fb.Nonce)
	hash := hdr.Hash()
	res.BlockHash = hash
	if !blockutil.HashMeets(&hash, &rec.Target) {
		return invalid("high-hash: block %s does not meet the network target %08x (share difficulty %.6g, network %.6g)",
			hash, job.Bits, blockutil.HashDifficulty(&hash), rec.Target.Difficulty())
	}
	raw, err := blockutil.AssembleBlock(&hdr, cbTx, job.Txs)
	if err != nil {
		return invalid("assemble: %v", err)
	}
	return raw, rec, res
}

// Handle processes one found block end to end and returns the outcome. A
// block already handled (same hash) is answered with the earlier outcome;
// one being handled is waited for.
func (s *Submitter) Handle(ctx context.Context, fb *bus.FoundBlock) *bus.BlockResult {
	start := s.o.Now()
	raw, rec, res := s.Build(fb)
	if raw == nil {
		s.o.Metrics.Blocks.WithLabelValues(string(res.Status)).Inc()
		s.lg.Warn("found block refused", zap.String("job_id", fb.JobID), zap.String("status", string(res.Status)),
			zap.String("reason", res.Reason), zap.String("source", fb.Source), zap.String("worker", fb.User+"."+fb.Worker))
		return res
	}
	hash := res.BlockHash

	s.mu.Lock()
	if a, ok := s.seen[hash]; ok {
		s.mu.Unlock()
		select {
		case <-a.done:
		case <-ctx.Done():
			r := *res
			r.Status, r.Reason = bus.BlockSubmitted, "already being submitted"
			return &r
		}
		r := *a.res
		r.Block = nil
		return &r
	}
	a := &attempt{done: make(chan struct{})}
	s.seen[hash] = a
	s.ring = append(s.ring, hash)
	if len(s.ring) > maxSeen {
		delete(s.seen, s.ring[0])
		s.ring = s.ring[1:]
	}
	s.mu.Unlock()

	s.lg.Info("block found", zap.String("block_hash", hash.String()), zap.Int64("height", rec.Job.Height),
		zap.String("job_id", fb.JobID), zap.Bool("empty", rec.Job.Empty), zap.String("source", fb.Source),
		zap.String("worker", fb.User+"."+fb.Worker))
	res.Block = raw
	s.submitAll(ctx, hex.EncodeToString(raw), hash, res)
	s.o.Metrics.SubmitSeconds.Observe(s.o.Now().Sub(start).Seconds())
	s.o.Metrics.Blocks.WithLabelValues(string(res.Status)).Inc()
	lvl := s.lg.Info
	if res.Status == bus.BlockRejected || res.Status == bus.BlockUnreachable {
		lvl = s.lg.Error
	}
	lvl("block outcome", zap.String("block_hash", hash.String()), zap.Int64("height", res.Height),
		zap.String("status", string(res.Status)), zap.String("reason", res.Reason),
		zap.Duration("took", s.o.Now().Sub(start)))
	a.res = res
	close(a.done)
	return res
}

type nodeOutcome struct {
	node   *nodes.Node
	reject string // node's reject reason ("" = took it)
	err    error  // transport or RPC error after retries
	state  string // "best", "side", "" (unknown)
}

// submitAll submits to every node at once, then confirms.
func (s *Submitter) submitAll(ctx context.Context, blockHex string, hash chainhash.Hash, res *bus.BlockResult) {
	all := s.o.Pool.Nodes()
	outs := make([]nodeOutcome, len(all))
	var wg sync.WaitGroup
	for i, n := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i] = s.submitOne(ctx, n, blockHex, hash)
		}()
	}
	wg.Wait()

	var best, side, took, rejected, unreachable int
	var reasons []string
	for _, o := range outs {
		switch {
		case o.err != nil && noderpc.IsTransport(o.err):
			unreachable++
			reasons = append(reasons, fmt.Sprintf("%s: %v", o.node.Name, o.err))
		case o.err != nil:
			rejected++
			reasons = append(reasons, fmt.Sprintf("%s: %v", o.node.Name, o.err))
		case o.state == "best":
			best++
		case o.state == "side":
			side++
		case o.reject != "":
			rejected++
			reasons = append(reasons, fmt.Sprintf("%s: %s", o.node.Name, o.reject))
		default:
			took++
		}
	}
	switch {
	case best > 0:
		res.Status = bus.BlockAccepted
	case side > 0:
		res.Status = bus.BlockSideChain
	case took > 0:
		res.Status = bus.BlockSubmitted
	case rejected > 0:
		res.Status = bus.BlockRejected
	default:
		res.Status = bus.BlockUnreachable
	}
	res.Reason = strings.Join(reasons, "; ")
}

// submitOne submits to one node with retries on transport errors, then
// asks the node whether it holds the block.
func (s *Submitter) submitOne(ctx context.Context, n *nodes.Node, blockHex string, hash chainhash.Hash) nodeOutcome {
	out := nodeOutcome{node: n}
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
		reject, err := n.Client.SubmitBlock(cctx, blockHex)
		cancel()
		if err == nil {
			s.o.Pool.Succeeded(n)
			// "duplicate" and "inconclusive" mean the node has it or may.
			if reject == "duplicate" || reject == "inconclusive" || reject == "duplicate-inconclusive" {
				reject = ""
			}
			out.reject = reject
			break
		}
		if !noderpc.IsTransport(err) || attempt >= s.o.Retries || ctx.Err() != nil {
			if noderpc.IsTransport(err) {
				s.o.Pool.Failed(n, err)
			}
			out.err = err
			return out
		}
		s.lg.Warn("submitblock transport error; retrying", zap.String("node", n.Name), zap.Int("attempt", attempt), zap.Error(err))
		select {
		case <-time.After(s.o.RetryInterval):
		case <-ctx.Done():
			out.err = ctx.Err()
			return out
		}
	}
	out.state = s.confirm(ctx, n, hash)
	if out.state != "" {
		out.reject = "" // the node holds it, whatever submitblock said
	}
	return out
}

// confirm asks a node whether it holds the block: "best" (main chain),
// "side" (stored, not main chain) or "" (not known).
func (s *Submitter) confirm(ctx context.Context, n *nodes.Node, hash chainhash.Hash) string {
	cctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	info, err := n.Client.GetBlockHeader(cctx, hash)
	if err == nil {
		if info.Confirmations >= 1 {
			return "best"
		}
		return "side"
	}
	// btcd: getblockheader fails for blocks off the main chain, but
	// getblock still finds stored side-chain blocks.
	if _, err := n.Client.GetBlockHex(cctx, hash); err == nil {
		return "side"
	} else if !errors.Is(err, context.Canceled) {
		s.lg.Debug("block not found on node", zap.String("node", n.Name), zap.String("block_hash", hash.String()), zap.Error(err))
	}
	return ""
}

// Metrics are the submitter's collectors.
type Metrics struct {
	Blocks        *prometheus.CounterVec
	SubmitSeconds prometheus.Histogram
}

// NewMetrics creates unregistered collectors.
func NewMetrics() *Metrics {
	return &Metrics{
		Blocks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pool_jobmaster_blocks_total", Help: "Found blocks by outcome.",
		}, []string{"status"}),
		SubmitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "pool_jobmaster_submit_seconds", Help: "Found block to submission outcome.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
	}
}

// Register registers the collectors.
func (m *Metrics) Register(reg prometheus.Registerer) {
	reg.MustRegister(m.Blocks, m.SubmitSeconds)
}
