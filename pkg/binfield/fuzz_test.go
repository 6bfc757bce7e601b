package binfield_test

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hashgate/hashgate/pkg/binfield"
)

// fuzzOps is the number of distinct reads FuzzDecoder drives.
const fuzzOps = 14

// FuzzDecoder reads data as the sequence of fields ops selects (one op per
// byte; the high bits pick limits) and checks that the Decoder never
// panics, never reads past the end, reports only the caller's sentinel
// errors, consumes nothing once failed, fails at the same point with the
// bus-style Errors (no Invalid), and that every field it decodes
// re-encodes to the bytes it consumed (varints: to the same value, as
// non-minimal varints are accepted).
func FuzzDecoder(f *testing.F) {
	all := make([]byte, 0, 2*fuzzOps)
	for op := range fuzzOps {
		all = append(all, byte(op), byte(op)|0x80)
	}
	f.Add(all, record())
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}, record())
	f.Add([]byte{6, 6, 7}, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x80})
	f.Add([]byte{9, 9 | 0x40, 13}, []byte{3, 1, 2, 3, 0x10, 1, 2})
	f.Add([]byte{8 | 0xc0}, []byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, ops, data []byte) {
		fuzzDecode(t, ops, data, &testErrors)
	})
}

func fuzzDecode(t *testing.T, ops, data []byte, errs *binfield.Errors) {
	if len(ops) > 256 {
		ops = ops[:256]
	}
	in := bytes.Clone(data)
	d := binfield.NewDecoder(data, errs)
	alt := binfield.NewDecoder(data, &noInvalid) // the same reads, bus-style errors
	for _, op := range ops {
		failed := d.Err() != nil
		before := d.Off()
		limit := []int{0, 1, 32, math.MaxInt}[op>>6]
		minSize := int(op>>4) & 3
		var enc []byte // the canonical encoding of the value read
		varint := false
		switch op % fuzzOps {
		case 0:
			enc = binfield.AppendU8(nil, d.U8())
			alt.U8()
		case 1:
			enc = binfield.AppendU16(nil, d.U16())
			alt.U16()
		case 2:
			enc = binfield.AppendU32(nil, d.U32())
			alt.U32()
		case 3:
			enc = binfield.AppendU64(nil, d.U64())
			alt.U64()
		case 4:
			enc = binfield.AppendI64(nil, d.I64())
			alt.I64()
		case 5:
			enc = binfield.AppendF64(nil, d.F64())
			alt.F64()
		case 6:
			enc, varint = binfield.AppendUvarint(nil, d.Uvarint()), true
			alt.Uvarint()
		case 7:
			enc, varint = binfield.AppendVarint(nil, d.Varint()), true
			alt.Varint()
		case 8:
			n := d.Length(limit, minSize, "count")
			alt.Length(limit, minSize, "count")
			require.GreaterOrEqual(t, n, 0)
			require.LessOrEqual(t, n, limit)
			if d.Err() == nil && minSize > 0 {
				require.LessOrEqual(t, n*minSize, d.Rest())
			}
			enc, varint = binfield.AppendUvarint(nil, uint64(n)), true
		case 9:
			v := d.Bytes(minSize, limit, "blob")
			alt.Bytes(minSize, limit, "blob")
			require.LessOrEqual(t, len(v), limit)
			if d.Err() == nil {
				require.GreaterOrEqual(t, len(v), minSize)
				require.Equal(t, v == nil, len(v) == 0, "empty decodes as nil")
			}
			enc = v // payload only: the length prefix is a varint
		case 10:
			v := d.Str(minSize, limit, "str")
			alt.Str(minSize, limit, "str")
			enc = []byte(v)
		case 11:
			h := d.Hash()
			alt.Hash()
			enc = binfield.AppendHash(nil, &h)
		case 12:
			a := d.Addr("ip")
			alt.Addr("ip")
			require.Empty(t, a.Zone())
			enc = binfield.AppendAddr(nil, a)
		case 13:
			n := int(op >> 4)
			v := d.Take(n)
			alt.Take(n)
			if v != nil {
				require.Len(t, v, n)
				require.Equal(t, n, cap(v))
			}
			enc = v
		}
		after := d.Off()
		require.LessOrEqual(t, before, after)
		require.Equal(t, len(data), d.Off()+d.Rest())
		if failed || d.Err() != nil {
			if failed {
				require.Equal(t, before, after, "a failed decoder consumes nothing")
			}
			continue
		}
		got := data[before:after]
		switch {
		case varint:
			e := binfield.NewDecoder(enc, errs)
			g := binfield.NewDecoder(got, errs)
			require.Equal(t, e.Uvarint(), g.Uvarint())
			require.LessOrEqual(t, len(enc), len(got))
		case op%fuzzOps == 9 || op%fuzzOps == 10:
			require.True(t, bytes.HasSuffix(got, enc))
		default:
			require.Equal(t, got, enc)
		}
	}
	err := d.Finish()
	if err != nil {
		known := false
		for _, s := range []error{errs.Short, errs.TooLong, errs.Invalid, errs.Trail} {
			known = known || (s != nil && errors.Is(err, s))
		}
		require.True(t, known, "unexpected error %v", err)
	}
	// Without an Invalid error the same reads fail at the same point, and
	// every Invalid failure is a bare Short.
	aerr := alt.Finish()
	require.Equal(t, err == nil, aerr == nil)
	require.Equal(t, d.Off(), alt.Off())
	if errors.Is(err, errInvalid) {
		require.Same(t, errShort, aerr)
	}
	require.Equal(t, in, data, "the input is not modified")
}
