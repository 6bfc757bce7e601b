package stratum

import (
	"bytes"
	"unicode/utf8"
)

// MaxIDLen is the longest request id, as raw JSON, that DecodeRequest keeps.
const MaxIDLen = 64

// ID is a request id kept as its raw JSON text (a number, a string with its
// quotes and escapes, or null), so that the reply echoes exactly what the
// miner sent. The zero ID is null. An ID is a value: it never aliases the
// line it was decoded from.
type ID struct {
	raw [MaxIDLen]byte
	n   uint8
}

// Append appends the id's JSON text (or null) to dst. It does not allocate
// when dst has room.
func (id ID) Append(dst []byte) []byte {
	if id.n == 0 {
		return append(dst, "null"...)
	}
	return append(dst, id.raw[:id.n]...)
}

// IsNull reports whether the id is null (or was absent).
func (id ID) IsNull() bool { return id.n == 0 }

// String returns the id's JSON text, for logs. It allocates.
func (id ID) String() string { return string(id.Append(nil)) }

// Submit holds the positional params of mining.submit, decoded in place:
// [worker, job id, extranonce2 (hex), ntime (8 hex), nonce (8 hex),
// version bits (8 hex, optional)]. The hex numbers are big-endian as on the
// wire ("65f1a2b3" is 0x65f1a2b3). Worker and JobID hold decoded text
// (escapes resolved; printable ASCII only), Extranonce2 the decoded bytes.
type Submit struct {
	Worker         [128]byte
	WorkerLen      uint8
	JobID          [64]byte
	JobIDLen       uint8
	Extranonce2    [32]byte
	Extranonce2Len uint8
	NTime, Nonce   uint32
	VersionBits    uint32
	HasVersionBits bool
}

// WorkerName returns the worker name; the slice points into s.
func (s *Submit) WorkerName() []byte { return s.Worker[:s.WorkerLen] }

// Job returns the job id; the slice points into s.
func (s *Submit) Job() []byte { return s.JobID[:s.JobIDLen] }

// EN2 returns the extranonce2 bytes; the slice points into s.
func (s *Submit) EN2() []byte { return s.Extranonce2[:s.Extranonce2Len] }

// Request is one decoded miner request. Reuse one Request per connection:
// DecodeRequest overwrites every field and reuses Params' capacity, so a
// steady stream of requests decodes without allocating.
//
// Ownership: a Request is owned by the goroutine (gnet event loop) that
// decodes into it; it is not safe for concurrent use. It never aliases the
// decoded line.
type Request struct {
	// ID is the request id; null if absent.
	ID ID
	// Method is the decoded method, MethodUnknown for names not listed.
	Method Method
	// MethodName holds the method's name as sent (escapes resolved), also
	// for unknown methods, so they can be logged.
	MethodName    [64]byte
	MethodNameLen uint8
	// Submit is filled for MethodSubmit only (zero otherwise).
	Submit Submit
	// Params is a copy of the raw JSON params array for every method
	// except mining.submit (for which it is empty); "[]" if params was
	// absent or null. Unmarshal it with encoding/json or the Parse*
	// helpers. It is overwritten by the next DecodeRequest.
	Params []byte
}

// Name returns the method name as sent; the slice points into r.
func (r *Request) Name() []byte { return r.MethodName[:r.MethodNameLen] }

// DecodeError is returned by DecodeRequest for a line that is not a valid
// Stratum request. HasID tells whether the id was parsed before the problem
// was found: if so, Request.ID holds it and the caller can still reply (with
// Reply(), code 20) instead of only closing the connection.
//
// DecodeRequest returns shared, preallocated *DecodeError values so that
// even malformed input does not allocate: do not modify them.
type DecodeError struct {
	Reason string
	HasID  bool

	msg   string
	reply *Error
}

func (e *DecodeError) Error() string {
	if e.msg == "" {
		return "stratum: " + e.Reason
	}
	return e.msg
}

// Reply returns the error to send to the miner: ErrBadExtranonce2,
// ErrBadNTime or ErrBadVersionBits for those submit fields, else
// ErrMalformed.
func (e *DecodeError) Reply() *Error {
	if e.reply == nil {
		return ErrMalformed
	}
	return e.reply
}

// decodeErrors holds one DecodeError per reason, without and with an id.
var decodeErrors = func() (t [numReasons][2]DecodeError) {
	for r := range t {
		for h := range t[r] {
			t[r][h] = DecodeError{
				Reason: reasons[r].text,
				HasID:  h == 1,
				msg:    "stratum: " + reasons[r].text,
				reply:  reasons[r].reply,
			}
		}
	}
	return t
}()

