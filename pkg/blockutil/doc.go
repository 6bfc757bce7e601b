// Package blockutil is hashgate's Bitcoin arithmetic: everything needed to turn
// a block template into Stratum work and a solved share back into a block.
//
// It covers
//   - network parameters by name (NetParams);
//   - compact bits, 256-bit targets and (fractional) difficulty, with an
//     allocation-free Target type for the share hot path;
//   - block subsidy by height (halving at exact multiples of the interval);
//   - payout address decoding with checksums (P2PKH, P2SH, P2WPKH, P2WSH, P2TR)
//     checked against the configured network;
//   - the coinbase transaction split into coinb1/coinb2 around the extranonces,
//     with a minimal BIP34 height push and a scriptSig that never exceeds 100
//     bytes (the pool tag is truncated, never the extranonces);
//   - the BIP141 witness commitment computed from the template's own
//     transactions, and the coinbase witness reserved value;
//   - Stratum merkle branches, 80-byte headers and full block serialisation.
//
// What it does not do: talk to nodes, pick templates or keep job state; those
// belong to the jobmaster. Nothing here logs.
//
// Concurrency: all functions are pure; values returned are owned by the
// caller. Coinbase and Target values are immutable after construction and safe
// for concurrent use.
package blockutil
