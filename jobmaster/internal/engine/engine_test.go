package engine

import (
	"context"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/stretchr/testify/require"

	"github.com/hashgate/hashgate/jobmaster/internal/jobs"
	"github.com/hashgate/hashgate/jobmaster/internal/nodes"
	"github.com/hashgate/hashgate/pkg/blockutil"
	"github.com/hashgate/hashgate/pkg/noderpc"
)

type recorder struct{ jobs []*jobs.Record }

func (r *recorder) Publish(rec *jobs.Record) error {
	r.jobs = append(r.jobs, rec)
	return nil
}

func newTestEngine(t *testing.T) (*Engine, *recorder) {
	params := &chaincfg.RegressionNetParams
	addr, err := blockutil.DecodeAddress("bcrt1ql7fk7lfuvazvrytsx4efz5pv75j23cfkmjfytk", params)
	require.NoError(t, err)
	rec := &recorder{}
	e := New(Options{
		Params: params,
		Pool:   nodes.NewPool(nil, nil),
		Builder: jobs.NewBuilder(jobs.Options{Params: params, Payouts: []blockutil.Payout{{Address: addr, Weight: 1}},
			Extranonce1Size: 4, Extranonce2Size: 8}),
		Store: jobs.NewStore(time.Minute, nil), Publisher: rec,
		RefreshInterval: time.Minute, EmptyJobs: true, EmptyTimeout: time.Minute,
	})
	return e, rec
}

func tmpl(prev chainhash.Hash, height, value int64) *noderpc.Template {
	return &noderpc.Template{Version: 0x20000000, PreviousBlockHash: prev.String(), Bits: "207fffff",
		Height: height, CurTime: 1700000000, MinTime: 1699999000,
		CoinbaseValue: blockutil.Subsidy(height, &chaincfg.RegressionNetParams) + value}
}

var node = &nodes.Node{Name: "n"}

// TestOlderReplyNeverReplacesNewer: template replies carry the sequence of
// their request; a reply that arrives after a newer one was applied is
// dropped, even for the same tip.
func TestOlderReplyNeverReplacesNewer(t *testing.T) {
	e, rec := newTestEngine(t)
	ctx := context.Background()
	tip := chainhash.DoubleHashH([]byte("tip"))
	newer := tmpl(tip, 10, 0)
	newer.CurTime++ // same work
	e.handle(ctx, templateEvent{seq: 2, tmpl: newer, node: node})
	require.Len(t, rec.jobs, 1)
	require.True(t, rec.jobs[0].Job.Clean)

	// An older reply for the same tip, different content: dropped.
	older := tmpl(tip, 10, 0)
	older.Version = 0x20000004
	e.handle(ctx, templateEvent{seq: 1, tmpl: older, node: node})
	require.Len(t, rec.jobs, 1, "older reply dropped")

	// An older reply for an older tip: dropped too.
	e.handle(ctx, templateEvent{seq: 1, tmpl: tmpl(chainhash.DoubleHashH([]byte("old")), 9, 0), node: node})
	require.Len(t, rec.jobs, 1)
	require.Equal(t, tip, e.Current().Job.PrevHash)

	// A newer reply with the same work is not republished; with new work
	// it is, without cleaning.
	same := tmpl(tip, 10, 0)
	e.handle(ctx, templateEvent{seq: 3, tmpl: same, node: node})
	require.Len(t, rec.jobs, 1, "same work is not republished")
	more := tmpl(tip, 10, 0)
	more.Version = 0x20000002
	e.handle(ctx, templateEvent{seq: 4, tmpl: more, node: node})
	require.Len(t, rec.jobs, 2)
	require.False(t, rec.jobs[1].Job.Clean, "a refresh does not clean work")
}

// TestTemplateBelowTipIgnored: a slow node's template for an older tip never
// replaces the current one.
func TestTemplateBelowTipIgnored(t *testing.T) {
	e, rec := newTestEngine(t)
	ctx := context.Background()
	tip := chainhash.DoubleHashH([]byte("tip11"))
	e.handle(ctx, templateEvent{seq: 1, tmpl: tmpl(tip, 11, 0), node: node})
	e.handle(ctx, templateEvent{seq: 2, tmpl: tmpl(chainhash.DoubleHashH([]byte("tip10")), 10, 0), node: node})
	require.Len(t, rec.jobs, 1)
	require.Equal(t, int64(11), e.Current().Job.Height)

	// A competing block at the same height (reorg) is followed.
	rival := chainhash.DoubleHashH([]byte("rival"))
	e.handle(ctx, templateEvent{seq: 3, tmpl: tmpl(rival, 11, 0), node: node})
	require.Len(t, rec.jobs, 2)
	require.Equal(t, rival, e.Current().Job.PrevHash)
	require.True(t, e.Current().Job.Clean)
}

// TestEmptyThenFull: a header for a new tip publishes an empty clean job; the
// template for the same tip follows without cleaning.
func TestEmptyThenFull(t *testing.T) {
	e, rec := newTestEngine(t)
	ctx := context.Background()
	old := chainhash.DoubleHashH([]byte("h10"))
	e.handle(ctx, templateEvent{seq: 1, tmpl: tmpl(old, 11, 0), node: node})
	newTip := chainhash.DoubleHashH([]byte("h11"))
	e.handle(ctx, headerEvent{hash: newTip, node: node, seen: time.Now(),
		info: &noderpc.BlockHeaderInfo{Height: 11, Bits: "207fffff", Time: 1700000500, PreviousBlockHash: old.String()}})
	require.Len(t, rec.jobs, 2)
	empty := rec.jobs[1].Job
	require.True(t, empty.Empty)
	require.True(t, empty.Clean)
	require.Equal(t, int64(12), empty.Height)
	require.Equal(t, uint32(1700000501), empty.MinTime)
	require.Equal(t, blockutil.Subsidy(12, &chaincfg.RegressionNetParams), empty.CoinbaseValue)

	e.handle(ctx, templateEvent{seq: 2, tmpl: tmpl(newTip, 12, 0), node: node})
	require.Len(t, rec.jobs, 3)
	full := rec.jobs[2].Job
	require.False(t, full.Empty)
	require.False(t, full.Clean, "the full job keeps the empty job's work")

	// A late header for the same tip changes nothing.
	e.handle(ctx, headerEvent{hash: newTip, node: node, seen: time.Now(),
		info: &noderpc.BlockHeaderInfo{Height: 11, Bits: "207fffff", Time: 1700000500}})
	require.Len(t, rec.jobs, 3)
}
