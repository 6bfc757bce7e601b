// Package uplink is the mineragent's side of the agent link (pkg/agentwire):
// one connection to the first reachable gateway of an ordered list, the
// miners' logins and logouts as events, their accepted shares in batches
// every ~100 ms, block candidates at once, and a replay queue so that
// nothing accepted is lost when the link or a gateway dies.
//
// The Client implements session.Upstream (and session.RejectCounter): the
// Stratum sessions call it on their event loops, under one short mutex,
// and never wait for the network. A sender goroutine closes batches and
// writes them; a reader goroutine per link handles jobs, acknowledgements
// and pings. The replay rules are those of the agentwire package
// documentation ("Acknowledgement, replay and de-duplication").
package uplink

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unique"

	"go.uber.org/zap"

	"github.com/hashgate/hashgate/pkg/agentwire"
	"github.com/hashgate/hashgate/pkg/session"
	"github.com/hashgate/hashgate/pkg/stats"
)

// Server is one gateway agent port.
type Server struct {
	Addr string
	TLS  *tls.Config // nil: plain TCP
}

// Handler receives what the gateway sends for the miners. Its methods run
// on the link's goroutines; they may block briefly (a job fan-out).
type Handler interface {
	// Welcome is called for every accepted handshake before the session's
	// first job: the extranonce space and version mask may differ from the
	// previous session's.
	Welcome(w *agentwire.Welcome)
	// Job is called for every job, in order.
	Job(j *agentwire.Job)
}

// Options configure a Client.
type Options struct {
	Servers  []Server
	AgentID  string
	Token    string
	Software string
	// Instance identifies this agent process (random, never 0).
	Instance uint64
	Codec    agentwire.Codec

	BatchInterval    time.Duration
	DialTimeout      time.Duration
	HandshakeTimeout time.Duration
	PingInterval     time.Duration
	ReadTimeout      time.Duration
	RetryInterval    time.Duration
	// FailbackAfter: on a server other than the first for this long, probe
	// the first and move back if it answers (0: never).
	FailbackAfter time.Duration
	// MaxReplayAge and MaxReplayShares bound the unacknowledged queue.
	MaxReplayAge    time.Duration
	MaxReplayShares int

	Handler Handler
	Logger  *zap.Logger
	Now     func() time.Time
}

// miner is what the agent knows about one authorized worker of a session:
// what its MinerLogin says (loginMsg) and the state of its events. The
// agent holds one per miner, so it is kept small (a test holds it to its
// size class).
type miner struct {
	user, worker string
	peer         string                // the session's PeerIP (parsed for the login)
	userAgent    unique.Handle[string] // zero: none
	// loginSent / logoutSent: the batch id whose acknowledgement confirms
	// the event on this link (0: not sent on this link).
	loginSent, logoutSent uint64
	lastRef               uint64 // highest batch id with a share or reject of this miner
	id                    uint32
	versionMask           uint32
	// suffix[:suffixLen] is the extranonce1 suffix; a longer one (no
	// gateway grants one today) is in Client.longSuffix.
	suffix    [8]byte
	suffixLen uint8
	// waitEn1: authorized before subscribing; announced once the session
	// has its extranonce1 (its first share or reject).
	waitEn1           bool
	loginOK, logoutOK bool
	gone              bool
	reannounce        bool // changed after its login was sent
	dirty             bool // in Client.dirty
}

// entry is one unacknowledged ShareBatch or Block.
type entry struct {
	id     uint64
	msg    agentwire.Message
	shares int
	at     time.Time
}

type rejectKey struct {
	miner  uint32
	reason uint8
}

// Client is the agent's upstream link.
type Client struct {
	o  Options
	lg *zap.Logger

	sendMu sync.Mutex // serialises what is written to a link, in batch id order

	mu        sync.Mutex
	nextMiner uint32
	miners    map[uint32]*miner
	// longSuffix holds the extranonce1 suffixes longer than miner.suffix,
	// by miner id.
	longSuffix map[uint32][]byte
	dirty      []*miner
	cur        *agentwire.ShareBatch
	slab       []byte
	rejects    map[rejectKey]uint32
	full       []*agentwire.ShareBatch // closed early (size), awaiting ids
	blocks     []*agentwire.Block      // awaiting ids
	queue      []entry
	queued     int // shares in queue
	nextBatch  uint64
	lastAcked  uint64
	needBatch  bool // a logout was sent: the next flush sends a batch to confirm it
	sessionID  uint64
	prefixLen  int
	en1Size    int
	offset     time.Duration // gateway clock minus ours
	conn       *agentwire.Conn
	server     string
	since      time.Time // linked since, or unlinked since
	rtt        time.Duration

	kick chan struct{}

	linked    atomic.Bool
	counters  counters
	bytesPrev agentwire.Stats // closed links' totals
}

