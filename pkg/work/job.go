package work

import (
	"fmt"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/hashgate/hashgate/pkg/blockutil"
	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/stratum"
)

// Job is one job as the gateway uses it. Immutable after NewJob (the Notify
// fields are set once by the owner before the job is published).
type Job struct {
	*bus.Job
	// Target is the network target; NetDiff its difficulty.
	Target  blockutil.Target
	NetDiff float64
	// Received is when the gateway got the job.
	Received time.Time
	// NotifyClean and NotifyKeep are the finished mining.notify lines with
	// clean_jobs true and false, shared by every session.
	NotifyClean, NotifyKeep []byte

	coinbase blockutil.Coinbase
}

// NewJob checks a job from the bus and prepares it.
func NewJob(b *bus.Job, now time.Time) (*Job, error) {
	switch {
	case b.ID == "" || len(b.ID) > 64:
		return nil, fmt.Errorf("job id %q", b.ID)
	case b.Extranonce2Size < 2 || int(b.Extranonce1Size)+int(b.Extranonce2Size) > blockutil.MaxExtranonceLen:
		return nil, fmt.Errorf("job %s: extranonce sizes %d+%d", b.ID, b.Extranonce1Size, b.Extranonce2Size)
	case len(b.Coinb1) == 0 || len(b.Coinb2) == 0:
		return nil, fmt.Errorf("job %s: empty coinbase parts", b.ID)
	case len(b.MerkleBranch) > 24:
		return nil, fmt.Errorf("job %s: merkle branch of %d levels", b.ID, len(b.MerkleBranch))
	}
	t := blockutil.TargetFromBits(b.Bits)
	if t == (blockutil.Target{}) {
		return nil, fmt.Errorf("job %s: bits %08x", b.ID, b.Bits)
	}
	return &Job{
		Job: b, Target: t, NetDiff: t.Difficulty(), Received: now,
		coinbase: blockutil.Coinbase{Coinb1: b.Coinb1, Coinb2: b.Coinb2, Extranonce1Size: int(b.Extranonce1Size),
			Extranonce2Size: int(b.Extranonce2Size), HasWitness: b.HasWitness},
	}, nil
}

// ShareHash returns the block hash of a share on this job. scratch is a
// reusable buffer (owned by the caller's session) for the coinbase; the
// possibly grown buffer is returned. It does not allocate once scratch is
// large enough.
func (j *Job) ShareHash(en1, en2 []byte, ntime, nonce uint32, version int32, scratch []byte) (chainhash.Hash, []byte) {
	cb := append(scratch[:0], j.Coinb1...)
	cb = append(cb, en1...)
	cb = append(cb, en2...)
	cb = append(cb, j.Coinb2...)
	cb = blockutil.GrowForPadding(cb) // once: the caller keeps the buffer
	hs := blockutil.GetHasher()
	cbid := hs.DoubleHash(cb, len(cb))
	root := hs.MerkleRootFromBranch(cbid, j.MerkleBranch)
	h := blockutil.MakeHeader(version, &j.PrevHash, &root, ntime, j.Bits, nonce)
	hash := hs.HeaderHash(&h)
	blockutil.PutHasher(hs)
	return hash, cb
}

// Block assembles the full block for a share that met the network target.
// It returns nil when the job came without its transactions (too large for
// the bus); the jobmaster still has them.
func (j *Job) Block(en1, en2 []byte, ntime, nonce uint32, version int32) ([]byte, error) {
	if len(j.Txs) == 0 && len(j.MerkleBranch) > 0 {
		return nil, nil
	}
	tx, err := j.coinbase.MsgTx(en1, en2)
	if err != nil {
		return nil, err
	}
	root := blockutil.MerkleRootFromBranch(tx.TxHash(), j.MerkleBranch)
	h := blockutil.MakeHeader(version, &j.PrevHash, &root, ntime, j.Bits, nonce)
	return blockutil.AssembleBlock(&h, tx, j.Txs)
}

// Prepare turns a bus job into a Job with the mining.notify lines every
// session shares (clean and not clean).
func Prepare(b *bus.Job, now time.Time) (*Job, error) {
	j, err := NewJob(b, now)
	if err != nil {
		return nil, err
	}
	n := stratum.Notify{JobID: b.ID, PrevHash: b.PrevHash, Coinb1: b.Coinb1, Coinb2: b.Coinb2,
		Version: b.Version, Bits: b.Bits, NTime: b.CurTime, Clean: true}
	for _, h := range b.MerkleBranch {
		n.MerkleBranch = append(n.MerkleBranch, h)
	}
	j.NotifyClean = stratum.AppendNotify(make([]byte, 0, stratum.NotifyLen(&n)), &n)
	n.Clean = false
	j.NotifyKeep = stratum.AppendNotify(make([]byte, 0, stratum.NotifyLen(&n)), &n)
	return j, nil
}
