package agentwire

import (
	"encoding/hex"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/stretchr/testify/require"
)

// TestGolden pins the wire format: each testdata/<name>.hex holds one
// self-contained frame. A change to the encoding must show up as a diff
// there (and, if peers of the old format exist, a Version bump).
func TestGolden(t *testing.T) {
	seen := map[Type]bool{}
	for _, s := range samples() {
		t.Run(s.name, func(t *testing.T) {
			frame := frameOf(t, s.msg)
			path := filepath.Join("testdata", s.name+".hex")
			if *update {
				require.NoError(t, os.WriteFile(path, []byte(hex.EncodeToString(frame)+"\n"), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, strings.TrimSpace(string(want)), hex.EncodeToString(frame))

			typ, body, n, err := SplitFrame(frame)
			require.NoError(t, err)
			require.Equal(t, len(frame), n)
			require.Equal(t, s.msg.Type(), typ)
			got, err := Decode(typ, body)
			require.NoError(t, err)
			require.Equal(t, s.msg, got)
			seen[typ] = true
		})
	}
	for typ := TypeHello; typ <= TypeMinerLogout; typ++ {
		require.True(t, seen[typ], "no golden vector for %s", typ)
	}
}

// TestGoldenFieldBytes checks a few vectors byte by byte against the
// layout in doc.go, independently of the encoder.
func TestGoldenFieldBytes(t *testing.T) {
	ping := frameOf(t, &Ping{Time: 0x0102030405060708})
	require.Equal(t, "4841"+"01"+"04"+"08000000"+"0807060504030201", hex.EncodeToString(ping))

	logout := frameOf(t, &MinerLogout{MinerID: 300, Quiet: true})
	require.Equal(t, "4841010b"+"03000000"+"ac02"+"01", hex.EncodeToString(logout))

	ack := frameOf(t, &BatchAck{BatchID: 5, Results: []ResultCode{0, 0, ResultStale, 0, ResultDuplicate}})
	// id 5, flags 0, 5 results, 2 rejections: (gap 2, stale), (gap 1, duplicate)
	require.Equal(t, "48410109"+"08000000"+"05"+"00"+"05"+"02"+"0201"+"0102", hex.EncodeToString(ack))

	// One share: batch id 1, time 300 (uvarint ac 02), en2 size 4, one run ("j", ntime 0x10, 1 share),
	// flags: pow2 difficulty | short version bits, miner id 9, en2 LE value
	// 0x0201 as uvarint 81 04, nonce, version bits >> 13, exponent 14, no
	// reject counts.
	b := &ShareBatch{BatchID: 1, Time: 300, Shares: []Share{{MinerID: 9, JobID: "j", Extranonce2: en2(1, 2, 0, 0),
		NTime: 0x10, Nonce: 0xaabbccdd, VersionBits: 0x2000 * 3, Difficulty: 16384}}}
	require.Equal(t, "01"+"ac02"+"04"+"01"+"016a"+"10000000"+"01"+"09"+"09"+"8104"+"ddccbbaa"+"0300"+"0e"+"00",
		hex.EncodeToString(mustMarshal(t, b)))
}

// TestTruncation feeds every prefix of every message body: each must fail
// with an error, never panic, never succeed. A trailing byte fails too,
// except after a Reject, whose decoders skip later additions.
func TestTruncation(t *testing.T) {
	for _, s := range samples() {
		body := mustMarshal(t, s.msg)
		for i := range body {
			_, err := Decode(s.msg.Type(), body[:i])
			require.Error(t, err, "%s cut at %d of %d", s.name, i, len(body))
		}
		_, err := Decode(s.msg.Type(), append(body, 0))
		if s.msg.Type() == TypeReject {
			require.NoError(t, err)
		} else {
			require.ErrorIs(t, err, ErrTrail, s.name)
		}
	}
}

// TestTruncatedFrames cuts every frame of the golden stream at every byte:
// SplitFrame must ask for more, never misread.
func TestTruncatedFrames(t *testing.T) {
	for _, s := range samples() {
		frame := frameOf(t, s.msg)
		for i := range frame {
			_, _, n, err := SplitFrame(frame[:i])
			require.ErrorIs(t, err, ErrIncomplete, "%s cut at %d", s.name, i)
			require.Zero(t, n)
		}
	}
}

func TestDecodedDoesNotAlias(t *testing.T) {
	for _, s := range samples() {
		body := mustMarshal(t, s.msg)
		got, err := Decode(s.msg.Type(), body)
		require.NoError(t, err)
		for i := range body {
			body[i] ^= 0xff
		}
		require.Equal(t, s.msg, got, s.name)
	}
}

func TestMarshalRefuses(t *testing.T) {
	longName := strings.Repeat("x", MaxNameLen+1)
	okShare := Share{MinerID: 1, JobID: "j", Extranonce2: en2(1), Difficulty: 1}
	with := func(f func(*Share)) *ShareBatch {
		s := okShare
		f(&s)
		return &ShareBatch{Shares: []Share{okShare, s}}
	}
	tests := []struct {
		name string
		msg  Message
		err  error
	}{
		{"hello empty agent", &Hello{Token: "t"}, ErrInvalid},
		{"hello agent charset", &Hello{AgentID: "a b", Token: "t"}, ErrInvalid},
		{"hello agent too long", &Hello{AgentID: longName, Token: "t"}, ErrTooLong},
		{"hello empty token", &Hello{AgentID: "a", Instance: 1}, ErrInvalid},
		{"hello instance 0", &Hello{AgentID: "a", Token: "t"}, ErrInvalid},
		{"batch time negative", &ShareBatch{BatchID: 1, Time: -1}, ErrInvalid},
		{"batch reject count 0", &ShareBatch{BatchID: 1, Rejects: []RejectCount{{MinerID: 1}}}, ErrInvalid},
		{"batch reject miner 0", &ShareBatch{BatchID: 1, Rejects: []RejectCount{{Count: 1}}}, ErrInvalid},
		{"hello token too long", &Hello{AgentID: "a", Token: strings.Repeat("t", MaxTokenLen+1)}, ErrTooLong},
		{"welcome session 0", &Welcome{Extranonce1Size: 4, Extranonce2Size: 8}, ErrInvalid},
		{"welcome prefix too long", &Welcome{SessionID: 1, Extranonce1Prefix: make([]byte, 5),
			Extranonce1Size: 4, Extranonce2Size: 8}, ErrInvalid},
		{"welcome no en2", &Welcome{SessionID: 1, Extranonce1Size: 4}, ErrInvalid},
		{"welcome too much extranonce", &Welcome{SessionID: 1, Extranonce1Size: 16, Extranonce2Size: 17}, ErrTooLong},
		{"reject message too long", &Reject{Code: RejectProtocol, Message: strings.Repeat("m", MaxReasonLen+1)}, ErrTooLong},
		{"job no id", &Job{}, ErrInvalid},
		{"job branch", &Job{ID: "j", MerkleBranch: make([]chainhash.Hash, MaxBranch+1)}, ErrTooLong},
		{"job coinb1", &Job{ID: "j", Coinb1: make([]byte, MaxCoinbasePart+1)}, ErrTooLong},
		{"job negative height", &Job{ID: "j", Height: -1}, ErrInvalid},
		{"job NaN difficulty", &Job{ID: "j", NetworkDifficulty: math.NaN()}, ErrInvalid},
		{"batch miner 0", with(func(s *Share) { s.MinerID = 0 }), ErrInvalid},
		{"batch no job", with(func(s *Share) { s.JobID = "" }), ErrInvalid},
		{"batch en2 sizes differ", with(func(s *Share) { s.Extranonce2 = en2(1, 2) }), ErrInvalid},
		{"batch en2 empty", &ShareBatch{Shares: []Share{{MinerID: 1, JobID: "j", Difficulty: 1}}}, ErrInvalid},
		{"batch en2 too long", &ShareBatch{Shares: []Share{{MinerID: 1, JobID: "j", Difficulty: 1,
			Extranonce2: make([]byte, MaxExtranonce+1)}}}, ErrTooLong},
		{"batch zero difficulty", with(func(s *Share) { s.Difficulty = 0 }), ErrInvalid},
		{"batch negative difficulty", with(func(s *Share) { s.Difficulty = -1 }), ErrInvalid},
		{"batch NaN difficulty", with(func(s *Share) { s.Difficulty = math.NaN() }), ErrInvalid},
		{"batch infinite difficulty", with(func(s *Share) { s.Difficulty = math.Inf(1) }), ErrInvalid},
		{"batch too many shares", &ShareBatch{Shares: make([]Share, MaxBatchShares+1)}, ErrTooLong},
		{"block no en2", &Block{Share: Share{MinerID: 1, JobID: "j", Difficulty: 1}}, ErrInvalid},
		{"block user too long", &Block{Share: okShare, User: longName}, ErrTooLong},
		{"ack too many", &BatchAck{Results: make([]ResultCode, MaxBatchShares+1)}, ErrTooLong},
		{"login miner 0", &MinerLogin{User: "u"}, ErrInvalid},
		{"login no user", &MinerLogin{MinerID: 1}, ErrInvalid},
		{"login worker too long", &MinerLogin{MinerID: 1, User: "u", Worker: longName}, ErrTooLong},
		{"login user agent too long", &MinerLogin{MinerID: 1, User: "u",
			UserAgent: strings.Repeat("u", MaxUserAgentLen+1)}, ErrTooLong},
		{"logout miner 0", &MinerLogout{}, ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := []byte("keep")
			out, err := tc.msg.AppendMarshal(dst)
			require.ErrorIs(t, err, tc.err)
			require.Equal(t, "keep", string(out), "nothing appended on error")
		})
	}

	// Too many job runs.
	b := &ShareBatch{}
	for i := range MaxBatchGroups + 1 {
		b.Shares = append(b.Shares, Share{MinerID: 1, JobID: string(rune('a' + i%2)), Extranonce2: en2(1), Difficulty: 1})
	}
	_, err := b.Marshal()
	require.ErrorIs(t, err, ErrTooLong)
}

// TestDecodeRefuses feeds hand-made bodies that break a rule.
func TestDecodeRefuses(t *testing.T) {
	u := func(vs ...uint64) []byte {
		var e encoder
		for _, v := range vs {
			e.uvarint(v)
		}
		return e.b
	}
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	run := []byte{1, 'j', 0, 0, 0, 0} // job "j", ntime base 0
	tests := []struct {
		name string
		typ  Type
		body []byte
		err  error
	}{
		{"unknown type", Type(99), nil, ErrType},
		{"seal is not a message", TypeSeal, []byte{0, 0, 0, 0}, ErrType},
		{"varint overflow", TypeBatchAck, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, ErrInvalid},
		{"ack rejection out of range", TypeBatchAck, cat(u(1), []byte{0}, u(2, 1, 2), []byte{1}), ErrInvalid},
		{"ack rejection coded accepted", TypeBatchAck, cat(u(1), []byte{0}, u(2, 1, 0), []byte{0}), ErrInvalid},
		{"ack unknown flag", TypeBatchAck, cat(u(1), []byte{2}, u(0, 0)), ErrInvalid},
		{"ack more rejections than results", TypeBatchAck, cat(u(1), []byte{0}, u(1, 2, 0), []byte{1}, u(0), []byte{1}), ErrTooLong},
		{"ack huge count", TypeBatchAck, cat(u(1), []byte{0}, u(MaxBatchShares+1, 0)), ErrTooLong},
		{"login miner 0", TypeMinerLogin, cat(u(0), []byte{0, 0, 1, 'u', 0, 0, 0, 0, 0, 0, 0}), ErrInvalid},
		{"login miner id over 32 bits", TypeMinerLogin, cat(u(1<<32), []byte{0, 0, 1, 'u', 0, 0, 0, 0, 0, 0, 0}), ErrInvalid},
		{"login bad ip length", TypeMinerLogin, cat(u(1), []byte{0, 0, 1, 'u', 0, 0, 0, 0, 0, 5, 1, 2, 3, 4, 5, 0}), ErrInvalid},
		{"logout flags", TypeMinerLogout, cat(u(1), []byte{4}), ErrInvalid},
		{"job flags", TypeJob, func() []byte {
			b := mustMarshal(t, sampleJob())
			b[len(b)-9] = 0x80
			return b
		}(), ErrInvalid},
		{"welcome sizes", TypeWelcome, func() []byte {
			b := mustMarshal(t, &Welcome{SessionID: 1, Extranonce1Size: 4, Extranonce2Size: 8})
			b[10] = 0 // extranonce2 size
			return b
		}(), ErrInvalid},
		{"batch claims more shares than bytes", TypeShareBatch, cat(u(1), u(0), []byte{4}, u(1), run, u(MaxBatchShares)), ErrShort},
		{"batch too many shares", TypeShareBatch, cat(u(1), u(0), []byte{4}, u(2), run, u(MaxBatchShares), run, u(1)), ErrTooLong},
		{"batch empty run", TypeShareBatch, cat(u(1), u(0), []byte{4}, u(1), run, u(0)), ErrInvalid},
		{"batch en2 size without shares", TypeShareBatch, cat(u(1), u(0), []byte{4}, u(0)), ErrInvalid},
		{"batch en2 size 0", TypeShareBatch, cat(u(1), u(0), []byte{0}, u(1), run, u(1), make([]byte, 7)), ErrInvalid},
		{"batch en2 size 33", TypeShareBatch, cat(u(1), u(0), []byte{33}, u(1), run, u(1), make([]byte, 40)), ErrInvalid},
		{"batch empty job id", TypeShareBatch, cat(u(1), u(0), []byte{4}, u(1), []byte{0, 0, 0, 0, 0}, u(1), make([]byte, 8)), ErrInvalid},
		{"batch version mode 3", TypeShareBatch, cat(u(1), u(0), []byte{4}, u(1), run, u(1), []byte{0x18 | diffPow2, 1, 0, 0, 0, 0, 0, 0}), ErrInvalid},
		{"batch first share relative id", TypeShareBatch, cat(u(1), u(0), []byte{4}, u(1), run, u(1), []byte{flagNegID | diffPow2, 1, 0, 0, 0, 0, 0, 0}), ErrInvalid},
		{"batch miner 0", TypeShareBatch, cat(u(1), u(0), []byte{4}, u(1), run, u(1), []byte{diffPow2, 0, 0, 0, 0, 0, 0, 0}), ErrInvalid},
		{"batch id below 0", TypeShareBatch, cat(u(1), u(0), []byte{4}, u(1), run, u(2),
			[]byte{diffPow2, flagNegID | diffPow2}, u(1, 2), []byte{0, 0}, make([]byte, 8), []byte{0, 0}), ErrInvalid},
		{"batch en2 does not fit", TypeShareBatch, cat(u(1), u(0), []byte{1}, u(1), run, u(1), []byte{diffPow2}, u(1, 256), make([]byte, 4), []byte{0}), ErrInvalid},
		{"batch delta without context", TypeShareBatch, cat(u(1), u(0), []byte{4}, u(1), run, u(1), []byte{diffPow2 | flagEn2Delta}, u(1, 1), make([]byte, 4), []byte{0}), ErrNoContext},
		{"batch same difficulty without context", TypeShareBatch, cat(u(1), u(0), []byte{4}, u(1), run, u(1), []byte{diffSame}, u(1, 1), make([]byte, 4)), ErrNoContext},
		{"batch en2 mode with long en2", TypeShareBatch, cat(u(1), u(0), []byte{9}, u(1), run, u(1), []byte{diffPow2 | flagEn2BE}, u(1), make([]byte, 9+4), []byte{0}), ErrInvalid},
		{"batch zero short version bits", TypeShareBatch, cat(u(1), u(0), []byte{4}, u(1), run, u(1), []byte{diffPow2 | vbitsShort}, u(1, 1), make([]byte, 4), []byte{0, 0, 0}), ErrInvalid},
		{"batch ntime below 0", TypeShareBatch, cat(u(1), u(0), []byte{4}, u(1), run, u(1), []byte{diffPow2 | flagNTime}, u(1, 1), make([]byte, 4), []byte{1, 0}), ErrInvalid},
		{"batch decimal mantissa 0", TypeShareBatch, cat(u(1), u(0), []byte{4}, u(1), run, u(1), []byte{diffDecimal}, u(1, 1), make([]byte, 4), u(0), []byte{0}), ErrInvalid},
		{"batch decimal exponent", TypeShareBatch, cat(u(1), u(0), []byte{4}, u(1), run, u(1), []byte{diffDecimal}, u(1, 1), make([]byte, 4), u(1), []byte{23}), ErrInvalid},
		{"batch NaN difficulty", TypeShareBatch, cat(u(1), u(0), []byte{4}, u(1), run, u(1), []byte{diffFloat}, u(1, 1), make([]byte, 4),
			[]byte{1, 0, 0, 0, 0, 0, 0xf8, 0x7f}), ErrInvalid},
		{"batch negative difficulty", TypeShareBatch, cat(u(1), u(0), []byte{4}, u(1), run, u(1), []byte{diffFloat}, u(1, 1), make([]byte, 4),
			[]byte{0, 0, 0, 0, 0, 0, 0xf0, 0xbf}), ErrInvalid},
		{"block NaN difficulty", TypeBlock, func() []byte {
			b := sampleBlock()
			b.Share.Difficulty = 1
			body := mustMarshal(t, b)
			copy(body[2+5+1+1+16+1+6+12:], []byte{1, 0, 0, 0, 0, 0, 0xf8, 0x7f})
			return body
		}(), ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.typ, tc.body)
			require.ErrorIs(t, err, tc.err)
		})
	}
}

