// Package noderpc is a JSON-RPC client for a Bitcoin node: Bitcoin Core in
// production and btcd on regtest in tests.
//
// # What it does
//
// A Client sends JSON-RPC 1.0 requests over HTTP POST with basic
// authentication and decodes the answers. Call is the generic entry point;
// typed helpers cover what the pool needs: getblocktemplate (always with
// mode "template", by default with the segwit rule), submitblock,
// getbestblockhash, getblockcount, getblockheader (verbose and raw),
// getblockchaininfo, getblock (raw hex), sendrawtransaction, getrawmempool
// and the regtest generators generate (btcd) and generatetoaddress (Bitcoin
// Core). The jobmaster uses it for templates and block submission; the
// gateway uses it as a fallback submit path.
//
// # What it does not do
//
// It does not retry, fail over between nodes, cache answers, speak the
// websocket notification API of btcd or the ZMQ interface of Bitcoin Core,
// or use JSON-RPC batches. Callers decide what a failure means using the
// error model below.
//
// # Error model
//
// Every error returned by a call is exactly one of three kinds, and callers
// are expected to branch on them:
//
//   - *RPCError: the node understood the request and answered with a
//     JSON-RPC error object (Bitcoin Core sends these with HTTP 500, 404 or
//     400; btcd with HTTP 200). Retrying the same request will usually give
//     the same answer. Find it with errors.As.
//   - ErrUnauthorized: the node answered HTTP 401 or 403, so the credentials
//     are wrong. Find it with errors.Is.
//   - *TransportError: anything else. The request may or may not have reached
//     the node: dial failures, timeouts and cancellation (errors.Is with
//     context.DeadlineExceeded and context.Canceled still works), HTTP
//     errors without a JSON-RPC body (for example Bitcoin Core's 503 "work
//     queue depth exceeded"), bodies that are not JSON, truncated, larger
//     than 64 MiB, answer another request id, or carry a result of the wrong
//     shape. IsTransport reports this kind.
//
// Error strings name the RPC method and never contain the password: the
// password is taken out of the URL before the URL is stored.
//
// # Timeouts
//
// The underlying http.Client has no global timeout. Each call is bounded by
// its context; when the context has no deadline, Options.Timeout (10 s by
// default) is applied. A long-poll getblocktemplate therefore passes a
// context with a long deadline.
//
// # Concurrency
//
// A Client is safe for concurrent use by multiple goroutines. It keeps up to
// eight idle keep-alive connections per host (btcd closes every connection
// after one answer; Bitcoin Core keeps them open).
//
// # btcd differences worth knowing
//
//   - getblocktemplate ignores "rules" and returns no "rules" field; segwit
//     only activates on btcd regtest at height 432 through BIP 9 signalling.
//   - submitblock answers a rejected block with the string
//     "rejected: <reason>" where Bitcoin Core answers a short BIP 22 reason
//     such as "duplicate" or "high-hash". It answers null both for a block
//     that extended the chain and for an orphan (unknown parent) it merely
//     stored, so a null answer alone does not prove the block is the tip.
//   - getblockheader has no mediantime, and btcd prints "bits" without
//     leading zeros; this package pads bits to eight hex digits.
//   - getblock takes its verbosity as an integer on both nodes.
package noderpc
