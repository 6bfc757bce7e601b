package agentwire

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// Message is one protocol message: the body of a frame of type Type().
//
// AppendMarshal appends the body (without the frame header) to dst; it
// fails, appending nothing, when the message breaks a limit or carries a
// value the protocol forbids, because the peer would refuse it and close
// the link. Marshal is AppendMarshal(nil). Unmarshal decodes a body,
// replacing every field; on error the receiver is left unchanged. A decoded
// message never aliases the body.
//
// ShareBatch also has a stateful encoding used on connections (see Encoder);
// Marshal and Unmarshal are its self-contained form.
//
// Messages are plain structs: not safe for concurrent mutation.
type Message interface {
	Type() Type
	AppendMarshal(dst []byte) ([]byte, error)
	Marshal() ([]byte, error)
	Unmarshal(body []byte) error
}

// New returns a zero message of type t, or nil for TypeSeal and unknown
// types.
func New(t Type) Message {
	switch t {
	case TypeHello:
		return &Hello{}
	case TypeWelcome:
		return &Welcome{}
	case TypeReject:
		return &Reject{}
	case TypePing:
		return &Ping{}
	case TypePong:
		return &Pong{}
	case TypeJob:
		return &Job{}
	case TypeShareBatch:
		return &ShareBatch{}
	case TypeBlock:
		return &Block{}
	case TypeBatchAck:
		return &BatchAck{}
	case TypeMinerLogin:
		return &MinerLogin{}
	case TypeMinerLogout:
		return &MinerLogout{}
	}
	return nil
}

// Decode decodes a self-contained frame body of type t (the stateless form;
// a Decoder also resolves connection state).
func Decode(t Type, body []byte) (Message, error) {
	m := New(t)
	if m == nil {
		return nil, fmt.Errorf("%w: %s", ErrType, t)
	}
	if err := m.Unmarshal(body); err != nil {
		return nil, err
	}
	return m, nil
}

// appendChecked runs check and, if it passes, the infallible encoder.
func appendChecked(dst []byte, check func() error, enc func(*encoder)) ([]byte, error) {
	if err := check(); err != nil {
		return dst, err
	}
	e := encoder{b: dst}
	enc(&e)
	return e.b, nil
}

// ---------------------------------------------------------------------------

// Hello is the agent's first message on a connection.
type Hello struct {
	// ProtocolVersion is the version the agent speaks (Version); the
	// gateway rejects anything else with RejectVersion.
	ProtocolVersion uint8
	// AgentID names the agent (1..64 of [A-Za-z0-9._-]); the gateway looks
	// up its token by it. One live session per agent id: a newer one
	// replaces an older one (RejectReplaced).
	AgentID string
	// Token is the agent's secret, configured on the gateway (1..256
	// bytes). It travels inside the stream: use TLS on untrusted networks.
	Token string
	// Software is the agent's name and version, for logs (0..64 bytes).
	Software string
	// PrevSession is the SessionID of the agent's previous session with
	// any gateway (0: none), and LastAcked the highest batch id the agent
	// saw acknowledged in it. Together they let the gateway report in
	// Welcome.ResumedBatch which unacknowledged batches it already
	// processed.
	PrevSession uint64
	LastAcked   uint64
	// Instance identifies the agent process (random, never 0, new at every
	// start). With the batch id it names a batch across gateways and
	// restarts, so a batch replayed to another gateway is credited once.
	Instance uint64
}

// Type implements Message.
func (*Hello) Type() Type { return TypeHello }

// String describes the hello without its token.
func (h *Hello) String() string {
	return fmt.Sprintf("hello{v%d agent=%q software=%q instance=%x prev_session=%d last_acked=%d}",
		h.ProtocolVersion, h.AgentID, h.Software, h.Instance, h.PrevSession, h.LastAcked)
}

func (h *Hello) check() error {
	if err := ValidAgentID(h.AgentID); err != nil {
		return err
	}
	if err := checkLen(len(h.Token), 1, MaxTokenLen, "token"); err != nil {
		return err
	}
	if h.Instance == 0 {
		return fmt.Errorf("%w: instance 0", ErrInvalid)
	}
	return checkLen(len(h.Software), 0, MaxNameLen, "software")
}

