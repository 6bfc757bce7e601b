// Package session is one miner connection's Stratum V1 state machine:
// subscribe (with resume), authorize (several workers), configure (version
// rolling, minimum difficulty, subscribe-extranonce), suggest_difficulty,
// extranonce.subscribe, submit with full share validation, and the notify /
// set_difficulty lines a job produces for this session.
//
// It knows nothing about sockets: the gnet handler feeds it lines and writes
// what it returns, so every rule is testable without a network.
//
// Ownership: a Session is owned by its connection's event loop and is not
// safe for concurrent use, except LastActive (atomic), which the idle sweep
// reads from another goroutine. Env is shared and safe for concurrent use.
package session

import (
	"bytes"
	"encoding/hex"
	"math"
	"math/bits"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unique"

	"go.uber.org/zap"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/hashgate/hashgate/pkg/blockutil"
	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/stats"
	"github.com/hashgate/hashgate/pkg/stratum"
	"github.com/hashgate/hashgate/pkg/vardiff"
	"github.com/hashgate/hashgate/pkg/work"
)

// MaxFutureTime bounds a share's ntime ahead of our clock (consensus: 2 h).
const MaxFutureTime = work.MaxFutureTime

// Close reasons (also the reason label of the closed-connections metric).
const (
	CloseNone       = ""
	CloseParseError = "parse_error"
	CloseNoExtra    = "no_extranonce"
)

// BlockSink takes found blocks; Submit must not block.
type BlockSink interface {
	Submit(fb *bus.FoundBlock, raw []byte)
}

// EventSink receives the session events shipped to Redis (connected,
// disconnected, new worker, found block). Its methods must not block.
type EventSink interface {
	Authorized(now time.Time, user, worker, peer string)
	Disconnected(now time.Time, user, worker, peer string)
	Block(now time.Time, hash, user, worker string)
}

// Extranonce hands out extranonce1 values (*extranonce.Allocator for the
// gateway; a prefix granted by the gateway plus a per-miner suffix for the
// mineragent). Safe for concurrent use.
type Extranonce interface {
	// Size is the extranonce1 size in bytes.
	Size() int
	// Allocate writes a fresh extranonce1 (or the one resume names, if it
	// can be resumed) into dst, len(dst) == Size().
	Allocate(dst []byte, resume string) (resumed bool, err error)
	// Release gives back a value Allocate returned.
	Release(en1 []byte)
}

// Upstream receives what a session accepts so that it can be forwarded to
// a pool (the mineragent's link to the gateway). Its methods run on the
// session's event loop and must not block.
type Upstream interface {
	// Login reports that the session authorized user.worker and returns
	// the id the upstream knows the worker by.
	Login(s *Session, user, worker string) (id uint32)
	// Logout reports that a worker Login returned id for has gone (its
	// session closed).
	Logout(s *Session, id uint32)
	// Share reports a share the session accepted (a block candidate when
	// sh.Block) for the worker Login returned id for.
	Share(s *Session, id uint32, sh *AcceptedShare)
}

// RejectCounter is implemented by an Upstream that also wants the shares
// the session refused (the mineragent reports them so that per-worker
// reject statistics match a direct connection's). Reject runs on the
// session's event loop and must not block.
type RejectCounter interface {
	Reject(s *Session, id uint32, reason stats.Reason)
}

// AcceptedShare is a share the session accepted, as Upstream.Share sees it.
type AcceptedShare struct {
	Job *work.Job
	// Extranonce2 is valid only during the call.
	Extranonce2 []byte
	NTime       uint32
	Nonce       uint32
	// Version is the header version; VersionBits the bits the miner rolled
	// (Version masked by the session's version mask; 0 without one).
	Version     int32
	VersionBits uint32
	// Difficulty is the difficulty the share was credited with.
	Difficulty float64
	// Block reports that the hash meets the network target.
	Block bool
	Hash  chainhash.Hash
}

// Counter is the hook for per-reason share metrics.
type Counter interface {
	Share(result string)
	Block()
}