type counters struct {
	batchesSent, batchesAcked, batchesReplayed, batchesDropped atomic.Uint64
	sharesDropped, ackDuplicate, connects, failovers           atomic.Uint64
	results                                                    [16]atomic.Uint64 // by ResultCode (last: others)
}

// New returns a Client; Run connects it.
func New(o Options) (*Client, error) {
	switch {
	case len(o.Servers) == 0:
		return nil, errors.New("uplink: no servers")
	case o.Instance == 0:
		return nil, errors.New("uplink: instance 0")
	case o.Handler == nil:
		return nil, errors.New("uplink: no handler")
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Client{o: o, lg: o.Logger, miners: map[uint32]*miner{}, longSuffix: map[uint32][]byte{},
		rejects: map[rejectKey]uint32{},
		cur:     new(agentwire.ShareBatch), nextBatch: 1, kick: make(chan struct{}, 1), since: o.Now()}
	return c, nil
}

// ---------------------------------------------------------------------------
// session.Upstream: called on the Stratum event loops, never blocks.

// Login implements session.Upstream.
func (c *Client) Login(s *session.Session, user, worker string) uint32 {
	ua := s.UserAgent()
	if len(ua) > agentwire.MaxUserAgentLen {
		ua = ua[:agentwire.MaxUserAgentLen]
	}
	m := &miner{user: user, worker: worker, peer: s.PeerIP(), versionMask: s.VersionMask()}
	if ua != "" {
		m.userAgent = unique.Make(ua) // the session's own: shared
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextMiner++
	if c.nextMiner == 0 {
		c.nextMiner++ // 2^32 logins in one process: ids would repeat; practically never
	}
	m.id = c.nextMiner
	c.miners[m.id] = m
	if !c.setSuffix(m, s.Extranonce1()) {
		m.waitEn1 = true
		return m.id
	}
	c.markDirty(m)
	return m.id
}

// setSuffix fills the miner's extranonce1 suffix from the session's
// extranonce1; false if the session has none (yet) of the current layout.
func (c *Client) setSuffix(m *miner, en1 []byte) bool {
	if en1 == nil || len(en1) != c.en1Size || c.prefixLen > len(en1) {
		return false
	}
	sfx := en1[c.prefixLen:]
	if len(sfx) > len(m.suffix) {
		c.longSuffix[m.id] = append([]byte(nil), sfx...)
		m.suffixLen = 0
		return true
	}
	delete(c.longSuffix, m.id)
	m.suffixLen = uint8(copy(m.suffix[:], sfx))
	return true
}

// extranonce1Suffix returns the miner's extranonce1 suffix (nil: none).
// The caller must not modify it.
func (c *Client) extranonce1Suffix(m *miner) []byte {
	if m.suffixLen > 0 {
		return m.suffix[:m.suffixLen]
	}
	return c.longSuffix[m.id]
}

// forget drops a miner. Called with mu held.
func (c *Client) forget(id uint32) {
	delete(c.miners, id)
	delete(c.longSuffix, id)
}

func (c *Client) markDirty(m *miner) {
	if !m.dirty {
		m.dirty = true
		c.dirty = append(c.dirty, m)
	}
}

// refresh notices what changed in the session since the miner's login:
// its extranonce1 arrived, or its version mask changed (a new pool mask).
func (c *Client) refresh(m *miner, s *session.Session) {
	if m.waitEn1 {
		if c.setSuffix(m, s.Extranonce1()) {
			m.waitEn1 = false
			m.versionMask = s.VersionMask()
			c.markDirty(m)
		}
		return
	}
	if mask := s.VersionMask(); mask != m.versionMask {
		m.versionMask = mask
		if m.loginOK || m.loginSent != 0 {
			m.reannounce = true
		}
		c.markDirty(m)
	}
}

// Logout implements session.Upstream.
func (c *Client) Logout(_ *session.Session, id uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.miners[id]
	if m == nil || m.gone {
		return
	}
	if m.waitEn1 {
		c.forget(id) // never announced, nothing refers to it
		return
	}
	m.gone = true
	c.markDirty(m)
}

// Share implements session.Upstream.
func (c *Client) Share(s *session.Session, id uint32, sh *session.AcceptedShare) {
	now := c.o.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.miners[id]
	if m == nil {
		return
	}
	c.refresh(m, s)
	if len(c.slab)+len(sh.Extranonce2) > cap(c.slab) {
		c.slab = make([]byte, 0, 4096)
	}
	start := len(c.slab)
	c.slab = append(c.slab, sh.Extranonce2...)
	share := agentwire.Share{MinerID: id, JobID: sh.Job.ID, Extranonce2: c.slab[start:len(c.slab):len(c.slab)],
		NTime: sh.NTime, Nonce: sh.Nonce, VersionBits: sh.VersionBits, Difficulty: sh.Difficulty}
	if sh.Block {
		c.blocks = append(c.blocks, &agentwire.Block{Time: now.Add(c.offset).Unix(), Share: share,
			User: m.user, Worker: m.worker, Hash: sh.Hash})
		c.signal()
		return
	}
	c.cur.Shares = append(c.cur.Shares, share)
	if len(c.cur.Shares) >= agentwire.MaxBatchShares {
		c.closeCur()
		c.signal()
	}
}

// Reject implements session.RejectCounter.
func (c *Client) Reject(s *session.Session, id uint32, reason stats.Reason) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.miners[id]
	if m == nil {
		return
	}
	c.refresh(m, s)
	c.rejects[rejectKey{id, uint8(reason)}]++
	if len(c.rejects) >= agentwire.MaxBatchRejects {
		c.closeCur()
		c.signal()
	}
}

func (c *Client) signal() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// closeCur moves the open batch (with its reject counts) to c.full.
// Called with mu held.
func (c *Client) closeCur() {
	b := c.cur
	if len(c.rejects) > 0 {
		b.Rejects = make([]agentwire.RejectCount, 0, len(c.rejects))
		for k, n := range c.rejects {
			b.Rejects = append(b.Rejects, agentwire.RejectCount{MinerID: k.miner, Reason: k.reason, Count: n})
		}
		slices.SortFunc(b.Rejects, func(x, y agentwire.RejectCount) int {
			if c := cmp.Compare(x.MinerID, y.MinerID); c != 0 {
				return c
			}
			return cmp.Compare(x.Reason, y.Reason)
		})
		clear(c.rejects)
	}
	c.full = append(c.full, b)
	c.cur = &agentwire.ShareBatch{Shares: make([]agentwire.Share, 0, max(16, len(b.Shares)))}
}

// ---------------------------------------------------------------------------
// Sending.

// collect closes the open batch and builds the next write unit: logins,
// (on a new link, the replay of every unacknowledged batch), the new
// batches and blocks, logouts. It assigns batch ids and queues batches for
// replay whether or not a link is up; events are only marked sent when
// one is (linked). Called with sendMu and mu held.
func (c *Client) collect(now time.Time, linked, full bool) []agentwire.Message {
	c.dropOld(now)
	var pre, post []agentwire.Message
	var announced, loggedOut []*miner
	if linked && full {
		// A new link: every miner the gateway may need, from scratch.
		first := c.firstPending()
		ids := make([]uint32, 0, len(c.miners))
		for id := range c.miners {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			m := c.miners[id]
			m.dirty, m.loginSent, m.logoutSent = false, 0, 0
			if m.waitEn1 {
				continue
			}
			referenced := m.lastRef >= first
			resumed := false
			switch {
			case !m.loginOK:
				pre = append(pre, c.loginMsg(m, false))
				announced = append(announced, m)
			case !m.gone || referenced || !m.logoutOK:
				pre = append(pre, c.loginMsg(m, true))
				resumed = true
			}
			m.reannounce = false
			if m.gone {
				switch {
				case !m.logoutOK:
					post = append(post, &agentwire.MinerLogout{MinerID: id})
					loggedOut = append(loggedOut, m)
				case resumed:
					post = append(post, &agentwire.MinerLogout{MinerID: id, Quiet: true})
				}
			}
		}
		c.dirty = c.dirty[:0]
	} else if linked {
		for _, m := range c.dirty {
			m.dirty = false
			if m.waitEn1 {
				continue
			}
			switch {
			case !m.loginOK && m.loginSent == 0:
				pre = append(pre, c.loginMsg(m, false))
				announced = append(announced, m)
				m.reannounce = false
			case m.reannounce:
				pre = append(pre, c.loginMsg(m, true))
				m.reannounce = false
			}
			if m.gone && !m.logoutOK && m.logoutSent == 0 {
				post = append(post, &agentwire.MinerLogout{MinerID: m.id})
				loggedOut = append(loggedOut, m)
			}
		}
		c.dirty = c.dirty[:0]
	}

	if len(c.cur.Shares) > 0 || len(c.rejects) > 0 || (linked && (len(pre)+len(post) > 0 || c.needBatch || full)) {
		c.closeCur()
	}
	var replay []agentwire.Message
	if linked && full {
		for _, e := range c.queue {
			replay = append(replay, e.msg)
		}
		c.counters.batchesReplayed.Add(uint64(len(replay)))
	}
	stamp := now.Add(c.offset).Unix()
	var fresh []agentwire.Message
	for _, b := range c.full {
		b.BatchID, b.Time = c.nextBatch, stamp
		c.nextBatch++
		b.Sort()
		for i := range b.Shares {
			c.ref(b.Shares[i].MinerID, b.BatchID)
		}
		for i := range b.Rejects {
			c.ref(b.Rejects[i].MinerID, b.BatchID)
		}
		c.queue = append(c.queue, entry{id: b.BatchID, msg: b, shares: len(b.Shares), at: now})
		c.queued += len(b.Shares)
		fresh = append(fresh, b)
	}
	c.full = c.full[:0]
	for _, b := range c.blocks {
		b.BatchID = c.nextBatch
		c.nextBatch++
		c.ref(b.Share.MinerID, b.BatchID)
		c.queue = append(c.queue, entry{id: b.BatchID, msg: b, shares: 1, at: now})
		c.queued++
		fresh = append(fresh, b)
	}
	c.blocks = c.blocks[:0]
	if !linked {
		return nil
	}
	c.counters.batchesSent.Add(uint64(len(fresh)))
	last := c.nextBatch - 1
	for _, m := range announced {
		m.loginSent = last
	}
	for _, m := range loggedOut {
		m.logoutSent = c.nextBatch // confirmed by the next batch
	}
	c.needBatch = len(loggedOut) > 0
	msgs := make([]agentwire.Message, 0, len(pre)+len(replay)+len(fresh)+len(post))
	msgs = append(append(append(append(msgs, pre...), replay...), fresh...), post...)
	return msgs
}

// loginMsg returns the miner's MinerLogin. Its suffix is the miner's own
// (announced miners' never change). Called with mu held.
func (c *Client) loginMsg(m *miner, resumed bool) *agentwire.MinerLogin {
	ip, _ := netip.ParseAddr(m.peer)
	l := &agentwire.MinerLogin{MinerID: m.id, Resumed: resumed, Extranonce1Suffix: c.extranonce1Suffix(m),
		User: m.user, Worker: m.worker, VersionMask: m.versionMask, PeerIP: ip.Unmap()}
	if m.userAgent != (unique.Handle[string]{}) {
		l.UserAgent = m.userAgent.Value()
	}
	return l
}

func (c *Client) ref(id uint32, batch uint64) {
	if m := c.miners[id]; m != nil && batch > m.lastRef {
		m.lastRef = batch
	}
}

// firstPending is the lowest unacknowledged batch id (nextBatch if none).
func (c *Client) firstPending() uint64 {
	if len(c.queue) > 0 {
		return c.queue[0].id
	}
	return c.nextBatch
}

// dropOld enforces max_replay_age and max_replay_shares on the queue.
func (c *Client) dropOld(now time.Time) {
	n := 0
	for n < len(c.queue) && (now.Sub(c.queue[n].at) > c.o.MaxReplayAge || c.queued > c.o.MaxReplayShares) {
		c.queued -= c.queue[n].shares
		c.counters.sharesDropped.Add(uint64(c.queue[n].shares))
		n++
	}
	if n > 0 {
		c.counters.batchesDropped.Add(uint64(n))
		c.lg.Warn("unacknowledged batches dropped (max_replay_age / max_replay_shares)", zap.Int("batches", n),
			zap.Uint64("first", c.queue[0].id), zap.Uint64("last", c.queue[n-1].id))
		c.queue = slices.Delete(c.queue, 0, n)
		c.prune()
	}
}

// flush sends what is due on the current link (or only queues it).
func (c *Client) flush(full bool) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	return c.flushLocked(full)
}