func TestDifficultyEncoding(t *testing.T) {
	tests := []struct {
		d    float64
		mode uint8
		size int // bytes after the flags
	}{
		{1, diffPow2, 1},
		{65536, diffPow2, 1},
		{0.5, diffPow2, 1},
		{math.Ldexp(1, -128), diffPow2, 1},
		{math.Ldexp(1, 127), diffPow2, 1},
		{math.Ldexp(1, 128), diffFloat, 8},
		{16300, diffDecimal, 3},   // 163e2
		{65500, diffDecimal, 3},   // 655e2
		{0.00123, diffDecimal, 2}, // 123e-5
		{1e-8, diffDecimal, 2},
		{1234.5, diffDecimal, 3},
		{123456789, diffDecimal, 5},
		{1e22, diffDecimal, 2},
		{3.3333333333333335, diffFloat, 8},
		{math.MaxFloat64, diffFloat, 8},
		{math.SmallestNonzeroFloat64, diffFloat, 8},
		{float64(1<<53 + 2), diffFloat, 8},
		{1.5e300, diffFloat, 8},
		{9e21, diffDecimal, 2},
	}
	for _, tc := range tests {
		mode, m, x := encodeDiff(tc.d)
		require.Equal(t, tc.mode, mode, "%v", tc.d)
		switch mode {
		case diffPow2:
			require.Equal(t, tc.d, math.Ldexp(1, int(x)))
		case diffDecimal:
			require.Equal(t, tc.size, uvarintLen(m)+1, "%v = %de%d", tc.d, m, x)
			v, ok := decodeDecimal(m, x)
			require.True(t, ok)
			require.Equal(t, tc.d, v)
		}
		// And through a batch.
		b := &ShareBatch{BatchID: 1, Shares: []Share{{MinerID: 1, JobID: "j", Extranonce2: en2(0), Difficulty: tc.d}}}
		var out ShareBatch
		require.NoError(t, out.Unmarshal(mustMarshal(t, b)))
		require.Equal(t, tc.d, out.Shares[0].Difficulty)
	}
	// Every vardiff-style value with three significant digits is exact and
	// short.
	for e := -10; e <= 10; e++ {
		for m := 100; m < 1000; m++ {
			var d float64
			if e < 0 {
				d = float64(m) / pow10[-e]
			} else {
				d = float64(m) * pow10[e]
			}
			mode, mant, x := encodeDiff(d)
			if mode == diffPow2 {
				continue
			}
			require.Equal(t, uint8(diffDecimal), mode, "%v", d)
			require.LessOrEqual(t, uvarintLen(mant)+1, 3, "%v", d)
			v, _ := decodeDecimal(mant, x)
			require.Equal(t, d, v)
		}
	}
}

