package agentwire

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
)

// Field limits. Encoders refuse what decoders would refuse, so a message a
// peer built with this package never closes the link for a limit.
const (
	// MaxNameLen bounds agent ids, job ids, user and worker names and the
	// software version string.
	MaxNameLen = 64
	// MaxTokenLen bounds the agent token.
	MaxTokenLen = 256
	// MaxUserAgentLen bounds a miner's user agent.
	MaxUserAgentLen = 128
	// MaxReasonLen bounds a Reject message.
	MaxReasonLen = 1024
	// MaxExtranonce bounds extranonce1 + extranonce2 (as seen by miners),
	// the same bound blockutil puts on a coinbase.
	MaxExtranonce = 32
	// MaxCoinbasePart bounds Job.Coinb1 and Job.Coinb2 (a coinbase paying
	// thousands of outputs still fits).
	MaxCoinbasePart = 1 << 20
	// MaxBranch bounds the merkle branch (2^32 transactions).
	MaxBranch = 32
	// MaxBatchShares bounds the shares in one ShareBatch (and the results
	// in one BatchAck). 10,000 miners at one share per 5 s make about 200
	// shares per 100 ms batch.
	MaxBatchShares = 1 << 14
	// MaxBatchRejects bounds the reject counts in one ShareBatch.
	MaxBatchRejects = 1 << 14
	// MaxBatchGroups bounds the distinct job runs in one ShareBatch.
	MaxBatchGroups = 256
)

// encoder appends fields to a byte slice.
type encoder struct{ b []byte }

func (e *encoder) u8(v uint8)       { e.b = append(e.b, v) }
func (e *encoder) u16(v uint16)     { e.b = binary.LittleEndian.AppendUint16(e.b, v) }
func (e *encoder) u32(v uint32)     { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *encoder) u64(v uint64)     { e.b = binary.LittleEndian.AppendUint64(e.b, v) }
func (e *encoder) i64(v int64)      { e.u64(uint64(v)) }
func (e *encoder) f64(v float64)    { e.u64(math.Float64bits(v)) }
func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) hash(v *[32]byte) { e.b = append(e.b, v[:]...) }
func (e *encoder) bytes(v []byte) {
	e.uvarint(uint64(len(v)))
	e.b = append(e.b, v...)
}
func (e *encoder) str(v string) {
	e.uvarint(uint64(len(v)))
	e.b = append(e.b, v...)
}

// addr writes an IP address as a length byte (0, 4 or 16) and the bytes.
// Zones are not carried.
func (e *encoder) addr(a netip.Addr) {
	switch {
	case !a.IsValid():
		e.u8(0)
	case a.Is4():
		v := a.As4()
		e.u8(4)
		e.b = append(e.b, v[:]...)
	default:
		v := a.As16()
		e.u8(16)
		e.b = append(e.b, v[:]...)
	}
}

// decoder reads fields with a sticky error: after the first failure every
// read returns zero values, and finish reports the failure.
type decoder struct {
	b   []byte
	off int
	e   error
}

func (d *decoder) fail(err error) {
	if d.e == nil {
		d.e = err
	}
}

func (d *decoder) failf(format string, args ...any) {
	d.fail(fmt.Errorf(format, args...))
}

func (d *decoder) rest() int { return len(d.b) - d.off }

func (d *decoder) take(n int) []byte {
	if d.e != nil {
		return nil
	}
	if n < 0 || d.rest() < n {
		d.fail(ErrShort)
		return nil
	}
	v := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return v
}

