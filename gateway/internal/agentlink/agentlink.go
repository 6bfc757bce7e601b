// Package agentlink is the gateway's agent port: the upstream end of the
// mineragent protocol (pkg/agentwire; its doc.go is the contract).
//
// One goroutine reads each agent link and handles its messages in order;
// a writer goroutine per link sends what the link owes (Welcome, jobs,
// pongs, acknowledgements) so that a slow agent never blocks the job feed.
//
// Shares are re-validated with the same pkg/work code as direct miners
// (job, extranonce size, ntime, version bits within the miner's mask, the
// gateway's duplicate filter, the hash against the credited difficulty).
// A batch's credit is one bus.StatsBatch whose id names the agent, its
// process, the batch's minute and the batch id, never this gateway; a
// batch is acknowledged only once that message is in JetStream, so a
// gateway killed at any moment loses nothing acknowledged, and a batch the
// agent replays to another gateway is stored once.
//
// State per agent process (agent id + Hello.Instance), the ledger, lives
// across links for the resume window: miner bindings, the highest batch id
// validated and the highest whose credit is durable (Welcome.ResumedBatch).
//
// Concurrency: Server methods are safe for concurrent use.
package agentlink

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hashgate/hashgate/pkg/agentwire"
	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/session"
	"github.com/hashgate/hashgate/pkg/stats"
	"github.com/hashgate/hashgate/pkg/work"
)

// Agent is one configured agent.
type Agent struct {
	ID     string
	Token  string
	Prefix []byte // extranonce1 prefix, the same on every gateway
}

// Creditor makes a batch's credit durable (JetStream in the gateway). It
// is retried until it succeeds or ctx ends.
type Creditor interface {
	Credit(ctx context.Context, b *bus.StatsBatch) error
}

// Options configure a Server.
type Options struct {
	Listen           string
	TLS              *tls.Config // nil: plain TCP
	Agents           []Agent
	MaxAgents        int
	HandshakeTimeout time.Duration
	IdleTimeout      time.Duration
	ResumeWindow     time.Duration
	SuffixSize       int

	Jobs     *work.Table
	Dedup    work.Deduper
	PoolMask func() uint32
	Blocks   session.BlockSink
	Events   session.EventSink // nil: no events
	Credit   Creditor          // nil: statistics disabled, acknowledge at once
	Source   string            // gateway instance, for found blocks
	Logger   *zap.Logger
	Now      func() time.Time
	Metrics  *Metrics
}

