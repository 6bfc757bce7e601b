package load

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/hashgate/hashgate/pkg/blockutil"
	"github.com/hashgate/hashgate/pkg/stratum"
	"github.com/hashgate/hashgate/tools/internal/sconn"
	"github.com/hashgate/hashgate/tools/internal/work"
)

// Request ids of the handshake; shares use ids from firstSubmitID on.
const (
	idConfigure   = 1
	idSubscribe   = 2
	idSuggest     = 3
	idAuthorize   = 4
	firstSubmitID = 100

	// grindTries bounds the hashes spent on one share; at the tiny
	// difficulties load runs use, one or two suffice.
	grindTries = 1 << 16
	// resuggestEvery bounds how often one connection asks for its low
	// difficulty again after vardiff raised it.
	resuggestEvery = 5 * time.Second
)

type pending struct {
	id   uint64
	sent int64 // unix ns
}

// lconn is one load connection. Everything except ready, pendingCount and
// conn (set once before ready) is owned by its goroutine.
type lconn struct {
	w     *worker
	index int
	user  string

	cmu          sync.Mutex  // guards conn assignment against close
	conn         *sconn.Conn // set once; read by others only after ready
	ready        atomic.Bool
	pendingCount atomic.Int32
	closed       atomic.Bool

	en1        []byte
	en2Size    int
	mask       uint32
	subscribed bool
	authorized bool
	failed     error

	diff          float64
	target        blockutil.Target
	job           *work.Job
	seen          [2]string // last job ids recorded
	lastSuggest   time.Time
	nextSubmit    int64 // unix ns; 0 until the run starts
	interval      int64
	nextID        uint64
	en2Counter    uint64
	en2           []byte
	pend          []pending
	g             work.Grinder
	scratch, wbuf []byte
}

func newConn(w *worker, index int) *lconn {
	c := &lconn{w: w, index: index, user: w.spec.UserPrefix + "." + strconv.Itoa(index), nextID: firstSubmitID,
		en2Counter: rand.Uint64()}
	if w.spec.ShareRate > 0 {
		c.interval = int64(float64(time.Second) / w.spec.ShareRate)
	}
	return c
}

// close closes the socket (from any goroutine).
func (c *lconn) close() {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	if !c.closed.Swap(true) && c.conn != nil {
		c.conn.Close()
	}
}

// setConn installs the dialled socket; false if close came first.
func (c *lconn) setConn(conn *sconn.Conn) bool {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	if c.closed.Load() {
		conn.Close()
		return false
	}
	c.conn = conn
	return true
}

// run connects, then serves the connection until it is closed.
func (c *lconn) run(ctx context.Context, ready *sync.WaitGroup) {
	w := c.w
	readyDone := false
	markDone := func() {
		if !readyDone {
			readyDone = true
			ready.Done()
		}
	}
	defer markDone()

	// Connect: dial slot, rate, dial, handshake, first job.
	select {
	case w.dialSem <- struct{}{}:
	case <-ctx.Done():
		c.fail(ctx.Err())
		return
	}
	released := false
	release := func() {
		if !released {
			released = true
			<-w.dialSem
		}
	}
	defer release()
	if w.dialRate != nil {
		if err := w.dialRate.Wait(ctx); err != nil {
			c.fail(err)
			return
		}
	}
	start := time.Now()
	w.mu.Lock()
	if w.dialStart == 0 || start.UnixNano() < w.dialStart {
		w.dialStart = start.UnixNano()
	}
	w.mu.Unlock()
	d := &net.Dialer{Timeout: w.spec.HandshakeTimeout, KeepAlive: -1}
	if n := len(w.spec.Sources); n > 0 {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(w.spec.Sources[c.index%n])}
	}
	conn, err := sconn.Dial(ctx, d, w.spec.Addr, w.spec.KernelTimestamps, 1024)
	if err != nil {
		c.fail(err)
		return
	}
	if !c.setConn(conn) { // shutdown raced with the dial
		c.fail(errors.New("closed"))
		return
	}
	if err := conn.Write(c.handshake()); err != nil {
		c.fail(err)
		return
	}
	_ = conn.SetReadDeadline(start.Add(w.spec.HandshakeTimeout))
	for !(c.subscribed && c.authorized && c.job != nil) {
		line, rx, err := conn.ReadLine()
		if err != nil {
			c.fail(err)
			return
		}
		c.handle(line, rx)
		if c.failed != nil {
			c.fail(c.failed)
			return
		}
	}
	now := time.Now()
	w.connectLat.RecordDuration(now.Sub(start))
	w.mu.Lock()
	w.lastReady = max(w.lastReady, now.UnixNano())
	w.mu.Unlock()
	c.ready.Store(true)
	release()
	markDone()

	c.serve()
}

