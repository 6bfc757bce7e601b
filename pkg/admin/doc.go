// Package admin is the loopback HTTP endpoint every hashgate daemon runs
// beside its real listeners, in the spirit of nats-server's monitoring port.
//
// A Server answers:
//
//   - /healthz: 503 {"status":"starting","checks":{...}} until SetReady(true);
//     then 200 with "ok" when every check added with AddCheck passes, or 200
//     with "degraded" and the failing checks' error texts when some fail. A
//     degraded daemon is alive: watchdogs must only restart a daemon whose
//     /healthz does not answer, or answers 503 for too long. GET and HEAD only.
//   - /status: the value returned by the SetStatus function, as indented
//     JSON; {} until one is set.
//   - /metrics: Prometheus exposition of the registry given to New.
//   - /loglevel: zap.AtomicLevel's handler; GET shows the level, PUT with
//     {"level":"debug"} changes it.
//   - /debug/pprof/: the net/http/pprof handlers, on the server's own mux.
//
// The listener must be a loopback address unless Config.AllowRemote is set:
// the endpoint has no authentication and pprof can be costly. Daemons write
// the URL of their endpoint to <run_dir>/<daemon>.admin with WriteAddrFile so
// that shell watchdogs can find it even when the port was chosen by the
// kernel.
//
// Importing this package also imports net/http/pprof, which registers its
// handlers on http.DefaultServeMux as a side effect. hashgate never serves
// http.DefaultServeMux, so those registrations are unreachable.
//
// # Concurrency
//
// All Server methods are safe for concurrent use. Health checks run
// concurrently with each other and with the rest of the daemon, so a check
// function must be safe for concurrent use; at most one call of each check is
// in flight at a time, and a check that does not return within CheckTimeout
// is reported as timed out while it keeps running in the background. The
// SetStatus function may be called from several requests at once. A Server is
// single-use: Listen and Serve succeed at most once.
package admin
