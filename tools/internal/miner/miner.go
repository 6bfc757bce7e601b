// Package miner is hgminer's CPU miner: one Stratum V1 connection, any
// number of hashing goroutines, real shares and real blocks at regtest
// difficulty.
//
// # Protocol
//
// On connect it sends, in one write, mining.configure (version-rolling,
// when enabled), mining.subscribe (with the previous session id as the
// second param after a reconnect, so the pool can give the extranonce1
// back), mining.suggest_difficulty (when set) and mining.authorize. It
// follows mining.set_difficulty (applied from the next job, as pools
// expect), mining.notify, mining.set_version_mask, mining.set_extranonce,
// client.reconnect and client.show_message. A dropped connection is
// retried with exponential backoff (0.5 s doubling to 30 s, with jitter).
//
// # Work
//
// Every job becomes a Work (job, extranonces, share target, version mask,
// clean epoch) published on a board that the hashing goroutines watch. Each
// goroutine takes a fresh extranonce2 from the session's counter (random
// start, so a resumed extranonce1 never repeats work), rolls the version
// bits within the negotiated mask, advances ntime with the job's age, and
// grinds nonces; when the nonce space is exhausted it takes the next
// extranonce2. A clean job makes shares of older jobs worthless: they are
// dropped rather than submitted.
//
// # Throttles
//
// Rate bounds hashes per second over all goroutines. ShareRate bounds
// submitted shares per second: at regtest difficulty (about 4.66e-10, the
// ceiling of any share difficulty) every other hash is a block, so without
// it even a throttled CPU would submit thousands of blocks a second.
// Hashing pauses while a found share waits for its slot.
//
// Concurrency: Run owns everything; Snapshot may be called from any
// goroutine.
package miner

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/hashgate/hashgate/pkg/blockutil"
	"github.com/hashgate/hashgate/pkg/stratum"
	"github.com/hashgate/hashgate/tools/internal/sconn"
	"github.com/hashgate/hashgate/tools/internal/work"
)

// Config configures a Miner.
type Config struct {
	// Addr is the pool, host:port.
	Addr string
	// User is the worker name ("user.worker"); Pass its password.
	User, Pass string
	// Threads is the number of hashing goroutines (at least 1).
	Threads int
	// VersionRolling asks for BIP310 version rolling.
	VersionRolling bool
	// SuggestDiff is sent with mining.suggest_difficulty when > 0.
	SuggestDiff float64
	// Rate bounds hashes per second (0: unbounded).
	Rate float64
	// ShareRate bounds submitted shares per second (0: unbounded).
	ShareRate float64
	// StatsEvery is the interval of the statistics log line.
	StatsEvery time.Duration
	// UserAgent is sent in mining.subscribe.
	UserAgent string
	// BackoffMin and BackoffMax bound the reconnect delay.
	BackoffMin, BackoffMax time.Duration
	// HandshakeTimeout bounds connect + subscribe + authorize.
	HandshakeTimeout time.Duration
	// IdleTimeout reconnects when the pool sends nothing this long.
	IdleTimeout time.Duration
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Threads < 1 {
		c.Threads = 1
	}
	if c.StatsEvery <= 0 {
		c.StatsEvery = 5 * time.Second
	}
	if c.UserAgent == "" {
		c.UserAgent = "hgminer/1.0"
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = 500 * time.Millisecond
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 30 * time.Second
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 30 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 5 * time.Minute
	}
}

// Snapshot is the miner's counters.
type Snapshot struct {
	Hashes          uint64            `json:"hashes"`
	Submitted       uint64            `json:"submitted"`
	Accepted        uint64            `json:"accepted"`
	Rejected        uint64            `json:"rejected"`
	RejectReasons   map[string]uint64 `json:"reject_reasons,omitempty"`
	BlockCandidates uint64            `json:"block_candidates"`
	BlocksAccepted  uint64            `json:"blocks_accepted"`
	Dropped         uint64            `json:"dropped"`
	Connects        uint64            `json:"connects"`
}

// Miner is a CPU miner; build it with New and call Run once.
type Miner struct {
	cfg Config
	lg  *zap.Logger

	board board
	hashL *rate.Limiter // nil: unbounded
	batch int
	// shareL bounds submissions; nil: unbounded.
	shareL *rate.Limiter

	// Counters, safe for concurrent use.
	hashes, submitted, accepted, rejected atomic.Uint64
	candidates, blocksAccepted, dropped   atomic.Uint64
	connects                              atomic.Uint64
	rmu                                   sync.Mutex
	reasons                               map[string]uint64

	// Owned by Run's goroutine.
	sessionID string // to resume with
	prevEN1   []byte // extranonce1 of the previous session
	addr      string
}