func (c *Client) flushLocked(full bool) error {
	now := c.o.Now()
	c.mu.Lock()
	conn := c.conn
	msgs := c.collect(now, conn != nil, full)
	c.mu.Unlock()
	if conn == nil || len(msgs) == 0 {
		return nil
	}
	return conn.WriteMessages(msgs...)
}

// ---------------------------------------------------------------------------
// Receiving.

// onAck handles one BatchAck.
func (c *Client) onAck(a *agentwire.BatchAck) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for n < len(c.queue) && c.queue[n].id <= a.BatchID {
		c.queued -= c.queue[n].shares
		n++
	}
	if n > 0 && c.queue[n-1].id != a.BatchID {
		c.lg.Warn("acknowledgement for a batch not waiting for one", zap.Uint64("batch", a.BatchID))
	}
	if n > 1 {
		c.lg.Warn("acknowledgements skipped batches", zap.Uint64("batch", a.BatchID), zap.Int("popped", n))
	}
	c.queue = slices.Delete(c.queue, 0, n)
	c.lastAcked = max(c.lastAcked, a.BatchID)
	c.counters.batchesAcked.Add(1)
	if a.Duplicate {
		c.counters.ackDuplicate.Add(1)
	}
	for _, r := range a.Results {
		c.counters.results[min(int(r), len(c.counters.results)-1)].Add(1)
	}
	c.prune()
}

