// Package alert ships a daemon's error-and-worse log entries to alertcenter
// over the bus, without ever slowing the daemon down.
//
// A Shipper owns a bounded queue and one goroutine; its Core is a
// zapcore.Core that pkg/logx tees next to the stderr core, so every entry at
// Error level or above that passes the logger's AtomicLevel and sampler
// becomes a bus.Alert:
//
//	sh := alert.NewShipper(alert.Options{Daemon: "gateway", Instance: id})
//	lg, level, _ := logx.New(cfg.Log, "gateway", id, sh.Core())
//	defer sh.Close()
//	defer lg.Sync() // flushes pending alerts (bounded by FlushTimeout)
//	...
//	nc, _ := bus.Connect(...)
//	sh.Attach(nc, bus.AlertSubject(prefix)) // queued alerts start flowing
//
// What the core does with an entry, in the caller's goroutine and under
// one short mutex:
//
//   - De-duplication: the first entry of a (caller, message) pair goes out
//     at once; repeats within DedupWindow are only counted, and the count
//     leaves as one alert (Count = repeats) when the window closes, or
//     folded into the next occurrence after it.
//   - Rate limit: a token bucket (Rate alerts per RatePer, bursts of Rate)
//     caps what leaves the process. Entries over the limit are counted and,
//     once a token is free again, reported by one summary alert
//     "N alerts suppressed by the rate limit". Fatal entries bypass the
//     limit and the de-duplication: they are the process's last words, and
//     they (like Close) also send the pending repeat counts and the
//     suppressed count at once, windows and limit notwithstanding.
//   - Queueing: a non-blocking send on a channel of Buffer alerts; when it
//     is full the alert is dropped and counted (Stats). Until Attach is
//     called alerts wait in that channel.
//
// Publishing happens on the Shipper's goroutine with core NATS Publish,
// which only appends to the connection's buffer (or, while NATS is
// reconnecting, to nats.go's reconnect buffer; when that is full the alert
// is dropped). Nothing waits for alertcenter.
//
// Entries above Error (DPanic, Panic, Fatal) are flushed synchronously
// before Write returns: zap exits (Fatal) or panics right after, so Write
// waits up to FlushTimeout (default 500 ms) for the queue to reach the NATS
// server. Sync does the same, so `defer lg.Sync()` at exit ships what is
// pending.
//
// Loss is accepted by design: an alert may be dropped when the queue or the
// reconnect buffer is full, when the process dies before the goroutine ran,
// or when it is logged after the connection passed to Attach was closed.
// The zap sampler in pkg/logx runs before this core, so under a flood Count
// undercounts.
//
// Concurrency: a Shipper and its cores are safe for concurrent use. Every
// method of a nil *Shipper is a no-op, so daemons that do not ship alerts
// (alertcenter itself) pass nil around.
package alert