// New returns a miner for cfg (after Defaults); a nil logger discards logs.
func New(cfg Config, lg *zap.Logger) *Miner {
	cfg.Defaults()
	if lg == nil {
		lg = zap.NewNop()
	}
	m := &Miner{cfg: cfg, lg: lg, addr: cfg.Addr, reasons: map[string]uint64{}, batch: 4096}
	m.board.changed = make(chan struct{})
	if cfg.Rate > 0 {
		m.batch = int(min(max(cfg.Rate/50, 1), 4096))
		m.hashL = rate.NewLimiter(rate.Limit(cfg.Rate), m.batch)
	}
	if cfg.ShareRate > 0 {
		m.shareL = rate.NewLimiter(rate.Limit(cfg.ShareRate), 1)
	}
	return m
}

// Snapshot returns the counters.
func (m *Miner) Snapshot() Snapshot {
	s := Snapshot{Hashes: m.hashes.Load(), Submitted: m.submitted.Load(), Accepted: m.accepted.Load(),
		Rejected: m.rejected.Load(), BlockCandidates: m.candidates.Load(), BlocksAccepted: m.blocksAccepted.Load(),
		Dropped: m.dropped.Load(), Connects: m.connects.Load(), RejectReasons: map[string]uint64{}}
	m.rmu.Lock()
	for k, v := range m.reasons {
		s.RejectReasons[k] = v
	}
	m.rmu.Unlock()
	return s
}

// Run mines until ctx is done, reconnecting as needed. It returns nil
// after ctx is cancelled.
func (m *Miner) Run(ctx context.Context) error {
	m.lg.Info("miner starting", zap.String("pool", m.cfg.Addr), zap.String("worker", m.cfg.User),
		zap.Int("threads", m.cfg.Threads), zap.Float64("max_hash_rate", m.cfg.Rate),
		zap.Float64("max_share_rate", m.cfg.ShareRate), zap.Bool("version_rolling", m.cfg.VersionRolling))
	var wg sync.WaitGroup
	for i := 0; i < m.cfg.Threads; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.hashLoop(ctx)
		}()
	}
	statsDone := make(chan struct{})
	go func() {
		defer close(statsDone)
		m.statsLoop(ctx)
	}()

	backoff := m.cfg.BackoffMin
	for ctx.Err() == nil {
		started := time.Now()
		ready, err := m.session(ctx)
		m.board.set(nil)
		if ctx.Err() != nil {
			break
		}
		var rc *reconnectError
		wait := backoff
		if errors.As(err, &rc) {
			wait = max(rc.wait, 100*time.Millisecond)
			if rc.addr != "" {
				m.addr = rc.addr
			}
		}
		if ready && time.Since(started) > 10*time.Second {
			backoff = m.cfg.BackoffMin
			wait = min(wait, backoff)
		} else {
			backoff = min(2*backoff, m.cfg.BackoffMax)
		}
		wait += time.Duration(rand.Int64N(int64(wait)/4 + 1))
		m.lg.Warn("pool connection down, reconnecting", zap.String("pool", m.addr), zap.Error(err),
			zap.Duration("backoff", wait))
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	wg.Wait()
	<-statsDone
	s := m.Snapshot()
	m.lg.Info("miner stopped", zap.Uint64("accepted", s.Accepted), zap.Uint64("rejected", s.Rejected),
		zap.Uint64("block_candidates", s.BlockCandidates), zap.Uint64("hashes", s.Hashes))
	return nil
}

// statsLoop logs the counters every StatsEvery.
func (m *Miner) statsLoop(ctx context.Context) {
	t := time.NewTicker(m.cfg.StatsEvery)
	defer t.Stop()
	last, lastAt := m.Snapshot(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s := m.Snapshot()
			fields := []zap.Field{
				zap.Float64("hash_rate", float64(s.Hashes-last.Hashes)/now.Sub(lastAt).Seconds()),
				zap.Uint64("accepted", s.Accepted), zap.Uint64("rejected", s.Rejected),
				zap.Any("reject_reasons", s.RejectReasons),
				zap.Uint64("block_candidates", s.BlockCandidates), zap.Uint64("blocks_accepted", s.BlocksAccepted),
				zap.Uint64("dropped", s.Dropped),
			}
			if w, _ := m.board.get(); w != nil {
				fields = append(fields, zap.Float64("share_diff", w.diff), zap.Int64("height", w.job.Height),
					zap.String("job_id", w.job.JobID))
			} else {
				fields = append(fields, zap.Bool("connected", false))
			}
			m.lg.Info("miner stats", fields...)
			last, lastAt = s, now
		}
	}
}

