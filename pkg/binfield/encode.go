// Package binfield is the low-level field codec shared by hashgate's binary
// wire formats (pkg/bus and pkg/agentwire): fixed-size little-endian
// integers and floats, unsigned and zig-zag varints, uvarint-length-prefixed
// byte strings, 32-byte hashes and IP addresses.
//
// Encoding appends to a byte slice and cannot fail: the Append functions
// take and return the slice, and Encoder wraps them for code that prefers
// a receiver. Decoding goes through a Decoder, which keeps a sticky error:
// after the first failure every read returns a zero value and Err and
// Finish report that failure. A Decoder is a plain value the caller keeps
// on its stack; neither side allocates except to copy decoded byte strings
// and strings.
//
// The errors a Decoder reports are the caller's (see Errors), so each wire
// format keeps its own sentinel errors for errors.Is.
//
// Field layouts:
//
//	u8, u16, u32, u64  little-endian, 1, 2, 4 or 8 bytes
//	i64                two's complement as u64
//	f64                IEEE 754 bits as u64
//	uvarint, varint    encoding/binary (Uvarint; zig-zag Varint), 1..10 bytes
//	bytes, str         uvarint length, then the bytes
//	hash               32 bytes as is
//	addr               length byte 0 (no address), 4 (IPv4) or 16 (IPv6),
//	                   then the address bytes; zones are not carried
package binfield

import (
	"encoding/binary"
	"math"
	"net/netip"
)

// AppendU8 appends v as one byte.
func AppendU8(b []byte, v uint8) []byte { return append(b, v) }

// AppendU16 appends v as 2 little-endian bytes.
func AppendU16(b []byte, v uint16) []byte { return binary.LittleEndian.AppendUint16(b, v) }

// AppendU32 appends v as 4 little-endian bytes.
func AppendU32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }

// AppendU64 appends v as 8 little-endian bytes.
func AppendU64(b []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(b, v) }

// AppendI64 appends v as 8 little-endian bytes (two's complement).
func AppendI64(b []byte, v int64) []byte { return binary.LittleEndian.AppendUint64(b, uint64(v)) }

// AppendF64 appends the IEEE 754 bits of v as 8 little-endian bytes.
func AppendF64(b []byte, v float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
}

// AppendUvarint appends v as an unsigned varint (binary.AppendUvarint).
func AppendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

// AppendVarint appends v as a zig-zag varint (binary.AppendVarint).
func AppendVarint(b []byte, v int64) []byte { return binary.AppendVarint(b, v) }

// AppendHash appends the 32 bytes of v as they are.
func AppendHash(b []byte, v *[32]byte) []byte { return append(b, v[:]...) }

// AppendBytes appends len(v) as a uvarint, then v.
func AppendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// AppendStr appends len(v) as a uvarint, then v.
func AppendStr(b []byte, v string) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// AppendAddr appends an IP address as a length byte, 0 for the zero
// (invalid) Addr, 4 for an IPv4 address or 16 for anything else, followed
// by that many address bytes. An IPv4-mapped IPv6 address stays 16 bytes;
// zones are dropped.
func AppendAddr(b []byte, a netip.Addr) []byte {
	switch {
	case !a.IsValid():
		return append(b, 0)
	case a.Is4():
		v := a.As4()
		return append(append(b, 4), v[:]...)
	default:
		v := a.As16()
		return append(append(b, 16), v[:]...)
	}
}

// Encoder appends fields to B. The zero Encoder is ready to use; set B to
// append to an existing buffer.
type Encoder struct {
	// B holds the encoded bytes.
	B []byte
}

// U8 appends v as one byte.
func (e *Encoder) U8(v uint8) { e.B = append(e.B, v) }

// U16 appends v as 2 little-endian bytes.
func (e *Encoder) U16(v uint16) { e.B = AppendU16(e.B, v) }

// U32 appends v as 4 little-endian bytes.
func (e *Encoder) U32(v uint32) { e.B = AppendU32(e.B, v) }

// U64 appends v as 8 little-endian bytes.
func (e *Encoder) U64(v uint64) { e.B = AppendU64(e.B, v) }

// I64 appends v as 8 little-endian bytes (two's complement).
func (e *Encoder) I64(v int64) { e.B = AppendI64(e.B, v) }

// F64 appends the IEEE 754 bits of v as 8 little-endian bytes.
func (e *Encoder) F64(v float64) { e.B = AppendF64(e.B, v) }

// Uvarint appends v as an unsigned varint.
func (e *Encoder) Uvarint(v uint64) { e.B = AppendUvarint(e.B, v) }

// Varint appends v as a zig-zag varint.
func (e *Encoder) Varint(v int64) { e.B = AppendVarint(e.B, v) }

// Hash appends the 32 bytes of v.
func (e *Encoder) Hash(v *[32]byte) { e.B = AppendHash(e.B, v) }

// Bytes appends len(v) as a uvarint, then v.
func (e *Encoder) Bytes(v []byte) { e.B = AppendBytes(e.B, v) }

// Str appends len(v) as a uvarint, then v.
func (e *Encoder) Str(v string) { e.B = AppendStr(e.B, v) }

// Addr appends an IP address as AppendAddr does.
func (e *Encoder) Addr(a netip.Addr) { e.B = AppendAddr(e.B, a) }
