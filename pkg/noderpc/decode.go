package noderpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// response is the JSON-RPC 1.0 answer envelope shared by Bitcoin Core and
// btcd. Raw fields let the decoder tell "null" from "absent" and defer the
// result's shape to the caller.
type response struct {
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
	ID     json.RawMessage `json:"id"`
}

// errorObject is the JSON-RPC error member.
type errorObject struct {
	Code    *int   `json:"code"`
	Message string `json:"message"`
}

// errProtocol is the root of every "not a valid JSON-RPC answer" failure the
// decoder reports; it is wrapped in a *TransportError by the caller.
var errProtocol = errors.New("invalid json-rpc response")

// decodeResponse parses a JSON-RPC response body for request id. It returns
// the raw result on success, an *RPCError (with Method unset) when the node
// sent an error object, or an error wrapping errProtocol when the body is not
// a valid answer to this request. A nil result means JSON null.
//
// It never panics, whatever body contains.
func decodeResponse(body []byte, id uint64) (json.RawMessage, error) {
	var resp response
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("%w: %v", errProtocol, err)
	}

	if !isNull(resp.Error) {
		rpcErr, err := decodeErrorObject(resp.Error)
		if err != nil {
			return nil, err
		}
		// A node that could not parse our request answers with id null;
		// the error is still the node's verdict, so keep it.
		if !isNull(resp.ID) && !idMatches(resp.ID, id) {
			return nil, fmt.Errorf("%w: answer for id %s, want %d", errProtocol, clip(resp.ID), id)
		}
		return nil, rpcErr
	}

	if !idMatches(resp.ID, id) {
		return nil, fmt.Errorf("%w: answer for id %s, want %d", errProtocol, clip(resp.ID), id)
	}
	if isNull(resp.Result) {
		return nil, nil
	}
	return resp.Result, nil
}

// decodeErrorObject turns the error member into an *RPCError. Besides the
// standard {"code":..,"message":..} object it accepts a bare string, which
// some node forks send.
func decodeErrorObject(raw json.RawMessage) (*RPCError, error) {
	var obj errorObject
	if err := json.Unmarshal(raw, &obj); err == nil && obj.Code != nil {
		return &RPCError{Code: *obj.Code, Message: obj.Message}, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return &RPCError{Code: CodeMisc, Message: s}, nil
	}
	return nil, fmt.Errorf("%w: malformed error member %s", errProtocol, clip(raw))
}

// idMatches reports whether the raw id equals the numeric request id. Nodes
// echo the id as we sent it, but a float spelling ("7.0") is tolerated.
func idMatches(raw json.RawMessage, id uint64) bool {
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return false
	}
	if n.String() == strconv.FormatUint(id, 10) {
		return true
	}
	f, err := n.Float64()
	return err == nil && f == float64(id)
}

// isNull reports whether raw is absent or the JSON literal null.
func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || bytes.Equal(t, []byte("null"))
}

// clip shortens b for inclusion in an error message.
func clip(b []byte) string {
	const maxLen = 96
	if len(b) > maxLen {
		return strconv.Quote(string(b[:maxLen])) + "..."
	}
	return strconv.Quote(string(b))
}