// fail records why the connection could not be set up.
func (c *lconn) fail(err error) {
	c.w.mu.Lock()
	c.w.connErrs[errReason(err)]++
	c.w.mu.Unlock()
	c.close()
}

// handshake returns configure, subscribe, suggest_difficulty and authorize
// as one write.
func (c *lconn) handshake() []byte {
	s := &c.w.spec
	var b []byte
	if s.VersionRolling {
		b = stratum.AppendRequest(b, idConfigure, "mining.configure", []string{"version-rolling"},
			map[string]any{"version-rolling.mask": "1fffe000", "version-rolling.min-bit-count": 2})
	}
	b = stratum.AppendRequest(b, idSubscribe, "mining.subscribe", "hgminer-load/1.0")
	if s.SuggestDiff > 0 {
		b = stratum.AppendRequest(b, idSuggest, "mining.suggest_difficulty", s.SuggestDiff)
	}
	return stratum.AppendRequest(b, idAuthorize, "mining.authorize", c.user, s.Pass)
}

// serve reads until the connection closes, submitting shares on schedule
// while the run is on. The read deadline is the next share's time while
// submitting, the end of the grace period while stopping, none otherwise;
// setPhase interrupts a read so that a phase change is seen at once.
func (c *lconn) serve() {
	w := c.w
	for {
		ph := w.phase.Load()
		if ph == phaseClosing {
			return
		}
		var dl time.Time
		switch ph {
		case phaseSubmitting:
			if c.interval > 0 {
				if c.nextSubmit == 0 {
					c.nextSubmit = w.goAt.Load() + rand.Int64N(c.interval)
				}
				dl = time.Unix(0, c.nextSubmit)
			}
		case phaseStopping:
			// Until the grace period ends; after it, block until closed.
			if ge := w.graceEnd.Load(); time.Now().UnixNano() < ge {
				dl = time.Unix(0, ge)
			}
		}
		_ = c.conn.SetReadDeadline(dl)
		if w.phase.Load() != ph {
			continue // changed while setting the deadline: choose again
		}
		line, rx, err := c.conn.ReadLine()
		if err == nil {
			c.handle(line, rx)
		} else if !sconn.IsTimeout(err) {
			if w.phase.Load() != phaseClosing && !c.closed.Load() {
				w.mu.Lock()
				w.dropped[errReason(err)]++
				w.mu.Unlock()
				c.close()
			}
			return
		}
		if ph == phaseSubmitting && c.interval > 0 && w.phase.Load() == phaseSubmitting {
			if now := time.Now().UnixNano(); now >= c.nextSubmit {
				c.submit(now)
			}
		}
	}
}

// handle processes one line from the gateway received at rx (unix ns).
func (c *lconn) handle(line []byte, rx int64) {
	// Fast paths for the bulk of the traffic, in the exact forms the
	// gateway writes: accepted-share replies and mining.notify (parsed once
	// per process by the cache). Anything else goes through encoding/json.
	if id, ok := acceptedReply(line); ok && id >= firstSubmitID {
		c.reply(id, rx, nil)
		return
	}
	if bytes.HasPrefix(line, notifyPrefix) {
		c.notify(line, rx)
		return
	}
	resp, err := stratum.DecodeResponse(line)
	if err != nil {
		return
	}
	if resp.Method != "" {
		c.notification(resp, line, rx)
		return
	}
	switch id := sconn.ParseID(resp.ID); id {
	case idConfigure:
		c.mask, _ = sconn.ParseConfigureResult(resp.Result)
	case idSubscribe:
		if resp.Error != nil {
			c.failed = errors.New("subscribe refused: " + resp.Error.Message)
			return
		}
		sub, err := sconn.ParseSubscribeResult(resp.Result)
		if err != nil {
			c.failed = err
			return
		}
		c.en1, c.en2Size, c.subscribed = sub.Extranonce1, sub.EN2Size, true
		c.en2 = make([]byte, c.en2Size)
	case idSuggest:
	case idAuthorize:
		if resp.Error != nil || string(resp.Result) != "true" {
			c.failed = errors.New("not authorized")
			return
		}
		c.authorized = true
	default:
		c.reply(id, rx, resp.Error)
	}
}

// reply accounts for the answer to a submit; e is nil for accepted.
func (c *lconn) reply(id uint64, rx int64, e *stratum.Error) {
	w := c.w
	k := -1
	for i := range c.pend {
		if c.pend[i].id == id {
			k = i
			break
		}
	}
	if k < 0 {
		return
	}
	p := c.pend[k]
	c.pend = append(c.pend[:k], c.pend[k+1:]...)
	c.pendingCount.Add(-1)
	w.submitLat.Record(rx - p.sent)
	if e == nil {
		w.accepted.Add(1)
		return
	}
	reason := strconv.Itoa(e.Code) + " " + e.Message
	w.mu.Lock()
	w.rejected[reason]++
	w.mu.Unlock()
}

