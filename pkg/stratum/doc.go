// Package stratum is hashgate's Stratum V1 codec, shared by the gateway (on
// gnet event loops) and mineragent (on net.Conn): framing, request decoding,
// and the encoders for replies and server notifications, plus a small
// client side for mineragent's upstream link and our test miner.
//
// # Framing
//
// Stratum V1 is newline-delimited JSON. SplitLine returns the next line of a
// buffer without its "\n" (and without a trailing "\r"):
//
//   - No newline yet: ErrIncomplete. Keep the partial line buffered (in gnet:
//     do not Discard it) and try again after the next read.
//   - More than the limit (DefaultMaxLine, 16 KiB) without a newline, or a
//     complete line longer than the limit: ErrLineTooLong. Close the
//     connection with reason line_too_long; a peer that never sends a
//     newline cannot be resynchronised.
//   - An empty or whitespace-only line comes back as an empty line with a
//     positive advance; skip it.
//
// Inside gnet's OnTraffic, peek once and walk every complete line of that
// slice before one Discard (see STYLE.md §3):
//
//	buf, _ := c.Peek(-1)
//	consumed := 0
//	for consumed < len(buf) {
//		line, n, err := stratum.SplitLine(buf[consumed:], stratum.DefaultMaxLine)
//		if err == stratum.ErrIncomplete {
//			break
//		} else if err != nil {
//			return closeConn(c, "line_too_long")
//		}
//		consumed += n
//		if len(line) == 0 {
//			continue
//		}
//		err = stratum.DecodeRequest(line, &sess.req) // copies what it keeps
//		...
//	}
//	c.Discard(consumed)
//
// # Decoding requests
//
// DecodeRequest is a hand-written scanner: no reflection, no encoding/json.
// It parses mining.submit's params positionally into fixed-size arrays
// (Request.Submit) and, for every other method, copies the raw params array
// into Request.Params for encoding/json or the Parse* helpers. Malformed
// input returns a *DecodeError whose HasID says whether a reply (code 20,
// DecodeError.Reply) can still be sent. A method the codec does not know is
// not an error: Method is MethodUnknown and MethodName holds the name.
//
// # Encoding
//
// The Append* functions append one complete line, "\n" included, to a
// caller-owned buffer in the style of strconv.AppendInt. The reply-path
// encoders are written by hand; numbers go through strconv.Append*.
//
// # Buffer lifetimes
//
//   - SplitLine's line aliases its input: in gnet it is valid until the next
//     Discard.
//   - DecodeRequest copies everything it keeps into the Request (fixed
//     arrays and Request.Params), so the line may be discarded as soon as
//     it returns. Request.Params and the slices returned by Submit's
//     accessors point into the Request and change with the next decode.
//   - Append* results are the caller's dst. A mining.notify line encoded
//     once for a broadcast must not be modified afterwards, since every
//     session's write queue holds the same slice.
//   - ParseNotify, DecodeResponse and the Parse* helpers return values that
//     do not alias their input.
//
// # Allocation
//
// Never allocate (with a pre-sized dst, and once Request.Params has grown to
// the longest params seen): SplitLine; DecodeRequest, including its errors
// (shared *DecodeError values); AppendResultTrue, AppendResultRaw,
// AppendError, AppendSubscribeResult, AppendSetDifficulty,
// AppendSetExtranonce, AppendSetVersionMask, AppendReconnect,
// AppendShowMessage, AppendNotify (NotifyLen gives the size) and
// AppendSubmitRequest; Method.String and ID.Append.
//
// Allocate (encoding/json, rare methods and client side only):
// Request.StringParams, ParseConfigure, ParseSubscribe, ParseAuthorize,
// ParseDifficulty, AppendConfigureResult, AppendRequest, ParseNotify,
// DecodeResponse, Error.Error and ID.String. DecodeError.Error does not
// allocate.
//
// # Concurrency
//
// All functions are safe for concurrent use on distinct arguments. A
// Request is owned by the goroutine that decodes into it (one per
// connection). The exported *Error and *DecodeError values are shared and
// must never be modified.
package stratum
