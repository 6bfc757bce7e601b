package session

import (
	"time"

	"go.uber.org/zap"

	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/stats"
	"github.com/hashgate/hashgate/pkg/stratum"
	"github.com/hashgate/hashgate/pkg/work"
)

// submit validates a share in this order, each failure a distinct counted
// reason: subscribed → authorized → params shape → job known → ntime →
// version bits → duplicate → share target → network target.
func (s *Session) submit(now time.Time) {
	sub := &s.sc.Req.Submit
	if !s.subscribed {
		s.rejectShare(now, nil, stats.NotSubscribed, stratum.ErrNotSubscribed)
		return
	}
	w := s.workerFor(sub.WorkerName())
	if w == nil {
		s.rejectShare(now, nil, stats.Unauthorized, stratum.ErrUnauthorized)
		return
	}
	cur := s.lastJob()
	if cur == nil || int(sub.Extranonce2Len) != int(cur.Extranonce2Size) {
		s.rejectShare(now, w, stats.BadExtranonce2, stratum.ErrBadExtranonce2)
		return
	}
	c, reason, ok := s.env.Jobs.Check(s.env.Dedup, &work.Submission{JobID: string(sub.Job()), Extranonce1: s.extranonce1(),
		Extranonce2: sub.EN2(), NTime: sub.NTime, Nonce: sub.Nonce, Rolled: sub.HasVersionBits,
		VersionBits: sub.VersionBits, Mask: s.mask}, now, &s.sc.Coinbase)
	if !ok {
		s.rejectShare(now, w, reason, checkErrors[reason])
		return
	}
	job, stale, version, hash, isBlock := c.Job, c.Stale, c.Version, c.Hash, c.Block
	credit, met := s.creditFor(job, c.Diff)
	if !met && !isBlock {
		s.rejectShare(now, w, stats.LowDifficulty, stratum.ErrLowDifficulty)
		return
	}
	if isBlock {
		if !met {
			credit = s.lastDiff()
		}
		s.foundBlock(now, w, job, stale, version)
	} else if stale {
		s.rejectShare(now, w, stats.Stale, stratum.ErrJobNotFound)
		return
	}
	if s.env.Upstream != nil {
		up := &s.sc.Up
		*up = AcceptedShare{Job: job, Extranonce2: sub.EN2(), NTime: sub.NTime, Nonce: sub.Nonce,
			Version: version, VersionBits: uint32(version) & s.mask, Difficulty: credit, Block: isBlock, Hash: hash}
		s.env.Upstream.Share(s, w.upID, up)
		*up = AcceptedShare{}
	}

	s.reply(stratum.AppendResultTrue)
	if w.stats != nil {
		w.stats.Accept(now, credit, job.NetDiff, isBlock)
	}
	s.env.Counter.Share("accepted")
	if _, changed := s.vd.OnShare(now, credit); changed {
		if m := s.minDiff(); m > 0 && s.vd.Difficulty() < m {
			s.vd.Suggest(m, now)
		}
		s.resendIfChanged()
	}
}

// checkErrors are the replies to work.Check's rejections.
var checkErrors = [stats.NumReasons]*stratum.Error{
	stats.UnknownJob: stratum.ErrJobNotFound,
	stats.BadNTime:   stratum.ErrBadNTime,
	stats.BadVersion: stratum.ErrBadVersionBits,
	stats.Duplicate:  stratum.ErrDuplicate,
}

// workerFor finds the authorized worker a submit names.
func (s *Session) workerFor(name []byte) *worker {
	for i := range s.workers {
		if w := &s.workers[i]; w.name() == string(name) {
			return w
		}
	}
	return nil
}

// creditFor returns the highest difficulty this session was given work on
// job at that the share meets: a difficulty change never rejects work issued
// before it.
func (s *Session) creditFor(job *work.Job, shareDiff float64) (float64, bool) {
	best, met := 0.0, false
	for i := range s.ring {
		e := &s.ring[i]
		if e.job == job && shareDiff >= e.diff && e.diff > best {
			best, met = e.diff, true
		}
	}
	return best, met
}

func (s *Session) rejectShare(now time.Time, w *worker, reason stats.Reason, e *stratum.Error) {
	if id := &s.sc.Req.ID; !id.IsNull() {
		s.sc.Out = stratum.AppendError(s.sc.Out, *id, e)
	}
	if w == nil && len(s.workers) > 0 {
		w = &s.workers[0]
	}
	if w != nil {
		if w.stats != nil {
			w.stats.Reject(now, reason)
		}
		if rc, ok := s.env.Upstream.(RejectCounter); ok {
			rc.Reject(s, w.upID, reason)
		}
	}
	s.env.Counter.Share(reason.String())
	if ce := s.env.Log.Check(zap.DebugLevel, "share rejected"); ce != nil {
		ce.Write(zap.Uint64("conn", s.ID), zap.String("remote_addr", s.Remote), zap.String("reason", reason.String()))
	}
}

// foundBlock hands a block candidate to the sink; it never blocks.
func (s *Session) foundBlock(now time.Time, w *worker, job *work.Job, stale bool, version int32) {
	sub := &s.sc.Req.Submit
	en1 := append([]byte(nil), s.extranonce1()...)
	en2 := append([]byte(nil), sub.EN2()...)
	raw, err := job.Block(en1, en2, sub.NTime, sub.Nonce, version)
	if err != nil {
		s.env.Log.Error("assemble found block", zap.String("job_id", job.ID), zap.Error(err))
	}
	hdrHash, _ := job.ShareHash(en1, en2, sub.NTime, sub.Nonce, version, nil)
	fb := &bus.FoundBlock{JobID: job.ID, Extranonce1: en1, Extranonce2: en2, NTime: sub.NTime, Nonce: sub.Nonce,
		Version: version, BlockHash: hdrHash, Source: s.env.Source, User: w.user(), Worker: w.wname(),
		FoundUnixNano: now.UnixNano()}
	s.env.Log.Info("block candidate found", zap.String("block_hash", hdrHash.String()), zap.Int64("height", job.Height),
		zap.String("job_id", job.ID), zap.Bool("stale_tip", stale), zap.String("worker", w.id()),
		zap.String("remote_addr", s.Remote))
	s.env.Counter.Block()
	s.env.Blocks.Submit(fb, raw)
	if s.env.Events != nil {
		s.env.Events.Block(now, hdrHash.String(), w.user(), w.wname())
	}
}