// Env is what every session of a gateway shares.
type Env struct {
	Jobs       *work.Table
	Dedup      work.Deduper
	Extranonce Extranonce
	// Stats may be nil (the mineragent: the pool keeps the statistics).
	Stats   *stats.Table
	Blocks  BlockSink
	Vardiff *vardiff.Config
	Counter Counter
	// Events may be nil (no statistics pipeline).
	Events EventSink
	// Upstream may be nil (the gateway: shares end here).
	Upstream Upstream
	Log      *zap.Logger
	// PoolMask is the version-rolling mask the pool allows; SIGHUP may
	// change it (see SetPoolMask on sessions).
	PoolMask *atomic.Uint32
	// Source names this gateway in found blocks.
	Source string
	// MaxWorkers bounds the workers one connection may authorize.
	MaxWorkers int
	// MaxBadRequests bounds malformed requests before the connection is
	// closed.
	MaxBadRequests int
	// Now is the clock.
	Now func() time.Time
}

type jobDiff struct {
	job  *work.Job
	diff float64
}

// worker is an authorized worker (one per miner mostly: kept in the
// 32-byte size class). Its id is "user.worker" (ParseAccount's parts) and
// its name the account as the miner sends it in submit; both are in buf:
// the id at buf[:idLen] and the name at buf[nameAt:], which is all of buf
// when the account starts with the id (nameAt 0) and what follows the id
// otherwise (nameAt idLen).
type worker struct {
	buf    string
	stats  *stats.Worker
	upID   uint32 // Upstream's id for the worker
	dot    uint8  // length of the user part
	idLen  uint8
	nameAt uint8
}

// newWorker returns the worker for account, whose parts are user and
// wname (at most 64 characters each); it shares account's bytes when the
// account starts with the id.
func newWorker(account, user, wname string) worker {
	n := len(user) + 1 + len(wname)
	w := worker{buf: account, dot: uint8(len(user)), idLen: uint8(n)}
	if len(account) < n || account[:len(user)] != user || account[len(user)] != '.' || account[len(user)+1:n] != wname {
		w.buf, w.nameAt = user+"."+wname+account, uint8(n)
	}
	return w
}

func (w *worker) id() string    { return w.buf[:w.idLen] }
func (w *worker) name() string  { return w.buf[w.nameAt:] }
func (w *worker) user() string  { return w.buf[:w.dot] }
func (w *worker) wname() string { return w.buf[w.dot+1 : w.idLen] }

// Session is one miner connection. A daemon holds one per miner, so it is
// kept small (a test holds it to its size class): what few sessions use
// lives in rareState, allocated on demand.
type Session struct {
	env *Env
	// ID identifies the connection in logs.
	ID uint64
	// Remote is the peer address.
	Remote string

	sc   *Scratch   // working memory (and the decoded request) shared by the sessions of one loop
	rare *rareState // nil unless needed

	// userAgent is interned: a farm's miners mostly send the same one.
	userAgent unique.Handle[string] // zero: none

	workers []worker
	mask    uint32 // granted version-rolling mask
	reqMask uint32 // mask the miner asked for in mining.configure

	vd vardiff.State
	// ring holds the last jobs sent with their difficulty; the newest
	// (the last job, and the difficulty last sent) is at ringPos-1.
	ring [8]jobDiff

	lastActive atomic.Int64

	// The extranonce1 is en1Buf[:en1Len-1] (en1Len 0: none yet), or
	// rare.en1 when it does not fit here (en1Len == en1Long).
	en1Buf [15]byte
	en1Len uint8

	ringPos    uint8
	subscribed bool
	xnsub      bool
	started    bool   // first notify sent
	bad        uint32 // malformed requests (saturating)
}

// en1Long is Session.en1Len for an extranonce1 kept in rareState.
const en1Long = 0xff

// rareState is what only some sessions need: a subscribe held until the
// first job, the minimum difficulty of mining.configure and an
// extranonce1 longer than Session.en1Buf.
type rareState struct {
	// pending: a subscribe (id pendingSub, resuming resumeID) waits for
	// the first job.
	pending    bool
	pendingSub stratum.ID
	resumeID   string
	minDiff    float64
	en1        []byte
}

// rareState returns the session's rareState, allocating it.
func (s *Session) rareState() *rareState {
	if s.rare == nil {
		s.rare = new(rareState)
	}
	return s.rare
}