// ---------------------------------------------------------------------------
// Work board

// Work is one job ready to hash for one session.
type Work struct {
	job      *work.Job
	sess     *session
	en1      []byte
	en2Size  int
	diff     float64
	target   blockutil.Target
	mask     uint32
	epoch    uint64 // session's clean-job count when this work was made
	received time.Time
}

// board publishes the current Work; changed is closed and replaced on
// every set.
type board struct {
	mu      sync.Mutex
	cur     *Work
	changed chan struct{}
}

func (b *board) set(w *Work) {
	b.mu.Lock()
	b.cur = w
	close(b.changed)
	b.changed = make(chan struct{})
	b.mu.Unlock()
}

func (b *board) get() (*Work, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cur, b.changed
}

// hashLoop is one hashing goroutine.
func (m *Miner) hashLoop(ctx context.Context) {
	var g work.Grinder
	var scratch []byte
	for ctx.Err() == nil {
		w, changed := m.board.get()
		if w == nil {
			select {
			case <-ctx.Done():
			case <-changed:
			}
			continue
		}
		en2 := make([]byte, w.en2Size)
		work.PutEN2(en2, w.sess.en2.Add(1))
		var vbits uint32
		if w.mask != 0 {
			vbits = rand.Uint32() & w.mask
		}
		ntime := w.job.NTime + uint32(time.Since(w.received)/time.Second)
		scratch = g.Reset(w.job, w.en1, en2, vbits, w.mask, ntime, scratch)
	grind:
		for !g.Exhausted() {
			select {
			case <-ctx.Done():
				return
			case <-changed:
				break grind
			default:
			}
			if m.hashL != nil && m.hashL.WaitN(ctx, m.batch) != nil {
				return
			}
			before := g.Hashes
			sh, err := g.Find(&w.target, m.batch, false)
			m.hashes.Add(g.Hashes - before)
			if err == nil {
				m.foundShare(ctx, w, sh)
			}
		}
	}
}

// foundShare waits for a submission slot and submits, unless a clean job
// or a new session made the share worthless meanwhile. Block candidates
// (hash within the network target) are counted and logged once sent.
func (m *Miner) foundShare(ctx context.Context, w *Work, sh work.Share) {
	if m.shareL != nil {
		r := m.shareL.Reserve()
		if d := r.Delay(); d > 0 {
			t := time.NewTimer(d)
			defer t.Stop()
			for waiting := true; waiting; {
				_, changed := m.board.get()
				select {
				case <-ctx.Done():
					r.Cancel()
					return
				case <-t.C:
					waiting = false
				case <-changed:
					if !m.stillValid(w) {
						r.Cancel()
						m.dropped.Add(1)
						return
					}
				}
			}
		}
	}
	if !m.stillValid(w) {
		m.dropped.Add(1)
		return
	}
	if err := w.sess.submit(w, sh); err != nil {
		m.dropped.Add(1)
		return
	}
	m.submitted.Add(1)
	if sh.Block {
		m.candidates.Add(1)
		m.lg.Info("block candidate found", zap.String("block_hash", sh.Hash.String()),
			zap.Int64("height", w.job.Height), zap.String("job_id", sh.JobID))
	}
}

// stillValid reports whether shares of w may still be submitted: same
// session, no clean job since.
func (m *Miner) stillValid(w *Work) bool {
	cur, _ := m.board.get()
	return cur != nil && cur.sess == w.sess && cur.epoch == w.epoch
}

// ---------------------------------------------------------------------------
// Session

// Request ids of the handshake; shares use ids from firstSubmitID on.
const (
	idConfigure = 1
	idSubscribe = 2
	idSuggest   = 3
	idAuthorize = 4

	firstSubmitID = 100
)

type pendingShare struct {
	sent  time.Time
	block bool
	hash  string
}

// session is one connection's state.
type session struct {
	m    *Miner
	conn *sconn.Conn

	wmu    sync.Mutex // serialises writes and guards pending, nextID, wbuf
	wbuf   []byte
	nextID uint64
	pend   map[uint64]pendingShare

	en2 atomic.Uint64 // extranonce2 counter

	// Owned by the reading goroutine.
	sub        sconn.Subscription
	subscribed bool
	authorized bool
	diff       float64
	mask       uint32
	epoch      uint64
}

