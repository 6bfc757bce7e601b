package work

import (
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/hashgate/hashgate/pkg/blockutil"
	"github.com/hashgate/hashgate/pkg/stats"
)

// MaxFutureTime bounds a share's ntime ahead of our clock.
const MaxFutureTime = blockutil.MaxFutureBlockTime

// Submission is one share as a miner sent it (or an agent on its behalf).
type Submission struct {
	JobID       string
	Extranonce1 []byte
	Extranonce2 []byte
	NTime       uint32
	Nonce       uint32
	// Rolled says the share carries version bits (VersionBits); without
	// them the header has the job's version unchanged. Mask is the bits the
	// miner may roll (0: none).
	Rolled      bool
	VersionBits uint32
	Mask        uint32
}

// Checked is a share that passed Check.
type Checked struct {
	Job *Job
	// Stale: the job is of the previous height, kept for a grace period in
	// which only block candidates count.
	Stale   bool
	Hash    chainhash.Hash
	Version int32
	// Diff is the hash's difficulty; Block says it meets the network
	// target.
	Diff  float64
	Block bool
}

// Check runs what every share goes through, gateway session and agent
// batch alike, in the pool's order: the job is known (UnknownJob), ntime
// is within [MinTime, now+MaxFutureTime] (BadNTime), the version bits are
// inside the mask (BadVersion), then the share is hashed and must not have
// been seen before (Duplicate: the hash covers extranonce1, extranonce2,
// ntime, nonce and version). What remains is the caller's: the extranonce2
// size it announced, the difficulty the share is credited with (a
// session's issued difficulties, an agent's claim) and that a share of a
// Stale job only counts as a block. scratch is the caller's coinbase
// buffer; nothing allocates once it has grown.
func (t *Table) Check(d Deduper, s *Submission, now time.Time, scratch *[]byte) (c Checked, reject stats.Reason, ok bool) {
	job, stale, found := t.Get(s.JobID)
	if !found {
		return c, stats.UnknownJob, false
	}
	c.Job, c.Stale = job, stale
	if s.NTime < job.MinTime || int64(s.NTime) > now.Add(MaxFutureTime).Unix() {
		return c, stats.BadNTime, false
	}
	c.Version = job.Version
	if s.Rolled {
		if s.VersionBits&^s.Mask != 0 {
			return c, stats.BadVersion, false
		}
		c.Version = int32((uint32(job.Version) &^ s.Mask) | (s.VersionBits & s.Mask))
	}
	c.Hash, *scratch = job.ShareHash(s.Extranonce1, s.Extranonce2, s.NTime, s.Nonce, c.Version, *scratch)
	if d.Seen(job.Height, c.Hash) {
		return c, stats.Duplicate, false
	}
	c.Diff = blockutil.HashDifficulty(&c.Hash)
	c.Block = blockutil.HashMeets(&c.Hash, &job.Target)
	return c, 0, true
}
