package bus

import (
	"errors"
	"fmt"

	"github.com/hashgate/hashgate/pkg/binfield"
)

// Version is the codec version this package writes.
const Version = 1

// Type identifies a message.
type Type byte

// Message types.
const (
	TypeJob         Type = 1
	TypeFoundBlock  Type = 2
	TypeBlockResult Type = 3
	TypeTip         Type = 4
	TypeStats       Type = 5
	TypeEvent       Type = 6
	TypeAlert       Type = 7
)

func (t Type) String() string {
	switch t {
	case TypeJob:
		return "job"
	case TypeFoundBlock:
		return "found_block"
	case TypeBlockResult:
		return "block_result"
	case TypeTip:
		return "tip"
	case TypeStats:
		return "stats"
	case TypeEvent:
		return "event"
	case TypeAlert:
		return "alert"
	}
	return fmt.Sprintf("type(%d)", byte(t))
}

// Errors returned by decoders.
var (
	ErrShort   = errors.New("bus: message truncated")
	ErrMagic   = errors.New("bus: not a hashgate bus message")
	ErrVersion = errors.New("bus: unsupported codec version")
	ErrType    = errors.New("bus: unexpected message type")
	ErrTooLong = errors.New("bus: field too long")
	ErrTrail   = errors.New("bus: trailing bytes after message")
)

// Limits on decoded fields.
const (
	maxString    = 256
	maxBlob      = 4 << 20 // one raw transaction or coinbase half
	maxBranch    = 32
	maxTxs       = 1 << 17
	preambleSize = 4
)

// PeekType returns the message type of an encoded message without decoding it.
func PeekType(b []byte) (Type, error) {
	if len(b) < preambleSize {
		return 0, ErrShort
	}
	if b[0] != 'h' || b[1] != 'g' {
		return 0, ErrMagic
	}
	if b[2] != Version {
		return 0, fmt.Errorf("%w %d (this build speaks %d)", ErrVersion, b[2], Version)
	}
	return Type(b[3]), nil
}

// codecErrors are the errors decoders report. The bus format has no
// ErrInvalid: a varint that overflows 64 bits is reported as ErrShort.
var codecErrors = binfield.Errors{Short: ErrShort, TooLong: ErrTooLong, Trail: ErrTrail}

// encoder appends fields to a byte slice. Layouts and code are binfield's
// (its Append functions); the local type keeps the short names and the
// plain b field that message code and tests use.
type encoder struct{ b []byte }

func newEncoder(t Type, sizeHint int) *encoder {
	e := &encoder{b: make([]byte, 0, sizeHint+preambleSize)}
	e.b = append(e.b, 'h', 'g', Version, byte(t))
	return e
}

func (e *encoder) u8(v uint8)       { e.b = append(e.b, v) }
func (e *encoder) u32(v uint32)     { e.b = binfield.AppendU32(e.b, v) }
func (e *encoder) i64(v int64)      { e.b = binfield.AppendI64(e.b, v) }
func (e *encoder) f64(v float64)    { e.b = binfield.AppendF64(e.b, v) }
func (e *encoder) uvarint(v uint64) { e.b = binfield.AppendUvarint(e.b, v) }
func (e *encoder) hash(v *[32]byte) { e.b = binfield.AppendHash(e.b, v) }
func (e *encoder) bytes(v []byte)   { e.b = binfield.AppendBytes(e.b, v) }
func (e *encoder) str(v string)     { e.b = binfield.AppendStr(e.b, v) }

// decoder reads fields with a sticky error (see binfield.Decoder) and
// reports this package's errors.
type decoder struct{ binfield.Decoder }

// newDecoder returns a decoder positioned after the preamble, or one that
// has already failed if b is not a message of type want.
func newDecoder(b []byte, want Type) decoder {
	d := decoder{binfield.NewDecoder(b, &codecErrors)}
	t, err := PeekType(b)
	switch {
	case err != nil:
		d.Fail(err)
	case t != want:
		d.Failf("%w: got %s, want %s", ErrType, t, want)
	default:
		d.Skip(preambleSize)
	}
	return d
}
