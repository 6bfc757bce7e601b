package bus

import (
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files")

type message interface {
	Marshal() []byte
	Unmarshal([]byte) error
}

func sampleJob() *Job {
	return &Job{
		ID: "18c2f3a4b5c60001", Height: 840000,
		PrevHash: chainhash.DoubleHashH([]byte("prev")),
		Version:  0x20000000, Bits: 0x17034219, CurTime: 1713571767, MinTime: 1713568000,
		Coinb1:          []byte{1, 0, 0, 0, 1, 0xaa},
		Coinb2:          []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0},
		Extranonce1Size: 4, Extranonce2Size: 8,
		MerkleBranch:  []chainhash.Hash{chainhash.DoubleHashH([]byte("a")), chainhash.DoubleHashH([]byte("b"))},
		CoinbaseValue: 312500000 + 12345, Clean: true, HasWitness: true,
		CreatedUnixNano: 1713571767123456789, Source: "node1",
		Txs: [][]byte{{2, 0, 0, 0, 0x11}, {2, 0, 0, 0, 0x22, 0x33}},
	}
}

func samples() map[string]message {
	return map[string]message{
		"job": sampleJob(),
		"job_empty": &Job{ID: "1", Height: 1, Empty: true, Extranonce1Size: 4, Extranonce2Size: 8,
			Coinb1: []byte{1}, Coinb2: []byte{2}},
		"found_block": &FoundBlock{JobID: "18c2f3a4b5c60001", Extranonce1: []byte{1, 2, 3, 4},
			Extranonce2: []byte{5, 6, 7, 8, 9, 10, 11, 12}, NTime: 1713571800, Nonce: 0xdeadbeef,
			Version: 0x20a00000, BlockHash: chainhash.DoubleHashH([]byte("blk")), Source: "gw1",
			User: "alice", Worker: "rig01", FoundUnixNano: 1713571800000000001},
		"block_result": &BlockResult{Status: BlockAccepted, Reason: "", BlockHash: chainhash.DoubleHashH([]byte("blk")),
			JobID: "18c2f3a4b5c60001", Height: 840000, User: "alice", Worker: "rig01", Block: []byte{0xde, 0xad}},
		"tip": &Tip{Header: [80]byte{1, 2, 3, 79: 0xff}, Height: 840001, Source: "bitpeer1", SeenUnixNano: 42},
	}
}

func newLike(m message) message {
	switch m.(type) {
	case *Job:
		return &Job{}
	case *FoundBlock:
		return &FoundBlock{}
	case *BlockResult:
		return &BlockResult{}
	case *Tip:
		return &Tip{}
	}
	panic("unknown")
}

// TestGolden pins the wire format: a change to the encoding must show up as
// a diff in testdata (and a codec version bump).
func TestGolden(t *testing.T) {
	for name, m := range samples() {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", name+".hex")
			enc := m.Marshal()
			if *update {
				require.NoError(t, os.WriteFile(path, []byte(hex.EncodeToString(enc)+"\n"), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, strings.TrimSpace(string(want)), hex.EncodeToString(enc))
			got := newLike(m)
			require.NoError(t, got.Unmarshal(enc))
			require.Equal(t, m, got)
		})
	}
}

// TestTruncation feeds every prefix of every message: each must fail with an
// error, never panic, and never succeed.
func TestTruncation(t *testing.T) {
	for name, m := range samples() {
		enc := m.Marshal()
		for i := 0; i < len(enc); i++ {
			err := newLike(m).Unmarshal(enc[:i])
			require.Error(t, err, "%s cut at %d", name, i)
		}
		require.ErrorIs(t, newLike(m).Unmarshal(append(enc, 0)), ErrTrail, name)
	}
}

func TestPreambleErrors(t *testing.T) {
	enc := sampleJob().Marshal()
	var f FoundBlock
	require.ErrorIs(t, f.Unmarshal(enc), ErrType)

	bad := append([]byte(nil), enc...)
	bad[2] = Version + 1
	var j Job
	require.ErrorIs(t, j.Unmarshal(bad), ErrVersion)

	bad[0] = 'x'
	require.ErrorIs(t, j.Unmarshal(bad), ErrMagic)

	typ, err := PeekType(enc)
	require.NoError(t, err)
	require.Equal(t, TypeJob, typ)
	require.Equal(t, "job", typ.String())
}

func TestLimits(t *testing.T) {
	// A claimed transaction count far beyond the bytes present must not
	// allocate a huge slice or panic.
	e := newEncoder(TypeJob, 0)
	j := sampleJob()
	j.Txs = nil
	body := j.Marshal()
	body = body[:len(body)-1] // drop the zero tx count
	e.b = append(e.b[:0], body...)
	e.uvarint(maxTxs)
	var out Job
	require.ErrorIs(t, out.Unmarshal(e.b), ErrShort)

	e.b = append(e.b[:0], body...)
	e.uvarint(maxTxs + 1)
	require.ErrorIs(t, out.Unmarshal(e.b), ErrTooLong)
}

func TestDecodedDoesNotAlias(t *testing.T) {
	enc := sampleJob().Marshal()
	var j Job
	require.NoError(t, j.Unmarshal(enc))
	for i := range enc {
		enc[i] = 0
	}
	require.Equal(t, sampleJob(), &j)
}

func TestSubject(t *testing.T) {
	require.Equal(t, "hashgate.btc.job", Subject("hashgate", "btc", TopicJob))
	require.Equal(t, "hashgate.btc.job.current", Subject("hashgate", "btc", TopicJobCurrent))
	require.NoError(t, ValidToken("btc"))
	for _, bad := range []string{"", "a.b", "a*", ">", "a b"} {
		require.Error(t, ValidToken(bad), bad)
	}
}

func fuzzRoundTrip(f *testing.F, m message) {
	f.Add(m.Marshal())
	f.Add([]byte("hg\x01\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a := newLike(m)
		if a.Unmarshal(b) != nil {
			return
		}
		enc := a.Marshal()
		c := newLike(m)
		require.NoError(t, c.Unmarshal(enc))
		require.Equal(t, a, c)
	})
}

func FuzzJob(f *testing.F)         { fuzzRoundTrip(f, sampleJob()) }
func FuzzFoundBlock(f *testing.F)  { fuzzRoundTrip(f, samples()["found_block"]) }
func FuzzBlockResult(f *testing.F) { fuzzRoundTrip(f, samples()["block_result"]) }
func FuzzTip(f *testing.F)         { fuzzRoundTrip(f, samples()["tip"]) }

func BenchmarkJobUnmarshal(b *testing.B) {
	j := sampleJob()
	for i := 0; i < 3000; i++ {
		j.Txs = append(j.Txs, make([]byte, 250))
	}
	enc := j.Marshal()
	b.ReportAllocs()
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		var out Job
		if err := out.Unmarshal(enc); err != nil {
			b.Fatal(err)
		}
	}
}
