package stratum

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSubmitRequestRoundTrip: AppendSubmitRequest → DecodeRequest gives
// back exactly the inputs.
func TestSubmitRequestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	workers := []string{"alice.rig01", "", `q"uote\back/slash`, "bc1qexampleexampleexampleexample.bitaxe", string(make128())}
	for i := 0; i < 500; i++ {
		worker := workers[i%len(workers)]
		job := []string{"1", "18c2f3a4b5c60001", "ab"}[i%3]
		en2 := make([]byte, rng.IntN(33))
		for k := range en2 {
			en2[k] = byte(rng.Uint32())
		}
		ntime, nonce, vb := rng.Uint32(), rng.Uint32(), rng.Uint32()
		withVersion := i%2 == 0
		id := rng.Uint64()

		line := AppendSubmitRequest(nil, id, worker, job, en2, ntime, nonce, vb, withVersion)
		l, n, err := SplitLine(line, 0)
		require.NoError(t, err)
		require.Len(t, line, n)
		var r Request
		require.NoError(t, DecodeRequest(l, &r), "%s", line)
		require.Equal(t, MethodSubmit, r.Method)
		require.Equal(t, strconv.FormatUint(id, 10), r.ID.String())
		require.Equal(t, worker, string(r.Submit.WorkerName()))
		require.Equal(t, job, string(r.Submit.Job()))
		require.Equal(t, en2, r.Submit.EN2())
		require.Equal(t, ntime, r.Submit.NTime)
		require.Equal(t, nonce, r.Submit.Nonce)
		require.Equal(t, withVersion, r.Submit.HasVersionBits)
		if withVersion {
			require.Equal(t, vb, r.Submit.VersionBits)
		} else {
			require.Zero(t, r.Submit.VersionBits)
		}
	}
}

func make128() []byte {
	b := make([]byte, 128)
	for k := range b {
		b[k] = 'w'
	}
	return b
}

func TestAppendRequestDecodes(t *testing.T) {
	line := AppendRequest(nil, 3, "mining.configure",
		[]string{"version-rolling", "minimum-difficulty"},
		map[string]any{"version-rolling.mask": "1fffe000", "minimum-difficulty.value": 2048})
	var r Request
	require.NoError(t, DecodeRequest(line[:len(line)-1], &r))
	require.Equal(t, MethodConfigure, r.Method)
	require.Equal(t, "3", r.ID.String())
	exts, opts, err := ParseConfigure(r.Params)
	require.NoError(t, err)
	require.Equal(t, []string{"version-rolling", "minimum-difficulty"}, exts)
	require.Equal(t, json.RawMessage(`"1fffe000"`), opts["version-rolling.mask"])

	line = AppendRequest(nil, 4, "mining.suggest_difficulty", 0.25)
	require.NoError(t, DecodeRequest(line, &r))
	d, err := ParseDifficulty(r.Params)
	require.NoError(t, err)
	require.Equal(t, 0.25, d)

	line = AppendRequest(nil, 5, "x", make(chan int))
	require.Equal(t, `{"id":5,"method":"x","params":[null]}`+"\n", string(line))
}

func TestDecodeResponse(t *testing.T) {
	tests := []struct {
		name string
		line string
		want Response
	}{
		{"result true", `{"id":4,"result":true,"error":null}`,
			Response{ID: json.RawMessage("4"), Result: json.RawMessage("true")}},
		{"stratum error", `{"id":5,"result":null,"error":[23,"Low difficulty share",null]}`,
			Response{ID: json.RawMessage("5"), Result: json.RawMessage("null"), Error: &Error{23, "Low difficulty share"}}},
		{"jsonrpc2 error object", `{"jsonrpc":"2.0","id":"a","error":{"code":-32601,"message":"Method not found"}}`,
			Response{ID: json.RawMessage(`"a"`), Error: &Error{-32601, "Method not found"}}},
		{"nicehash not supported", `{"id": 3, "result": false, "error": [20, "Not supported.", null]}`,
			Response{ID: json.RawMessage("3"), Result: json.RawMessage("false"), Error: &Error{20, "Not supported."}}},
		{"error false", `{"id":6,"result":true,"error":false}`,
			Response{ID: json.RawMessage("6"), Result: json.RawMessage("true")}},
		{"odd error", `{"id":7,"result":null,"error":"boom"}`,
			Response{ID: json.RawMessage("7"), Result: json.RawMessage("null"), Error: &Error{0, `"boom"`}}},
		{"notification", `{"id":null,"method":"mining.set_difficulty","params":[0.5]}`,
			Response{ID: json.RawMessage("null"), Method: "mining.set_difficulty", Params: json.RawMessage("[0.5]")}},
		{"subscribe result", `{"id":1,"result":[[["mining.set_difficulty","s"],["mining.notify","s"]],"08000002",8],"error":null}`,
			Response{ID: json.RawMessage("1"), Result: json.RawMessage(`[[["mining.set_difficulty","s"],["mining.notify","s"]],"08000002",8]`)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeResponse([]byte(tc.line))
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	for _, bad := range []string{``, `null`, `[1]`, `{"id":1`, `"x"`} {
		_, err := DecodeResponse([]byte(bad))
		require.ErrorIs(t, err, ErrNotResponse, bad)
	}
}

// TestEncodedRepliesDecode: every server encoder's output decodes with the
// client decoder, and errors match the sentinels.
func TestEncodedRepliesDecode(t *testing.T) {
	resp, err := DecodeResponse(AppendError(nil, mkID("9"), ErrDuplicate))
	require.NoError(t, err)
	require.True(t, errors.Is(resp.Error, ErrDuplicate))
	require.False(t, errors.Is(resp.Error, ErrLowDifficulty))
	require.Equal(t, "stratum: error 22: Duplicate share", resp.Error.Error())

	resp, err = DecodeResponse(AppendSetExtranonce(nil, []byte{8, 0, 0, 2}, 4))
	require.NoError(t, err)
	require.Equal(t, "mining.set_extranonce", resp.Method)
	require.Equal(t, `["08000002",4]`, string(resp.Params))
}