func decodeErr(r reason, hasID bool) *DecodeError {
	h := 0
	if hasID {
		h = 1
	}
	return &decodeErrors[r][h]
}

// JSON keys DecodeRequest acts on; any other key is skipped.
const (
	keyOther = iota
	keyID
	keyMethod
	keyParams
)

// DecodeRequest decodes one request line (as returned by SplitLine) into r.
//
// The line must be a JSON object. Keys "id", "method" and "params" may come
// in any order, each at most once; other keys ("jsonrpc", ...) are skipped;
// whitespace is allowed anywhere JSON allows it. id may be a number, a
// string (at most MaxIDLen bytes of JSON) or null, and may be absent (null).
// method must be a string of printable ASCII. params must be an array, null
// or absent.
//
// For mining.submit the params are parsed positionally into r.Submit (see
// Submit for the accepted forms: 5 or 6 params). For every other method the
// raw params array is copied into r.Params.
//
// On failure it returns a *DecodeError; r.ID is valid if HasID is set and
// the other fields are unspecified. An unknown method is not an error.
//
// DecodeRequest does not allocate for mining.submit, nor for other methods
// once r.Params has enough capacity; it copies everything it keeps, so the
// line may be reused (gnet Discard) as soon as it returns. It uses no
// reflection and does not import encoding/json on this path.
func DecodeRequest(line []byte, r *Request) error {
	params := r.Params[:0]
	*r = Request{Params: params}

	b := line
	i := skipWS(b, 0)
	if at(b, i) != '{' {
		return decodeErr(rNotObject, false)
	}
	var haveID, haveMethod, haveParams, submitDone bool
	pStart, pEnd := 0, 0
	var rs reason
	i = skipWS(b, i+1)
	if at(b, i) == '}' {
		i++
	} else {
		for {
			if at(b, i) != '"' {
				return decodeErr(rSyntax, haveID)
			}
			var key int
			if key, i, rs = scanKey(b, i); rs != rOK {
				return decodeErr(rs, haveID)
			}
			i = skipWS(b, i)
			if at(b, i) != ':' {
				return decodeErr(rSyntax, haveID)
			}
			i = skipWS(b, i+1)
			switch key {
			case keyID:
				if haveID {
					return decodeErr(rDuplicateKey, true)
				}
				if i, rs = parseID(b, i, &r.ID); rs != rOK {
					return decodeErr(rs, false)
				}
				haveID = true
			case keyMethod:
				if haveMethod {
					return decodeErr(rDuplicateKey, haveID)
				}
				if at(b, i) != '"' {
					if _, rs = skipValue(b, i, 0); rs != rOK {
						return decodeErr(rs, haveID)
					}
					return decodeErr(rMethodType, haveID)
				}
				var n int
				n, i, rs = decodeString(b, i, r.MethodName[:])
				switch {
				case rs == rOverflow:
					return decodeErr(rMethodTooLong, haveID)
				case rs != rOK:
					return decodeErr(rs, haveID)
				case !printableASCII(r.MethodName[:n]):
					return decodeErr(rMethodChars, haveID)
				}
				r.MethodNameLen = uint8(n)
				r.Method = lookupMethod(r.MethodName[:n])
				haveMethod = true
			case keyParams:
				if haveParams {
					return decodeErr(rDuplicateKey, haveID)
				}
				start := i
				if r.Method == MethodSubmit && at(b, i) == '[' {
					// Method already known (the usual order): parse the
					// params in one pass; parseSubmit validates as it goes.
					if i, rs = parseSubmit(b, i, &r.Submit); rs != rOK {
						return decodeErr(rs, haveID)
					}
					haveParams, submitDone = true, true
					break
				}
				if i, rs = skipValue(b, i, 0); rs != rOK {
					return decodeErr(rs, haveID)
				}
				switch b[start] {
				case '[':
					pStart, pEnd = start, i
					haveParams = true
				case 'n': // null: same as absent
				default:
					return decodeErr(rParamsType, haveID)
				}
			default:
				if i, rs = skipValue(b, i, 0); rs != rOK {
					return decodeErr(rs, haveID)
				}
			}
			i = skipWS(b, i)
			if c := at(b, i); c == ',' {
				i = skipWS(b, i+1)
				continue
			} else if c == '}' {
				i++
				break
			}
			return decodeErr(rSyntax, haveID)
		}
	}
	if skipWS(b, i) != len(b) {
		return decodeErr(rTrailing, haveID)
	}
	if !haveMethod {
		return decodeErr(rMethodMissing, haveID)
	}
	if r.Method == MethodSubmit {
		if !haveParams {
			return decodeErr(rSubmitFew, haveID)
		}
		if !submitDone {
			if _, rs = parseSubmit(b[:pEnd], pStart, &r.Submit); rs != rOK {
				return decodeErr(rs, haveID)
			}
		}
		return nil
	}
	if haveParams {
		r.Params = append(r.Params, b[pStart:pEnd]...)
	} else {
		r.Params = append(r.Params, "[]"...)
	}
	return nil
}

