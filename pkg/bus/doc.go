// Package bus defines hashgate's internal messages on NATS and their binary
// codec, plus the subject names.
//
// Subjects are per coin: <prefix>.<coin>.<topic> (see Subject). Topics:
//
//	job          jobmaster → gateways; core NATS, latest wins
//	job.current  request/reply: a (re)connecting gateway asks for the current job
//	block        gateway → jobmaster; request/reply, the reply is a BlockResult
//	block.result jobmaster → anyone; the final outcome of every found block
//	tip          bitpeer and other watchers → jobmaster; a PoW-checked header
//
// Encoding: every message starts with the 4-byte preamble
// 'h' 'g' <codec version> <message type>, followed by the fields in a fixed
// order. Integers are little-endian fixed width, byte strings and lists are
// prefixed by a uvarint length. Decoders check every length against the bytes
// left and against per-field limits, never panic on input, and refuse
// unknown versions with ErrVersion, so a gateway from a newer release fails
// loudly rather than misreading a job. NATS frames each message, so there is
// no stream framing here; a message is one NATS payload.
//
// Messages are plain structs: not safe for concurrent mutation; a decoded
// message does not alias the input buffer.
package bus
