package stratum

import (
	"encoding/hex"
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"
)

// Server → miner encoders. Every Append* function appends one complete line,
// ending in '\n', to dst and returns the extended slice, like strconv's
// Append functions. Unless noted they use no reflection and do not allocate
// when dst has enough spare capacity, so a connection can keep one output
// buffer and reuse it (dst = dst[:0]). They are safe for concurrent use; dst
// belongs to the caller.

const hexDigits = "0123456789abcdef"

// appendHex32 appends v as 8 lowercase hex digits, big-endian (%08x).
func appendHex32(dst []byte, v uint32) []byte {
	return append(dst,
		hexDigits[v>>28], hexDigits[v>>24&0xf], hexDigits[v>>20&0xf], hexDigits[v>>16&0xf],
		hexDigits[v>>12&0xf], hexDigits[v>>8&0xf], hexDigits[v>>4&0xf], hexDigits[v&0xf])
}

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, valid UTF-8 copied, invalid bytes replaced by
// \ufffd (as encoding/json does).
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// jsonStringLen returns len(appendJSONString(nil, s)) without allocating.
func jsonStringLen(s string) int {
	l := 2
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				l += len(`\ufffd`)
			} else {
				l += size
			}
			i += size
			continue
		case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t':
			l += 2
		case c < 0x20:
			l += 6
		default:
			l++
		}
		i++
	}
	return l
}

// appendDifficulty appends d as a JSON number in plain decimal notation:
// integers without a fraction or exponent ("1024"), fractions with the
// shortest digits that round-trip ("0.5", "0.00000001"). See
// AppendSetDifficulty for why there is never an exponent.
func appendDifficulty(dst []byte, d float64) []byte {
	if math.IsNaN(d) || math.IsInf(d, 0) || d <= 0 {
		return append(dst, '0')
	}
	return strconv.AppendFloat(dst, d, 'f', -1, 64)
}

// AppendResultTrue appends {"id":<id>,"result":true,"error":null}.
func AppendResultTrue(dst []byte, id ID) []byte {
	dst = append(dst, `{"id":`...)
	dst = id.Append(dst)
	return append(dst, `,"result":true,"error":null}`+"\n"...)
}

// AppendResultRaw appends {"id":<id>,"result":<rawJSON>,"error":null}.
// rawJSON must be one valid JSON value; it is copied verbatim (empty means
// null).
func AppendResultRaw(dst []byte, id ID, rawJSON []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = id.Append(dst)
	dst = append(dst, `,"result":`...)
	if len(rawJSON) == 0 {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, rawJSON...)
	}
	return append(dst, `,"error":null}`+"\n"...)
}

// AppendError appends {"id":<id>,"result":null,"error":[<code>,"<msg>",null]}.
// A nil e is sent as ErrOther.
func AppendError(dst []byte, id ID, e *Error) []byte {
	if e == nil {
		e = ErrOther
	}
	dst = append(dst, `{"id":`...)
	dst = id.Append(dst)
	dst = append(dst, `,"result":null,"error":[`...)
	dst = strconv.AppendInt(dst, int64(e.Code), 10)
	dst = append(dst, ',')
	dst = appendJSONString(dst, e.Message)
	return append(dst, `,null]}`+"\n"...)
}

// AppendSubscribeResult appends the mining.subscribe reply:
//
//	{"id":<id>,"result":[[["mining.set_difficulty","<sid>"],["mining.notify","<sid>"]],"<extranonce1 hex>",<extranonce2Size>],"error":null}
//
// sessionID is what a miner may send back in a later subscribe to resume
// the session.
func AppendSubscribeResult(dst []byte, id ID, sessionID string, extranonce1 []byte, extranonce2Size int) []byte {
	dst = append(dst, `{"id":`...)
	dst = id.Append(dst)
	dst = append(dst, `,"result":[[["mining.set_difficulty",`...)
	dst = appendJSONString(dst, sessionID)
	dst = append(dst, `],["mining.notify",`...)
	dst = appendJSONString(dst, sessionID)
	dst = append(dst, `]],"`...)
	dst = hex.AppendEncode(dst, extranonce1)
	dst = append(dst, `",`...)
	dst = strconv.AppendInt(dst, int64(extranonce2Size), 10)
	return append(dst, `],"error":null}`+"\n"...)
}

