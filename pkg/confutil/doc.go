// Package confutil loads hashgate configuration files strictly and holds the
// small types every daemon config shares.
//
// # Loading
//
// Load and Decode accept JSON with comments (JSONC) and environment references:
//
//  1. Comments are removed: "// ..." to the end of the line and "/* ... */".
//     Comment markers inside JSON strings are ordinary text, so
//     "url": "http://x//y" is kept intact. Every removed byte except a line
//     break becomes a space, so offsets, line and column numbers in later
//     error messages refer to the file as written.
//  2. Environment references are expanded: ${NAME} is replaced by the value
//     of NAME and ${NAME:-default} falls back to default when NAME is unset or
//     empty (shell semantics). NAME matches [A-Za-z_][A-Za-z0-9_]*. Values are
//     inserted JSON-string-escaped without quotes, because references are meant
//     to sit inside JSON strings ("http://${NODE_RPC:-127.0.0.1:18443}").
//     References outside strings are expanded the same way, which suits
//     numbers. Defaults are file text and are inserted as written; they end at
//     the first "}" and cannot nest references. "$$" is a literal "$"; a "$"
//     not followed by "{" or "$" is kept. An unset variable without a default
//     is an error naming the variable; up to ten such problems are reported
//     at once. References inside comments are never expanded.
//  3. The result is decoded with encoding/json with unknown fields disallowed.
//     Data after the top-level value is rejected. Syntax, type and field errors
//     are returned as *PositionError carrying the 1-based line and byte column
//     in the original text and the JSON path of the offending field.
//
// Loading never fills in defaults: callers start from their Default() value,
// decode over it and then call their Validate method, which uses Problems to
// report every problem at once.
//
// # Secrets
//
// ResolveSecret takes a secret from at most one of a literal value, a named
// environment variable or a file. Secret values never appear in errors.
//
// # Concurrency
//
// Load, Decode and ResolveSecret are safe for concurrent use. Duration is a
// plain value. A Problems value is not safe for concurrent use; it is meant to
// live inside a single Validate call.
package confutil
