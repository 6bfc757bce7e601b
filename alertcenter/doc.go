// Command alertcenter collects the alerts of every hashgate daemon and
// keeps them where operators look: a Redis list and, optionally, a chat or
// paging webhook.
//
// Consumes: bus.Alert messages on <prefix>.all.alert (core NATS, queue
// group "alertcenter", so several alertcenters share the load). Every
// daemon's logger sends its Error, DPanic, Panic and Fatal entries there
// (pkg/alert: de-duplicated and rate limited per process, never blocking
// the daemon; Fatal entries are flushed before the process exits).
//
// Produces: one line per alert,
//
//	<host>: [<level>] <file:line>: <message>[ (xN)] daemon=<d> instance=<i>[ <fields>]
//
// RPUSHed to the Redis list redis.key (default "alert:message", the key the
// original pool used) and LTRIMmed to its newest redis.max_list lines in the
// same MULTI. With webhook.url set, the line is also POSTed as JSON
// {"text": line, "host", "daemon", "instance", "level", "time", "count",
// "caller", "message"} ("text" suits Slack and Mattermost incoming
// webhooks), retried with exponential backoff until webhook.deadline. Each
// sending host is limited to rate_limit.per_host alerts per rate_limit.per;
// what is over is reported by one summary line per host when the host is
// under the limit again.
//
// Neighbours down: with Redis unreachable, lines wait in a bounded memory
// queue (redis.queue, oldest dropped first) and are written when it is back;
// /healthz says "degraded". A failing webhook only delays and finally drops
// webhook posts. NATS down: nats.go reconnects; senders buffer or drop.
// alertcenter never sends alerts itself (it logs trouble at warn).
//
// Listens: only the loopback admin endpoint (admin.listen): /healthz (503
// until subscribed, then 200 "ok" or "degraded"), /metrics
// (pool_alertcenter_alerts_total{result}, pool_alertcenter_queue_length
// {queue}, pool_alertcenter_redis_up), /status, /loglevel, /debug/pprof.
// Dials: NATS, Redis, the webhook.
//
// Files: <run_dir>/alertcenter.pid and, once ready, <run_dir>/alertcenter.admin
// holding the admin URL. Logs go to stderr.
//
// Signals: SIGINT/SIGTERM shut down gracefully within shutdown_timeout
// (alerts in flight are handled and queued lines get the rest of the time to
// reach Redis); a second signal kills at once. Config changes need a
// restart (shell/restart.sh alertcenter).
//
// Watchdog: shell/check_alive.sh probes /healthz; "degraded" (Redis or the
// webhook failing) is alive.
package main