// prune confirms events covered by acknowledgements and forgets miners that
// left and that no unacknowledged batch refers to. Called with mu held.
func (c *Client) prune() {
	first := c.firstPending()
	for id, m := range c.miners {
		if m.loginSent != 0 && m.loginSent <= c.lastAcked {
			m.loginOK, m.loginSent = true, 0
		}
		if m.logoutSent != 0 && m.logoutSent <= c.lastAcked {
			m.logoutOK, m.logoutSent = true, 0
		}
		if m.gone && m.logoutOK && m.lastRef < first && !m.dirty {
			c.forget(id)
		}
	}
}

// ---------------------------------------------------------------------------
// The link.

// Run keeps a link up until ctx is done, then flushes what is left, waits
// for its acknowledgement (bounded by drain) and closes the link.
func (c *Client) Run(ctx context.Context, drain time.Duration) error {
	sendDone := make(chan struct{})
	sendCtx, stopSend := context.WithCancel(context.Background())
	go func() { defer close(sendDone); c.sender(sendCtx) }()
	defer func() { stopSend(); <-sendDone }()

	round := 0
	for ctx.Err() == nil {
		linkedAny := false
		for i := range c.o.Servers {
			if ctx.Err() != nil {
				break
			}
			l, err := c.connect(ctx, i)
			if err != nil {
				c.logConnectError(i, err)
				continue
			}
			linkedAny = true
			c.serve(ctx, l, drain)
			break // after a link ends, start again from the first server
		}
		if linkedAny {
			round = 0
			continue
		}
		round++
		wait := c.o.RetryInterval
		if round > 10 {
			wait = min(wait*5, 30*time.Second) // a long outage: retry less eagerly
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	return nil
}

func (c *Client) logConnectError(i int, err error) {
	addr := c.o.Servers[i].Addr
	var rej *agentwire.Reject
	var ve *agentwire.VersionError
	switch {
	case errors.As(err, &rej) && rej.Code == agentwire.RejectBadToken:
		c.lg.Error("gateway refused the agent id or token", zap.String("server", addr), zap.String("reason", rej.Message))
	case errors.As(err, &ve):
		c.lg.Error("gateway speaks another protocol version", zap.String("server", addr), zap.Error(err))
	default:
		c.lg.Warn("upstream connect failed", zap.String("server", addr), zap.Error(err))
	}
}

// link is one established connection.
type link struct {
	idx     int
	nc      net.Conn
	conn    *agentwire.Conn
	welcome *agentwire.Welcome
}

// connect dials server i and runs the handshake.
func (c *Client) connect(ctx context.Context, i int) (*link, error) {
	srv := c.o.Servers[i]
	d := net.Dialer{Timeout: c.o.DialTimeout, KeepAlive: 15 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", srv.Addr)
	if err != nil {
		return nil, err
	}
	_ = nc.SetDeadline(time.Now().Add(c.o.HandshakeTimeout))
	if srv.TLS != nil {
		tc := tls.Client(nc, srv.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("tls: %w", err)
		}
		nc = tc
	}
	conn := agentwire.NewConn(nc, agentwire.Options{Codec: c.o.Codec})
	c.mu.Lock()
	hello := &agentwire.Hello{AgentID: c.o.AgentID, Token: c.o.Token, Software: c.o.Software,
		PrevSession: c.sessionID, LastAcked: c.lastAcked, Instance: c.o.Instance}
	c.mu.Unlock()
	w, err := agentwire.Greet(conn, hello)
	if err != nil {
		c.addStats(conn.Stats())
		conn.Close()
		nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return &link{idx: i, nc: nc, conn: conn, welcome: w}, nil
}

// serve runs one link until it fails, ctx is done or a failback moves on.
func (c *Client) serve(ctx context.Context, l *link, drain time.Duration) {
	addr := c.o.Servers[l.idx].Addr
	w := l.welcome
	c.mu.Lock()
	if c.en1Size != 0 && (c.prefixLen != len(w.Extranonce1Prefix) || c.en1Size != int(w.Extranonce1Size)) {
		c.lg.Warn("the gateway grants another extranonce layout than the previous one: miners are moved",
			zap.String("server", addr))
	}
	c.prefixLen, c.en1Size = len(w.Extranonce1Prefix), int(w.Extranonce1Size)
	c.mu.Unlock()
	c.o.Handler.Welcome(w)

	c.sendMu.Lock()
	now := c.o.Now()
	c.mu.Lock()
	prevServer := c.server
	c.offset = time.Duration(w.ServerTime - now.UnixNano())
	c.sessionID = w.SessionID
	dropped := 0
	for dropped < len(c.queue) && c.queue[dropped].id <= w.ResumedBatch {
		c.queued -= c.queue[dropped].shares
		dropped++
	}
	c.queue = slices.Delete(c.queue, 0, dropped)
	c.lastAcked = max(c.lastAcked, w.ResumedBatch)
	c.prune()
	c.conn, c.server, c.since = l.conn, addr, now
	pending := len(c.queue)
	c.mu.Unlock()
	c.linked.Store(true)
	c.counters.connects.Add(1)
	if prevServer != "" && prevServer != addr {
		c.counters.failovers.Add(1)
	}
	c.lg.Info("upstream linked", zap.String("server", addr), zap.Uint64("session", w.SessionID),
		zap.Uint64("resumed_batch", w.ResumedBatch), zap.Int("replaying", pending),
		zap.String("extranonce1_prefix", fmt.Sprintf("%x", w.Extranonce1Prefix)),
		zap.Duration("clock_offset", c.offset))
	_ = l.nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	err := c.flushLocked(true)
	c.sendMu.Unlock()

	readDone := make(chan error, 1)
	if err == nil {
		go func() { readDone <- c.reader(l) }()
	} else {
		readDone <- err
	}
	ping := time.NewTicker(c.o.PingInterval)
	defer ping.Stop()
	var failback <-chan time.Time
	if l.idx > 0 && c.o.FailbackAfter > 0 {
		t := time.NewTicker(c.o.FailbackAfter)
		defer t.Stop()
		failback = t.C
	}
	reason := ""
loop:
	for {
		select {
		case err := <-readDone:
			reason = describe(err)
			readDone = nil
			break loop
		case <-ping.C:
			_ = l.nc.SetWriteDeadline(time.Now().Add(c.o.ReadTimeout))
			if err := l.conn.WriteMessages(&agentwire.Ping{Time: time.Now().UnixNano()}); err != nil {
				reason = "ping: " + err.Error()
				break loop
			}
		case <-failback:
			if c.probe(ctx, 0) {
				reason = "failback to " + c.o.Servers[0].Addr
				break loop
			}
		case <-ctx.Done():
			reason = "shutdown"
			c.finish(l, drain)
			break loop
		}
	}

	c.sendMu.Lock()
	c.mu.Lock()
	// Events sent on this link stay unconfirmed until an acknowledgement
	// (or the next gateway's Welcome.ResumedBatch) covers them; the next
	// link announces whatever is still unconfirmed.
	c.conn = nil
	c.since = c.o.Now()
	c.mu.Unlock()
	c.linked.Store(false)
	c.sendMu.Unlock()
	l.conn.Close()
	l.nc.Close()
	if readDone != nil {
		<-readDone
	}
	c.addStats(l.conn.Stats())
	if ctx.Err() == nil {
		c.lg.Warn("upstream link lost", zap.String("server", addr), zap.String("reason", reason))
	} else {
		c.lg.Info("upstream link closed", zap.String("server", addr), zap.String("reason", reason))
	}
}

// finish flushes what is left, waits for its acknowledgement (up to drain)
// and tells the gateway the agent is going.
func (c *Client) finish(l *link, drain time.Duration) {
	_ = l.nc.SetWriteDeadline(time.Now().Add(drain))
	if err := c.flush(false); err != nil {
		return
	}
	deadline := time.Now().Add(drain)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		left := len(c.queue)
		c.mu.Unlock()
		if left == 0 || !c.linked.Load() {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.mu.Lock()
	if left := len(c.queue); left > 0 {
		c.lg.Warn("shutting down with unacknowledged batches", zap.Int("batches", left), zap.Int("shares", c.queued))
	}
	c.mu.Unlock()
	c.sendMu.Lock()
	_ = l.conn.WriteMessages(&agentwire.Reject{Code: agentwire.RejectShutdown, Message: "agent shutting down"})
	c.sendMu.Unlock()
}

// probe reports whether server i accepts TCP connections.
func (c *Client) probe(ctx context.Context, i int) bool {
	d := net.Dialer{Timeout: c.o.DialTimeout}
	nc, err := d.DialContext(ctx, "tcp", c.o.Servers[i].Addr)
	if err != nil {
		return false
	}
	nc.Close()
	return true
}

// reader handles the gateway's messages until the link fails.
func (c *Client) reader(l *link) error {
	for {
		_ = l.nc.SetReadDeadline(time.Now().Add(c.o.ReadTimeout))
		msg, err := l.conn.ReadMessage()
		if err != nil {
			if agentwire.IsProtocolError(err) {
				_ = l.conn.WriteMessages(&agentwire.Reject{Code: agentwire.RejectProtocol,
					Message: truncate(err.Error(), agentwire.MaxReasonLen)})
			}
			return err
		}
		switch m := msg.(type) {
		case *agentwire.Job:
			c.o.Handler.Job(m)
		case *agentwire.BatchAck:
			c.onAck(m)
		case *agentwire.Ping:
			if err := l.conn.WriteMessages(&agentwire.Pong{Echo: m.Time, Time: time.Now().UnixNano()}); err != nil {
				return err
			}
		case *agentwire.Pong:
			if m.Echo > 0 {
				c.mu.Lock()
				c.rtt = time.Duration(time.Now().UnixNano() - m.Echo)
				c.mu.Unlock()
			}
		case *agentwire.Reject:
			return m
		default:
			_ = l.conn.WriteMessages(&agentwire.Reject{Code: agentwire.RejectProtocol,
				Message: "a gateway may not send " + msg.Type().String()})
			return fmt.Errorf("%w: gateway sent %s", agentwire.ErrType, msg.Type())
		}
	}
}

// sender closes and sends a batch every BatchInterval, and at once when a
// block candidate or a full batch is waiting.
func (c *Client) sender(ctx context.Context) {
	t := time.NewTicker(c.o.BatchInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.kick:
		}
		if err := c.flush(false); err != nil {
			c.mu.Lock()
			conn := c.conn
			c.mu.Unlock()
			if conn != nil {
				conn.Close() // the reader notices and the link is redone
			}
		}
	}
}

func describe(err error) string {
	var rej *agentwire.Reject
	var ne net.Error
	switch {
	case err == nil:
		return "closed"
	case errors.As(err, &rej):
		return "gateway closed the link: " + rej.Code.String() + " " + rej.Message
	case errors.As(err, &ne) && ne.Timeout():
		return "nothing received in time"
	case errors.Is(err, io.EOF):
		return "gateway closed the connection"
	}
	return err.Error()
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func (c *Client) addStats(s agentwire.Stats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bytesPrev = c.bytesPrev.Add(s)
}