// Server is the agent port.
type Server struct {
	o      Options
	lg     *zap.Logger
	agents map[string]Agent
	ln     net.Listener

	mu      sync.Mutex
	links   map[string]*link // by agent id: the live link
	ledgers map[ledgerKey]*ledger
	closing bool

	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

type ledgerKey struct {
	agent    string
	instance uint64
}

// binding is what a MinerLogin told about a miner.
type binding struct {
	user, worker string
	en1          []byte
	mask         uint32
	peer         string
	valid        bool
}

// ledger is the state of one agent process.
type ledger struct {
	key ledgerKey
	srv *Server

	mu        sync.Mutex
	miners    map[uint32]*binding
	validated uint64
	published uint64
	changed   chan struct{} // closed and replaced when published moves
	lastSeen  time.Time
	live      int // links using it

	queue chan creditJob
}

type creditJob struct {
	id    uint64
	batch *bus.StatsBatch // nil: nothing to credit
}

// New returns a server; Serve starts it.
func New(o Options) (*Server, error) {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics()
	}
	if o.SuffixSize < 1 || o.SuffixSize > 4 {
		return nil, fmt.Errorf("agentlink: suffix size %d, want 1..4", o.SuffixSize)
	}
	s := &Server{o: o, lg: o.Logger, agents: map[string]Agent{}, links: map[string]*link{},
		ledgers: map[ledgerKey]*ledger{}}
	for _, a := range o.Agents {
		s.agents[a.ID] = a
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Listen opens the port.
func (s *Server) Listen() (net.Addr, error) {
	ln, err := net.Listen("tcp", s.o.Listen)
	if err != nil {
		return nil, fmt.Errorf("agent listen %s: %w", s.o.Listen, err)
	}
	if s.o.TLS != nil {
		ln = tls.NewListener(ln, s.o.TLS)
	}
	s.ln = ln
	return ln.Addr(), nil
}

// Serve accepts agents until ctx ends, then closes every link (Reject
// shutdown) and waits a bounded time for pending credits.
func (s *Server) Serve(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		_ = s.ln.Close()
	}()
	go s.janitor(ctx)
	var err error
	for {
		c, aerr := s.ln.Accept()
		if aerr != nil {
			if ctx.Err() == nil {
				var ne net.Error
				if errors.As(aerr, &ne) && ne.Timeout() {
					continue
				}
				err = fmt.Errorf("agent accept: %w", aerr)
			}
			break
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(c)
		}()
	}
	s.mu.Lock()
	s.closing = true
	for _, l := range s.links {
		l.shut(agentwire.RejectShutdown, "gateway shutting down")
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		s.lg.Warn("agent links did not finish within 5s of shutdown")
	}
	s.cancel()
	return err
}

// janitor forgets ledgers unused for the resume window; miners still bound
// to them get their disconnection recorded (the agent process is gone).
func (s *Server) janitor(ctx context.Context) {
	t := time.NewTicker(max(s.o.ResumeWindow/10, time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := s.o.Now()
		s.mu.Lock()
		for k, l := range s.ledgers {
			l.mu.Lock()
			expired := l.live == 0 && now.Sub(l.lastSeen) > s.o.ResumeWindow
			var gone []*binding
			if expired {
				for _, b := range l.miners {
					gone = append(gone, b)
				}
			}
			l.mu.Unlock()
			if expired {
				delete(s.ledgers, k)
				close(l.queue)
				for _, b := range gone {
					if b.valid && s.o.Events != nil {
						s.o.Events.Disconnected(now, b.user, b.worker, b.peer)
					}
				}
			}
		}
		s.mu.Unlock()
	}
}

// Broadcast sends a job to every agent (jobfeed's Broadcaster).
func (s *Server) Broadcast(_ context.Context, j *work.Job, clean bool) time.Duration {
	start := time.Now()
	m := jobMessage(j, clean)
	s.mu.Lock()
	for _, l := range s.links {
		l.send(m)
	}
	s.mu.Unlock()
	return time.Since(start)
}

func jobMessage(j *work.Job, clean bool) *agentwire.Job {
	return &agentwire.Job{ID: j.ID, Height: j.Height, PrevHash: j.PrevHash, Coinb1: j.Coinb1, Coinb2: j.Coinb2,
		MerkleBranch: j.MerkleBranch, Version: j.Version, Bits: j.Bits, NTime: j.CurTime, MinTime: j.MinTime,
		Clean: clean, NetworkDifficulty: j.NetDiff}
}

// Status describes one connected agent.
type Status struct {
	Agent    string  `json:"agent"`
	Remote   string  `json:"remote"`
	Session  string  `json:"session"`
	Miners   int     `json:"miners"`
	Batches  uint64  `json:"batches"`
	Accepted uint64  `json:"shares_accepted"`
	LastAgeS float64 `json:"last_batch_age_s"`
}

// Status lists the connected agents.
func (s *Server) Status() []Status {
	now := s.o.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Status, 0, len(s.links))
	for id, l := range s.links {
		st := Status{Agent: id, Remote: l.remote, Session: fmt.Sprintf("%016x", l.session),
			Batches: l.batches.Load(), Accepted: l.accepted.Load()}
		if t := l.lastBatch.Load(); t != 0 {
			st.LastAgeS = now.Sub(time.Unix(0, t)).Seconds()
		}
		l.led.mu.Lock()
		st.Miners = len(l.led.miners)
		l.led.mu.Unlock()
		out = append(out, st)
	}
	return out
}

// Miners counts the miners bound on connected agents.
func (s *Server) Miners() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.links {
		l.led.mu.Lock()
		n += len(l.led.miners)
		l.led.mu.Unlock()
	}
	return int64(n)
}