// minDiff is the minimum difficulty the miner configured (0: none).
func (s *Session) minDiff() float64 {
	if s.rare == nil {
		return 0
	}
	return s.rare.minDiff
}

// lastJob is the job last sent (nil: none yet).
func (s *Session) lastJob() *work.Job {
	return s.ring[(int(s.ringPos)+len(s.ring)-1)%len(s.ring)].job
}

// lastDiff is the difficulty last sent (0: none yet).
func (s *Session) lastDiff() float64 {
	return s.ring[(int(s.ringPos)+len(s.ring)-1)%len(s.ring)].diff
}

// extranonce1 is the session's extranonce1 (nil: none yet).
func (s *Session) extranonce1() []byte {
	switch s.en1Len {
	case 0:
		return nil
	case en1Long:
		return s.rare.en1
	}
	n := s.en1Len - 1
	return s.en1Buf[:n:n]
}

// malformed counts a malformed request.
func (s *Session) malformed() {
	if s.bad < math.MaxUint32 {
		s.bad++
	}
}

// New returns a session for a new connection.
func New(env *Env, id uint64, remote string) *Session {
	now := env.Now()
	// Buffers grow on first use: an idle session costs only what it holds.
	s := &Session{env: env, ID: id, Remote: remote}
	s.vd = vardiff.New(env.Vardiff, env.Vardiff.Start, now)
	s.lastActive.Store(now.UnixNano())
	return s
}

// Scratch is the working memory of a session's entry points: the decoded
// request, the reply buffer, the coinbase buffer of share hashing and the
// share handed to Upstream. The sessions of one event loop never run at
// the same time, so they share one (ShareScratch) instead of holding a
// kilobyte each.
type Scratch struct {
	Req      stratum.Request
	Out      []byte
	Coinbase []byte
	Up       AcceptedShare
}

// ShareScratch makes the session work in sc, shared with the other
// sessions of the same event loop. Without it the session allocates its
// own on first use.
func (s *Session) ShareScratch(sc *Scratch) { s.sc = sc }

func (s *Session) scratch() *Scratch {
	if s.sc == nil {
		s.sc = new(Scratch)
	}
	return s.sc
}

// begin starts an entry point's output in the (shared) reply buffer; the
// bytes returned stay valid until the next call on any session of the loop.
func (s *Session) begin() {
	s.scratch().Out = s.sc.Out[:0]
}

// end returns the output; the buffer stays the loop's for its next session.
func (s *Session) end() []byte { return s.sc.Out }

// LastActive returns when the session last sent a line. Safe for concurrent
// use.
func (s *Session) LastActive() time.Time { return time.Unix(0, s.lastActive.Load()) }

// Authorized reports whether at least one worker is authorized.
func (s *Session) Authorized() bool { return len(s.workers) > 0 }

// Subscribed reports whether the session has an extranonce1.
func (s *Session) Subscribed() bool { return s.subscribed }

// Ready reports whether the session should receive jobs.
func (s *Session) Ready() bool { return s.subscribed && len(s.workers) > 0 }

// Difficulty returns the current difficulty.
func (s *Session) Difficulty() float64 { return s.vd.Difficulty() }

// Worker returns the first authorized worker name ("" if none).
func (s *Session) Worker() string {
	if len(s.workers) == 0 {
		return ""
	}
	return s.workers[0].id()
}

// ExtranonceSubscribed reports whether the miner asked for set_extranonce.
func (s *Session) ExtranonceSubscribed() bool { return s.xnsub }

// Close releases the session's extranonce1 for resume and reports the
// disconnection of its workers.
func (s *Session) Close() {
	if en1 := s.extranonce1(); en1 != nil {
		s.env.Extranonce.Release(en1)
	}
	if s.env.Events != nil {
		now := s.env.Now()
		for i := range s.workers {
			w := &s.workers[i]
			s.env.Events.Disconnected(now, w.user(), w.wname(), s.peerIP())
		}
	}
	if s.env.Upstream != nil {
		for _, w := range s.workers {
			s.env.Upstream.Logout(s, w.upID)
		}
	}
	if s.env.Stats != nil {
		for _, w := range s.workers {
			s.env.Stats.Release(w.stats)
		}
	}
}