func TestExtranonce2Encoding(t *testing.T) {
	tests := []struct {
		name      string
		prev, cur []byte
		flags     uint8
		value     uint64
	}{
		{"le counter", nil, en2(5, 1, 0, 0), 0, 0x0105},
		{"be counter", nil, en2(0, 0, 1, 5), flagEn2BE, 0x0105},
		{"le delta", en2(0xfe, 0xff, 0x12, 0), en2(0x01, 0x00, 0x13, 0), flagEn2Delta, 3},
		{"be delta", en2(0, 0x12, 0xff, 0xfe), en2(0, 0x13, 0x00, 0x01), flagEn2Delta | flagEn2BE, 3},
		{"counter restarted", en2(9, 9, 9, 0), en2(1, 0, 0, 0), 0, 1},
		{"zero", en2(0, 0, 0, 0), en2(0, 0, 0, 0), 0, 0},
		{"random bytes", nil, en2(0x8f, 0x12, 0xa0, 0x33), 0, 0x33a0128f},
		{"be shorter", nil, en2(0x00, 0x12, 0xa0, 0x33), flagEn2BE, 0x12a033},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var st minerState
			st.en2Len = uint8(copy(st.en2[:], tc.prev))
			var c shareCode
			flags := encodeEn2(&c, tc.cur, st, tc.prev != nil)
			require.Equal(t, tc.flags, flags)
			require.Equal(t, tc.value, c.en2)

			// Round trip through a context.
			enc, dec := NewEncoder(), NewDecoder()
			var shares []Share
			if tc.prev != nil {
				shares = append(shares, Share{MinerID: 1, JobID: "j", Extranonce2: tc.prev, Difficulty: 1})
			}
			shares = append(shares, Share{MinerID: 1, JobID: "j", Extranonce2: tc.cur, Difficulty: 1})
			for i := range shares {
				got := roundTrip(t, enc, dec, &ShareBatch{BatchID: uint64(i + 1), Shares: shares[i : i+1]})
				require.Equal(t, shares[i].Extranonce2, got.(*ShareBatch).Shares[0].Extranonce2)
			}
		})
	}
}