// scanKey scans an object key starting at its opening quote and classifies
// it. Keys with escapes are decoded before comparing ("\u0069d" is "id").
func scanKey(b []byte, i int) (key, next int, r reason) {
	if next, r = skipString(b, i); r != rOK {
		return 0, 0, r
	}
	raw := b[i+1 : next-1]
	var buf [8]byte
	if bytes.IndexByte(raw, '\\') >= 0 {
		n, _, rs := decodeString(b, i, buf[:])
		if rs != rOK { // too long to be one of ours
			return keyOther, next, rOK
		}
		raw = buf[:n]
	}
	switch string(raw) {
	case "id":
		return keyID, next, rOK
	case "method":
		return keyMethod, next, rOK
	case "params":
		return keyParams, next, rOK
	}
	return keyOther, next, rOK
}

// parseID copies the raw id value starting at b[i] into id.
func parseID(b []byte, i int, id *ID) (int, reason) {
	var end int
	var r reason
	switch c := at(b, i); {
	case c == 'n':
		if end, r = skipLiteral(b, i, "null"); r != rOK {
			return 0, r
		}
	case c == '"':
		if end, r = skipString(b, i); r != rOK {
			return 0, r
		}
		if end-i <= MaxIDLen && !utf8.Valid(b[i:end]) {
			return 0, rIDType
		}
	case c == '-' || isDigit(c):
		if end, r = skipNumber(b, i); r != rOK {
			return 0, r
		}
	default:
		if _, r = skipValue(b, i, 0); r != rOK {
			return 0, r
		}
		return 0, rIDType
	}
	if c := at(b, end); end < len(b) && !isWS(c) && c != ',' && c != '}' {
		return 0, rSyntax // "01", "1x": do not reply to a truncated id
	}
	if b[i] == 'n' {
		id.n = 0
		return end, rOK
	}
	if end-i > MaxIDLen {
		return 0, rIDTooLong
	}
	id.n = uint8(copy(id.raw[:], b[i:end]))
	return end, rOK
}

// parseSubmit parses the mining.submit params array starting at b[i] (a
// '[') and returns the index after its ']'. It does not rely on the array
// having been validated: every element is checked as it is parsed, and any
// element that is not exactly what a submit needs is an error.
func parseSubmit(b []byte, i int, s *Submit) (int, reason) {
	i = skipWS(b, i+1)
	if at(b, i) == ']' {
		return 0, rSubmitFew
	}
	k := 0
	for ; ; k++ {
		var ok bool
		var n int
		switch k {
		case 0:
			if at(b, i) != '"' {
				return 0, rWorker
			}
			var rs reason
			if n, i, rs = decodeString(b, i, s.Worker[:]); rs != rOK || !printableASCII(s.Worker[:n]) {
				return 0, rWorker
			}
			s.WorkerLen = uint8(n)
		case 1:
			if at(b, i) != '"' {
				return 0, rJobID
			}
			var rs reason
			if n, i, rs = decodeString(b, i, s.JobID[:]); rs != rOK || !printableASCII(s.JobID[:n]) {
				return 0, rJobID
			}
			s.JobIDLen = uint8(n)
		case 2:
			if n, i, ok = parseHexBytes(b, i, s.Extranonce2[:]); !ok {
				return 0, rEN2
			}
			s.Extranonce2Len = uint8(n)
		case 3:
			if s.NTime, i, ok = parseHex32(b, i); !ok {
				return 0, rNTime
			}
		case 4:
			if s.Nonce, i, ok = parseHex32(b, i); !ok {
				return 0, rNonce
			}
		case 5:
			if s.VersionBits, i, ok = parseHex32(b, i); !ok {
				return 0, rVersionBits
			}
			s.HasVersionBits = true
		default:
			return 0, rSubmitMany
		}
		i = skipWS(b, i)
		if at(b, i) == ',' {
			i = skipWS(b, i+1)
			continue
		}
		if at(b, i) != ']' {
			return 0, rSyntax
		}
		break
	}
	if k < 4 {
		return 0, rSubmitFew
	}
	return i + 1, rOK
}