// Extranonce1 returns the session's extranonce1 (nil before subscribe).
// The caller must not modify it.
func (s *Session) Extranonce1() []byte { return s.extranonce1() }

// VersionMask returns the version-rolling mask granted to the miner (0:
// none).
func (s *Session) VersionMask() uint32 { return s.mask }

// UserAgent returns what the miner sent in mining.subscribe (up to 64
// bytes).
func (s *Session) UserAgent() string {
	if s.userAgent == (unique.Handle[string]{}) {
		return ""
	}
	return s.userAgent.Value()
}

// PeerIP returns the miner's address without the port.
func (s *Session) PeerIP() string { return s.peerIP() }

// peerIP is the remote address without the port.
func (s *Session) peerIP() string {
	if host, _, err := net.SplitHostPort(s.Remote); err == nil {
		return host
	}
	return s.Remote
}

// HandleLine processes one request line and returns the bytes to send (valid
// until the next call) and a close reason ("" to keep the connection).
func (s *Session) HandleLine(line []byte) (out []byte, reason string) {
	s.begin()
	defer func() { out = s.end() }()
	if len(bytes.TrimSpace(line)) == 0 {
		return s.sc.Out, CloseNone
	}
	now := s.env.Now()
	s.lastActive.Store(now.UnixNano())
	r := &s.sc.Req
	if err := stratum.DecodeRequest(line, r); err != nil {
		s.malformed()
		if de, ok := err.(*stratum.DecodeError); ok && de.HasID {
			if r.Method == stratum.MethodSubmit {
				s.rejectShare(now, nil, stats.Malformed, de.Reply())
			} else {
				s.sc.Out = stratum.AppendError(s.sc.Out, r.ID, de.Reply())
			}
		}
		if ce := s.env.Log.Check(zap.DebugLevel, "malformed request"); ce != nil {
			ce.Write(zap.Uint64("conn", s.ID), zap.String("remote_addr", s.Remote), zap.Error(err))
		}
		if int64(s.bad) > int64(s.env.MaxBadRequests) {
			return s.sc.Out, CloseParseError
		}
		return s.sc.Out, CloseNone
	}
	switch r.Method {
	case stratum.MethodSubmit:
		s.submit(now)
	case stratum.MethodSubscribe:
		s.subscribe(now)
	case stratum.MethodAuthorize:
		s.authorize(now)
	case stratum.MethodConfigure:
		s.configure()
	case stratum.MethodSuggestDifficulty:
		d, err := stratum.ParseDifficulty(r.Params)
		s.suggest(now, d, err)
	case stratum.MethodSuggestTarget:
		s.suggestTarget(now)
	case stratum.MethodExtranonceSubscribe:
		s.xnsub = true
		s.reply(stratum.AppendResultTrue)
	case stratum.MethodPing, stratum.MethodMultiVersion:
		s.reply(stratum.AppendResultTrue)
	case stratum.MethodGetTransactions:
		if !r.ID.IsNull() {
			s.sc.Out = stratum.AppendResultRaw(s.sc.Out, r.ID, []byte("[]"))
		}
	default:
		if !r.ID.IsNull() {
			s.sc.Out = stratum.AppendError(s.sc.Out, r.ID, stratum.ErrUnknownMethod)
		}
	}
	if s.en1Len == 0 && s.subscribed {
		return s.sc.Out, CloseNoExtra
	}
	return s.sc.Out, CloseNone
}

// reply sends a result for a request with an id (notifications get none).
func (s *Session) reply(fn func([]byte, stratum.ID) []byte) {
	if id := &s.sc.Req.ID; !id.IsNull() {
		s.sc.Out = fn(s.sc.Out, *id)
	}
}

func (s *Session) subscribe(now time.Time) {
	ua, sid, err := stratum.ParseSubscribe(s.sc.Req.Params)
	if err != nil {
		s.malformed()
		s.reply(func(b []byte, id stratum.ID) []byte { return stratum.AppendError(b, id, stratum.ErrMalformed) })
		return
	}
	if len(ua) > 64 {
		ua = ua[:64]
	}
	s.userAgent = unique.Handle[string]{}
	if ua != "" {
		s.userAgent = unique.Make(ua)
	}
	resume := "" // used only while the session has no extranonce1
	if s.en1Len == 0 {
		resume = sid
	}
	cur := s.env.Jobs.Current()
	if cur == nil {
		// No job yet: hold the reply until the first job arrives.
		r := s.rareState()
		r.pending, r.pendingSub, r.resumeID = true, s.sc.Req.ID, resume
		return
	}
	s.completeSubscribe(cur, s.sc.Req.ID, resume)
}

