package agentwire

import (
	"fmt"
	"math"
	"net/netip"

	"github.com/hashgate/hashgate/pkg/binfield"
)

// Field limits. Encoders refuse what decoders would refuse, so a message a
// peer built with this package never closes the link for a limit.
const (
	// MaxNameLen bounds agent ids, job ids, user and worker names and the
	// software version string.
	MaxNameLen = 64
	// MaxTokenLen bounds the agent token.
	MaxTokenLen = 256
	// MaxUserAgentLen bounds a miner's user agent.
	MaxUserAgentLen = 128
	// MaxReasonLen bounds a Reject message.
	MaxReasonLen = 1024
	// MaxExtranonce bounds extranonce1 + extranonce2 (as seen by miners),
	// the same bound blockutil puts on a coinbase.
	MaxExtranonce = 32
	// MaxCoinbasePart bounds Job.Coinb1 and Job.Coinb2 (a coinbase paying
	// thousands of outputs still fits).
	MaxCoinbasePart = 1 << 20
	// MaxBranch bounds the merkle branch (2^32 transactions).
	MaxBranch = 32
	// MaxBatchShares bounds the shares in one ShareBatch (and the results
	// in one BatchAck). 10,000 miners at one share per 5 s make about 200
	// shares per 100 ms batch.
	MaxBatchShares = 1 << 14
	// MaxBatchRejects bounds the reject counts in one ShareBatch.
	MaxBatchRejects = 1 << 14
	// MaxBatchGroups bounds the distinct job runs in one ShareBatch.
	MaxBatchGroups = 256
)

// codecErrors are the errors decoders report.
var codecErrors = binfield.Errors{Short: ErrShort, TooLong: ErrTooLong, Invalid: ErrInvalid, Trail: ErrTrail}

// encoder appends fields to a byte slice. Layouts and code are binfield's
// (its Append functions); the local type keeps the short names and the
// plain b field that message code and tests use.
type encoder struct{ b []byte }

func (e *encoder) u8(v uint8)        { e.b = append(e.b, v) }
func (e *encoder) u16(v uint16)      { e.b = binfield.AppendU16(e.b, v) }
func (e *encoder) u32(v uint32)      { e.b = binfield.AppendU32(e.b, v) }
func (e *encoder) u64(v uint64)      { e.b = binfield.AppendU64(e.b, v) }
func (e *encoder) i64(v int64)       { e.b = binfield.AppendI64(e.b, v) }
func (e *encoder) f64(v float64)     { e.b = binfield.AppendF64(e.b, v) }
func (e *encoder) uvarint(v uint64)  { e.b = binfield.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)    { e.b = binfield.AppendVarint(e.b, v) }
func (e *encoder) hash(v *[32]byte)  { e.b = binfield.AppendHash(e.b, v) }
func (e *encoder) bytes(v []byte)    { e.b = binfield.AppendBytes(e.b, v) }
func (e *encoder) str(v string)      { e.b = binfield.AppendStr(e.b, v) }
func (e *encoder) addr(a netip.Addr) { e.b = binfield.AppendAddr(e.b, a) }

// decoder reads fields with a sticky error (see binfield.Decoder) and
// reports this package's errors.
type decoder struct{ binfield.Decoder }

func newDecoder(b []byte) decoder { return decoder{binfield.NewDecoder(b, &codecErrors)} }

// finish reports the first error, or ErrTrail if bytes remain, prefixed
// with the message type.
func (d *decoder) finish(t Type) error {
	if err := d.Finish(); err != nil {
		return fmt.Errorf("decode %s: %w", t, err)
	}
	return nil
}

// Checks shared by encoders and decoders.

func checkLen(n, min, max int, what string) error {
	if n > max {
		return fmt.Errorf("%w: %s has %d bytes, limit %d", ErrTooLong, what, n, max)
	}
	if n < min {
		return fmt.Errorf("%w: %s has %d bytes, minimum %d", ErrInvalid, what, n, min)
	}
	return nil
}

// validDifficulty: credited difficulty must be finite and positive.
func validDifficulty(d float64) bool {
	return d > 0 && !math.IsInf(d, 0) // NaN fails d > 0
}

// validAgentID: 1..MaxNameLen of [A-Za-z0-9._-]; it ends up in logs,
// metric-free labels and config keys.
// ValidAgentID checks an agent id: 1..MaxNameLen of [A-Za-z0-9._-].
func ValidAgentID(s string) error {
	if err := checkLen(len(s), 1, MaxNameLen, "agent id"); err != nil {
		return err
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: agent id %q has a character outside [A-Za-z0-9._-]", ErrInvalid, s)
		}
	}
	return nil
}
