// Package center is alertcenter's core: it turns bus.Alerts into
// alert:message lines and delivers them to Redis and, optionally, a webhook.
//
// Flow: Handle (the NATS callback) decodes an alert, applies the per-host
// rate limit, formats the line (Line) and hands it to the Store and the
// Webhook. Neither hand-off blocks: each has a bounded queue served by its
// own goroutine, so a slow Redis or webhook never stalls the NATS
// subscription.
//
//   - Store writes queued lines in batches with one MULTI: RPUSH key
//     line... ; LTRIM key -max_list -1. While Redis is unreachable lines stay
//     queued (the oldest give way when the queue is full), writes are retried
//     with exponential backoff, and Check reports the outage (health
//     "degraded"). Delivery is at least once: a write whose reply was lost
//     is retried and may append a line twice.
//   - Webhook POSTs each alert as JSON ({"text": line, ...}) with retries
//     and exponential backoff until a per-alert deadline; permanent refusals
//     (4xx other than 408, 425, 429) are not retried.
//   - Limiter keeps one token bucket per sending host; what it refuses is
//     counted and reported as one summary line per host once the host is
//     under the limit again.
//
// Problems are logged at Warn, never Error: alertcenter does not ship its
// own logs as alerts, and its Error lines would read as alerts to an
// operator grepping for them.
package center