func randomID() uint64 {
	var b [8]byte
	for {
		_, _ = rand.Read(b[:])
		if v := binary.LittleEndian.Uint64(b[:]); v != 0 {
			return v
		}
	}
}

// ledgerFor returns (creating) the ledger of an agent process. Call with
// s.mu held.
func (s *Server) ledgerFor(k ledgerKey) *ledger {
	if l := s.ledgers[k]; l != nil {
		return l
	}
	l := &ledger{key: k, srv: s, miners: map[uint32]*binding{}, changed: make(chan struct{}),
		queue: make(chan creditJob, 1<<14)}
	s.ledgers[k] = l
	go l.publisher()
	return l
}

// publisher makes credits durable in batch order and moves published.
func (l *ledger) publisher() {
	s := l.srv
	for job := range l.queue {
		if job.batch != nil && s.o.Credit != nil {
			backoff := 100 * time.Millisecond
			for {
				ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
				start := time.Now()
				err := s.o.Credit.Credit(ctx, job.batch)
				cancel()
				if err == nil {
					s.o.Metrics.CreditLatency.Observe(time.Since(start).Seconds())
					break
				}
				if s.ctx.Err() != nil {
					return
				}
				s.o.Metrics.CreditRetries.Inc()
				s.lg.Warn("agent batch credit not stored yet; retrying", zap.String("agent", l.key.agent),
					zap.Uint64("batch", job.id), zap.Error(err))
				time.Sleep(backoff)
				backoff = min(backoff*2, 2*time.Second)
			}
		}
		l.mu.Lock()
		if job.id > l.published {
			l.published = job.id
		}
		close(l.changed)
		l.changed = make(chan struct{})
		l.mu.Unlock()
	}
}

// awaitPublished blocks until batch id is durable or done closes.
func (l *ledger) awaitPublished(id uint64, done <-chan struct{}) bool {
	for {
		l.mu.Lock()
		ok, ch := l.published >= id, l.changed
		l.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-done:
			return false
		}
	}
}

// decide checks a Hello and allocates the session (agentwire.Accept).
func (s *Server) decide(h *agentwire.Hello) (*agentwire.Welcome, *agentwire.Reject, *ledger) {
	a, known := s.agents[h.AgentID]
	good := known && subtle.ConstantTimeCompare([]byte(a.Token), []byte(h.Token)) == 1
	if !good {
		return nil, &agentwire.Reject{Code: agentwire.RejectBadToken, Message: "unknown agent id or wrong token"}, nil
	}
	cur := s.o.Jobs.Current()
	if cur == nil {
		return nil, &agentwire.Reject{Code: agentwire.RejectUnavailable, Message: "no job yet"}, nil
	}
	en2 := int(cur.Extranonce2Size) - s.o.SuffixSize
	if int(cur.Extranonce1Size) != len(a.Prefix) || en2 < 2 {
		return nil, &agentwire.Reject{Code: agentwire.RejectUnavailable, Message: fmt.Sprintf(
			"job extranonce sizes %d+%d do not fit a %d-byte prefix and %d-byte suffixes",
			cur.Extranonce1Size, cur.Extranonce2Size, len(a.Prefix), s.o.SuffixSize)}, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, &agentwire.Reject{Code: agentwire.RejectShutdown, Message: "gateway shutting down"}, nil
	}
	if _, replacing := s.links[h.AgentID]; !replacing && len(s.links) >= s.o.MaxAgents {
		return nil, &agentwire.Reject{Code: agentwire.RejectOverloaded, Message: "agent port full"}, nil
	}
	led := s.ledgerFor(ledgerKey{h.AgentID, h.Instance})
	led.mu.Lock()
	resumed := led.published
	led.live++
	led.lastSeen = s.o.Now()
	led.mu.Unlock()
	return &agentwire.Welcome{SessionID: randomID(), Extranonce1Prefix: a.Prefix,
		Extranonce1Size: uint8(len(a.Prefix) + s.o.SuffixSize), Extranonce2Size: uint8(en2),
		VersionMask: s.o.PoolMask(), ServerTime: s.o.Now().UnixNano(), ResumedBatch: resumed}, nil, led
}