// AppendMarshal implements Message.
func (h *Hello) AppendMarshal(dst []byte) ([]byte, error) {
	return appendChecked(dst, h.check, func(e *encoder) {
		e.u8(h.ProtocolVersion)
		e.str(h.AgentID)
		e.str(h.Token)
		e.str(h.Software)
		e.u64(h.PrevSession)
		e.uvarint(h.LastAcked)
		e.u64(h.Instance)
	})
}

// Marshal implements Message.
func (h *Hello) Marshal() ([]byte, error) { return h.AppendMarshal(nil) }

// Unmarshal implements Message.
func (h *Hello) Unmarshal(b []byte) error {
	d := newDecoder(b)
	var out Hello
	out.ProtocolVersion = d.U8()
	out.AgentID = d.Str(1, MaxNameLen, "agent id")
	out.Token = d.Str(1, MaxTokenLen, "token")
	out.Software = d.Str(0, MaxNameLen, "software")
	out.PrevSession = d.U64()
	out.LastAcked = d.Uvarint()
	out.Instance = d.U64()
	if d.Err() == nil {
		d.Fail(ValidAgentID(out.AgentID))
	}
	if d.Err() == nil && out.Instance == 0 {
		d.Failf("%w: instance 0", ErrInvalid)
	}
	if err := d.finish(TypeHello); err != nil {
		return err
	}
	*h = out
	return nil
}

// ---------------------------------------------------------------------------

// Welcome accepts an agent: the gateway's answer to a good Hello.
//
// Extranonce layout: the coinbase of every job holds Extranonce1Size +
// Extranonce2Size bytes between Coinb1 and Coinb2. Miners behind the agent
// see an extranonce1 of Extranonce1Size bytes, made of the granted
// Extranonce1Prefix followed by a per-miner suffix the agent assigns
// (SuffixSize bytes, distinct for every live miner), and roll an
// extranonce2 of Extranonce2Size bytes.
type Welcome struct {
	// SessionID identifies this session (never 0); the agent sends it as
	// Hello.PrevSession when it reconnects.
	SessionID uint64
	// Extranonce1Prefix is the part of extranonce1 granted to the agent,
	// unique among the gateway cluster's live sessions and miners.
	Extranonce1Prefix []byte
	// Extranonce1Size is the extranonce1 size miners see (prefix plus
	// suffix); Extranonce2Size the extranonce2 size miners see (≥ 1).
	// Their sum is at most MaxExtranonce.
	Extranonce1Size, Extranonce2Size uint8
	// VersionMask is the pool's version-rolling mask; a miner's mask is its
	// requested mask AND this one.
	VersionMask uint32
	// ServerTime is the gateway's clock, unix nanoseconds, so the agent can
	// notice skew before it checks ntime.
	ServerTime int64
	// ResumedBatch is the highest batch id of Hello.PrevSession the gateway
	// had already processed (0: none, or the session is unknown here). The
	// agent drops those batches from its replay queue.
	ResumedBatch uint64
}

// Type implements Message.
func (*Welcome) Type() Type { return TypeWelcome }

// SuffixSize is the number of extranonce1 bytes the agent assigns per miner.
func (w *Welcome) SuffixSize() int { return int(w.Extranonce1Size) - len(w.Extranonce1Prefix) }

func (w *Welcome) check() error {
	switch {
	case w.SessionID == 0:
		return fmt.Errorf("%w: session id 0", ErrInvalid)
	case len(w.Extranonce1Prefix) > int(w.Extranonce1Size):
		return fmt.Errorf("%w: extranonce1 prefix of %d bytes is longer than extranonce1 (%d)",
			ErrInvalid, len(w.Extranonce1Prefix), w.Extranonce1Size)
	case w.Extranonce2Size == 0:
		return fmt.Errorf("%w: extranonce2 size 0", ErrInvalid)
	case int(w.Extranonce1Size)+int(w.Extranonce2Size) > MaxExtranonce:
		return fmt.Errorf("%w: extranonce sizes %d+%d, limit %d", ErrTooLong,
			w.Extranonce1Size, w.Extranonce2Size, MaxExtranonce)
	}
	return nil
}

