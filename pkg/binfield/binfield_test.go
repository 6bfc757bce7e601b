package binfield_test

import (
	"encoding/hex"
	"errors"
	"math"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hashgate/hashgate/pkg/binfield"
)

// Caller-specific sentinels, as bus and agentwire pass them.
var (
	errShort   = errors.New("test: short")
	errTooLong = errors.New("test: too long")
	errInvalid = errors.New("test: invalid")
	errTrail   = errors.New("test: trail")

	testErrors = binfield.Errors{Short: errShort, TooLong: errTooLong, Invalid: errInvalid, Trail: errTrail}
	// noInvalid is the bus setup: malformed values are reported as Short.
	noInvalid = binfield.Errors{Short: errShort, TooLong: errTooLong, Trail: errTrail}
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	require.NoError(t, err)
	return b
}

func seqHash() *[32]byte {
	var h [32]byte
	for i := range h {
		h[i] = byte(i)
	}
	return &h
}

// field is one field type: how to write a value, its golden bytes, and how
// to read it back and check it.
type field struct {
	name string
	enc  func(e *binfield.Encoder)
	app  func(b []byte) []byte // the Append form, which must agree with enc
	hex  string
	want any
	read func(d *binfield.Decoder) any
}

func fields() []field {
	h := seqHash()
	v4 := netip.MustParseAddr("1.2.3.4")
	v6 := netip.MustParseAddr("::1")
	mapped := netip.MustParseAddr("::ffff:1.2.3.4")
	zoned := netip.MustParseAddr("fe80::1%eth0")
	return []field{
		{"u8", func(e *binfield.Encoder) { e.U8(0xab) }, func(b []byte) []byte { return binfield.AppendU8(b, 0xab) },
			"ab", uint8(0xab), func(d *binfield.Decoder) any { return d.U8() }},
		{"u16", func(e *binfield.Encoder) { e.U16(0x1234) }, func(b []byte) []byte { return binfield.AppendU16(b, 0x1234) },
			"3412", uint16(0x1234), func(d *binfield.Decoder) any { return d.U16() }},
		{"u32", func(e *binfield.Encoder) { e.U32(0xdeadbeef) }, func(b []byte) []byte { return binfield.AppendU32(b, 0xdeadbeef) },
			"efbeadde", uint32(0xdeadbeef), func(d *binfield.Decoder) any { return d.U32() }},
		{"u64", func(e *binfield.Encoder) { e.U64(0x0102030405060708) }, func(b []byte) []byte { return binfield.AppendU64(b, 0x0102030405060708) },
			"0807060504030201", uint64(0x0102030405060708), func(d *binfield.Decoder) any { return d.U64() }},
		{"i64", func(e *binfield.Encoder) { e.I64(-2) }, func(b []byte) []byte { return binfield.AppendI64(b, -2) },
			"feffffffffffffff", int64(-2), func(d *binfield.Decoder) any { return d.I64() }},
		{"f64", func(e *binfield.Encoder) { e.F64(1.5) }, func(b []byte) []byte { return binfield.AppendF64(b, 1.5) },
			"000000000000f83f", 1.5, func(d *binfield.Decoder) any { return d.F64() }},
		{"uvarint", func(e *binfield.Encoder) { e.Uvarint(300) }, func(b []byte) []byte { return binfield.AppendUvarint(b, 300) },
			"ac02", uint64(300), func(d *binfield.Decoder) any { return d.Uvarint() }},
		{"uvarint max", func(e *binfield.Encoder) { e.Uvarint(math.MaxUint64) }, func(b []byte) []byte { return binfield.AppendUvarint(b, math.MaxUint64) },
			"ffffffffffffffffff01", uint64(math.MaxUint64), func(d *binfield.Decoder) any { return d.Uvarint() }},
		{"varint", func(e *binfield.Encoder) { e.Varint(-3) }, func(b []byte) []byte { return binfield.AppendVarint(b, -3) },
			"05", int64(-3), func(d *binfield.Decoder) any { return d.Varint() }},
		{"varint min", func(e *binfield.Encoder) { e.Varint(math.MinInt64) }, func(b []byte) []byte { return binfield.AppendVarint(b, math.MinInt64) },
			"ffffffffffffffffff01", int64(math.MinInt64), func(d *binfield.Decoder) any { return d.Varint() }},
		{"hash", func(e *binfield.Encoder) { e.Hash(h) }, func(b []byte) []byte { return binfield.AppendHash(b, h) },
			"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
			*h, func(d *binfield.Decoder) any { return d.Hash() }},
		{"bytes", func(e *binfield.Encoder) { e.Bytes([]byte{1, 2, 3}) }, func(b []byte) []byte { return binfield.AppendBytes(b, []byte{1, 2, 3}) },
			"03 010203", []byte{1, 2, 3}, func(d *binfield.Decoder) any { return d.Bytes(1, 3, "blob") }},
		{"bytes empty", func(e *binfield.Encoder) { e.Bytes(nil) }, func(b []byte) []byte { return binfield.AppendBytes(b, nil) },
			"00", []byte(nil), func(d *binfield.Decoder) any { return d.Bytes(0, 3, "blob") }},
		{"str", func(e *binfield.Encoder) { e.Str("hi") }, func(b []byte) []byte { return binfield.AppendStr(b, "hi") },
			"02 6869", "hi", func(d *binfield.Decoder) any { return d.Str(1, 2, "name") }},
		{"str empty", func(e *binfield.Encoder) { e.Str("") }, func(b []byte) []byte { return binfield.AppendStr(b, "") },
			"00", "", func(d *binfield.Decoder) any { return d.Str(0, 2, "name") }},
		{"addr none", func(e *binfield.Encoder) { e.Addr(netip.Addr{}) }, func(b []byte) []byte { return binfield.AppendAddr(b, netip.Addr{}) },
			"00", netip.Addr{}, func(d *binfield.Decoder) any { return d.Addr("ip") }},
		{"addr v4", func(e *binfield.Encoder) { e.Addr(v4) }, func(b []byte) []byte { return binfield.AppendAddr(b, v4) },
			"04 01020304", v4, func(d *binfield.Decoder) any { return d.Addr("ip") }},
		{"addr v6", func(e *binfield.Encoder) { e.Addr(v6) }, func(b []byte) []byte { return binfield.AppendAddr(b, v6) },
			"10 00000000000000000000000000000001", v6, func(d *binfield.Decoder) any { return d.Addr("ip") }},
		{"addr v4-mapped", func(e *binfield.Encoder) { e.Addr(mapped) }, func(b []byte) []byte { return binfield.AppendAddr(b, mapped) },
			"10 00000000000000000000ffff01020304", mapped, func(d *binfield.Decoder) any { return d.Addr("ip") }},
		{"addr zone dropped", func(e *binfield.Encoder) { e.Addr(zoned) }, func(b []byte) []byte { return binfield.AppendAddr(b, zoned) },
			"10 fe800000000000000000000000000001", zoned.WithZone(""), func(d *binfield.Decoder) any { return d.Addr("ip") }},
	}
}

