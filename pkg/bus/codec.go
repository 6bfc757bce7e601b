package bus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
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

// encoder appends fields to a byte slice.
type encoder struct{ b []byte }

func newEncoder(t Type, sizeHint int) *encoder {
	e := &encoder{b: make([]byte, 0, sizeHint+preambleSize)}
	e.b = append(e.b, 'h', 'g', Version, byte(t))
	return e
}

func (e *encoder) u8(v uint8)   { e.b = append(e.b, v) }
func (e *encoder) u32(v uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *encoder) i64(v int64)  { e.b = binary.LittleEndian.AppendUint64(e.b, uint64(v)) }
func (e *encoder) uvarint(v uint64) {
	e.b = binary.AppendUvarint(e.b, v)
}
func (e *encoder) bytes(v []byte) {
	e.uvarint(uint64(len(v)))
	e.b = append(e.b, v...)
}
func (e *encoder) str(v string) {
	e.uvarint(uint64(len(v)))
	e.b = append(e.b, v...)
}
func (e *encoder) hash(v *[32]byte) { e.b = append(e.b, v[:]...) }
func (e *encoder) f64(v float64)    { e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(v)) }

// decoder reads fields with a sticky error: after the first failure every
// read returns zero values, and err() reports the failure.
type decoder struct {
	b   []byte
	off int
	e   error
}

func newDecoder(b []byte, want Type) *decoder {
	d := &decoder{b: b}
	t, err := PeekType(b)
	switch {
	case err != nil:
		d.e = err
	case t != want:
		d.e = fmt.Errorf("%w: got %s, want %s", ErrType, t, want)
	default:
		d.off = preambleSize
	}
	return d
}

func (d *decoder) fail(err error) {
	if d.e == nil {
		d.e = err
	}
}

func (d *decoder) take(n int) []byte {
	if d.e != nil {
		return nil
	}
	if n < 0 || len(d.b)-d.off < n {
		d.fail(ErrShort)
		return nil
	}
	v := d.b[d.off : d.off+n]
	d.off += n
	return v
}

func (d *decoder) u8() uint8 {
	if v := d.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if v := d.take(4); v != nil {
		return binary.LittleEndian.Uint32(v)
	}
	return 0
}

func (d *decoder) i64() int64 {
	if v := d.take(8); v != nil {
		return int64(binary.LittleEndian.Uint64(v))
	}
	return 0
}

func (d *decoder) f64() float64 {
	if v := d.take(8); v != nil {
		return math.Float64frombits(binary.LittleEndian.Uint64(v))
	}
	return 0
}

func (d *decoder) uvarint() uint64 {
	if d.e != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail(ErrShort)
		return 0
	}
	d.off += n
	return v
}

// length reads a uvarint length bounded by max.
func (d *decoder) length(max int, what string) int {
	n := d.uvarint()
	if d.e != nil {
		return 0
	}
	if n > uint64(max) || n > math.MaxInt32 {
		d.fail(fmt.Errorf("%w: %s has %d, limit %d", ErrTooLong, what, n, max))
		return 0
	}
	return int(n)
}

// bytes reads a length-prefixed byte string and copies it.
func (d *decoder) bytes(max int, what string) []byte {
	n := d.length(max, what)
	v := d.take(n)
	if v == nil || n == 0 {
		return nil
	}
	return append([]byte(nil), v...)
}

func (d *decoder) str(max int, what string) string {
	n := d.length(max, what)
	return string(d.take(n))
}

func (d *decoder) hash() (h [32]byte) {
	if v := d.take(32); v != nil {
		copy(h[:], v)
	}
	return h
}

// finish reports the first error, or ErrTrail if bytes remain.
func (d *decoder) finish() error {
	if d.e != nil {
		return d.e
	}
	if d.off != len(d.b) {
		return fmt.Errorf("%w: %d", ErrTrail, len(d.b)-d.off)
	}
	return nil
}