// reconnectError asks for a reconnect to addr (empty: the same) after wait.
type reconnectError struct {
	addr string
	wait time.Duration
}

func (e *reconnectError) Error() string { return "pool asked to reconnect" }

// session runs one connection until it fails; ready reports whether it got
// as far as subscribed and authorized.
func (m *Miner) session(ctx context.Context) (ready bool, err error) {
	dctx, cancel := context.WithTimeout(ctx, m.cfg.HandshakeTimeout)
	conn, err := sconn.Dial(dctx, &net.Dialer{KeepAlive: 30 * time.Second}, m.addr, false, 4096)
	cancel()
	if err != nil {
		return false, fmt.Errorf("dial %s: %w", m.addr, err)
	}
	m.connects.Add(1)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()

	s := &session{m: m, conn: conn, nextID: firstSubmitID, pend: map[uint64]pendingShare{}}
	s.en2.Store(rand.Uint64())
	if err := s.handshake(); err != nil {
		return false, err
	}
	deadline := time.Now().Add(m.cfg.HandshakeTimeout)
	for {
		rd := time.Now().Add(m.cfg.IdleTimeout)
		if !s.ready() {
			rd = deadline
		}
		_ = conn.SetReadDeadline(rd)
		line, _, err := conn.ReadLine()
		if err != nil {
			if ctx.Err() != nil {
				return s.ready(), ctx.Err()
			}
			if sconn.IsTimeout(err) && !s.ready() {
				return false, errors.New("handshake timed out")
			}
			return s.ready(), fmt.Errorf("read: %w", err)
		}
		if err := s.handle(line); err != nil {
			return s.ready(), err
		}
	}
}

func (s *session) ready() bool { return s.subscribed && s.authorized }

// handshake sends configure, subscribe, suggest_difficulty and authorize
// in one write.
func (s *session) handshake() error {
	cfg := &s.m.cfg
	var b []byte
	if cfg.VersionRolling {
		b = stratum.AppendRequest(b, idConfigure, "mining.configure", []string{"version-rolling"},
			map[string]any{"version-rolling.mask": "1fffe000", "version-rolling.min-bit-count": 2})
	}
	if s.m.sessionID != "" {
		b = stratum.AppendRequest(b, idSubscribe, "mining.subscribe", cfg.UserAgent, s.m.sessionID)
	} else {
		b = stratum.AppendRequest(b, idSubscribe, "mining.subscribe", cfg.UserAgent)
	}
	if cfg.SuggestDiff > 0 {
		b = stratum.AppendRequest(b, idSuggest, "mining.suggest_difficulty", cfg.SuggestDiff)
	}
	b = stratum.AppendRequest(b, idAuthorize, "mining.authorize", cfg.User, cfg.Pass)
	return s.write(b)
}

func (s *session) write(b []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_ = s.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return s.conn.Write(b)
}

// submit sends a share.
func (s *session) submit(w *Work, sh work.Share) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	id := s.nextID
	s.nextID++
	s.wbuf = stratum.AppendSubmitRequest(s.wbuf[:0], id, s.m.cfg.User, sh.JobID, sh.EN2, sh.NTime, sh.Nonce,
		sh.VersionBits, w.mask != 0)
	_ = s.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := s.conn.Write(s.wbuf); err != nil {
		return err
	}
	s.pend[id] = pendingShare{sent: time.Now(), block: sh.Block, hash: sh.Hash.String()}
	return nil
}

