// Command jobmaster turns Bitcoin block templates into Stratum jobs for the
// gateways and submits the blocks they find.
//
// Consumes: getblocktemplate (segwit rule) from an ordered list of nodes with
// failover; new tips from a getbestblockhash poll (default every 100 ms), ZMQ
// hashblock where configured, BIP22 long polls, and PoW-checked headers on the
// bus subject <prefix>.<coin>.tip.
//
// Produces: jobs on <prefix>.<coin>.job (the current job also on request at
// <prefix>.<coin>.job.current); on a new tip an empty-block job first, then
// the full template without cleaning work. Found blocks requested on
// <prefix>.<coin>.block are rebuilt, checked, submitted to every node in
// parallel, confirmed, answered, and published on <prefix>.<coin>.block.result.
//
// Listens: only the loopback admin endpoint (admin.listen): /healthz (503
// until the first job is out, then 200 "ok" or "degraded"), /metrics,
// /status, /loglevel, /debug/pprof. Dials: every node's JSON-RPC, ZMQ
// endpoints, NATS.
//
// Files: <run_dir>/jobmaster.pid and, once ready, <run_dir>/jobmaster.admin
// holding the admin URL. Logs go to stderr.
//
// Signals: SIGINT/SIGTERM shut down gracefully within shutdown_timeout
// (in-flight found blocks finish first); a second signal kills at once.
// SIGHUP re-reads the config and applies log.level; other changes need a
// restart (shell/restart.sh jobmaster).
//
// Watchdog: shell/check_alive.sh probes /healthz; "degraded" (a node down,
// jobs still flowing from another) is alive.
package main
