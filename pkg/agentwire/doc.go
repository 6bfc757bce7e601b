// Package agentwire is the protocol between a farm's mineragent and a
// gateway: the upstream link that carries the work of thousands of miners
// over one connection. It defines the frames, the messages, the compressed
// stream (Conn) and the handshake helpers (Greet, Accept); the daemons own
// the policies (tokens, extranonce allocation, share validation, replay
// queues).
//
// It replaces ViaBTC's agent.* JSON methods on the public Stratum port,
// which had no credentials (S4), let agents choose their ids, closed the
// whole link for one unknown miner (P5), never told the agent whether shares
// were accepted, and made up job ids (P6). Here: a separate gateway port,
// a per-agent token, gateway-granted extranonce space, acknowledged and
// de-duplicated share batches, per-share results, gateway-issued jobs only.
//
// # Transport
//
// TCP to the gateway's agent port, optionally inside TLS (wrap the
// net.Conn in a *tls.Conn before NewConn; the token travels inside the
// stream, so use TLS on any network you do not trust). One connection per
// agent and gateway; an agent fails over by reconnecting elsewhere.
//
// # Layers
//
// Each direction is an independent byte stream:
//
//	preamble   "H" "A" | version u8 | codec u8          4 bytes, uncompressed
//	stream     frames, compressed with the codec (CodecZstd, CodecS2, CodecNone)
//
// The codec is the writer's choice (Options.Codec) and the reader follows
// the preamble. Inside the decompressed stream every frame is
//
//	magic "HA" (2) | version (1) | type (1) | length u32 LE (4) | body (length bytes)
//
// AppendFrame and SplitFrame handle this layer on byte slices. A body is at
// most MaxFrame (4 MiB; Options.MaxFrame lowers it for a reader), checked
// from the header before the body is read or decompressed, so a
// decompression bomb costs at most one frame. Jobs never carry the
// template's transactions: agents only need coinb1, coinb2, the merkle
// branch and the header fields, a few hundred bytes.
//
// Every WriteMessages call is one write unit: its frames, then a seal frame
// (type 0, body: CRC-32C of the unit's frames, headers included), then a
// compressor flush, so a 100 ms batch leaves at once and in one TCP write.
// Units are also sealed every 256 KiB or 1,024 messages. A reader decodes a
// unit completely and checks its seal before returning any of its
// messages: corruption anywhere below the frame layer (a flipped bit in a
// compressed block that still decompresses) is reported as ErrChecksum and
// never delivered as a wrong share. A unit may be at most the reader's
// frame limit plus 512 KiB and 4,096 messages.
//
// Types (number, direction, when):
//
//	0  seal          both      end of every write unit (stream layer)
//	1  Hello         agent     first message on a connection
//	2  Welcome       gateway   answer to an accepted Hello
//	3  Reject        both      last message before closing (reason code)
//	4  Ping          both      liveness and round-trip time; answered at once
//	5  Pong          both      answer to a Ping
//	6  Job           gateway   the current job after Welcome, then every new job
//	7  ShareBatch    agent     the shares of at most ~100 ms
//	8  Block         agent     a block candidate, at once
//	9  BatchAck      gateway   one per ShareBatch and per Block, in order
//	10 MinerLogin    agent     a miner authorized: binds a miner id to its account
//	11 MinerLogout   agent     a miner left
//
// Type.FromAgent and Type.FromGateway say who may send what; a misdirected
// message is a protocol error. Field layouts are in each message's
// AppendMarshal and, for ShareBatch, in shares.go; all integers are
// little-endian, varints are Go's uvarint/varint, strings and byte strings
// carry a uvarint length, and every field has a limit (MaxNameLen and the
// other Max constants) that encoders enforce as strictly as decoders.
//
// # Handshake
//
//  1. The agent connects and sends Hello: protocol version, agent id
//     ([A-Za-z0-9._-], up to 64), token, software version, its process
//     instance (random, new at every start), and for a reconnect the
//     previous session id and the last batch id it saw acknowledged.
//  2. The gateway answers within its handshake timeout. A stream or frame
//     of another version, anything but a Hello, or an undecodable Hello gets
//     a Reject (version or protocol); an unknown agent id or wrong token
//     (compared in constant time, not distinguished) gets Reject bad_token;
//     a full gateway Reject overloaded; no current job Reject unavailable.
//     The gateway closes after a Reject. An accepted agent gets Welcome: a
//     fresh session id, its extranonce space, the pool's version mask, the
//     gateway's clock and ResumedBatch (below). A newer session of the same
//     agent id replaces an older one, which gets Reject replaced.
//  3. The gateway sends the current job (Clean) right after Welcome, then
//     every new job as it comes: once per job for the whole farm.
//  4. The agent re-announces its miners and replays unacknowledged batches
//     (below), then runs normally.
//
// Greet and Accept implement steps 1 and 2 for either side.
//
// # Extranonce layout
//
// The coinbase is Coinb1 || extranonce1 || extranonce2 || Coinb2, with
// extranonce1 || extranonce2 the job's extranonce space (e.g. 4 + 8 = 12
// bytes). The gateway grants each session Welcome.Extranonce1Prefix, unique
// across the cluster while the session lives (e.g. a 4-byte value from the
// gateway's extranonce1 allocator, whose first byte is the gateway id), and
// decides the split of the rest: miners behind the agent see an
// extranonce1 of Welcome.Extranonce1Size bytes (prefix, then a per-miner
// suffix of SuffixSize bytes) and an extranonce2 of Extranonce2Size bytes.
// With 4 + 2 + 6: 65,536 concurrent miners, 2^48 extranonce2 values per
// miner and job, and one mining.notify (coinb1 unchanged) shared by every
// miner. The agent gives every live miner a distinct suffix, sends it in
// MinerLogin, and reuses a suffix only once a clean job has replaced the
// jobs its previous miner worked on (round robin over free suffixes does
// that in practice).
//
// # Miners and events
//
// Miner ids are the agent's: 1..2^32-1, never reused while the agent
// process runs, so a miner id in any batch, replayed or not, means one miner
// connection. MinerLogin (sent when a miner authorizes) binds the id to the
// user, worker, extranonce1 suffix, negotiated version mask (the miner's
// request AND Welcome.VersionMask), peer address and user agent; the
// gateway records a "connected" event, and MinerLogout a "disconnected" one,
// exactly as for a miner connected directly, so per-worker statistics in
// Redis do not depend on the path. Shares refer to the id only.
//
// A share of an id with no binding is rejected as unknown_miner; the link
// stays up (P5). A Block is submitted whatever its binding; it repeats user
// and worker for attribution.
//
// # Shares and batching
//
// The agent checks every share locally (vardiff is local, per miner),
// answers its miner at once, and queues the share with the difficulty it
// credited. Every 100 ms (or sooner when MaxBatchShares is reached) the
// queued shares leave as one ShareBatch, sorted by job and miner id (Sort),
// together with the logins and logouts of the same period, in one
// WriteMessages call. The batch also counts the shares the agent refused
// since the previous one, per miner and reason (RejectCount), so that
// per-worker reject statistics match a direct connection's. An agent with
// events or reject counts but no shares sends a ShareBatch without shares,
// so that they get confirmed (below). A share meeting the
// network target leaves immediately as a Block instead, and never also in a
// batch.
//
// The gateway validates every share again: job known, extranonce sizes,
// ntime within [MinTime, now + 2 h], version bits within the miner's mask,
// duplicate (version bits included in the key), and the hash against the
// credited difficulty, so an agent cannot claim more work than its hashes
// prove; then it credits the share as if the miner were connected
// directly, and submits blocks.
//
// ShareBatch encoding, compact and columnar so the compressor sees like
// with like: the batch id, its time, the extranonce2 size, the job runs (job id,
// ntime base, share count: the job id is sent once per run), then per share
// a flags byte, the miner id as a difference to the previous share's,
// extranonce2 as a small integer, the nonce, the version bits (2 bytes for
// the BIP320 bits), an ntime difference only when it differs from the run's
// base, and the difficulty only when it changes: as a power of two (1
// byte), a short decimal (mantissa and exponent, 2-3 bytes for vardiff's
// three significant digits; decoded exactly) or a float64; then the reject
// counts (miner id, reason code, count). The extranonce2
// and difficulty refer to the same miner's previous share: within the
// batch in the self-contained form (Marshal), and across the whole
// connection in the connection form that Encoder/Decoder (and so Conn) use.
// That per-miner state is per connection and direction; it is dropped by
// MinerLogout and limited to MaxMinerStates miners (beyond that, shares
// are encoded in full); batches are re-encoded, not resent as bytes, after
// a reconnect.
//
// # Acknowledgement, replay and de-duplication
//
//   - Batch ids come from one counter per agent process, starting at 1,
//     shared by ShareBatch and Block, strictly increasing in send order on
//     a session. A replayed batch keeps its id.
//   - The gateway handles a session's messages in order and answers every
//     ShareBatch and Block with one BatchAck, in order, with one result
//     per share (accepted or a reject code, encoded sparsely). Once a batch
//     is acknowledged the agent forgets it.
//   - A gateway acknowledges a batch only once its credit is durable: the
//     batch's statistics are in JetStream, under an id made of the agent
//     id, Hello.Instance (the agent process), the batch's minute
//     (ShareBatch.Time) and the batch id. That id is the same whichever
//     gateway credits the batch and whenever, so JetStream and the
//     metawriter drop a second crediting of the same batch: every share is
//     credited once, across reconnects, gateway restarts and failover.
//   - The gateway keeps per agent process the highest batch id it
//     processed. A batch at or below it is answered with
//     BatchAck{Duplicate: true} (once its credit is durable) and credits
//     nothing again.
//   - On reconnect the agent sends PrevSession and LastAcked. A gateway
//     that still knows the previous session (it keeps session records for
//     a while after the link drops) reports the highest batch id whose
//     credit is durable as Welcome.ResumedBatch; the agent drops those
//     batches from its queue and replays the rest, oldest first, before
//     any new batch. A gateway that does not know it (another gateway
//     after failover, or one that restarted) answers 0: the agent replays
//     every unacknowledged batch, the gateway validates them again (its
//     duplicate filter has not seen them) and the statistics ids make
//     sure nothing is credited twice.
//   - A MinerLogin or MinerLogout is confirmed by the acknowledgement of any
//     batch sent after it. After a reconnect, before replaying, the agent
//     re-announces with MinerLogin{Resumed} (no event) every miner that is
//     connected, referenced by a batch to replay, or has an unconfirmed
//     logout; sends unconfirmed logins again without Resumed; replays; then
//     sends the unconfirmed logouts, and a MinerLogout{Quiet} (no event) for
//     re-announced miners that are gone. Events are thus recorded at least
//     once, and at most a link failure's worth twice.
//   - The agent bounds its replay queue (in time or bytes) and counts what
//     it drops; jobs stay valid at the gateway for a grace period so
//     replayed shares still validate (stale otherwise).
//
// # Liveness
//
// The agent sends a Ping every 5 s; the gateway answers with a Pong at once
// (either side may ping, and Pong.Time gives the peer's clock). A side that
// receives nothing for 30 s closes the link (Reject idle_timeout). Use read
// and write deadlines on the net.Conn: a Conn whose read or write times out
// is broken (errors are sticky) and must be closed.
//
// # Errors and closing
//
// Nothing a peer sends can crash the reader: every length is checked
// against the bytes present and its limit, decoders use a sticky error, and
// the fuzz tests cover SplitFrame, every message type, stateful streams and
// arbitrary bytes into Conn. A wrong token, a garbled frame, a version
// mismatch or a broken rule gets a Reject with its code (when the peer can
// still read one) and a closed link. IsProtocolError separates such errors
// from transport failures. RejectCode strings are the close reasons for
// logs and metrics: protocol, version, bad_token, overloaded, replaced,
// shutdown, unavailable, idle_timeout.
//
// # Versioning
//
// Version (1) is in the preamble, in every frame header and in Hello. A
// reader refuses a stream of another version with a *VersionError that
// names both versions (matching ErrVersion). Frozen across all versions, so
// that a peer of any version can say why it hangs up: the preamble layout,
// the codec numbers, the 8-byte frame header, and the Reject frame (type 3,
// body: uvarint code, string message, then anything later versions add,
// which older readers skip). A reader that meets a stream of another
// version reads one more frame and, if it is a Reject, attaches it to the
// VersionError. Any change an older decoder would refuse (a field, a
// flag, a message type, a codec) bumps Version; golden vectors in testdata
// pin the current format.
//
// # Compression
//
// CodecZstd (the default) is one endless zstd frame at SpeedFastest with a
// 256 KiB window, flushed per write unit: later blocks reuse the history
// and Huffman tables of earlier ones. CodecS2 flushes independent blocks
// with no entropy coding. TestUpstreamBandwidth (10,000 miners, one share
// per 5 s each, 100 ms batches, 1 % reconnects per minute, pings every 5 s;
// 2,000 shares/s; measured over 60 s after a 60 s warm-up) gives, per share
// and for the whole upstream:
//
//	                      version rolling (16 bits)     no version rolling
//	uncompressed          9.7 B   155 kbit/s             7.7 B   122 kbit/s
//	s2                    9.0 B   143 kbit/s             7.0 B   111 kbit/s
//	zstd (chosen)         8.5 B   136 kbit/s             6.5 B   104 kbit/s
//
// zstd at SpeedDefault saves another 1.5 %, a 1 MiB window 0.1 %; the first
// minute of a session, before the per-miner state is warm, costs 9.6 B per
// share. The initial MinerLogin burst for 10,000 miners is 640 kB raw and
// 78 kB compressed. Downstream (acks and jobs) is 1.4 kbit/s with zstd.
//
// The 100 kbit/s target is below what a share can be sent in: a share that
// the gateway can re-validate carries a 32-bit nonce and, with version
// rolling, 16 bits of version that are uniformly random, i.e. 6 bytes, 96
// kbit/s at 2,000 shares/s, before the miner id (about 7 bits for 200
// shares out of 10,000 ids), the extranonce2 step and the batch framing.
// By estimate (nonce and version 48 bits, miner id 7, extranonce2 step 2,
// ntime and difficulty changes 1.5, framing 0.3) the simulated stream
// holds about 7.4 B of information per share (118 kbit/s); zstd gets
// within 15 % of that. The target is met without version rolling at one
// share per 5.3 s per miner (99 kbit/s), or with it at one share per about
// 7.1 s (101 kbit/s at 7 s); the vardiff target is the agent's choice. An
// agent may also forward only shares meeting a higher difficulty than its
// miners' and credit them at that difficulty (the gateway's check allows
// it), trading per-worker statistics granularity for bandwidth.
//
// # Concurrency and buffers
//
// Messages are plain structs, not safe for concurrent mutation; a decoded
// message never aliases its input. SplitFrame's body aliases its buffer.
// Encoder and Decoder are single-goroutine; Conn serialises writers and
// allows one reader beside them (see Conn).
package agentwire
