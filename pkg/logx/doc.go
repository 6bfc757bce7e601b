// Package logx builds the root zap logger of a hashgate daemon.
//
// New follows etcd's DefaultZapLoggerConfig: JSON lines on stderr with the
// keys ts, level, logger, caller and msg, ISO-8601 timestamps, short callers,
// stack traces on Error and above, and sampling (per message and level, the
// first 100 entries each second are logged, then every 100th). The level is a
// zap.AtomicLevel, which the admin endpoint mounts at /loglevel so that it can
// be changed while the daemon runs. Every entry carries the daemon and
// instance fields. Extra cores, such as the one that ships Error entries to
// alertcenter, are teed in behind the same level and sampler.
//
// logx does not rotate or reopen files: daemons log to stderr and leave files
// to the supervisor. It keeps no package-level logger and never calls
// zap.ReplaceGlobals; loggers are passed to components explicitly. Tests use
// zaptest rather than this package.
//
// # Concurrency
//
// The logger and the AtomicLevel returned by New are safe for concurrent use.
// Config is a plain value.
package logx
