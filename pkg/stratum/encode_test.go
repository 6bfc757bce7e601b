package stratum

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEncodersGolden pins the exact bytes of every encoder.
func TestEncodersGolden(t *testing.T) {
	en1 := []byte{0x08, 0x00, 0x00, 0x02}
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"result true number id", AppendResultTrue(nil, mkID("4")),
			`{"id":4,"result":true,"error":null}`},
		{"result true string id", AppendResultTrue(nil, mkID(`"a\"1"`)),
			`{"id":"a\"1","result":true,"error":null}`},
		{"result true null id", AppendResultTrue(nil, ID{}),
			`{"id":null,"result":true,"error":null}`},
		{"result raw", AppendResultRaw(nil, mkID("6"), []byte(`[]`)),
			`{"id":6,"result":[],"error":null}`},
		{"result raw empty", AppendResultRaw(nil, mkID("6"), nil),
			`{"id":6,"result":null,"error":null}`},
		{"error other", AppendError(nil, mkID("5"), ErrOther),
			`{"id":5,"result":null,"error":[20,"Other/Unknown",null]}`},
		{"error stale", AppendError(nil, mkID("5"), ErrJobNotFound),
			`{"id":5,"result":null,"error":[21,"Job not found (=stale)",null]}`},
		{"error duplicate", AppendError(nil, mkID("5"), ErrDuplicate),
			`{"id":5,"result":null,"error":[22,"Duplicate share",null]}`},
		{"error low diff", AppendError(nil, mkID("5"), ErrLowDifficulty),
			`{"id":5,"result":null,"error":[23,"Low difficulty share",null]}`},
		{"error unauthorized", AppendError(nil, mkID("5"), ErrUnauthorized),
			`{"id":5,"result":null,"error":[24,"Unauthorized worker",null]}`},
		{"error not subscribed", AppendError(nil, mkID("5"), ErrNotSubscribed),
			`{"id":5,"result":null,"error":[25,"Not subscribed",null]}`},
		{"error bad ntime", AppendError(nil, mkID("5"), ErrBadNTime),
			`{"id":5,"result":null,"error":[20,"Invalid ntime",null]}`},
		{"error bad version bits", AppendError(nil, mkID("5"), ErrBadVersionBits),
			`{"id":5,"result":null,"error":[20,"Invalid version bits",null]}`},
		{"error bad extranonce2", AppendError(nil, mkID("5"), ErrBadExtranonce2),
			`{"id":5,"result":null,"error":[20,"Invalid extranonce2",null]}`},
		{"error malformed null id", AppendError(nil, ID{}, ErrMalformed),
			`{"id":null,"result":null,"error":[20,"Malformed request",null]}`},
		{"error unknown method", AppendError(nil, mkID(`"x"`), ErrUnknownMethod),
			`{"id":"x","result":null,"error":[20,"Unknown method",null]}`},
		{"error nil", AppendError(nil, mkID("5"), nil),
			`{"id":5,"result":null,"error":[20,"Other/Unknown",null]}`},
		{"error escaped message", AppendError(nil, mkID("5"), &Error{-1, "a \"b\"\\\n\x01é\xff"}),
			`{"id":5,"result":null,"error":[-1,"a \"b\"\\\n\u0001é\ufffd",null]}`},
		{"subscribe", AppendSubscribeResult(nil, mkID("1"), "deadbeefcafe0001", en1, 8),
			`{"id":1,"result":[[["mining.set_difficulty","deadbeefcafe0001"],["mining.notify","deadbeefcafe0001"]],"08000002",8],"error":null}`},
		{"set difficulty", AppendSetDifficulty(nil, 1024),
			`{"id":null,"method":"mining.set_difficulty","params":[1024]}`},
		{"set difficulty tiny", AppendSetDifficulty(nil, 1e-8),
			`{"id":null,"method":"mining.set_difficulty","params":[0.00000001]}`},
		{"set extranonce", AppendSetExtranonce(nil, en1, 4),
			`{"id":null,"method":"mining.set_extranonce","params":["08000002",4]}`},
		{"set version mask", AppendSetVersionMask(nil, 0x1fffe000),
			`{"id":null,"method":"mining.set_version_mask","params":["1fffe000"]}`},
		{"set version mask small", AppendSetVersionMask(nil, 0xe000),
			`{"id":null,"method":"mining.set_version_mask","params":["0000e000"]}`},
		{"reconnect", AppendReconnect(nil, "stratum2.example.com", 3333, 5),
			`{"id":null,"method":"client.reconnect","params":["stratum2.example.com","3333",5]}`},
		{"reconnect keep port", AppendReconnect(nil, "stratum2.example.com", 0, -3),
			`{"id":null,"method":"client.reconnect","params":["stratum2.example.com",null,0]}`},
		{"reconnect same address", AppendReconnect(nil, "", 3333, 5),
			`{"id":null,"method":"client.reconnect","params":[]}`},
		{"show message", AppendShowMessage(nil, "Pool restarting in 5 min; \"reconnect\" please"),
			`{"id":null,"method":"client.show_message","params":["Pool restarting in 5 min; \"reconnect\" please"]}`},
		{"configure result", AppendConfigureResult(nil, mkID("1"),
			ConfigureField{"version-rolling", true},
			ConfigureField{"version-rolling.mask", "1fffe000"},
			ConfigureField{"minimum-difficulty", false},
			ConfigureField{"subscribe-extranonce", true}),
			`{"id":1,"result":{"version-rolling":true,"version-rolling.mask":"1fffe000","minimum-difficulty":false,"subscribe-extranonce":true},"error":null}`},
		{"configure result empty", AppendConfigureResult(nil, mkID("2")),
			`{"id":2,"result":{},"error":null}`},
		{"configure result bad value", AppendConfigureResult(nil, mkID("3"), ConfigureField{"x", math.NaN()}, ConfigureField{"y", json.RawMessage(`{"a":1}`)}),
			`{"id":3,"result":{"x":null,"y":{"a":1}},"error":null}`},
		{"submit request", AppendSubmitRequest(nil, 4, "alice.rig01", "1a2b", []byte{0, 0, 0, 0, 0, 0, 0, 1}, 0x65f1a2b3, 0xb2957c02, 0, false),
			`{"id":4,"method":"mining.submit","params":["alice.rig01","1a2b","0000000000000001","65f1a2b3","b2957c02"]}`},
		{"submit request version", AppendSubmitRequest(nil, 18446744073709551615, `w"`, "3f", nil, 1, 0xffffffff, 0x1fffe000, true),
			`{"id":18446744073709551615,"method":"mining.submit","params":["w\"","3f","","00000001","ffffffff","1fffe000"]}`},
		{"request", AppendRequest(nil, 1, "mining.subscribe", "cgminer/4.12.1", nil),
			`{"id":1,"method":"mining.subscribe","params":["cgminer/4.12.1",null]}`},
		{"request configure", AppendRequest(nil, 2, "mining.configure", []string{"version-rolling"}, map[string]any{"version-rolling.mask": "1fffe000", "version-rolling.min-bit-count": 2}),
			`{"id":2,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"1fffe000","version-rolling.min-bit-count":2}]}`},
		{"request no params", AppendRequest(nil, 3, "mining.extranonce.subscribe"),
			`{"id":3,"method":"mining.extranonce.subscribe","params":[]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want+"\n", string(tc.got))
			require.True(t, json.Valid(tc.got), "not valid JSON")
		})
	}
}

func TestAppendKeepsPrefix(t *testing.T) {
	dst := []byte("prefix|")
	dst = AppendResultTrue(dst, mkID("1"))
	dst = AppendSetDifficulty(dst, 2)
	require.Equal(t, "prefix|"+`{"id":1,"result":true,"error":null}`+"\n"+
		`{"id":null,"method":"mining.set_difficulty","params":[2]}`+"\n", string(dst))
}

func TestSetDifficultyFormat(t *testing.T) {
	tests := []struct {
		diff float64
		want string
	}{
		{1, "1"},
		{1024, "1024"},
		{65536.0, "65536"},
		{16307.420938523983, "16307.420938523983"},
		{0.5, "0.5"},
		{0.001, "0.001"},
		{1e-4, "0.0001"},
		{1.5e-5, "0.000015"},
		{1e-8, "0.00000001"},
		{1.23456789e-8, "0.0000000123456789"},
		{1.0 / 3, "0.3333333333333333"},
		{2.5e15, "2500000000000000"},
		{1e21, "1000000000000000000000"},
		{0, "0"},
		{-1, "0"},
		{math.Copysign(0, -1), "0"},
		{math.NaN(), "0"},
		{math.Inf(1), "0"},
	}
	for _, tc := range tests {
		line := AppendSetDifficulty(nil, tc.diff)
		want := `{"id":null,"method":"mining.set_difficulty","params":[` + tc.want + "]}\n"
		require.Equal(t, want, string(line), tc.diff)
		require.True(t, json.Valid(line))
		if tc.diff > 0 && !math.IsInf(tc.diff, 0) {
			// Exact round trip through a JSON number parser, no exponent.
			var msg struct{ Params []float64 }
			require.NoError(t, json.Unmarshal(line, &msg))
			require.Equal(t, tc.diff, msg.Params[0])
			require.NotContains(t, tc.want, "e")
		}
	}
}

// TestSetDifficultyRoundTrip checks every power of two and a sweep of
// fractions: the output is a plain decimal that parses back exactly.
func TestSetDifficultyRoundTrip(t *testing.T) {
	check := func(d float64) {
		line := AppendSetDifficulty(nil, d)
		num := strings.TrimSuffix(strings.TrimPrefix(string(line), `{"id":null,"method":"mining.set_difficulty","params":[`), "]}\n")
		require.True(t, validNumber([]byte(num)), num)
		require.NotContains(t, num, "e")
		got, err := strconv.ParseFloat(num, 64)
		require.NoError(t, err)
		require.Equal(t, d, got)
		if d == math.Trunc(d) && d < 1e15 {
			require.NotContains(t, num, ".")
		}
	}
	for e := -30; e <= 60; e++ {
		check(math.Ldexp(1, e))
	}
	for d := 1e-8; d < 1e6; d *= 1.37 {
		check(d)
	}
}

func TestEncodersAllocs(t *testing.T) {
	id := mkID(`"req-12"`)
	en1 := []byte{1, 2, 3, 4}
	n := testNotify(12)
	buf := make([]byte, 0, 4096)
	tests := map[string]func(){
		"AppendResultTrue":      func() { buf = AppendResultTrue(buf[:0], id) },
		"AppendResultRaw":       func() { buf = AppendResultRaw(buf[:0], id, []byte("[]")) },
		"AppendError":           func() { buf = AppendError(buf[:0], id, ErrLowDifficulty) },
		"AppendSubscribeResult": func() { buf = AppendSubscribeResult(buf[:0], id, "0123456789abcdef", en1, 8) },
		"AppendSetDifficulty":   func() { buf = AppendSetDifficulty(buf[:0], 0.00012345) },
		"AppendSetExtranonce":   func() { buf = AppendSetExtranonce(buf[:0], en1, 8) },
		"AppendSetVersionMask":  func() { buf = AppendSetVersionMask(buf[:0], 0x1fffe000) },
		"AppendReconnect":       func() { buf = AppendReconnect(buf[:0], "pool.example.com", 3333, 5) },
		"AppendShowMessage":     func() { buf = AppendShowMessage(buf[:0], "hello \"miner\" é") },
		"AppendNotify":          func() { buf = AppendNotify(buf[:0], n) },
		"AppendSubmitRequest": func() {
			buf = AppendSubmitRequest(buf[:0], 7, "alice.rig01", "1a2b", en1, 1, 2, 3, true)
		},
		"SplitLine": func() {
			_, _, _ = SplitLine([]byte(`{"id":1,"method":"mining.ping"}`+"\n"), DefaultMaxLine)
		},
		"NotifyLen": func() { _ = NotifyLen(n) },
	}
	for name, fn := range tests {
		require.Zero(t, testing.AllocsPerRun(200, fn), name)
	}
	require.LessOrEqual(t, len(buf), cap(buf))
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\`, "\x00\x1f\t\n\r", "é中😀", "\xff\xfe", "a\xc3", "\u2028", "<&>", "\x7f"} {
		enc := appendJSONString(nil, s)
		require.True(t, json.Valid(enc), "%q", s)
		require.Equal(t, len(enc), jsonStringLen(s), "%q", s)
		var back string
		require.NoError(t, json.Unmarshal(enc, &back))
		want, err := json.Marshal(s)
		require.NoError(t, err)
		var wantBack string
		require.NoError(t, json.Unmarshal(want, &wantBack))
		require.Equal(t, wantBack, back, "%q", s)
	}
	require.True(t, bytes.Equal([]byte(`"a\u0001"`), appendJSONString(nil, "a\x01")))
}