// record is every field in a row.
func record() []byte {
	var e binfield.Encoder
	for _, f := range fields() {
		f.enc(&e)
	}
	return e.B
}

func decodeRecord(t *testing.T, d *binfield.Decoder) {
	for _, f := range fields() {
		require.Equal(t, f.want, f.read(d), f.name)
	}
}

func TestGolden(t *testing.T) {
	for _, f := range fields() {
		t.Run(f.name, func(t *testing.T) {
			want := unhex(t, f.hex)
			var e binfield.Encoder
			f.enc(&e)
			require.Equal(t, want, e.B, "Encoder")
			require.Equal(t, want, f.app(nil), "Append")
			prefix := []byte("keep")
			require.Equal(t, append([]byte("keep"), want...), f.app(prefix[:4:4]), "Append appends")

			d := binfield.NewDecoder(want, &testErrors)
			require.Equal(t, f.want, f.read(&d))
			require.NoError(t, d.Err())
			require.Equal(t, len(want), d.Off())
			require.Zero(t, d.Rest())
			require.NoError(t, d.Finish())
		})
	}
}

func TestRecordRoundTrip(t *testing.T) {
	b := record()
	d := binfield.NewDecoder(b, &testErrors)
	decodeRecord(t, &d)
	require.NoError(t, d.Finish())
}

func TestRandomRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	edges := []uint64{0, 1, 0x7f, 0x80, 0x3fff, 0x4000, math.MaxUint32, math.MaxInt64, math.MaxInt64 + 1, math.MaxUint64}
	for i := range 2000 {
		u := r.Uint64() >> r.UintN(64)
		if i < len(edges) {
			u = edges[i]
		}
		s := int64(u)
		fl := math.Float64frombits(r.Uint64())
		var h [32]byte
		for j := range h {
			h[j] = byte(r.UintN(256))
		}
		blob := make([]byte, r.IntN(300))
		for j := range blob {
			blob[j] = byte(r.UintN(256))
		}
		var a netip.Addr
		switch r.IntN(3) {
		case 1:
			a = netip.AddrFrom4([4]byte(h[:4]))
		case 2:
			a = netip.AddrFrom16([16]byte(h[16:]))
		}

		var e binfield.Encoder
		e.U8(uint8(u))
		e.U16(uint16(u))
		e.U32(uint32(u))
		e.U64(u)
		e.I64(s)
		e.F64(fl)
		e.Uvarint(u)
		e.Varint(s)
		e.Hash(&h)
		e.Bytes(blob)
		e.Str(string(blob))
		e.Addr(a)

		d := binfield.NewDecoder(e.B, &testErrors)
		require.Equal(t, uint8(u), d.U8())
		require.Equal(t, uint16(u), d.U16())
		require.Equal(t, uint32(u), d.U32())
		require.Equal(t, u, d.U64())
		require.Equal(t, s, d.I64())
		require.Equal(t, math.Float64bits(fl), math.Float64bits(d.F64()), "NaN payloads survive")
		require.Equal(t, u, d.Uvarint())
		require.Equal(t, s, d.Varint())
		require.Equal(t, h, d.Hash())
		got := d.Bytes(0, 300, "blob")
		if len(blob) == 0 {
			require.Nil(t, got)
		} else {
			require.Equal(t, blob, got)
		}
		require.Equal(t, string(blob), d.Str(0, 300, "str"))
		require.Equal(t, a, d.Addr("ip"))
		require.NoError(t, d.Finish())
	}
}

// TestTruncated: every proper prefix of the record fails with Short, bare,
// whichever Errors the caller uses, and never panics.
func TestTruncated(t *testing.T) {
	b := record()
	for _, errs := range []*binfield.Errors{&testErrors, &noInvalid} {
		for n := range len(b) {
			d := binfield.NewDecoder(b[:n:n], errs)
			for _, f := range fields() {
				f.read(&d) // values are wrong once truncated; only the error matters
			}
			require.Same(t, errShort, d.Err(), "prefix %d", n)
			require.Same(t, errShort, d.Finish(), "prefix %d", n)
		}
	}
}

// TestSticky: after a failure nothing is consumed and every read is zero.
func TestSticky(t *testing.T) {
	b := record()
	d := binfield.NewDecoder(b, &testErrors)
	d.Fail(nil)
	require.NoError(t, d.Err(), "Fail(nil) records nothing")
	require.Equal(t, uint8(0xab), d.U8())
	d.Failf("%w: stop at %d", errInvalid, d.Off())
	d.Fail(errTooLong)
	require.EqualError(t, d.Err(), "test: invalid: stop at 1")
	off := d.Off()

	require.Zero(t, d.U8())
	require.Zero(t, d.U16())
	require.Zero(t, d.U32())
	require.Zero(t, d.U64())
	require.Zero(t, d.I64())
	require.Zero(t, d.F64())
	require.Zero(t, d.Uvarint())
	require.Zero(t, d.Varint())
	require.Zero(t, d.Length(10, 0, "n"))
	require.Nil(t, d.Take(0))
	require.Nil(t, d.Bytes(0, 10, "b"))
	require.Empty(t, d.Str(0, 10, "s"))
	require.Zero(t, d.Hash())
	require.Equal(t, netip.Addr{}, d.Addr("ip"))
	d.Skip(1)
	require.Equal(t, off, d.Off())
	require.ErrorIs(t, d.Finish(), errInvalid)
}

func TestTake(t *testing.T) {
	b := []byte{1, 2, 3, 4, 5}
	d := binfield.NewDecoder(b, &testErrors)
	v := d.Take(2)
	require.Equal(t, []byte{1, 2}, v)
	require.Equal(t, 2, cap(v), "capacity clipped")
	_ = append(v, 9)
	require.Equal(t, byte(3), b[2], "appending to a taken slice leaves the input alone")
	require.NotNil(t, d.Take(0))
	require.Equal(t, 3, d.Rest())
	d.Skip(d.Rest())
	require.NoError(t, d.Finish())

	d = binfield.NewDecoder(b, &testErrors)
	require.Nil(t, d.Take(-1))
	require.Same(t, errShort, d.Err())

	d = binfield.NewDecoder(b, &testErrors)
	require.Nil(t, d.Take(6))
	require.Same(t, errShort, d.Err())
	require.Zero(t, d.Off())
}