func roundTrip(t testing.TB, enc *Encoder, dec *Decoder, m Message) Message {
	t.Helper()
	frame, err := enc.AppendFrame(nil, m)
	require.NoError(t, err)
	typ, body, n, err := SplitFrame(frame)
	require.NoError(t, err)
	require.Equal(t, len(frame), n)
	got, err := dec.Decode(typ, body)
	require.NoError(t, err)
	return got
}

// TestShareContext checks the connection encoding: a miner's second batch
// refers to its first, stateless decoding refuses that, MinerLogout drops
// the state on both sides, and the result always equals the input.
func TestShareContext(t *testing.T) {
	enc, dec := NewEncoder(), NewDecoder()
	b1 := &ShareBatch{BatchID: 1, Shares: []Share{
		{MinerID: 1, JobID: "j", Extranonce2: en2(0x10, 0x27, 0, 0, 0, 0), Nonce: 1, Difficulty: 16300},
		{MinerID: 2, JobID: "j", Extranonce2: en2(0x20, 0x4e, 0, 0, 0, 0), Nonce: 2, Difficulty: 0.00123},
	}}
	b2 := &ShareBatch{BatchID: 2, Shares: []Share{
		{MinerID: 1, JobID: "j", Extranonce2: en2(0x11, 0x27, 0, 0, 0, 0), Nonce: 3, Difficulty: 16300},
		{MinerID: 2, JobID: "j", Extranonce2: en2(0x21, 0x4e, 0, 0, 0, 0), Nonce: 4, Difficulty: 0.00123},
	}}
	require.Equal(t, b1, roundTrip(t, enc, dec, b1))
	f2, err := enc.AppendFrame(nil, b2)
	require.NoError(t, err)
	standalone := mustMarshal(t, b2)
	require.Less(t, len(f2)-HeaderSize, len(standalone), "context makes the second batch smaller")
	// Batch id, time, en2 size, one job run; per share: flags, id, en2
	// delta (1 byte each), nonce; no difficulty; no reject counts.
	require.Equal(t, 1+1+1+1+(1+1+4+1)+2*(1+1+1+4)+1, len(f2)-HeaderSize)

	var alone ShareBatch
	require.ErrorIs(t, alone.Unmarshal(f2[HeaderSize:]), ErrNoContext)
	got, err := dec.Decode(TypeShareBatch, f2[HeaderSize:])
	require.NoError(t, err)
	require.Equal(t, b2, got)

	// Logout forgets miner 1 on both sides: its next share is explicit.
	require.Equal(t, &MinerLogout{MinerID: 1}, roundTrip(t, enc, dec, &MinerLogout{MinerID: 1}))
	b3 := &ShareBatch{BatchID: 3, Shares: b2.Shares[:1]}
	f3, err := enc.AppendFrame(nil, b3)
	require.NoError(t, err)
	require.NoError(t, alone.Unmarshal(f3[HeaderSize:]), "no reference to forgotten state")
	require.Equal(t, b3, &alone)
	got, err = dec.Decode(TypeShareBatch, f3[HeaderSize:])
	require.NoError(t, err)
	require.Equal(t, b3, got)

	// A decoder that missed a batch cannot decode the next one.
	enc2, dec2 := NewEncoder(), NewDecoder()
	_, err = enc2.AppendFrame(nil, b1)
	require.NoError(t, err)
	f, err := enc2.AppendFrame(nil, b2)
	require.NoError(t, err)
	_, err = dec2.Decode(TypeShareBatch, f[HeaderSize:])
	require.ErrorIs(t, err, ErrNoContext)
}