// completeSubscribe allocates (or resumes, as resume asks) extranonce1 and
// replies.
func (s *Session) completeSubscribe(cur *work.Job, id stratum.ID, resume string) {
	if s.en1Len == 0 {
		n := s.env.Extranonce.Size()
		var en1 []byte
		if n <= len(s.en1Buf) {
			en1 = s.en1Buf[:n:n]
		} else {
			en1 = make([]byte, n)
		}
		resumed, err := s.env.Extranonce.Allocate(en1, resume)
		if err != nil {
			clear(s.en1Buf[:])
			s.env.Log.Error("extranonce1 space exhausted", zap.Error(err))
			s.sc.Out = stratum.AppendError(s.sc.Out, id, stratum.ErrOther)
			s.subscribed = true // HandleLine closes: no extranonce
			return
		}
		if n <= len(s.en1Buf) {
			s.en1Len = uint8(n) + 1
		} else {
			s.rareState().en1, s.en1Len = en1, en1Long
		}
		if resumed {
			if ce := s.env.Log.Check(zap.DebugLevel, "session resumed"); ce != nil {
				ce.Write(zap.Uint64("conn", s.ID), zap.String("session", hex.EncodeToString(en1)))
			}
		}
	}
	s.subscribed = true
	if r := s.rare; r != nil {
		r.pending, r.pendingSub = false, stratum.ID{}
		if r.minDiff == 0 && r.en1 == nil {
			s.rare = nil // nothing else kept there
		}
	}
	if !id.IsNull() {
		// The session id is the extranonce1 in hex: a miner that subscribes
		// with it again gets the extranonce1 back (Extranonce.Allocate).
		en1 := s.extranonce1()
		s.sc.Out = stratum.AppendSubscribeResult(s.sc.Out, id, hex.EncodeToString(en1), en1,
			int(cur.Extranonce2Size))
	}
	s.maybeStart(cur)
}

// OnFirstJob completes a subscribe that waited for a job. It returns the
// bytes to send.
func (s *Session) OnFirstJob(cur *work.Job) []byte {
	s.begin()
	if r := s.rare; r != nil && r.pending {
		s.completeSubscribe(cur, r.pendingSub, r.resumeID)
	}
	return s.end()
}

// ParseAccount splits "user.worker" (also "user:worker"); blanks are
// removed, both parts lower-cased; user 1..64 and worker 0..64 characters of
// [a-z0-9_-]. A missing worker is "default".
func ParseAccount(account string) (user, wname string, ok bool) {
	account = strings.ToLower(strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, account))
	user, wname = account, ""
	if i := strings.IndexAny(account, ".:"); i >= 0 {
		user, wname = account[:i], account[i+1:]
		if j := strings.IndexAny(wname, ".:"); j >= 0 {
			wname = wname[:j]
		}
	}
	if wname == "" {
		wname = "default"
	}
	valid := func(s string) bool {
		if len(s) == 0 || len(s) > 64 {
			return false
		}
		for i := 0; i < len(s); i++ {
			c := s[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
				return false
			}
		}
		return true
	}
	return user, wname, valid(user) && valid(wname)
}

// parsePassword reads "d=<difficulty>" (comma-separated options).
func parsePassword(pass string) (diff float64) {
	for _, opt := range strings.Split(pass, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(opt), "=")
		if ok && (k == "d" || k == "D" || k == "diff") {
			if d, err := strconv.ParseFloat(v, 64); err == nil && d > 0 && !math.IsInf(d, 0) {
				diff = d
			}
		}
	}
	return diff
}