// AppendMarshal implements Message.
func (w *Welcome) AppendMarshal(dst []byte) ([]byte, error) {
	return appendChecked(dst, w.check, func(e *encoder) {
		e.u64(w.SessionID)
		e.bytes(w.Extranonce1Prefix)
		e.u8(w.Extranonce1Size)
		e.u8(w.Extranonce2Size)
		e.u32(w.VersionMask)
		e.i64(w.ServerTime)
		e.uvarint(w.ResumedBatch)
	})
}

// Marshal implements Message.
func (w *Welcome) Marshal() ([]byte, error) { return w.AppendMarshal(nil) }

// Unmarshal implements Message.
func (w *Welcome) Unmarshal(b []byte) error {
	d := newDecoder(b)
	var out Welcome
	out.SessionID = d.U64()
	out.Extranonce1Prefix = d.Bytes(0, MaxExtranonce, "extranonce1 prefix")
	out.Extranonce1Size = d.U8()
	out.Extranonce2Size = d.U8()
	out.VersionMask = d.U32()
	out.ServerTime = d.I64()
	out.ResumedBatch = d.Uvarint()
	if d.Err() == nil {
		d.Fail(out.check())
	}
	if err := d.finish(TypeWelcome); err != nil {
		return err
	}
	*w = out
	return nil
}

// ---------------------------------------------------------------------------

// RejectCode says why a peer closes the link.
type RejectCode uint32

// Reject codes. Their String values are the close reasons logged and
// counted by both daemons.
const (
	// RejectProtocol: a garbled frame, an undecodable or misdirected
	// message, a broken protocol rule.
	RejectProtocol RejectCode = 1
	// RejectVersion: the peer speaks another protocol version.
	RejectVersion RejectCode = 2
	// RejectBadToken: unknown agent id or wrong token (not distinguished).
	RejectBadToken RejectCode = 3
	// RejectOverloaded: the gateway takes no more agents; try another.
	RejectOverloaded RejectCode = 4
	// RejectReplaced: a newer session of the same agent id took over.
	RejectReplaced RejectCode = 5
	// RejectShutdown: the peer is shutting down; reconnect (elsewhere).
	RejectShutdown RejectCode = 6
	// RejectUnavailable: the gateway has no work to give (no current job,
	// jobmaster unreachable); try another gateway.
	RejectUnavailable RejectCode = 7
	// RejectIdle: nothing was received for the idle timeout.
	RejectIdle RejectCode = 8
)

var rejectNames = [...]string{
	RejectProtocol:    "protocol",
	RejectVersion:     "version",
	RejectBadToken:    "bad_token",
	RejectOverloaded:  "overloaded",
	RejectReplaced:    "replaced",
	RejectShutdown:    "shutdown",
	RejectUnavailable: "unavailable",
	RejectIdle:        "idle_timeout",
}

func (c RejectCode) String() string {
	if int(c) < len(rejectNames) && rejectNames[c] != "" {
		return rejectNames[c]
	}
	return "code(" + strconv.FormatUint(uint64(c), 10) + ")"
}

// Reject is the last message before a peer closes the link. Its frame type
// (3) and body layout are frozen across protocol versions, and decoders
// ignore bytes after the message, so a peer of any version can explain why
// it hangs up (see VersionError).
//
// *Reject implements error, so a received Reject can be returned as is.
type Reject struct {
	Code RejectCode
	// Message is a human-readable detail (0..1024 bytes).
	Message string
}

// Type implements Message.
func (*Reject) Type() Type { return TypeReject }

func (r *Reject) Error() string {
	if r.Message == "" {
		return "agentwire: rejected: " + r.Code.String()
	}
	return "agentwire: rejected: " + r.Code.String() + ": " + r.Message
}

func (r *Reject) check() error { return checkLen(len(r.Message), 0, MaxReasonLen, "reject message") }

// AppendMarshal implements Message.
func (r *Reject) AppendMarshal(dst []byte) ([]byte, error) {
	return appendChecked(dst, r.check, func(e *encoder) {
		e.uvarint(uint64(r.Code))
		e.str(r.Message)
	})
}

// Marshal implements Message.
func (r *Reject) Marshal() ([]byte, error) { return r.AppendMarshal(nil) }

