// Package lifecycle holds the process-level helpers every hashgate daemon's
// run function uses: the signal context, the pid file and SIGHUP delivery.
//
// Signals:
//
//   - SIGINT and SIGTERM cancel the context from SignalContext. The first one
//     starts a graceful shutdown; after it, the default disposition is
//     restored, so a second SIGINT or SIGTERM kills the process at once (the
//     stdlib form of btcd's "already shutting down").
//   - SIGHUP is delivered on the channel from HUP while its context lives.
//     Daemons that support reloading apply only the fields marked safe;
//     others document "restart to apply" and do not call HUP, in which case
//     SIGHUP terminates the process (Go's default).
//
// The pid file is written only when the daemon is ready, so that watchdogs
// find a pid only for a daemon that has finished starting, and it is removed
// on the way out only if it still holds this process's pid.
//
// lifecycle does not re-raise the terminating signal after cleanup: daemons
// exit with status 1 on error and 0 after a requested shutdown.
//
// # Concurrency
//
// All functions are safe for concurrent use. The remove function returned by
// WritePIDFile may be called any number of times, from any goroutine.
package lifecycle
