// Package jobs turns block templates and new tips into Stratum jobs and keeps
// the jobs needed to rebuild a found block.
//
// A Builder is pure: it decodes and checks a template (every transaction is
// decoded and its ids recomputed; the witness commitment is computed by us and
// compared with the node's when the node gives one), builds the split
// coinbase and merkle branch, and returns a Record holding both the bus.Job to
// publish and what block assembly needs. Empty jobs on a new tip use the new
// height's own subsidy and bits.
//
// A Store keeps records by job id. Jobs of the current height live until the
// height changes; jobs of older heights stay for a grace period so a block
// found on the previous tip moments after a new block arrived can still be
// submitted.
//
// Concurrency: Builder and IDGen are safe for concurrent use; Store is safe
// for concurrent use (RWMutex; lookups from block submission, writes from the
// job engine).
package jobs