// Unmarshal implements Message. Bytes after the message are ignored (they
// are room for later versions).
func (r *Reject) Unmarshal(b []byte) error {
	d := newDecoder(b)
	var out Reject
	code := d.Uvarint()
	if code > math.MaxUint32 {
		d.Failf("%w: reject code %d", ErrInvalid, code)
	}
	out.Code = RejectCode(code)
	out.Message = d.Str(0, MaxReasonLen, "reject message")
	d.Skip(d.Rest())
	if err := d.finish(TypeReject); err != nil {
		return err
	}
	*r = out
	return nil
}

// ---------------------------------------------------------------------------

// Ping asks the peer for a Pong; either side may send it.
type Ping struct {
	// Time is the sender's clock, unix nanoseconds.
	Time int64
}

// Type implements Message.
func (*Ping) Type() Type { return TypePing }

func (*Ping) check() error { return nil }

// AppendMarshal implements Message.
func (p *Ping) AppendMarshal(dst []byte) ([]byte, error) {
	return appendChecked(dst, p.check, func(e *encoder) { e.i64(p.Time) })
}

// Marshal implements Message.
func (p *Ping) Marshal() ([]byte, error) { return p.AppendMarshal(nil) }

// Unmarshal implements Message.
func (p *Ping) Unmarshal(b []byte) error {
	d := newDecoder(b)
	t := d.I64()
	if err := d.finish(TypePing); err != nil {
		return err
	}
	p.Time = t
	return nil
}

// Pong answers a Ping at once.
type Pong struct {
	// Echo is the Ping's Time (round trip = now - Echo); Time is the
	// responder's clock, unix nanoseconds.
	Echo, Time int64
}

// Type implements Message.
func (*Pong) Type() Type { return TypePong }

func (*Pong) check() error { return nil }

// AppendMarshal implements Message.
func (p *Pong) AppendMarshal(dst []byte) ([]byte, error) {
	return appendChecked(dst, p.check, func(e *encoder) {
		e.i64(p.Echo)
		e.i64(p.Time)
	})
}

// Marshal implements Message.
func (p *Pong) Marshal() ([]byte, error) { return p.AppendMarshal(nil) }

// Unmarshal implements Message.
func (p *Pong) Unmarshal(b []byte) error {
	d := newDecoder(b)
	var out Pong
	out.Echo = d.I64()
	out.Time = d.I64()
	if err := d.finish(TypePong); err != nil {
		return err
	}
	*p = out
	return nil
}

// ---------------------------------------------------------------------------

// Job is one unit of work for every miner behind the agent, sent once per
// job for the whole farm. It carries what mining.notify needs and what the
// agent's local share check needs; never the template's transactions.
type Job struct {
	// ID is the job id (1..64 bytes), used verbatim towards miners and in
	// shares.
	ID string
	// Height is the height of the block being mined (for logs).
	Height int64
	// PrevHash is the previous block hash (internal byte order).
	PrevHash chainhash.Hash
	// Coinb1 and Coinb2 surround extranonce1 || extranonce2 (see Welcome).
	Coinb1, Coinb2 []byte
	// MerkleBranch is the Stratum branch (internal byte order).
	MerkleBranch []chainhash.Hash
	// Version is the block version before rolling; Bits the compact
	// network target; NTime the suggested ntime and MinTime the earliest
	// ntime a share may carry.
	Version int32
	Bits    uint32
	NTime   uint32
	MinTime uint32
	// Clean tells miners to drop older work (a new previous block).
	Clean bool
	// NetworkDifficulty is Bits as a difficulty, for the agent's
	// statistics; Bits is authoritative.
	NetworkDifficulty float64
}

// Type implements Message.
func (*Job) Type() Type { return TypeJob }

const jobClean = 1