// TestShareContextRandom runs random batches through an Encoder/Decoder
// pair, with logouts in between.
func TestShareContextRandom(t *testing.T) {
	enc, dec := NewEncoder(), NewDecoder()
	r := newRand(42)
	for i := range 300 {
		b := randomBatch(uint64(i), uint64(i+1), int(r.next()%60))
		require.Equal(t, b, roundTrip(t, enc, dec, b), "batch %d", i)
		if r.next()%3 == 0 {
			l := &MinerLogout{MinerID: uint32(1 + r.next()%50)}
			require.Equal(t, l, roundTrip(t, enc, dec, l))
		}
	}
}

// TestMinerStateLimit fills the per-connection table: both sides stop
// adding miners at the same point and keep decoding.
func TestMinerStateLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a 131,072-entry table")
	}
	enc, dec := NewEncoder(), NewDecoder()
	id := uint32(0)
	for id < MaxMinerStates {
		b := &ShareBatch{BatchID: uint64(id)}
		for range MaxBatchShares {
			id++
			b.Shares = append(b.Shares, Share{MinerID: id, JobID: "j", Extranonce2: en2(1, 0), Difficulty: 2})
		}
		roundTrip(t, enc, dec, b)
	}
	require.Len(t, enc.ctx.miners, MaxMinerStates)
	require.Len(t, dec.ctx.miners, MaxMinerStates)
	// Miner id+1 is not kept: its second batch is explicit; miner 1 is.
	b := &ShareBatch{BatchID: 1 << 20, Shares: []Share{
		{MinerID: 1, JobID: "j", Extranonce2: en2(2, 0), Difficulty: 2},
		{MinerID: id + 1, JobID: "j", Extranonce2: en2(1, 0), Difficulty: 3}}}
	require.Equal(t, b, roundTrip(t, enc, dec, b))
	b.BatchID++
	b.Shares[1].Extranonce2 = en2(2, 0)
	require.Equal(t, b, roundTrip(t, enc, dec, b))
	require.Len(t, dec.ctx.miners, MaxMinerStates)
	_, known := dec.ctx.get(id + 1)
	require.False(t, known)
}

