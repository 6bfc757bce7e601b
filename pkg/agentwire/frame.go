package agentwire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Version is the protocol version this package speaks. It is written in the
// stream preamble, in every frame header and in Hello.
const Version = 1

// Frame layout: magic "HA" (2) | version (1) | type (1) | length u32 LE (4) | body.
const (
	// HeaderSize is the size of a frame header.
	HeaderSize = 8
	// MaxFrame is the largest frame body any reader accepts: 4 MiB. The
	// largest legitimate frame is a Job (coinbase halves and a merkle branch;
	// agents never receive transactions) or a full ShareBatch, both far
	// below it.
	MaxFrame = 4 << 20

	magic0, magic1 = 'H', 'A'
)

// Type identifies a frame.
type Type byte

// Frame types. TypeSeal is internal to the stream layer (see Conn); the
// others carry a Message. The numbering is part of the protocol: a type is
// never renumbered, and TypeReject keeps its number and body layout in every
// version.
const (
	TypeSeal        Type = 0
	TypeHello       Type = 1
	TypeWelcome     Type = 2
	TypeReject      Type = 3
	TypePing        Type = 4
	TypePong        Type = 5
	TypeJob         Type = 6
	TypeShareBatch  Type = 7
	TypeBlock       Type = 8
	TypeBatchAck    Type = 9
	TypeMinerLogin  Type = 10
	TypeMinerLogout Type = 11
)

var typeNames = [...]string{
	TypeSeal:        "seal",
	TypeHello:       "hello",
	TypeWelcome:     "welcome",
	TypeReject:      "reject",
	TypePing:        "ping",
	TypePong:        "pong",
	TypeJob:         "job",
	TypeShareBatch:  "share_batch",
	TypeBlock:       "block",
	TypeBatchAck:    "batch_ack",
	TypeMinerLogin:  "miner_login",
	TypeMinerLogout: "miner_logout",
}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", byte(t))
}

// FromAgent reports whether an agent may send frames of type t.
func (t Type) FromAgent() bool {
	switch t {
	case TypeHello, TypeShareBatch, TypeBlock, TypeMinerLogin, TypeMinerLogout,
		TypePing, TypePong, TypeReject:
		return true
	}
	return false
}

// FromGateway reports whether a gateway may send frames of type t.
func (t Type) FromGateway() bool {
	switch t {
	case TypeWelcome, TypeJob, TypeBatchAck, TypePing, TypePong, TypeReject:
		return true
	}
	return false
}

// Framing and decoding errors. Every error this package returns for bad
// input wraps one of these; none of them is recoverable on a stream, so the
// connection is closed (with a Reject first, where the peer can still read
// one).
var (
	// ErrIncomplete means buf holds a frame prefix: read more and retry.
	ErrIncomplete = errors.New("agentwire: incomplete frame")
	// ErrBadMagic means the bytes are not an agentwire stream or frame (a
	// Stratum client on the agent port, or a garbled stream).
	ErrBadMagic = errors.New("agentwire: bad magic")
	// ErrVersion means the peer speaks another protocol version; the
	// concrete error is a *VersionError naming both.
	ErrVersion = errors.New("agentwire: protocol version mismatch")
	// ErrTooLarge means a frame (or a write unit, see Conn) is over the
	// reader's limit.
	ErrTooLarge = errors.New("agentwire: frame too large")
	// ErrShort means a message body ended early.
	ErrShort = errors.New("agentwire: message truncated")
	// ErrTrail means bytes were left after a message body.
	ErrTrail = errors.New("agentwire: trailing bytes after message")
	// ErrTooLong means a field is over its limit.
	ErrTooLong = errors.New("agentwire: field too long")
	// ErrInvalid means a field has a value the protocol forbids.
	ErrInvalid = errors.New("agentwire: invalid field")
	// ErrType means a frame type is unknown or unexpected.
	ErrType = errors.New("agentwire: unexpected message type")
	// ErrNoContext means a share was encoded relative to connection state
	// (see Decoder) that the decoder does not have.
	ErrNoContext = errors.New("agentwire: share refers to missing connection state")
	// ErrChecksum means a write unit's checksum did not match: the stream
	// was corrupted below the frame layer.
	ErrChecksum = errors.New("agentwire: checksum mismatch")
	// ErrCodec means the stream preamble names an unknown compression codec.
	ErrCodec = errors.New("agentwire: unknown compression codec")
)

// VersionError reports a protocol version mismatch. It matches ErrVersion
// with errors.Is.
type VersionError struct {
	// Peer is the version the peer sent; Local is Version.
	Peer, Local uint8
	// Reject is the peer's reason for closing, when the peer sent one
	// (Reject frames are readable across versions).
	Reject *Reject
}

func (e *VersionError) Error() string {
	s := fmt.Sprintf("agentwire: protocol version mismatch: peer speaks version %d, this build speaks version %d",
		e.Peer, e.Local)
	if e.Reject != nil {
		s += " (peer says: " + e.Reject.Code.String() + ": " + e.Reject.Message + ")"
	}
	return s
}

// Unwrap makes errors.Is(err, ErrVersion) true.
func (e *VersionError) Unwrap() error { return ErrVersion }

// AppendFrame appends one frame (header and body) to dst and returns the
// extended slice.
//
// body must not be longer than MaxFrame (every reader refuses such a frame);
// the Encoder and Conn check this, AppendFrame does not. It never fails and
// allocates only when dst must grow.
func AppendFrame(dst []byte, t Type, body []byte) []byte {
	dst = append(dst, magic0, magic1, Version, byte(t))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(body)))
	return append(dst, body...)
}

// SplitFrame returns the first frame in buf.
//
// On success, body is the frame body and advance the number of bytes the
// frame occupies (HeaderSize + len(body)). body aliases buf: it is valid as
// long as buf is, and the decoders copy what they keep.
//
// Errors: ErrIncomplete when buf holds only part of a frame (keep the bytes,
// read more, call again); ErrBadMagic, a *VersionError (matching
// ErrVersion) or ErrTooLarge as soon as the bytes that show the problem
// have arrived, without waiting for the rest of the frame. Those three are
// fatal for the stream. On error advance is 0 and body nil.
//
// SplitFrame never allocates except for the *VersionError and is safe for
// concurrent use on distinct or read-only buffers.
func SplitFrame(buf []byte) (t Type, body []byte, advance int, err error) {
	n, err := checkHeader(buf, MaxFrame)
	if err != nil {
		return 0, nil, 0, err
	}
	if len(buf)-HeaderSize < n {
		return 0, nil, 0, ErrIncomplete
	}
	return Type(buf[3]), buf[HeaderSize : HeaderSize+n : HeaderSize+n], HeaderSize + n, nil
}

// checkHeader validates the header bytes present in buf, byte by byte, and
// returns the body length once the whole header is there.
func checkHeader(buf []byte, limit int) (int, error) {
	if len(buf) > 0 && buf[0] != magic0 || len(buf) > 1 && buf[1] != magic1 {
		return 0, ErrBadMagic
	}
	if len(buf) > 2 && buf[2] != Version {
		return 0, &VersionError{Peer: buf[2], Local: Version}
	}
	if len(buf) < HeaderSize {
		return 0, ErrIncomplete
	}
	n := binary.LittleEndian.Uint32(buf[4:8])
	if uint64(n) > uint64(limit) {
		return 0, fmt.Errorf("%w: %s frame of %d bytes, limit %d", ErrTooLarge, Type(buf[3]), n, limit)
	}
	return int(n), nil
}