func (j *Job) check() error {
	if err := checkLen(len(j.ID), 1, MaxNameLen, "job id"); err != nil {
		return err
	}
	if err := checkLen(len(j.Coinb1), 0, MaxCoinbasePart, "coinb1"); err != nil {
		return err
	}
	if err := checkLen(len(j.Coinb2), 0, MaxCoinbasePart, "coinb2"); err != nil {
		return err
	}
	if len(j.MerkleBranch) > MaxBranch {
		return fmt.Errorf("%w: merkle branch has %d, limit %d", ErrTooLong, len(j.MerkleBranch), MaxBranch)
	}
	if j.Height < 0 {
		return fmt.Errorf("%w: height %d", ErrInvalid, j.Height)
	}
	if !(j.NetworkDifficulty >= 0) || math.IsInf(j.NetworkDifficulty, 0) {
		return fmt.Errorf("%w: network difficulty %v", ErrInvalid, j.NetworkDifficulty)
	}
	return nil
}

// AppendMarshal implements Message.
func (j *Job) AppendMarshal(dst []byte) ([]byte, error) {
	return appendChecked(dst, j.check, func(e *encoder) {
		e.str(j.ID)
		e.uvarint(uint64(j.Height))
		e.hash((*[32]byte)(&j.PrevHash))
		e.bytes(j.Coinb1)
		e.bytes(j.Coinb2)
		e.uvarint(uint64(len(j.MerkleBranch)))
		for i := range j.MerkleBranch {
			e.hash((*[32]byte)(&j.MerkleBranch[i]))
		}
		e.u32(uint32(j.Version))
		e.u32(j.Bits)
		e.u32(j.NTime)
		e.u32(j.MinTime)
		var flags uint8
		if j.Clean {
			flags |= jobClean
		}
		e.u8(flags)
		e.f64(j.NetworkDifficulty)
	})
}

// Marshal implements Message.
func (j *Job) Marshal() ([]byte, error) { return j.AppendMarshal(nil) }

// Unmarshal implements Message.
func (j *Job) Unmarshal(b []byte) error {
	d := newDecoder(b)
	var out Job
	out.ID = d.Str(1, MaxNameLen, "job id")
	h := d.Uvarint()
	if h > math.MaxInt64 {
		d.Failf("%w: height %d", ErrInvalid, h)
	}
	out.Height = int64(h)
	out.PrevHash = d.Hash()
	out.Coinb1 = d.Bytes(0, MaxCoinbasePart, "coinb1")
	out.Coinb2 = d.Bytes(0, MaxCoinbasePart, "coinb2")
	if n := d.Length(MaxBranch, 32, "merkle branch"); n > 0 {
		out.MerkleBranch = make([]chainhash.Hash, n)
		for i := range out.MerkleBranch {
			out.MerkleBranch[i] = d.Hash()
		}
	}
	out.Version = int32(d.U32())
	out.Bits = d.U32()
	out.NTime = d.U32()
	out.MinTime = d.U32()
	flags := d.U8()
	if flags&^jobClean != 0 {
		d.Failf("%w: job flags %#x", ErrInvalid, flags)
	}
	out.Clean = flags&jobClean != 0
	out.NetworkDifficulty = d.F64()
	if d.Err() == nil {
		d.Fail(out.check())
	}
	if err := d.finish(TypeJob); err != nil {
		return err
	}
	*j = out
	return nil
}

// ---------------------------------------------------------------------------

// ResultCode is the gateway's verdict on one share.
type ResultCode uint8

// Share results. Codes other than ResultAccepted are rejections; a decoder
// accepts any code so that a newer gateway can add reasons (an older agent
// counts them as rejections).
const (
	ResultAccepted      ResultCode = 0
	ResultStale         ResultCode = 1 // job unknown or expired
	ResultDuplicate     ResultCode = 2
	ResultLowDifficulty ResultCode = 3 // hash above the credited difficulty's target
	ResultBadNTime      ResultCode = 4
	ResultBadVersion    ResultCode = 5 // version bits outside the miner's mask
	ResultBadExtranonce ResultCode = 6 // wrong extranonce2 size
	ResultUnknownMiner  ResultCode = 7 // no MinerLogin for the miner id
	ResultInvalid       ResultCode = 8 // anything else
)

var resultNames = [...]string{
	ResultAccepted:      "accepted",
	ResultStale:         "stale",
	ResultDuplicate:     "duplicate",
	ResultLowDifficulty: "low_difficulty",
	ResultBadNTime:      "bad_ntime",
	ResultBadVersion:    "bad_version",
	ResultBadExtranonce: "bad_extranonce",
	ResultUnknownMiner:  "unknown_miner",
	ResultInvalid:       "invalid",
}

