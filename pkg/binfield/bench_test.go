package binfield_test

import (
	"testing"

	"github.com/hashgate/hashgate/pkg/binfield"
)

// benchShares is about one 100 ms agent batch.
const benchShares = 200

// appendShares encodes benchShares share-like records.
func appendShares(b []byte) []byte {
	e := binfield.Encoder{B: b}
	h := seqHash()
	for i := range benchShares {
		e.Uvarint(uint64(1000 + i))
		e.Str("job-1234")
		e.U32(0x6650_0000 + uint32(i))
		e.U32(uint32(i) * 2654435761)
		e.U16(uint16(i))
		e.Varint(int64(i%7) - 3)
		e.F64(65536)
		e.Hash(h)
	}
	return e.B
}

// BenchmarkEncode appends a batch of share-like records to a reused buffer
// (0 allocs/op expected).
func BenchmarkEncode(b *testing.B) {
	buf := appendShares(nil)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = appendShares(buf[:0])
	}
}

// BenchmarkDecode reads the batch back without copying strings (0 allocs/op
// expected).
func BenchmarkDecode(b *testing.B) {
	buf := appendShares(nil)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	var sink uint64
	for b.Loop() {
		d := binfield.NewDecoder(buf, &testErrors)
		for range benchShares {
			sink += d.Uvarint()
			sink += uint64(len(d.Take(d.Length(64, 1, "job id"))))
			sink += uint64(d.U32()) + uint64(d.U32()) + uint64(d.U16())
			sink += uint64(d.Varint())
			sink += uint64(d.F64())
			h := d.Hash()
			sink += uint64(h[0])
		}
		if err := d.Finish(); err != nil {
			b.Fatal(err)
		}
	}
	_ = sink
}
