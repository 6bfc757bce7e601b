package work

import (
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/hashgate/hashgate/pkg/blockutil"
	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/stats"
)

// TestCheck walks one share through every rejection of work.Check, in
// order, and the outcome of an accepted one.
func TestCheck(t *testing.T) {
	now := time.Unix(1700000000, 0)
	tbl := NewTable(30*time.Second, func() time.Time { return now })
	j, err := NewJob(&bus.Job{ID: "j1", Height: 7, Bits: 0x207fffff, Version: 0x20000004, CurTime: 1700000000,
		MinTime: 1699999000, Coinb1: make([]byte, 45), Coinb2: make([]byte, 40), Extranonce1Size: 4,
		Extranonce2Size: 8, MerkleBranch: []chainhash.Hash{{1}}}, now)
	if err != nil {
		t.Fatal(err)
	}
	tbl.Add(j)
	d := NewDedup()
	var scratch []byte
	base := Submission{JobID: "j1", Extranonce1: []byte{1, 2, 3, 4}, Extranonce2: make([]byte, 8),
		NTime: 1700000000, Nonce: 42, Mask: 0x1fffe000}

	reject := func(name string, s Submission, want stats.Reason) {
		t.Helper()
		if _, r, ok := tbl.Check(d, &s, now, &scratch); ok || r != want {
			t.Fatalf("%s: got ok=%v reason %s, want %s", name, ok, r, want)
		}
	}
	s := base
	s.JobID = "nope"
	reject("unknown job", s, stats.UnknownJob)
	s = base
	s.NTime = j.MinTime - 1
	reject("ntime before mintime", s, stats.BadNTime)
	s.NTime = uint32(now.Add(MaxFutureTime).Unix()) + 1
	reject("ntime too far ahead", s, stats.BadNTime)
	s = base
	s.Rolled, s.VersionBits = true, 0x00000002
	reject("version bits outside the mask", s, stats.BadVersion)

	// Not rolled: the job's version, bit 2 included.
	c, _, ok := tbl.Check(d, &base, now, &scratch)
	if !ok || c.Job != j || c.Stale || c.Version != 0x20000004 {
		t.Fatalf("accepted share: ok=%v %+v", ok, c)
	}
	want, _ := j.ShareHash(base.Extranonce1, base.Extranonce2, base.NTime, base.Nonce, c.Version, nil)
	if c.Hash != want || c.Diff != blockutil.HashDifficulty(&want) || c.Block != blockutil.HashMeets(&want, &j.Target) {
		t.Fatalf("hash, difficulty or block flag wrong: %+v", c)
	}
	reject("the same share again", base, stats.Duplicate)

	// Rolled bits replace the masked bits of the job's version only.
	s = base
	s.Rolled, s.VersionBits = true, 0x00006000
	c, _, ok = tbl.Check(d, &s, now, &scratch)
	if !ok || c.Version != 0x20006004 {
		t.Fatalf("rolled share: ok=%v version %08x", ok, c.Version)
	}
	reject("rolled share again", s, stats.Duplicate)
}