func (c ResultCode) String() string {
	if int(c) < len(resultNames) {
		return resultNames[c]
	}
	return "code(" + strconv.Itoa(int(c)) + ")"
}

// BatchAck acknowledges one ShareBatch or Block, in the order they were
// received. Once acknowledged, a batch is never resent.
type BatchAck struct {
	// BatchID is the acknowledged batch (or block).
	BatchID uint64
	// Duplicate means the gateway had already processed this batch id
	// (a replay after a reconnect): nothing was credited again, and Results
	// may be empty.
	Duplicate bool
	// Results holds one code per share, in batch order (one for a Block).
	// Encoded sparsely: only rejections take bytes.
	Results []ResultCode
}

// Type implements Message.
func (*BatchAck) Type() Type { return TypeBatchAck }

const ackDuplicate = 1

func (a *BatchAck) check() error {
	if len(a.Results) > MaxBatchShares {
		return fmt.Errorf("%w: %d results, limit %d", ErrTooLong, len(a.Results), MaxBatchShares)
	}
	return nil
}

// AppendMarshal implements Message.
func (a *BatchAck) AppendMarshal(dst []byte) ([]byte, error) {
	return appendChecked(dst, a.check, func(e *encoder) {
		e.uvarint(a.BatchID)
		var flags uint8
		if a.Duplicate {
			flags |= ackDuplicate
		}
		e.u8(flags)
		e.uvarint(uint64(len(a.Results)))
		rejected := 0
		for _, r := range a.Results {
			if r != ResultAccepted {
				rejected++
			}
		}
		e.uvarint(uint64(rejected))
		next := 0 // index the next gap counts from
		for i, r := range a.Results {
			if r != ResultAccepted {
				e.uvarint(uint64(i - next))
				e.u8(uint8(r))
				next = i + 1
			}
		}
	})
}

// Marshal implements Message.
func (a *BatchAck) Marshal() ([]byte, error) { return a.AppendMarshal(nil) }

// Unmarshal implements Message.
func (a *BatchAck) Unmarshal(b []byte) error {
	d := newDecoder(b)
	var out BatchAck
	out.BatchID = d.Uvarint()
	flags := d.U8()
	if flags&^ackDuplicate != 0 {
		d.Failf("%w: ack flags %#x", ErrInvalid, flags)
	}
	out.Duplicate = flags&ackDuplicate != 0
	n := d.Length(MaxBatchShares, 0, "results")
	rejected := d.Length(n, 2, "rejections")
	if d.Err() == nil && n > 0 {
		out.Results = make([]ResultCode, n)
		next := uint64(0)
		for range rejected {
			i := next + d.Uvarint()
			code := ResultCode(d.U8())
			if d.Err() != nil {
				break
			}
			if i >= uint64(n) || code == ResultAccepted {
				d.Failf("%w: rejection %d (%s) of %d results", ErrInvalid, i, code, n)
				break
			}
			out.Results[i] = code
			next = i + 1
		}
	}
	if err := d.finish(TypeBatchAck); err != nil {
		return err
	}
	*a = out
	return nil
}

// ---------------------------------------------------------------------------

// Block is a block candidate: a share whose hash met the network target by
// the agent's check. It is sent at once, never batched and never also put
// in a ShareBatch. It shares the batch id sequence with ShareBatch, so it
// is acknowledged, replayed and de-duplicated like a batch of one share.
type Block struct {
	// BatchID is the next id of the agent's batch sequence.
	BatchID uint64
	// Time is when the agent accepted the share (unix seconds, the agent's
	// clock corrected by Welcome.ServerTime; 0: unknown, the gateway uses
	// its own): statistics credit it to that minute, wherever and whenever
	// it is delivered.
	Time int64
	// Share is the share itself; the gateway validates and credits it like
	// any share, and submits the block whatever the miner binding says.
	Share Share
	// User and Worker repeat the miner's account so that the block is
	// attributed even if its MinerLogin was lost (0..64 bytes each).
	User, Worker string
	// Hash is the block hash the agent computed (internal byte order), for
	// logs: the gateway recomputes it, and a mismatch means agent and
	// gateway disagree on the coinbase layout.
	Hash chainhash.Hash
}