// handle processes one line from the pool.
func (s *session) handle(line []byte) error {
	m := s.m
	resp, err := stratum.DecodeResponse(line)
	if err != nil {
		m.lg.Debug("unreadable line from pool", zap.ByteString("line", line))
		return nil
	}
	if resp.Method != "" {
		return s.notification(resp, line)
	}
	id := sconn.ParseID(resp.ID)
	switch id {
	case idConfigure:
		s.mask, _ = sconn.ParseConfigureResult(resp.Result)
		m.lg.Debug("configure reply", zap.String("version_mask", strconv.FormatUint(uint64(s.mask), 16)))
	case idSubscribe:
		if resp.Error != nil {
			return fmt.Errorf("subscribe refused: %w", resp.Error)
		}
		sub, err := sconn.ParseSubscribeResult(resp.Result)
		if err != nil {
			return err
		}
		resumed := m.prevEN1 != nil && bytes.Equal(m.prevEN1, sub.Extranonce1)
		s.sub, s.subscribed = sub, true
		m.sessionID, m.prevEN1 = sub.SessionID, sub.Extranonce1
		m.lg.Info("subscribed", zap.String("pool", m.addr), zap.String("session", sub.SessionID),
			zap.String("extranonce1", hex.EncodeToString(sub.Extranonce1)), zap.Int("extranonce2_size", sub.EN2Size),
			zap.Bool("resumed", resumed))
	case idSuggest:
	case idAuthorize:
		if resp.Error != nil || string(resp.Result) != "true" {
			return fmt.Errorf("worker %s not authorized: %v", m.cfg.User, resp.Error)
		}
		s.authorized = true
		m.lg.Info("authorized", zap.String("worker", m.cfg.User))
	default:
		s.wmu.Lock()
		p, ok := s.pend[id]
		delete(s.pend, id)
		s.wmu.Unlock()
		if !ok {
			return nil
		}
		if resp.Error == nil && string(resp.Result) == "true" {
			m.accepted.Add(1)
			if p.block {
				m.blocksAccepted.Add(1)
				m.lg.Info("block candidate accepted by pool", zap.String("block_hash", p.hash))
			}
			return nil
		}
		m.rejected.Add(1)
		reason := "unknown"
		if resp.Error != nil {
			reason = strconv.Itoa(resp.Error.Code) + " " + resp.Error.Message
		}
		m.rmu.Lock()
		m.reasons[reason]++
		m.rmu.Unlock()
		m.lg.Debug("share rejected", zap.String("reason", reason), zap.Duration("latency", time.Since(p.sent)))
	}
	return nil
}

// notification handles a method call from the pool.
func (s *session) notification(resp stratum.Response, line []byte) error {
	m := s.m
	switch resp.Method {
	case "mining.set_difficulty":
		d, err := stratum.ParseDifficulty(resp.Params)
		if err != nil {
			m.lg.Debug("bad set_difficulty", zap.ByteString("params", resp.Params))
			return nil
		}
		if d != s.diff {
			m.lg.Info("difficulty set", zap.Float64("share_diff", d))
		}
		s.diff = d
	case "mining.notify":
		n, err := stratum.ParseNotify(line)
		if err != nil {
			m.lg.Debug("bad mining.notify", zap.Error(err))
			return nil
		}
		return s.newJob(n)
	case "mining.set_version_mask":
		if mask, ok := sconn.ParseVersionMask(resp.Params); ok {
			s.mask = mask
		}
	case "mining.set_extranonce":
		var ps []any
		if err := json.Unmarshal(resp.Params, &ps); err == nil && len(ps) >= 2 {
			en1, _ := ps[0].(string)
			size, _ := ps[1].(float64)
			if b, err := hex.DecodeString(en1); err == nil && size >= 1 {
				s.sub.Extranonce1, s.sub.EN2Size = b, int(size)
			}
		}
	case "client.reconnect":
		host, port, wait := sconn.ParseReconnect(resp.Params)
		addr := ""
		if host != "" || port > 0 {
			h, p, _ := net.SplitHostPort(m.addr)
			if host != "" {
				h = host
			}
			if port > 0 {
				p = strconv.Itoa(port)
			}
			addr = net.JoinHostPort(h, p)
		}
		return &reconnectError{addr: addr, wait: wait}
	case "client.show_message":
		m.lg.Info("message from pool", zap.ByteString("params", resp.Params))
	default:
		m.lg.Debug("unhandled notification", zap.String("method", resp.Method))
	}
	return nil
}

// newJob publishes a job to the hashing goroutines.
func (s *session) newJob(n *stratum.Notify) error {
	m := s.m
	if !s.subscribed {
		return nil // pools send jobs only after subscribe
	}
	if s.diff <= 0 {
		s.diff = 1 // Stratum's default when no set_difficulty came first
	}
	job, err := work.NewJob(n)
	if err != nil {
		m.lg.Debug("unusable job", zap.Error(err))
		return nil
	}
	target, err := work.ShareTarget(s.diff)
	if err != nil {
		return nil
	}
	if n.Clean {
		s.epoch++
	}
	m.board.set(&Work{job: job, sess: s, en1: s.sub.Extranonce1, en2Size: s.sub.EN2Size, diff: s.diff,
		target: target, mask: s.mask, epoch: s.epoch, received: time.Now()})
	m.lg.Debug("new job", zap.String("job_id", n.JobID), zap.Int64("height", job.Height), zap.Bool("clean", n.Clean))
	return nil
}
