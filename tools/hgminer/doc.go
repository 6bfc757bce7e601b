// Command hgminer is hashgate's Stratum V1 test miner and load generator.
//
// It is a tool, not a daemon: it has no config file, admin port or pid file,
// and check_alive.sh does not watch it. shell/devnet.sh builds it into
// bin/hgminer and runs one `hgminer mine` against the devnet gateway.
//
// # hgminer mine
//
//	hgminer mine -url stratum+tcp://127.0.0.1:PORT -user alice.cpu1 [-pass x]
//	    [-threads 1] [-version-rolling] [-suggest-diff D] [-rate 200000]
//	    [-share-rate 5] [-stats-every 5s]
//
// A real CPU miner. It dials the pool and sends mining.configure
// (version-rolling, with -version-rolling), mining.subscribe (after a
// reconnect with the previous session id, to get its extranonce1 back),
// mining.suggest_difficulty (with -suggest-diff) and mining.authorize. For
// every mining.notify it builds the coinbase (coinb1 + extranonce1 +
// extranonce2 + coinb2), folds it up the merkle branch, assembles the header
// (the previous hash arrives word-swapped and is turned back into internal
// order by pkg/stratum) and grinds nonces, then further extranonce2 values,
// against the share target of the difficulty in force (any positive
// difficulty: 1e-10 gives the largest target, 2^256-1). Shares meeting the
// target are submitted; those that also meet the network target from nbits
// are block candidates. Every -stats-every it logs the hash rate, accepted
// and rejected shares (with reasons) and block candidates. A dropped
// connection is retried with backoff from 0.5 s to 30 s; client.reconnect
// is followed.
//
// -rate caps hashes per second. -share-rate caps submitted shares per
// second; it matters on regtest, where the network difficulty (about
// 4.66e-10) is the highest share difficulty a pool may set, so every share
// is a block and an unthrottled CPU would submit thousands a second.
//
// # hgminer load
//
//	hgminer load -url stratum+tcp://127.0.0.1:PORT -conns N [-procs P]
//	    [-src 127.0.0.2-127.0.0.9] [-user-prefix load] [-share-rate R]
//	    [-duration 60s] [-admin http://127.0.0.1:ADMIN] [-pid PID|@PIDFILE]
//	    [-generate-url http://user:pass@127.0.0.1:RPC -generate-every 10s]
//	    [-report text|json]
//
// A load generator. With -procs P > 1 it re-executes itself as P worker
// processes (the hidden subcommand load-worker), each holding about N/P
// connections (at most 19,000: one process holds about 19,990 sockets
// here). Connections are spread round robin over the -src addresses, so
// that no source address runs out of ephemeral ports. The parent and its
// workers talk over the workers' stdin (commands: connect, go, stop) and
// stdout (one JSON event per line: hello, connected, result); the workers
// log to stderr.
//
// Every connection configures version rolling, subscribes, suggests a tiny
// difficulty (-suggest-diff, 1e-12 by default: the gateway clamps it to its
// vardiff.min) and authorizes as <prefix>.<index>. It is ready once its
// first job arrived. With -share-rate R it then submits R valid shares per
// second, each ground on the CPU (one or two hashes at such a difficulty),
// skipping hashes that would be blocks unless -allow-blocks; if vardiff
// raises the difficulty near the network's, it suggests the low one again.
//
// The report (text, or JSON with -report json) gives:
//
//   - connect: connected/failed, the time from the first dial to the last
//     connection having its first job, and per-connection percentiles;
//   - fan-out: for every job that first arrived during the run, each
//     client's receive time minus the earliest client's (p50, p99, max over
//     all clients and jobs) and the spread (last − first) per job, for clean
//     jobs and for all jobs. Receive times are the kernel's (SO_TIMESTAMPNS)
//     wall-clock arrival times, comparable across the worker processes and
//     free of the scheduling delay of thousands of reading goroutines;
//     -user-timestamps uses time.Now() after the read instead;
//   - submit: sent, accepted and rejected (by reason) shares and per second,
//     unanswered ones, and the reply latency (send → reply arrival) p50/p99;
//   - gateway: from /proc/<pid>/stat and status (-pid, or the admin
//     /metrics process figures), CPU seconds while connecting and during the
//     run, CPU µs per accepted share, VmRSS before connecting, connected and
//     at the end, and (end − before) / connections; from /metrics, the
//     shares by result and the notify broadcasts during the run;
//   - upstream, when the target is a mineragent (its /metrics has the link
//     counters): kbit/s sent and received on the pool link during the run
//     and the compressed bytes sent per share the gateways accepted.
//
// New jobs during a run come from the node: -generate-url with
// -generate-every calls btcd's `generate 1` periodically.
//
// # Signals
//
// SIGINT and SIGTERM stop mine cleanly (a final statistics line) and cut a
// load run short (the report still comes out, marked interrupted). Load
// workers ignore SIGINT, which a terminal sends to the whole process group,
// and stop when the parent tells them or their stdin closes.
package main