// Type implements Message.
func (*Block) Type() Type { return TypeBlock }

func (b *Block) check() error {
	if b.Time < 0 {
		return fmt.Errorf("%w: time %d", ErrInvalid, b.Time)
	}
	if err := b.Share.check(-1); err != nil {
		return err
	}
	if err := checkLen(len(b.User), 0, MaxNameLen, "user"); err != nil {
		return err
	}
	return checkLen(len(b.Worker), 0, MaxNameLen, "worker")
}

// AppendMarshal implements Message.
func (b *Block) AppendMarshal(dst []byte) ([]byte, error) {
	return appendChecked(dst, b.check, func(e *encoder) {
		s := &b.Share
		e.uvarint(b.BatchID)
		e.uvarint(uint64(b.Time))
		e.uvarint(uint64(s.MinerID))
		e.str(s.JobID)
		e.bytes(s.Extranonce2)
		e.u32(s.NTime)
		e.u32(s.Nonce)
		e.u32(s.VersionBits)
		e.f64(s.Difficulty)
		e.str(b.User)
		e.str(b.Worker)
		e.hash((*[32]byte)(&b.Hash))
	})
}

// Marshal implements Message.
func (b *Block) Marshal() ([]byte, error) { return b.AppendMarshal(nil) }

// Unmarshal implements Message.
func (b *Block) Unmarshal(body []byte) error {
	d := newDecoder(body)
	var out Block
	s := &out.Share
	out.BatchID = d.Uvarint()
	out.Time = d.time()
	s.MinerID = d.minerID()
	s.JobID = d.Str(1, MaxNameLen, "job id")
	s.Extranonce2 = d.Bytes(1, MaxExtranonce, "extranonce2")
	s.NTime = d.U32()
	s.Nonce = d.U32()
	s.VersionBits = d.U32()
	s.Difficulty = d.F64()
	out.User = d.Str(0, MaxNameLen, "user")
	out.Worker = d.Str(0, MaxNameLen, "worker")
	out.Hash = d.Hash()
	if d.Err() == nil && !validDifficulty(s.Difficulty) {
		d.Failf("%w: difficulty %v", ErrInvalid, s.Difficulty)
	}
	if err := d.finish(TypeBlock); err != nil {
		return err
	}
	*b = out
	return nil
}

// time reads a uvarint unix time (0..2^63-1).
func (d *decoder) time() int64 {
	v := d.Uvarint()
	if d.Err() == nil && v > math.MaxInt64 {
		d.Failf("%w: time %d", ErrInvalid, v)
	}
	return int64(v)
}

// minerID reads a uvarint miner id: 1..2^32-1.
func (d *decoder) minerID() uint32 {
	v := d.Uvarint()
	if d.Err() == nil && (v == 0 || v > math.MaxUint32) {
		d.Failf("%w: miner id %d", ErrInvalid, v)
		return 0
	}
	return uint32(v)
}

// ---------------------------------------------------------------------------

// MinerLogin binds an agent-local miner id to a miner's account, once per
// miner: shares then refer to the id. It is sent when a miner authorizes;
// the gateway records a "connected" event for it, so per-worker statistics
// look as if the miner were connected directly.
type MinerLogin struct {
	// MinerID is assigned by the agent: 1..2^32-1, never reused while the
	// agent process runs.
	MinerID uint32
	// Resumed marks a re-announcement on a new session of a miner already
	// announced before (after a reconnect): bind the id, record no event.
	Resumed bool
	// Extranonce1Suffix is the miner's part of extranonce1
	// (Welcome.SuffixSize bytes); the miner's extranonce1 is
	// Welcome.Extranonce1Prefix || Extranonce1Suffix.
	Extranonce1Suffix []byte
	// User (1..64 bytes) and Worker (0..64 bytes) are the miner's account,
	// already split as the gateway splits "user.worker"; the gateway applies
	// its own account rules to them.
	User, Worker string
	// VersionMask is the version-rolling mask negotiated with the miner
	// (0: no rolling); the gateway checks version bits against it.
	VersionMask uint32
	// PeerIP is the miner's address on the farm network (may be invalid:
	// unknown).
	PeerIP netip.Addr
	// UserAgent is what the miner sent in mining.subscribe (0..128 bytes).
	UserAgent string
}

