// Command metawriter turns the gateways' per-minute statistics and events
// into the Redis layout analysts read (DESIGN.md §4), exactly once.
//
// Consumes: the JetStream stream <PREFIX>_STATS (subjects <prefix>.*.stats
// and <prefix>.*.event, every coin; the coin is the subject's middle token)
// through the durable pull consumer consumer.durable ("metawriter"). Any
// number of metawriters may run with the same durable name: they share the
// work. Each message is applied with ONE Lua script call that first checks
// and sets the done key <key_prefix>:done:<coin>:<topic>:<batch or event
// id> (TTL dedup_ttl, longer than the stream's 7-day max age), so a
// redelivered or re-sent message changes nothing; the message is
// acknowledged only after Redis returned. Undecodable messages are logged
// at Warn and terminated.
//
// Produces (Redis): <coin>:s|p|g:<user>[:<worker>][:reject] minute hashes,
// <coin>:m:<key>, <coin>:mh:<host>:<key>, <coin>:mk:<key>, the indexes
// mining:keys and monitor:keys, and the lists newblock, newworker and
// newevent with the original JSON shapes. Keys expire retention + 1h after
// their last write; an hourly sweep (one metawriter at a time) removes
// minute fields older than the retention and index entries of vanished
// keys.
//
// Redis outage: nothing is acknowledged (messages are handed back with a
// delay and stay in the stream), /healthz turns "degraded", one Error line
// is logged (and shipped to alertcenter) per outage, and an Info line when
// Redis is back. NATS outage: the client reconnects forever; /healthz is
// degraded meanwhile.
//
// Listens: only the loopback admin endpoint (admin.listen): /healthz (503
// until the consumer is set up and Redis answered, then 200 "ok" or
// "degraded"), /metrics (pool_metawriter_batches_total{result},
// pool_metawriter_events_total{result}, pool_metawriter_apply_seconds,
// pool_metawriter_redis_up, pool_metawriter_sweep_fields_removed_total),
// /status (messages applied, duplicates skipped, newest minute per
// gateway, pending acks), /loglevel, /debug/pprof. Dials: NATS and Redis.
//
// Files: <run_dir>/metawriter.pid and, once ready,
// <run_dir>/metawriter.admin holding the admin URL. Logs go to stderr.
//
// Signals: SIGINT/SIGTERM stop pulling, finish and acknowledge the message
// being applied, hand the other fetched messages back, and exit within
// shutdown_timeout; a second signal kills at once. SIGKILL loses nothing:
// unacknowledged messages come back after consumer.ack_wait. Config changes
// need a restart (shell/restart.sh metawriter).
//
// Watchdog: shell/check_alive.sh probes /healthz; "degraded" (Redis or
// NATS down, statistics waiting in the stream) is alive.
//
// Analysts: "metawriter hashrate -c conf/metawriter.json --user U
// [--worker W] [--minutes 60] [--coin btc] [--until TIME] [--json]" reads
// only Redis and prints per minute and on average the shares, rejects,
// accepted difficulty and hashrate (difficulty × 2^32 / 60 s).
package main