var (
	notifyPrefix   = []byte(`{"id":null,"method":"mining.notify",`)
	acceptedPrefix = []byte(`{"id":`)
	acceptedSuffix = []byte(`,"result":true,"error":null}`)
)

// acceptedReply recognises {"id":<n>,"result":true,"error":null}.
func acceptedReply(line []byte) (uint64, bool) {
	if !bytes.HasPrefix(line, acceptedPrefix) || !bytes.HasSuffix(line, acceptedSuffix) {
		return 0, false
	}
	digits := line[len(acceptedPrefix) : len(line)-len(acceptedSuffix)]
	if len(digits) == 0 || len(digits) > 19 {
		return 0, false
	}
	var id uint64
	for _, d := range digits {
		if d < '0' || d > '9' {
			return 0, false
		}
		id = id*10 + uint64(d-'0')
	}
	return id, true
}

// notification handles a method call from the gateway.
func (c *lconn) notification(resp stratum.Response, line []byte, rx int64) {
	w := c.w
	switch resp.Method {
	case "mining.notify":
		c.notify(line, rx)
	case "mining.set_difficulty":
		w.setDiffs.Add(1)
		d, err := stratum.ParseDifficulty(resp.Params)
		if err != nil {
			return
		}
		c.setDiff(d)
	case "mining.set_version_mask":
		if m, ok := sconn.ParseVersionMask(resp.Params); ok {
			c.mask = m
		}
	}
}

// notify takes a new job and records when it arrived.
func (c *lconn) notify(line []byte, rx int64) {
	w := c.w
	w.notifies.Add(1)
	j, err := w.jobs.get(line)
	if err != nil {
		w.lg.Debug("bad mining.notify", zap.Error(err))
		return
	}
	c.job = j
	if j.JobID != c.seen[0] && j.JobID != c.seen[1] {
		c.seen[1], c.seen[0] = c.seen[0], j.JobID
		w.rec.add(j.JobID, j.Clean, rx)
	}
	if c.diff == 0 {
		c.setDiff(1)
	}
}

// setDiff applies a difficulty. If vardiff raised it so close to the
// network difficulty that most shares would be blocks (regtest), and blocks
// are to be avoided, it asks for the low difficulty again.
func (c *lconn) setDiff(d float64) {
	w := c.w
	t, err := w.targets.get(d)
	if err != nil {
		return
	}
	c.diff, c.target = d, t
	if w.spec.AllowBlocks || w.spec.SuggestDiff <= 0 || c.job == nil || !c.ready.Load() {
		return
	}
	if d >= c.job.NetDiff/2 && time.Since(c.lastSuggest) > resuggestEvery {
		c.lastSuggest = time.Now()
		w.resuggests.Add(1)
		c.wbuf = stratum.AppendRequest(c.wbuf[:0], idSuggest, "mining.suggest_difficulty", w.spec.SuggestDiff)
		_ = c.conn.Write(c.wbuf)
	}
}

// submit grinds one share on the current job and sends it.
func (c *lconn) submit(now int64) {
	w := c.w
	c.nextSubmit += c.interval
	if c.nextSubmit < now-c.interval {
		w.late.Add(1) // this process cannot keep up: skip ahead
		c.nextSubmit = now + c.interval
	}
	if c.job == nil || c.en2 == nil {
		return
	}
	if !w.spec.AllowBlocks && c.target.Cmp(c.job.NetTarget) <= 0 {
		// The share difficulty is at (or above) the network's: every
		// share would be a block. Nothing to grind.
		w.blockOnly.Add(1)
		return
	}
	c.en2Counter++
	work.PutEN2(c.en2, c.en2Counter)
	var vbits uint32
	if c.mask != 0 {
		vbits = uint32(c.en2Counter<<13) & c.mask
	}
	c.scratch = c.g.Reset(c.job, c.en1, c.en2, vbits, c.mask, c.job.NTime, c.scratch)
	sh, err := c.g.Find(&c.target, grindTries, !w.spec.AllowBlocks)
	if err != nil {
		w.noShare.Add(1)
		return
	}
	if sh.Block {
		w.blocks.Add(1)
	}
	id := c.nextID
	c.nextID++
	c.wbuf = stratum.AppendSubmitRequest(c.wbuf[:0], id, c.user, sh.JobID, sh.EN2, sh.NTime, sh.Nonce,
		sh.VersionBits, c.mask != 0)
	// Counted as pending before the write, so that the worker's grace
	// period cannot miss a share sent as the run stops.
	c.pendingCount.Add(1)
	sent := time.Now().UnixNano()
	if err := c.conn.Write(c.wbuf); err != nil {
		c.pendingCount.Add(-1)
		return // the read side notices the broken connection
	}
	w.submitted.Add(1)
	c.pend = append(c.pend, pending{id: id, sent: sent})
}