// Type implements Message.
func (*MinerLogin) Type() Type { return TypeMinerLogin }

const loginResumed = 1

func (m *MinerLogin) check() error {
	if m.MinerID == 0 {
		return fmt.Errorf("%w: miner id 0", ErrInvalid)
	}
	if err := checkLen(len(m.Extranonce1Suffix), 0, MaxExtranonce, "extranonce1 suffix"); err != nil {
		return err
	}
	if err := checkLen(len(m.User), 1, MaxNameLen, "user"); err != nil {
		return err
	}
	if err := checkLen(len(m.Worker), 0, MaxNameLen, "worker"); err != nil {
		return err
	}
	return checkLen(len(m.UserAgent), 0, MaxUserAgentLen, "user agent")
}

// AppendMarshal implements Message.
func (m *MinerLogin) AppendMarshal(dst []byte) ([]byte, error) {
	return appendChecked(dst, m.check, func(e *encoder) {
		e.uvarint(uint64(m.MinerID))
		var flags uint8
		if m.Resumed {
			flags |= loginResumed
		}
		e.u8(flags)
		e.bytes(m.Extranonce1Suffix)
		e.str(m.User)
		e.str(m.Worker)
		e.u32(m.VersionMask)
		e.addr(m.PeerIP)
		e.str(m.UserAgent)
	})
}

// Marshal implements Message.
func (m *MinerLogin) Marshal() ([]byte, error) { return m.AppendMarshal(nil) }

// Unmarshal implements Message.
func (m *MinerLogin) Unmarshal(b []byte) error {
	d := newDecoder(b)
	var out MinerLogin
	out.MinerID = d.minerID()
	flags := d.U8()
	if flags&^loginResumed != 0 {
		d.Failf("%w: login flags %#x", ErrInvalid, flags)
	}
	out.Resumed = flags&loginResumed != 0
	out.Extranonce1Suffix = d.Bytes(0, MaxExtranonce, "extranonce1 suffix")
	out.User = d.Str(1, MaxNameLen, "user")
	out.Worker = d.Str(0, MaxNameLen, "worker")
	out.VersionMask = d.U32()
	out.PeerIP = d.Addr("peer ip")
	out.UserAgent = d.Str(0, MaxUserAgentLen, "user agent")
	if err := d.finish(TypeMinerLogin); err != nil {
		return err
	}
	*m = out
	return nil
}

// MinerLogout unbinds a miner id: the miner disconnected. The gateway
// records a "disconnected" event unless Quiet is set.
type MinerLogout struct {
	MinerID uint32
	// Quiet releases the binding without an event: used after a replay for
	// miners that were re-announced only because a replayed batch referred
	// to them and whose logout the gateway already recorded.
	Quiet bool
}

// Type implements Message.
func (*MinerLogout) Type() Type { return TypeMinerLogout }

const logoutQuiet = 1

func (m *MinerLogout) check() error {
	if m.MinerID == 0 {
		return fmt.Errorf("%w: miner id 0", ErrInvalid)
	}
	return nil
}

// AppendMarshal implements Message.
func (m *MinerLogout) AppendMarshal(dst []byte) ([]byte, error) {
	return appendChecked(dst, m.check, func(e *encoder) {
		e.uvarint(uint64(m.MinerID))
		var flags uint8
		if m.Quiet {
			flags |= logoutQuiet
		}
		e.u8(flags)
	})
}

// Marshal implements Message.
func (m *MinerLogout) Marshal() ([]byte, error) { return m.AppendMarshal(nil) }

// Unmarshal implements Message.
func (m *MinerLogout) Unmarshal(b []byte) error {
	d := newDecoder(b)
	var out MinerLogout
	out.MinerID = d.minerID()
	flags := d.U8()
	if flags&^logoutQuiet != 0 {
		d.Failf("%w: logout flags %#x", ErrInvalid, flags)
	}
	out.Quiet = flags&logoutQuiet != 0
	if err := d.finish(TypeMinerLogout); err != nil {
		return err
	}
	*m = out
	return nil
}
