package binfield

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"net/netip"
)

// Errors are the sentinel errors a Decoder reports, so that each wire
// format keeps its own (errors.Is(err, bus.ErrShort) and so on).
type Errors struct {
	// Short: the input ends inside a field, or a claimed count cannot fit
	// in the bytes left. Reported as is, without detail.
	Short error
	// TooLong: a length or count is above the caller's limit. Wrapped with
	// the field name, the value and the limit.
	TooLong error
	// Invalid: a malformed value (a varint that overflows 64 bits, a byte
	// string below its minimum length, an address length other than 0, 4
	// or 16). Wrapped with detail. If nil, these are reported as Short,
	// without detail.
	Invalid error
	// Trail: Finish found bytes after the last field. Wrapped with their
	// count.
	Trail error
}

// Sentinel errors of the default Errors, used by a Decoder made with nil
// Errors.
var (
	ErrShort   = errors.New("binfield: input truncated")
	ErrTooLong = errors.New("binfield: field too long")
	ErrInvalid = errors.New("binfield: invalid field")
	ErrTrail   = errors.New("binfield: trailing bytes")
)

// defaultErrors are the Errors of a Decoder made with nil Errors.
var defaultErrors = Errors{Short: ErrShort, TooLong: ErrTooLong, Invalid: ErrInvalid, Trail: ErrTrail}

// Decoder reads fields from a byte slice with a sticky error: after the
// first failure every read returns a zero value (nil for slices) and
// consumes nothing, and Err and Finish report the first failure. Slices
// returned by Take alias the input; Bytes and Str copy.
//
// The zero Decoder is not usable: make one with NewDecoder.
type Decoder struct {
	b    []byte
	off  int
	err  error
	errs *Errors
}

// NewDecoder returns a Decoder reading b and reporting errs, which must
// outlive it and have non-nil Short, TooLong and Trail (nil errs means
// binfield's own ErrShort, ErrTooLong, ErrInvalid and ErrTrail). The result
// is a value: keep it in a variable and call its methods through that
// variable (they have pointer receivers); it does not allocate.
func NewDecoder(b []byte, errs *Errors) Decoder {
	if errs == nil {
		errs = &defaultErrors
	} else if errs.Short == nil || errs.TooLong == nil || errs.Trail == nil {
		panic("binfield: NewDecoder with a nil Short, TooLong or Trail error")
	}
	return Decoder{b: b, errs: errs}
}

// Fail records err unless an error is already recorded; a nil err is
// ignored, so Fail(check()) records check's failure, if any.
func (d *Decoder) Fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

// Failf records fmt.Errorf(format, args...) unless an error is already
// recorded.
func (d *Decoder) Failf(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

// invalid records a malformed value: errs.Invalid wrapped with the detail,
// or errs.Short as is when the caller has no Invalid error.
func (d *Decoder) invalid(format string, args ...any) {
	if d.err != nil {
		return
	}
	if d.errs.Invalid == nil {
		d.err = d.errs.Short
		return
	}
	d.err = fmt.Errorf("%w: "+format, append([]any{d.errs.Invalid}, args...)...)
}

// Err returns the first recorded error, or nil.
func (d *Decoder) Err() error { return d.err }

// Off returns the number of bytes consumed so far.
func (d *Decoder) Off() int { return d.off }

// Rest returns the number of bytes not consumed yet.
func (d *Decoder) Rest() int { return len(d.b) - d.off }

// Take consumes the next n bytes and returns them, aliasing the input with
// the capacity clipped to n (appending to the result never overwrites the
// input). It fails with Short if fewer than n bytes remain (or n < 0).
func (d *Decoder) Take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || len(d.b)-d.off < n {
		d.err = d.errs.Short
		return nil
	}
	v := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return v
}

// Skip consumes the next n bytes, as Take does, without returning them.
// Skip(d.Rest()) ignores the rest of the input.
func (d *Decoder) Skip(n int) { d.Take(n) }

// U8 reads one byte.
func (d *Decoder) U8() uint8 {
	if v := d.Take(1); v != nil {
		return v[0]
	}
	return 0
}

// U16 reads 2 little-endian bytes.
func (d *Decoder) U16() uint16 {
	if v := d.Take(2); v != nil {
		return binary.LittleEndian.Uint16(v)
	}
	return 0
}