func TestBytesCopies(t *testing.T) {
	b := binfield.AppendBytes(nil, []byte{7, 8})
	s := binfield.AppendStr(b, "ab")
	d := binfield.NewDecoder(s, &testErrors)
	got := d.Bytes(0, 10, "blob")
	str := d.Str(0, 10, "str")
	require.NoError(t, d.Finish())
	for i := range s {
		s[i] = 0
	}
	require.Equal(t, []byte{7, 8}, got)
	require.Equal(t, "ab", str)
}

func TestLength(t *testing.T) {
	dec := func(b []byte) binfield.Decoder { return binfield.NewDecoder(b, &testErrors) }
	u := func(v uint64, pad int) []byte { return append(binfield.AppendUvarint(nil, v), make([]byte, pad)...) }

	d := dec(u(5, 0))
	require.Equal(t, 5, d.Length(5, 0, "items"))
	require.NoError(t, d.Finish())

	d = dec(u(6, 0))
	require.Zero(t, d.Length(5, 0, "items"))
	require.ErrorIs(t, d.Err(), errTooLong)
	require.EqualError(t, d.Err(), "test: too long: items has 6, limit 5")

	d = dec(u(0, 0))
	require.Zero(t, d.Length(-1, 0, "items"))
	require.ErrorIs(t, d.Err(), errTooLong, "a negative limit refuses everything")

	// minSize×count against the bytes left.
	d = dec(u(3, 12))
	require.Equal(t, 3, d.Length(100, 4, "items"))
	require.NoError(t, d.Err())
	d = dec(u(3, 11))
	require.Zero(t, d.Length(100, 4, "items"))
	require.Same(t, errShort, d.Err())
	d = dec(u(3, 0))
	require.Equal(t, 3, d.Length(100, 0, "items"), "minSize 0: no check")
	require.NoError(t, d.Err())

	// count×minSize overflowing 64 bits is Short, not a wrap-around.
	d = dec(u(1<<62, 8))
	require.Zero(t, d.Length(math.MaxInt, 8, "items"))
	require.Same(t, errShort, d.Err())

	// Truncated length.
	d = dec([]byte{0x80})
	require.Zero(t, d.Length(100, 0, "items"))
	require.Same(t, errShort, d.Err())
}

func TestMinMax(t *testing.T) {
	str := func(s string) []byte { return binfield.AppendStr(nil, s) }

	d := binfield.NewDecoder(str("abc"), &testErrors)
	d.Bytes(0, 2, "blob")
	require.EqualError(t, d.Err(), "test: too long: blob has 3, limit 2")

	d = binfield.NewDecoder(str("abc"), &testErrors)
	d.Str(0, 2, "name")
	require.EqualError(t, d.Err(), "test: too long: name has 3, limit 2")

	d = binfield.NewDecoder(str(""), &testErrors)
	require.Nil(t, d.Bytes(1, 2, "blob"))
	require.EqualError(t, d.Err(), "test: invalid: blob has 0 bytes, minimum 1")

	d = binfield.NewDecoder(str("ab"), &testErrors)
	require.Nil(t, d.Bytes(3, 4, "blob"))
	require.EqualError(t, d.Err(), "test: invalid: blob has 2 bytes, minimum 3")

	d = binfield.NewDecoder(str(""), &testErrors)
	require.Empty(t, d.Str(1, 2, "name"))
	require.EqualError(t, d.Err(), "test: invalid: name is empty")

	d = binfield.NewDecoder(str("ab"), &testErrors)
	require.Empty(t, d.Str(3, 4, "name"))
	require.EqualError(t, d.Err(), "test: invalid: name has 2 bytes, minimum 3")

	// Without an Invalid error, the same failures are a bare Short.
	d = binfield.NewDecoder(str(""), &noInvalid)
	d.Str(1, 2, "name")
	require.Same(t, errShort, d.Err())
	d = binfield.NewDecoder(str(""), &noInvalid)
	d.Bytes(1, 2, "blob")
	require.Same(t, errShort, d.Err())

	// A claimed length past the end is Short.
	d = binfield.NewDecoder([]byte{5, 'a'}, &testErrors)
	d.Str(0, 10, "name")
	require.Same(t, errShort, d.Err())
}

