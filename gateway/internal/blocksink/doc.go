// Package blocksink makes sure a found block is never lost, whatever is
// down: the jobmaster, NATS, the nodes, or the gateway itself.
//
// # What happens to a block
//
//  1. Submit hands the block to the sink's goroutine (Run) through a
//     buffered channel; it never blocks, because it is called on a gnet
//     event loop. If the channel is full, a new goroutine writes the spool
//     file instead, so nothing is dropped.
//  2. Before anything else, Run writes a spool record, SpoolDir/<hash>.blk:
//     the FoundBlock message plus the raw block, framed and checksummed
//     (see spool.go), written to a temporary file, fsynced, renamed and the
//     directory fsynced.
//  3. It sends the FoundBlock to the jobmaster as a NATS request on Subject
//     (one request in flight per block, AckTimeout each, a new one every
//     Retry) until a reply arrives.
//  4. If no final reply came within FallbackAfter, or the jobmaster replied
//     unreachable or unknown_job, the sink submits the raw block to every
//     Node itself, in parallel, and asks each node whether it now holds the
//     block (getblockheader, then getblock): btcd answers submitblock with
//     null even for an orphan, so null alone proves nothing.
//  5. The spool record is removed once the block has a final outcome: a
//     jobmaster reply accepted, sidechain, submitted, rejected or invalid,
//     or a node that holds it after our own submission. Otherwise it stays
//     and is re-requested every Retry, across NATS outages and restarts
//     (New loads the spool and Run replays it in order of found time),
//     until MaxAge after it was queued; then the record moves to
//     SpoolDir/failed/ with an Error log. Records are never deleted before
//     a final outcome, and corrupt ones are moved to failed/ as well.
//
// Duplicate submissions are harmless: the jobmaster de-duplicates by hash,
// nodes answer "duplicate", and the sink itself keeps one entry per hash.
//
// Every final outcome (and every block given up on) is sent on Results and
// counted in pool_gateway_blocks_total{status,via}.
//
// # Concurrency
//
// Submit, Pending, Results and Register are safe for concurrent use. Run
// owns all per-block state and must not be called twice at once. It
// publishes the requests itself (so replayed blocks leave in order of found
// time) and receives the replies on its own inbox subscription; node
// submissions run in short-lived goroutines that report back to it, so one
// slow node never delays another block.
//
// # What it does not do
//
// It does not validate blocks (the session did, and the jobmaster rebuilds
// them from its own job), and it does not relay blocks to peers (the
// jobmaster and blockmaster do).
package blocksink