func TestSort(t *testing.T) {
	b := &ShareBatch{Shares: []Share{
		{MinerID: 5, JobID: "b", Nonce: 1}, {MinerID: 1, JobID: "b", Nonce: 2},
		{MinerID: 9, JobID: "a", Nonce: 3}, {MinerID: 1, JobID: "b", Nonce: 4}}}
	b.Sort()
	var got []uint32
	for _, s := range b.Shares {
		got = append(got, s.Nonce)
	}
	require.Equal(t, []uint32{3, 2, 4, 1}, got)
}

func TestStrings(t *testing.T) {
	require.Equal(t, "share_batch", TypeShareBatch.String())
	require.Equal(t, "type(200)", Type(200).String())
	require.Equal(t, "bad_token", RejectBadToken.String())
	require.Equal(t, "code(99)", RejectCode(99).String())
	require.Equal(t, "low_difficulty", ResultLowDifficulty.String())
	require.Equal(t, "code(42)", ResultCode(42).String())
	require.Equal(t, "agentwire: rejected: bad_token: no such agent", (&Reject{Code: RejectBadToken, Message: "no such agent"}).Error())
	h := &Hello{AgentID: "a", Token: "secret", Instance: 9}
	require.NotContains(t, h.String(), "secret")
	require.Equal(t, 2, (&Welcome{Extranonce1Prefix: []byte{1, 2, 3, 4}, Extranonce1Size: 6}).SuffixSize())
	for typ := TypeHello; typ <= TypeMinerLogout; typ++ {
		require.True(t, typ.FromAgent() || typ.FromGateway(), "%s has a sender", typ)
		require.NotNil(t, New(typ))
	}
	require.False(t, TypeJob.FromAgent())
	require.False(t, TypeShareBatch.FromGateway())
	require.Nil(t, New(TypeSeal))
}
