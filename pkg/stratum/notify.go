package stratum

import (
	"encoding/hex"
	"encoding/json"
	"errors"
)

// Notify is one mining.notify job.
//
// Byte orders: PrevHash and MerkleBranch hold hashes in Bitcoin's internal
// byte order (as chainhash.Hash stores them, the reverse of the hex that
// block explorers show). On the wire, Stratum sends the previous hash as the
// internal bytes with each 4-byte word reversed, and each branch hash as the
// plain hex of its internal bytes. Version, Bits and NTime are sent as
// 8 big-endian hex digits.
type Notify struct {
	JobID        string
	PrevHash     [32]byte // internal byte order
	Coinb1       []byte
	Coinb2       []byte
	MerkleBranch [][32]byte // internal byte order
	Version      int32
	Bits         uint32
	NTime        uint32
	Clean        bool
}

// appendPrevHash appends the Stratum form of an internal-order hash: the
// hex of each 4-byte word with its bytes reversed.
func appendPrevHash(dst []byte, h *[32]byte) []byte {
	for w := 0; w < 32; w += 4 {
		for k := 3; k >= 0; k-- {
			c := h[w+k]
			dst = append(dst, hexDigits[c>>4], hexDigits[c&0xf])
		}
	}
	return dst
}

// NotifyLen returns the exact length of AppendNotify's output for n, to
// size a buffer once.
func NotifyLen(n *Notify) int {
	const fixed = len(`{"id":null,"method":"mining.notify","params":[`) +
		2 + 1 + // job id quotes, comma
		66 + 1 + // prevhash + quotes, comma
		2 + 1 + 2 + 1 + // coinb1/coinb2 quotes and commas
		2 + 1 + // branch brackets, comma
		3*(10+1) + // version, bits, ntime with quotes and commas
		len("false") + len("]}\n")
	l := fixed + jsonStringLen(n.JobID) - 2 + 2*len(n.Coinb1) + 2*len(n.Coinb2)
	if k := len(n.MerkleBranch); k > 0 {
		l += k*66 + k - 1
	}
	if n.Clean {
		l--
	}
	return l
}

// AppendNotify appends
//
//	{"id":null,"method":"mining.notify","params":["<job id>","<prevhash>","<coinb1>","<coinb2>",["<branch>",...],"<version>","<nbits>","<ntime>",<clean>]}
//
// It does not allocate when dst has room (see NotifyLen). The gateway
// encodes a job once and writes the same immutable slice to every session.
func AppendNotify(dst []byte, n *Notify) []byte {
	dst = append(dst, `{"id":null,"method":"mining.notify","params":[`...)
	dst = appendJSONString(dst, n.JobID)
	dst = append(dst, `,"`...)
	dst = appendPrevHash(dst, &n.PrevHash)
	dst = append(dst, `","`...)
	dst = hex.AppendEncode(dst, n.Coinb1)
	dst = append(dst, `","`...)
	dst = hex.AppendEncode(dst, n.Coinb2)
	dst = append(dst, `",[`...)
	for k := range n.MerkleBranch {
		if k > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = hex.AppendEncode(dst, n.MerkleBranch[k][:])
		dst = append(dst, '"')
	}
	dst = append(dst, `],"`...)
	dst = appendHex32(dst, uint32(n.Version))
	dst = append(dst, `","`...)
	dst = appendHex32(dst, n.Bits)
	dst = append(dst, `","`...)
	dst = appendHex32(dst, n.NTime)
	dst = append(dst, `",`...)
	if n.Clean {
		dst = append(dst, "true"...)
	} else {
		dst = append(dst, "false"...)
	}
	return append(dst, "]}\n"...)
}

// ErrNotNotify is returned by ParseNotify for a line that is not a
// well-formed mining.notify.
var ErrNotNotify = errors.New("stratum: not a valid mining.notify")

// notifyError wraps ErrNotNotify with the failing field.
type notifyError struct{ field string }

func (e *notifyError) Error() string { return "stratum: mining.notify: bad " + e.field }
func (e *notifyError) Unwrap() error { return ErrNotNotify }

// ParseNotify decodes a mining.notify line (the inverse of AppendNotify),
// for mineragent and our test miner. It requires method "mining.notify" and
// exactly 9 params with the types AppendNotify writes; hex may be in either
// case. Errors wrap ErrNotNotify. It uses encoding/json and allocates; the
// result does not alias line.
func ParseNotify(line []byte) (*Notify, error) {
	var msg struct {
		Method string            `json:"method"`
		Params []json.RawMessage `json:"params"`
	}
	if err := json.Unmarshal(line, &msg); err != nil {
		return nil, &notifyError{"JSON"}
	}
	if msg.Method != "mining.notify" {
		return nil, &notifyError{"method"}
	}
	p := msg.Params
	if len(p) != 9 {
		return nil, &notifyError{"param count"}
	}
	n := &Notify{}
	if json.Unmarshal(p[0], &n.JobID) != nil || p[0][0] != '"' {
		return nil, &notifyError{"job id"}
	}
	prev, ok := hexParam(p[1])
	if !ok || len(prev) != 32 {
		return nil, &notifyError{"prevhash"}
	}
	for w := 0; w < 32; w += 4 {
		for k := 0; k < 4; k++ {
			n.PrevHash[w+k] = prev[w+3-k]
		}
	}
	if n.Coinb1, ok = hexParam(p[2]); !ok {
		return nil, &notifyError{"coinb1"}
	}
	if n.Coinb2, ok = hexParam(p[3]); !ok {
		return nil, &notifyError{"coinb2"}
	}
	var branch []json.RawMessage
	if p[4][0] != '[' || json.Unmarshal(p[4], &branch) != nil {
		return nil, &notifyError{"merkle branch"}
	}
	if len(branch) > 0 {
		n.MerkleBranch = make([][32]byte, len(branch))
	}
	for k, raw := range branch {
		h, ok := hexParam(raw)
		if !ok || len(h) != 32 {
			return nil, &notifyError{"merkle branch"}
		}
		copy(n.MerkleBranch[k][:], h)
	}
	var v uint32
	if v, ok = hex32Param(p[5]); !ok {
		return nil, &notifyError{"version"}
	}
	n.Version = int32(v)
	if n.Bits, ok = hex32Param(p[6]); !ok {
		return nil, &notifyError{"nbits"}
	}
	if n.NTime, ok = hex32Param(p[7]); !ok {
		return nil, &notifyError{"ntime"}
	}
	switch string(p[8]) {
	case "true":
		n.Clean = true
	case "false":
	default:
		return nil, &notifyError{"clean_jobs"}
	}
	return n, nil
}

// hexParam decodes a JSON string of hex (even length, no escapes).
func hexParam(raw json.RawMessage) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, false
	}
	s := raw[1 : len(raw)-1]
	out := make([]byte, len(s)/2)
	if _, err := hex.Decode(out, s); err != nil {
		return nil, false
	}
	return out, true
}

// hex32Param decodes a JSON string of exactly 8 hex digits.
func hex32Param(raw json.RawMessage) (uint32, bool) {
	v, next, ok := parseHex32(raw, 0)
	return v, ok && next == len(raw)
}
