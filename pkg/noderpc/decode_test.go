package noderpc

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// decodeVectors are response bodies for request id 7 with the expected
// outcome; they also seed FuzzDecodeResponse.
var decodeVectors = []struct {
	name       string
	body       string
	wantResult string // JSON; "" means nil (JSON null)
	wantRPC    *RPCError
	wantProto  bool
}{
	{name: "number result", body: `{"result":5,"error":null,"id":7}`, wantResult: `5`},
	{name: "object result", body: `{"result":{"a":[1,2]},"error":null,"id":7}`, wantResult: `{"a":[1,2]}`},
	{name: "null result", body: `{"result":null,"error":null,"id":7}`},
	{name: "absent result", body: `{"error":null,"id":7}`},
	{name: "trailing newline (btcd)", body: "{\"result\":\"x\",\"error\":null,\"id\":7}\n", wantResult: `"x"`},
	{name: "float id", body: `{"result":1,"error":null,"id":7.0}`, wantResult: `1`},
	{name: "rpc error", body: `{"result":null,"error":{"code":-5,"message":"Block not found"},"id":7}`, wantRPC: &RPCError{Code: -5, Message: "Block not found"}},
	{name: "rpc error id null", body: `{"result":null,"error":{"code":-32700,"message":"Parse error"},"id":null}`, wantRPC: &RPCError{Code: -32700, Message: "Parse error"}},
	{name: "rpc error string", body: `{"error":"nope","id":7}`, wantRPC: &RPCError{Code: CodeMisc, Message: "nope"}},
	{name: "rpc error wrong id", body: `{"error":{"code":-1,"message":"x"},"id":8}`, wantProto: true},
	{name: "error without code", body: `{"error":{"message":"x"},"id":7}`, wantProto: true},
	{name: "error fractional code", body: `{"error":{"code":1.5,"message":"x"},"id":7}`, wantProto: true},
	{name: "wrong id", body: `{"result":1,"error":null,"id":8}`, wantProto: true},
	{name: "missing id", body: `{"result":1,"error":null}`, wantProto: true},
	{name: "null id without error", body: `{"result":1,"error":null,"id":null}`, wantProto: true},
	{name: "empty", body: ``, wantProto: true},
	{name: "garbage", body: `<html>`, wantProto: true},
	{name: "array", body: `[{"result":1,"id":7}]`, wantProto: true},
	{name: "truncated", body: `{"result":{"a":`, wantProto: true},
	{name: "trailing garbage", body: `{"result":1,"error":null,"id":7}x`, wantProto: true},
}

func TestDecodeResponse(t *testing.T) {
	for _, tc := range decodeVectors {
		t.Run(tc.name, func(t *testing.T) {
			result, err := decodeResponse([]byte(tc.body), 7)
			switch {
			case tc.wantProto:
				require.ErrorIs(t, err, errProtocol)
				require.Nil(t, result)
			case tc.wantRPC != nil:
				var re *RPCError
				require.ErrorAs(t, err, &re)
				require.Equal(t, tc.wantRPC, re)
				require.Nil(t, result)
			default:
				require.NoError(t, err)
				if tc.wantResult == "" {
					require.Nil(t, result)
				} else {
					require.JSONEq(t, tc.wantResult, string(result))
				}
			}
		})
	}
}

// FuzzDecodeResponse checks that the response decoder never panics and that
// its outcome is always one of the three documented kinds.
func FuzzDecodeResponse(f *testing.F) {
	for _, v := range decodeVectors {
		f.Add([]byte(v.body), uint64(7))
	}
	f.Add([]byte(`{"result":"`+string(make([]byte, 64))+`","id":1}`), uint64(1))
	f.Add([]byte(`{"id":18446744073709551615,"result":true}`), uint64(18446744073709551615))
	f.Add([]byte(`{"id":1e400}`), uint64(1))

	f.Fuzz(func(t *testing.T, body []byte, id uint64) {
		result, err := decodeResponse(body, id)
		if err == nil {
			if result != nil {
				require.True(t, json.Valid(result), "result %q is not valid JSON", result)
			}
			return
		}
		require.Nil(t, result)
		var re *RPCError
		if !errors.As(err, &re) {
			require.ErrorIs(t, err, errProtocol)
		}
		require.NotPanics(t, func() { _ = err.Error() })
	})
}
