// Command gateway is the Stratum V1 endpoint miners connect to.
//
// Consumes: jobs from the jobmaster on NATS (<prefix>.<coin>.job; the current
// job by request on <prefix>.<coin>.job.current at start and after every
// reconnect). Miners' Stratum V1 requests.
//
// Produces: mining.notify / set_difficulty / set_extranonce to miners; found
// blocks as NATS requests on <prefix>.<coin>.block (spooled to
// <run_dir>/gateway-blocks/ first; if the jobmaster gives no final answer
// within blocks.fallback_after the gateway submits the block to
// blocks.nodes itself). Per user/worker/minute share counters (shown on
// /status; shipped to Redis by the statistics pipeline).
//
// Listens: stratum.listen (miners, gnet event loops, one per core by
// default) and the loopback admin endpoint: /healthz (503 until the first
// job; "degraded" when the jobmaster is silent or blocks wait in the spool),
// /metrics, /status, /loglevel, /debug/pprof, and operator actions
// POST /clients/reconnect and POST /clients/message (?worker=, ?user= or
// ?all=1). Dials: NATS, fallback nodes' JSON-RPC.
//
// Files: <run_dir>/gateway.pid, <run_dir>/gateway.admin (admin URL, once
// ready), <run_dir>/gateway-blocks/ (found-block spool; replayed at start).
//
// Signals: SIGINT/SIGTERM stop accepting, close sessions, give pending blocks
// a moment, then exit within shutdown_timeout; a second signal kills at once.
// SIGHUP re-reads the config: log.level and stratum.version_mask apply at
// once (miners that negotiated version rolling get mining.set_version_mask);
// other changes need a restart (shell/restart.sh gateway), after which
// miners resume their extranonce1 with their session id.
//
// Watchdog: shell/check_alive.sh probes /healthz.
package main