func (s *Session) authorize(now time.Time) {
	account, pass, err := stratum.ParseAuthorize(s.sc.Req.Params)
	if err != nil {
		s.malformed()
		s.reply(func(b []byte, id stratum.ID) []byte { return stratum.AppendError(b, id, stratum.ErrMalformed) })
		return
	}
	user, wname, ok := ParseAccount(account)
	if !ok || len(s.workers) >= s.env.MaxWorkers {
		s.reply(func(b []byte, id stratum.ID) []byte { return stratum.AppendError(b, id, stratum.ErrUnauthorized) })
		return
	}
	found := false
	for i := range s.workers {
		if s.workers[i].name() == account {
			found = true
		}
	}
	if !found {
		w := newWorker(account, user, wname)
		user, wname = w.user(), w.wname() // the worker's copies: nothing else keeps account's
		if s.env.Stats != nil {
			w.stats = s.env.Stats.Worker(user, wname)
		}
		s.workers = append(s.workers, w)
		if s.env.Events != nil {
			s.env.Events.Authorized(now, user, wname, s.peerIP())
		}
		if s.env.Upstream != nil {
			s.workers[len(s.workers)-1].upID = s.env.Upstream.Login(s, user, wname)
		}
	}
	if d := parsePassword(pass); d > 0 && len(s.workers) == 1 {
		s.vd.Suggest(d, now)
	}
	s.reply(stratum.AppendResultTrue)
	if cur := s.env.Jobs.Current(); cur != nil {
		s.maybeStart(cur)
	}
}

// maybeStart sends the first difficulty and job once the session is
// subscribed and authorized.
func (s *Session) maybeStart(cur *work.Job) {
	if s.started || !s.Ready() {
		return
	}
	s.started = true
	s.sc.Out = s.appendJob(s.sc.Out, cur, true)
}

func (s *Session) configure() {
	exts, opts, err := stratum.ParseConfigure(s.sc.Req.Params)
	if err != nil {
		s.malformed()
		s.reply(func(b []byte, id stratum.ID) []byte { return stratum.AppendError(b, id, stratum.ErrMalformed) })
		return
	}
	var fields []stratum.ConfigureField
	for _, ext := range exts {
		switch ext {
		case "version-rolling":
			req := uint32(0xffffffff)
			if raw, ok := opts["version-rolling.mask"]; ok {
				if m, err := strconv.ParseUint(strings.Trim(string(raw), `"`), 16, 32); err == nil {
					req = uint32(m)
				}
			}
			minBits := 0
			if raw, ok := opts["version-rolling.min-bit-count"]; ok {
				minBits, _ = strconv.Atoi(strings.Trim(string(raw), `"`))
			}
			s.reqMask = req
			granted := req & s.env.PoolMask.Load()
			if bits.OnesCount32(granted) < minBits || granted == 0 {
				s.mask = 0
				fields = append(fields, stratum.ConfigureField{Key: "version-rolling", Value: false})
				continue
			}
			s.mask = granted
			fields = append(fields,
				stratum.ConfigureField{Key: "version-rolling", Value: true},
				stratum.ConfigureField{Key: "version-rolling.mask", Value: strconv.FormatUint(uint64(granted)|1<<32, 16)[1:]})
		case "minimum-difficulty":
			if raw, ok := opts["minimum-difficulty.value"]; ok {
				if d, err := strconv.ParseFloat(strings.Trim(string(raw), `"`), 64); err == nil && d > 0 {
					s.rareState().minDiff = d
					if s.vd.Difficulty() < d {
						s.vd.Suggest(d, s.env.Now())
					}
				}
			}
			fields = append(fields, stratum.ConfigureField{Key: "minimum-difficulty", Value: true})
		case "subscribe-extranonce":
			s.xnsub = true
			fields = append(fields, stratum.ConfigureField{Key: "subscribe-extranonce", Value: true})
		default:
			if len(ext) <= 64 {
				fields = append(fields, stratum.ConfigureField{Key: ext, Value: false})
			}
		}
	}
	if id := &s.sc.Req.ID; !id.IsNull() {
		s.sc.Out = stratum.AppendConfigureResult(s.sc.Out, *id, fields...)
	}
}

func (s *Session) suggest(now time.Time, d float64, err error) {
	if err != nil {
		s.malformed()
		s.reply(func(b []byte, id stratum.ID) []byte { return stratum.AppendError(b, id, stratum.ErrMalformed) })
		return
	}
	if m := s.minDiff(); m > 0 && d < m {
		d = m
	}
	s.vd.Suggest(d, now)
	s.reply(stratum.AppendResultTrue)
	s.resendIfChanged()
}