// ipOf renders a miner's address for events ("" when unknown).
func ipOf(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// reasonOf maps a gateway verdict to the statistics reason.
func reasonOf(c agentwire.ResultCode) (stats.Reason, bool) {
	switch c {
	case agentwire.ResultStale:
		return stats.Stale, true
	case agentwire.ResultDuplicate:
		return stats.Duplicate, true
	case agentwire.ResultLowDifficulty:
		return stats.LowDifficulty, true
	case agentwire.ResultBadNTime:
		return stats.BadNTime, true
	case agentwire.ResultBadVersion:
		return stats.BadVersion, true
	case agentwire.ResultBadExtranonce:
		return stats.BadExtranonce2, true
	case agentwire.ResultUnknownMiner, agentwire.ResultInvalid:
		return stats.Unauthorized, true
	}
	return 0, false
}

// checkShare re-validates one share of miner b with the checks every share
// gets (work.Check) plus the agent's: a bound miner, the extranonce2 size of
// the session, and a hash meeting the difficulty the agent credited. It
// returns the verdict and, for an accepted share, what crediting needs.
func (s *Server) checkShare(now time.Time, b *binding, sh *agentwire.Share, en2Size int, scratch *[]byte) (
	agentwire.ResultCode, work.Checked) {
	switch {
	case b == nil:
		return agentwire.ResultUnknownMiner, work.Checked{}
	case !b.valid:
		return agentwire.ResultInvalid, work.Checked{}
	case len(sh.Extranonce2) != en2Size:
		return agentwire.ResultBadExtranonce, work.Checked{}
	}
	// An agent's version bits are always the header's bits under the
	// miner's mask (0 when it does not roll).
	c, reason, ok := s.o.Jobs.Check(s.o.Dedup, &work.Submission{JobID: sh.JobID, Extranonce1: b.en1,
		Extranonce2: sh.Extranonce2, NTime: sh.NTime, Nonce: sh.Nonce, Rolled: true, VersionBits: sh.VersionBits,
		Mask: b.mask}, now, scratch)
	switch {
	case !ok:
		return checkCodes[reason], c
	case !c.Block && c.Diff < sh.Difficulty:
		return agentwire.ResultLowDifficulty, c
	case c.Stale && !c.Block:
		return agentwire.ResultStale, c
	}
	return agentwire.ResultAccepted, c
}

// checkCodes are the verdicts for work.Check's rejections.
var checkCodes = [stats.NumReasons]agentwire.ResultCode{
	stats.UnknownJob: agentwire.ResultStale,
	stats.BadNTime:   agentwire.ResultBadNTime,
	stats.BadVersion: agentwire.ResultBadVersion,
	stats.Duplicate:  agentwire.ResultDuplicate,
}

// JetStreamCreditor stores credits on the statistics stream with the
// batch's id as the message id (JetStream drops a second copy within its
// duplicate window).
type JetStreamCreditor struct {
	JS      jetstream.JetStream
	Subject string // bus.Subject(prefix, coin, bus.TopicStats)
}

// Credit implements Creditor.
func (c JetStreamCreditor) Credit(ctx context.Context, b *bus.StatsBatch) error {
	_, err := c.JS.Publish(ctx, c.Subject, b.Marshal(), jetstream.WithMsgID(b.ID()))
	return err
}