func TestInvalid(t *testing.T) {
	overflow := unhex(t, "ffffffffffffffffff02") // bit 64 set
	long := unhex(t, "8080808080808080808000")   // 11 bytes
	for _, b := range [][]byte{overflow, long} {
		d := binfield.NewDecoder(b, &testErrors)
		require.Zero(t, d.Uvarint())
		require.EqualError(t, d.Err(), "test: invalid: varint overflows 64 bits")
		require.Zero(t, d.Off())

		d = binfield.NewDecoder(b, &testErrors)
		require.Zero(t, d.Varint())
		require.EqualError(t, d.Err(), "test: invalid: varint overflows 64 bits")

		d = binfield.NewDecoder(b, &noInvalid)
		require.Zero(t, d.Uvarint())
		require.Same(t, errShort, d.Err())

		d = binfield.NewDecoder(b, &noInvalid)
		require.Zero(t, d.Varint())
		require.Same(t, errShort, d.Err())
	}

	d := binfield.NewDecoder([]byte{5, 1, 2, 3, 4, 5}, &testErrors)
	require.Equal(t, netip.Addr{}, d.Addr("peer ip"))
	require.EqualError(t, d.Err(), "test: invalid: peer ip length 5 (want 0, 4 or 16)")
	d = binfield.NewDecoder([]byte{5, 1, 2, 3, 4, 5}, &noInvalid)
	d.Addr("peer ip")
	require.Same(t, errShort, d.Err())
}

func TestFinish(t *testing.T) {
	d := binfield.NewDecoder([]byte{1, 2, 3}, &testErrors)
	require.Equal(t, uint8(1), d.U8())
	err := d.Finish()
	require.ErrorIs(t, err, errTrail)
	require.EqualError(t, err, "test: trail: 2")
	require.Equal(t, err, d.Err(), "Finish records the trail error")
	require.Zero(t, d.U8())

	d = binfield.NewDecoder(nil, &testErrors)
	require.NoError(t, d.Finish())
	d = binfield.NewDecoder([]byte{}, &testErrors)
	require.NoError(t, d.Finish())
}

func TestErrorsDefaultAndMisuse(t *testing.T) {
	d := binfield.NewDecoder([]byte{1}, nil)
	d.U16()
	require.Same(t, binfield.ErrShort, d.Err())
	d = binfield.NewDecoder(append(binfield.AppendUvarint(nil, 3), 0), nil)
	d.Length(2, 0, "n")
	require.ErrorIs(t, d.Err(), binfield.ErrTooLong)
	d = binfield.NewDecoder([]byte{7}, nil)
	d.Addr("ip")
	require.ErrorIs(t, d.Err(), binfield.ErrInvalid)
	d = binfield.NewDecoder([]byte{7}, nil)
	require.ErrorIs(t, d.Finish(), binfield.ErrTrail)

	require.Panics(t, func() { binfield.NewDecoder(nil, &binfield.Errors{TooLong: errTooLong, Trail: errTrail}) })
	require.Panics(t, func() { binfield.NewDecoder(nil, &binfield.Errors{Short: errShort, Trail: errTrail}) })
	require.Panics(t, func() { binfield.NewDecoder(nil, &binfield.Errors{Short: errShort, TooLong: errTooLong}) })
}

// TestNoAllocs: encoding into a buffer with room and decoding fixed-size
// fields, varints, hashes, addresses and aliased slices allocate nothing.
func TestNoAllocs(t *testing.T) {
	a4 := netip.MustParseAddr("10.0.0.1")
	h := seqHash()
	buf := make([]byte, 0, 256)
	var b []byte
	encode := func() {
		e := binfield.Encoder{B: buf[:0]}
		e.U8(1)
		e.U16(2)
		e.U32(3)
		e.U64(4)
		e.I64(-5)
		e.F64(6.5)
		e.Uvarint(7000)
		e.Varint(-8000)
		e.Hash(h)
		e.Bytes([]byte{1, 2})
		e.Str("ab")
		e.Addr(a4)
		b = e.B
	}
	require.Zero(t, testing.AllocsPerRun(100, encode))
	var sink uint64
	require.Zero(t, testing.AllocsPerRun(100, func() {
		d := binfield.NewDecoder(b, &testErrors)
		sink += uint64(d.U8()) + uint64(d.U16()) + uint64(d.U32()) + d.U64() + uint64(d.I64()) +
			uint64(d.F64()) + d.Uvarint() + uint64(d.Varint())
		hh := d.Hash()
		sink += uint64(hh[3])
		sink += uint64(len(d.Take(d.Length(2, 1, "blob"))))
		d.Skip(d.Length(2, 1, "str"))
		if d.Addr("ip").Is4() {
			sink++
		}
		if d.Finish() != nil {
			panic(d.Err())
		}
	}))
	_ = sink
}
