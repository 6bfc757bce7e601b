package stratum

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
)

// Miner → pool encoders and the reply decoder, for mineragent's upstream
// link, our test miner and the load generator.

// AppendSubmitRequest appends a mining.submit request:
//
//	{"id":<id>,"method":"mining.submit","params":["<worker>","<job>","<en2 hex>","<ntime>","<nonce>"(,"<version bits>")]}
//
// ntime, nonce and versionBits are written as 8 big-endian lowercase hex
// digits; the version bits only when withVersion is set. It does not
// allocate when dst has room. DecodeRequest of the result gives back the
// same Submit.
func AppendSubmitRequest(dst []byte, id uint64, worker, jobID string, en2 []byte, ntime, nonce uint32, versionBits uint32, withVersion bool) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendUint(dst, id, 10)
	dst = append(dst, `,"method":"mining.submit","params":[`...)
	dst = appendJSONString(dst, worker)
	dst = append(dst, ',')
	dst = appendJSONString(dst, jobID)
	dst = append(dst, `,"`...)
	dst = hex.AppendEncode(dst, en2)
	dst = append(dst, `","`...)
	dst = appendHex32(dst, ntime)
	dst = append(dst, `","`...)
	dst = appendHex32(dst, nonce)
	if withVersion {
		dst = append(dst, `","`...)
		dst = appendHex32(dst, versionBits)
	}
	return append(dst, "\"]}\n"...)
}

// AppendRequest appends {"id":<id>,"method":"<method>","params":[...]} with
// each param encoded by encoding/json (a param that cannot be encoded is
// written as null). For the rare requests (subscribe, authorize, configure,
// suggest_difficulty); it allocates.
func AppendRequest(dst []byte, id uint64, method string, params ...any) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendUint(dst, id, 10)
	dst = append(dst, `,"method":`...)
	dst = appendJSONString(dst, method)
	dst = append(dst, `,"params":[`...)
	for k, p := range params {
		if k > 0 {
			dst = append(dst, ',')
		}
		v, err := json.Marshal(p)
		if err != nil {
			v = []byte("null")
		}
		dst = append(dst, v...)
	}
	return append(dst, "]}\n"...)
}

// Response is a decoded line from a pool: either a reply (ID set, Result
// and/or Error) or a notification (Method and Params set, ID null).
// Raw fields hold the JSON text verbatim; an absent field is nil, a null one
// is "null".
type Response struct {
	ID     json.RawMessage
	Method string
	Result json.RawMessage
	Error  *Error
	Params json.RawMessage
}

// ErrNotResponse is returned by DecodeResponse for a line that is not a
// JSON object.
var ErrNotResponse = errors.New("stratum: response is not a JSON object")

// DecodeResponse decodes one line received from a pool. The error member
// may be null/false/absent (no error), a Stratum array [code, "msg",
// traceback] or a JSON-RPC 2.0 object {"code":..,"message":..}; an error
// member in any other shape becomes &Error{Code: 0, Message: <its JSON>} so
// a client still sees the request failed. It uses encoding/json and
// allocates; the result does not alias line.
func DecodeResponse(line []byte) (Response, error) {
	var raw struct {
		ID     json.RawMessage `json:"id"`
		Method *string         `json:"method"`
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
		Params json.RawMessage `json:"params"`
	}
	if at(line, skipWS(line, 0)) != '{' {
		return Response{}, ErrNotResponse
	}
	if err := json.Unmarshal(line, &raw); err != nil {
		return Response{}, ErrNotResponse
	}
	resp := Response{ID: raw.ID, Result: raw.Result, Params: raw.Params}
	if raw.Method != nil {
		resp.Method = *raw.Method
	}
	resp.Error = decodeErrorMember(raw.Error)
	return resp, nil
}

func decodeErrorMember(raw json.RawMessage) *Error {
	if len(raw) == 0 {
		return nil
	}
	switch raw[0] {
	case 'n', 'f': // null, false
		return nil
	case '[':
		var arr []json.RawMessage
		if json.Unmarshal(raw, &arr) == nil && len(arr) >= 2 {
			var e Error
			if json.Unmarshal(arr[0], &e.Code) == nil && json.Unmarshal(arr[1], &e.Message) == nil {
				return &e
			}
		}
	case '{':
		var obj struct {
			Code    *int   `json:"code"`
			Message string `json:"message"`
		}
		if json.Unmarshal(raw, &obj) == nil && obj.Code != nil {
			return &Error{Code: *obj.Code, Message: obj.Message}
		}
	}
	return &Error{Code: 0, Message: string(raw)}
}