func (s *Session) suggestTarget(now time.Time) {
	ps, err := s.sc.Req.StringParams()
	if err != nil || len(ps) == 0 {
		s.suggest(now, 0, stratum.ErrMalformed)
		return
	}
	raw, err := hex.DecodeString(strings.TrimPrefix(ps[0], "0x"))
	if err != nil || len(raw) == 0 || len(raw) > 32 {
		s.suggest(now, 0, stratum.ErrMalformed)
		return
	}
	var be [32]byte
	copy(be[32-len(raw):], raw)
	var h [32]byte
	for i := range h {
		h[i] = be[31-i]
	}
	d := blockutil.HashDifficulty((*chainhash.Hash)(&h))
	s.suggest(now, d, nil)
}

// resendIfChanged applies a new difficulty at once: set_difficulty followed
// by the current job again (clean=false), so the miner works at the new
// difficulty without losing work.
func (s *Session) resendIfChanged() {
	last := s.lastJob()
	if !s.started || last == nil || s.vd.Difficulty() == s.lastDiff() {
		return
	}
	s.sc.Out = s.appendJob(s.sc.Out, last, false)
}

// appendJob appends set_difficulty (when it changed) and the job's notify,
// and remembers the difficulty the job was sent at.
func (s *Session) appendJob(dst []byte, j *work.Job, clean bool) []byte {
	s.vd.SetCeiling(j.NetDiff)
	d := s.vd.Difficulty()
	if d != s.lastDiff() {
		dst = stratum.AppendSetDifficulty(dst, d)
	}
	s.remember(j, d)
	if clean {
		dst = append(dst, j.NotifyClean...)
	} else {
		dst = append(dst, j.NotifyKeep...)
	}
	return dst
}

func (s *Session) remember(j *work.Job, d float64) {
	s.ring[s.ringPos] = jobDiff{job: j, diff: d}
	s.ringPos = (s.ringPos + 1) % uint8(len(s.ring))
}

// JobFrames returns the lines to send this session for a new job: an
// optional set_difficulty line (in the session's own buffer) and the shared
// notify line. Call only for Ready sessions, on the owning loop.
func (s *Session) JobFrames(j *work.Job, clean bool) (setDiff, notify []byte) {
	if !s.Ready() {
		return nil, nil
	}
	s.started = true
	s.vd.SetCeiling(j.NetDiff)
	d := s.vd.Difficulty()
	if d != s.lastDiff() {
		s.begin()
		s.sc.Out = stratum.AppendSetDifficulty(s.sc.Out, d)
		setDiff = s.end()
	}
	s.remember(j, d)
	if clean {
		return setDiff, j.NotifyClean
	}
	return setDiff, j.NotifyKeep
}

// PoolMaskChanged recomputes the granted version-rolling mask after the
// pool mask changed and returns a mining.set_version_mask line when this
// session's mask changed (nil otherwise; sessions that never negotiated
// version rolling are not concerned). Call on the owning loop.
func (s *Session) PoolMaskChanged() []byte {
	if s.reqMask == 0 || s.mask == 0 {
		return nil
	}
	granted := s.reqMask & s.env.PoolMask.Load()
	if granted == s.mask {
		return nil
	}
	s.mask = granted
	return stratum.AppendSetVersionMask(nil, granted)
}

// SetExtranonceFrame returns a mining.set_extranonce line for this session
// (for operators moving sessions), or nil if the miner did not subscribe to
// it.
func (s *Session) SetExtranonceFrame() []byte {
	last := s.lastJob()
	if !s.xnsub || s.en1Len == 0 || last == nil {
		return nil
	}
	return stratum.AppendSetExtranonce(nil, s.extranonce1(), int(last.Extranonce2Size))
}

// Tick runs the silence retarget; it returns lines to send (possibly
// empty).
func (s *Session) Tick(now time.Time) []byte {
	s.begin()
	if s.started && s.lastJob() != nil {
		if _, changed := s.vd.OnIdle(now); changed {
			s.resendIfChanged()
		}
	}
	return s.end()
}
