package noderpc

import (
	"errors"
	"fmt"
)

// JSON-RPC error codes that callers commonly branch on. Bitcoin Core and btcd
// agree on these values.
const (
	// CodeMisc is the generic "something went wrong" code (RPC_MISC_ERROR).
	CodeMisc = -1
	// CodeBlockNotFound is returned by getblock and getblockheader for an
	// unknown hash (RPC_INVALID_ADDRESS_OR_KEY in Bitcoin Core).
	CodeBlockNotFound = -5
	// CodeInvalidParameter reports a missing, invalid or duplicate parameter,
	// for example getblocktemplate without the segwit rule on Bitcoin Core.
	CodeInvalidParameter = -8
	// CodeClientNotConnected means the node has no peers.
	CodeClientNotConnected = -9
	// CodeInInitialDownload means the node is still syncing.
	CodeInInitialDownload = -10
	// CodeDeserialization reports undecodable hex or a malformed block or
	// transaction.
	CodeDeserialization = -22
	// CodeVerify reports a transaction or block that failed validation.
	CodeVerify = -25
	// CodeMethodNotFound reports an unknown method, for example
	// generatetoaddress on btcd.
	CodeMethodNotFound = -32601
)

// ErrUnauthorized is returned (wrapped, so test with errors.Is) when the node
// answers HTTP 401 or 403, which means the RPC user or password is wrong or
// the user may not call that method.
var ErrUnauthorized = errors.New("noderpc: unauthorized")

// RPCError is a JSON-RPC error object sent by the node. The request reached
// the node and was processed; the answer was an error.
type RPCError struct {
	// Method is the JSON-RPC method that was called.
	Method string
	// Code is the JSON-RPC error code, e.g. CodeBlockNotFound.
	Code int
	// Message is the node's human-readable explanation.
	Message string
}

// Error returns "noderpc: <method>: rpc error <code>: <message>".
func (e *RPCError) Error() string {
	return fmt.Sprintf("noderpc: %s: rpc error %d: %s", e.Method, e.Code, e.Message)
}

// TransportError is any failure other than an RPC error or an authorization
// failure: the node was unreachable, too slow, or answered something that is
// not a valid JSON-RPC response to our request.
type TransportError struct {
	// Op is the JSON-RPC method that was being called.
	Op string
	// Err is the underlying cause; errors.Is and errors.As see through it.
	Err error
}

// Error returns "noderpc: <method>: <cause>".
func (e *TransportError) Error() string {
	return "noderpc: " + e.Op + ": " + e.Err.Error()
}

// Unwrap returns the underlying cause.
func (e *TransportError) Unwrap() error { return e.Err }

// IsTransport reports whether err is, or wraps, a *TransportError.
func IsTransport(err error) bool {
	var te *TransportError
	return errors.As(err, &te)
}

// IsRPCCode reports whether err is, or wraps, an *RPCError with the given code.
func IsRPCCode(err error, code int) bool {
	var re *RPCError
	return errors.As(err, &re) && re.Code == code
}