// AppendSetDifficulty appends
// {"id":null,"method":"mining.set_difficulty","params":[<diff>]}.
//
// The difficulty is written in plain decimal, never with an exponent:
// integers as integers ("1024", as old cgminer's json_integer_value needs),
// fractions with the shortest round-tripping digits ("0.5", "0.0001",
// "0.00000001"). cgminer (jansson json_number_value) and ESP-Miner (cJSON,
// strtod) accept any JSON number, but plain decimal is also what naive
// parsers and older firmware handle. diff must be finite and > 0; anything
// else is written as 0, which miners ignore.
func AppendSetDifficulty(dst []byte, diff float64) []byte {
	dst = append(dst, `{"id":null,"method":"mining.set_difficulty","params":[`...)
	dst = appendDifficulty(dst, diff)
	return append(dst, "]}\n"...)
}

// AppendSetExtranonce appends
// {"id":null,"method":"mining.set_extranonce","params":["<en1 hex>",<en2Size>]}
// (NiceHash's extranonce.subscribe extension). Only send it to miners that
// subscribed to it.
func AppendSetExtranonce(dst []byte, en1 []byte, en2Size int) []byte {
	dst = append(dst, `{"id":null,"method":"mining.set_extranonce","params":["`...)
	dst = hex.AppendEncode(dst, en1)
	dst = append(dst, `",`...)
	dst = strconv.AppendInt(dst, int64(en2Size), 10)
	return append(dst, "]}\n"...)
}

// AppendSetVersionMask appends
// {"id":null,"method":"mining.set_version_mask","params":["<mask, 8 lowercase hex>"]}.
func AppendSetVersionMask(dst []byte, mask uint32) []byte {
	dst = append(dst, `{"id":null,"method":"mining.set_version_mask","params":["`...)
	dst = appendHex32(dst, mask)
	return append(dst, "\"]}\n"...)
}

// AppendReconnect appends a client.reconnect notification:
//
//	{"id":null,"method":"client.reconnect","params":["<host>","<port>",<waitSeconds>]}
//
// The port is sent as a string: cgminer and bmminer (most ASIC firmware)
// read it with json_string_value and silently keep the old port when it is
// a number; ckpool sends a string for that reason, and parsers that accept
// both (BFGMiner) are unaffected. A port <= 0 is sent as null (keep the
// current port). An empty host sends "params":[], which means reconnect to
// the same address (waitSeconds is then not sent). cgminer refuses a host
// in a different domain than the pool's.
func AppendReconnect(dst []byte, host string, port int, waitSeconds int) []byte {
	dst = append(dst, `{"id":null,"method":"client.reconnect","params":[`...)
	if host != "" {
		dst = appendJSONString(dst, host)
		dst = append(dst, ',')
		if port > 0 {
			dst = append(dst, '"')
			dst = strconv.AppendInt(dst, int64(port), 10)
			dst = append(dst, '"')
		} else {
			dst = append(dst, "null"...)
		}
		dst = append(dst, ',')
		dst = strconv.AppendInt(dst, int64(max(waitSeconds, 0)), 10)
	}
	return append(dst, "]}\n"...)
}

// AppendShowMessage appends
// {"id":null,"method":"client.show_message","params":["<msg>"]}.
func AppendShowMessage(dst []byte, msg string) []byte {
	dst = append(dst, `{"id":null,"method":"client.show_message","params":[`...)
	dst = appendJSONString(dst, msg)
	return append(dst, "]}\n"...)
}

// ConfigureField is one key of a mining.configure result, for example
// {"version-rolling", true} or {"version-rolling.mask", "1fffe000"}.
type ConfigureField struct {
	Key   string
	Value any
}

// AppendConfigureResult appends the mining.configure reply
// {"id":<id>,"result":{"<key>":<value>,...},"error":null} with the fields
// in the given order. Values are encoded with encoding/json (so this
// allocates; configure is sent once per connection); a value that cannot be
// encoded (a channel, NaN) is written as null.
func AppendConfigureResult(dst []byte, id ID, fields ...ConfigureField) []byte {
	dst = append(dst, `{"id":`...)
	dst = id.Append(dst)
	dst = append(dst, `,"result":{`...)
	for k, f := range fields {
		if k > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, f.Key)
		dst = append(dst, ':')
		v, err := json.Marshal(f.Value)
		if err != nil {
			v = []byte("null")
		}
		dst = append(dst, v...)
	}
	return append(dst, `},"error":null}`+"\n"...)
}