func (d *decoder) u8() uint8 {
	if v := d.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if v := d.take(2); v != nil {
		return binary.LittleEndian.Uint16(v)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if v := d.take(4); v != nil {
		return binary.LittleEndian.Uint32(v)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if v := d.take(8); v != nil {
		return binary.LittleEndian.Uint64(v)
	}
	return 0
}

func (d *decoder) i64() int64   { return int64(d.u64()) }
func (d *decoder) f64() float64 { return math.Float64frombits(d.u64()) }

func (d *decoder) uvarint() uint64 {
	if d.e != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n == 0 {
		d.fail(ErrShort)
		return 0
	}
	if n < 0 {
		d.failf("%w: varint overflows 64 bits", ErrInvalid)
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	if d.e != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n == 0 {
		d.fail(ErrShort)
		return 0
	}
	if n < 0 {
		d.failf("%w: varint overflows 64 bits", ErrInvalid)
		return 0
	}
	d.off += n
	return v
}

// length reads a uvarint length bounded by max and by the bytes left, each
// element taking at least minSize bytes, so a claimed count never causes an
// allocation larger than the input justifies.
func (d *decoder) length(max, minSize int, what string) int {
	n := d.uvarint()
	if d.e != nil {
		return 0
	}
	if n > uint64(max) {
		d.failf("%w: %s has %d, limit %d", ErrTooLong, what, n, max)
		return 0
	}
	if minSize > 0 && n*uint64(minSize) > uint64(d.rest()) {
		d.fail(ErrShort)
		return 0
	}
	return int(n)
}

// bytes reads a length-prefixed byte string and copies it; an empty string
// decodes as nil.
func (d *decoder) bytes(min, max int, what string) []byte {
	n := d.length(max, 1, what)
	if d.e == nil && n < min {
		d.failf("%w: %s has %d bytes, minimum %d", ErrInvalid, what, n, min)
	}
	v := d.take(n)
	if len(v) == 0 {
		return nil
	}
	return append([]byte(nil), v...)
}

func (d *decoder) str(min, max int, what string) string {
	n := d.length(max, 1, what)
	if d.e == nil && n < min {
		d.failf("%w: %s is empty", ErrInvalid, what)
	}
	return string(d.take(n))
}

func (d *decoder) hash() (h [32]byte) {
	if v := d.take(32); v != nil {
		copy(h[:], v)
	}
	return h
}

func (d *decoder) addr(what string) netip.Addr {
	switch n := d.u8(); n {
	case 0:
		return netip.Addr{}
	case 4:
		if v := d.take(4); v != nil {
			return netip.AddrFrom4([4]byte(v))
		}
	case 16:
		if v := d.take(16); v != nil {
			return netip.AddrFrom16([16]byte(v))
		}
	default:
		d.failf("%w: %s length %d (want 0, 4 or 16)", ErrInvalid, what, n)
	}
	return netip.Addr{}
}

// finish reports the first error, or ErrTrail if bytes remain.
func (d *decoder) finish(t Type) error {
	if d.e == nil && d.off != len(d.b) {
		d.e = fmt.Errorf("%w: %d", ErrTrail, len(d.b)-d.off)
	}
	if d.e != nil {
		return fmt.Errorf("decode %s: %w", t, d.e)
	}
	return nil
}

// Checks shared by encoders and decoders.

func checkLen(n, min, max int, what string) error {
	if n > max {
		return fmt.Errorf("%w: %s has %d bytes, limit %d", ErrTooLong, what, n, max)
	}
	if n < min {
		return fmt.Errorf("%w: %s has %d bytes, minimum %d", ErrInvalid, what, n, min)
	}
	return nil
}

// validDifficulty: credited difficulty must be finite and positive.
func validDifficulty(d float64) bool {
	return d > 0 && !math.IsInf(d, 0) // NaN fails d > 0
}

// validAgentID: 1..MaxNameLen of [A-Za-z0-9._-]; it ends up in logs,
// metric-free labels and config keys.
// ValidAgentID checks an agent id: 1..MaxNameLen of [A-Za-z0-9._-].
func ValidAgentID(s string) error {
	if err := checkLen(len(s), 1, MaxNameLen, "agent id"); err != nil {
		return err
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: agent id %q has a character outside [A-Za-z0-9._-]", ErrInvalid, s)
		}
	}
	return nil
}