// U32 reads 4 little-endian bytes.
func (d *Decoder) U32() uint32 {
	if v := d.Take(4); v != nil {
		return binary.LittleEndian.Uint32(v)
	}
	return 0
}

// U64 reads 8 little-endian bytes.
func (d *Decoder) U64() uint64 {
	if v := d.Take(8); v != nil {
		return binary.LittleEndian.Uint64(v)
	}
	return 0
}

// I64 reads 8 little-endian bytes as a two's complement integer.
func (d *Decoder) I64() int64 { return int64(d.U64()) }

// F64 reads 8 little-endian bytes as IEEE 754 bits.
func (d *Decoder) F64() float64 { return math.Float64frombits(d.U64()) }

// Uvarint reads an unsigned varint. It fails with Short if the input ends
// inside it and with Invalid if it overflows 64 bits.
func (d *Decoder) Uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.varintFail(n)
		return 0
	}
	d.off += n
	return v
}

// Varint reads a zig-zag varint. It fails with Short if the input ends
// inside it and with Invalid if it overflows 64 bits.
func (d *Decoder) Varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.varintFail(n)
		return 0
	}
	d.off += n
	return v
}

// varintFail records the failure binary.Uvarint or Varint reported as n.
func (d *Decoder) varintFail(n int) {
	if n == 0 {
		d.err = d.errs.Short
		return
	}
	d.invalid("varint overflows 64 bits")
}

// Length reads a uvarint count or length. It fails with TooLong if the
// value is above max, and with Short if count×minSize is more than the
// bytes left (minSize is the least every element takes; 0 skips that
// check), so a claimed count never makes the caller allocate more than the
// input justifies.
func (d *Decoder) Length(max, minSize int, what string) int {
	n := d.Uvarint()
	if d.err != nil {
		return 0
	}
	if max < 0 || n > uint64(max) {
		d.err = fmt.Errorf("%w: %s has %d, limit %d", d.errs.TooLong, what, n, max)
		return 0
	}
	if minSize > 0 {
		if hi, lo := bits.Mul64(n, uint64(minSize)); hi != 0 || lo > uint64(d.Rest()) {
			d.err = d.errs.Short
			return 0
		}
	}
	return int(n)
}

// Bytes reads a length-prefixed byte string of min..max bytes and returns
// a copy; an empty string decodes as nil. Above max it fails with TooLong,
// below min with Invalid.
func (d *Decoder) Bytes(min, max int, what string) []byte {
	n := d.Length(max, 1, what)
	if d.err == nil && n < min {
		d.invalid("%s has %d bytes, minimum %d", what, n, min)
	}
	v := d.Take(n)
	if len(v) == 0 {
		return nil
	}
	return append([]byte(nil), v...)
}

// Str reads a length-prefixed string of min..max bytes. Above max it fails
// with TooLong, below min with Invalid.
func (d *Decoder) Str(min, max int, what string) string {
	n := d.Length(max, 1, what)
	if d.err == nil && n < min {
		if n == 0 {
			d.invalid("%s is empty", what)
		} else {
			d.invalid("%s has %d bytes, minimum %d", what, n, min)
		}
	}
	return string(d.Take(n))
}

// Hash reads 32 bytes.
func (d *Decoder) Hash() (h [32]byte) {
	if v := d.Take(32); v != nil {
		copy(h[:], v)
	}
	return h
}

// Addr reads an IP address written by AppendAddr; the zero Addr stands for
// no address. A length byte other than 0, 4 or 16 fails with Invalid.
func (d *Decoder) Addr(what string) netip.Addr {
	switch n := d.U8(); n {
	case 0:
	case 4:
		if v := d.Take(4); v != nil {
			return netip.AddrFrom4([4]byte(v))
		}
	case 16:
		if v := d.Take(16); v != nil {
			return netip.AddrFrom16([16]byte(v))
		}
	default:
		d.invalid("%s length %d (want 0, 4 or 16)", what, n)
	}
	return netip.Addr{}
}

// Finish returns the first recorded error or, if bytes remain after the
// last field, records and returns Trail wrapped with their count.
func (d *Decoder) Finish() error {
	if d.err == nil && d.off != len(d.b) {
		d.err = fmt.Errorf("%w: %d", d.errs.Trail, len(d.b)-d.off)
	}
	return d.err
}
