package stratum

import "strconv"

// Error is a Stratum error as sent in a reply: [code, "message", null].
//
// The package-level values below are shared and must not be modified;
// replying with one of them allocates nothing.
type Error struct {
	Code    int
	Message string
}

// Error implements error. It allocates; call it for logs, not on the reply
// path (use AppendError there).
func (e *Error) Error() string {
	return "stratum: error " + strconv.Itoa(e.Code) + ": " + e.Message
}

// Is reports whether target is an *Error with the same code and message, so
// that an error decoded from a pool reply matches the sentinels below.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t != nil && e != nil && t.Code == e.Code && t.Message == e.Message
}

// Reply errors with the codes Stratum V1 pools commonly use.
var (
	ErrOther         = &Error{20, "Other/Unknown"}
	ErrJobNotFound   = &Error{21, "Job not found (=stale)"}
	ErrDuplicate     = &Error{22, "Duplicate share"}
	ErrLowDifficulty = &Error{23, "Low difficulty share"}
	ErrUnauthorized  = &Error{24, "Unauthorized worker"}
	ErrNotSubscribed = &Error{25, "Not subscribed"}
)

// Code-20 replies with a clearer message than "Other/Unknown". Their
// messages are fixed so that replying allocates nothing.
var (
	// ErrBadNTime: ntime before the job's minimum time or too far ahead.
	ErrBadNTime = &Error{20, "Invalid ntime"}
	// ErrBadVersionBits: version bits outside the negotiated mask, or sent
	// without version rolling having been configured.
	ErrBadVersionBits = &Error{20, "Invalid version bits"}
	// ErrBadExtranonce2: extranonce2 of the wrong size or not hex.
	ErrBadExtranonce2 = &Error{20, "Invalid extranonce2"}
	// ErrMalformed: the request could not be decoded (see DecodeError).
	ErrMalformed = &Error{20, "Malformed request"}
	// ErrUnknownMethod: a method the server does not implement. NiceHash's
	// extranonce specification expects code 20 for unsupported methods.
	ErrUnknownMethod = &Error{20, "Unknown method"}
)
