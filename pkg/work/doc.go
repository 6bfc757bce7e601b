// Package work holds the view of jobs and the share arithmetic shared by
// the Stratum servers (the gateway and the mineragent).
//
// A Job is the jobmaster's bus.Job plus what validation needs precomputed
// (network target, the split coinbase, the pre-encoded mining.notify lines).
// Jobs are immutable once added to a Table.
//
// Table keeps the jobs of the current height and, for a grace period, those
// of the previous height (still checked for blocks). Lookups are lock-free:
// the table publishes an immutable snapshot through an atomic pointer and
// copies it only when a job arrives (a few times a minute).
//
// Dedup remembers the hashes of accepted shares per height, sharded by hash
// with a mutex per shard; a new height retires the old set in O(1).
//
// ShareHash computes a share's block hash with no allocation, reusing a
// caller-owned scratch buffer for the coinbase.
package work
