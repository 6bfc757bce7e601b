package agentlink

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"go.uber.org/zap"

	"github.com/hashgate/hashgate/pkg/agentwire"
	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/session"
	"github.com/hashgate/hashgate/pkg/stats"
	"github.com/hashgate/hashgate/pkg/work"
)

// outQueue bounds what a link may owe its agent before it counts as slow.
const outQueue = 4096

// link is one connected agent.
type link struct {
	srv     *Server
	nc      net.Conn
	conn    *agentwire.Conn
	agent   Agent
	remote  string
	session uint64
	led     *ledger
	en2Size int

	out      chan agentwire.Message
	acks     chan ackItem
	done     chan struct{}
	shutOnce sync.Once
	reason   atomic.Value // string

	batches, accepted atomic.Uint64
	lastBatch         atomic.Int64
	scratch           []byte
}

type ackItem struct {
	id      uint64
	dup     bool
	results []agentwire.ResultCode
}

// send queues a message for the agent; a full queue closes the link.
func (l *link) send(m agentwire.Message) {
	select {
	case l.out <- m:
	case <-l.done:
	default:
		l.shut(0, "slow_consumer")
	}
}

// shut closes the link once, after a Reject with code (0: none).
func (l *link) shut(code agentwire.RejectCode, msg string) {
	l.shutOnce.Do(func() {
		reason := msg
		if code != 0 {
			reason = code.String()
			_ = l.nc.SetWriteDeadline(time.Now().Add(time.Second))
			_ = l.conn.WriteMessages(&agentwire.Reject{Code: code, Message: msg})
		}
		l.reason.Store(reason)
		close(l.done)
		_ = l.nc.Close()
	})
}

// serveConn runs one agent connection: handshake, then messages in order.
func (s *Server) serveConn(nc net.Conn) {
	m := s.o.Metrics
	conn := agentwire.NewConn(nc, agentwire.Options{MaxFrame: 1 << 20})
	remote := nc.RemoteAddr().String()
	_ = nc.SetDeadline(time.Now().Add(s.o.HandshakeTimeout))
	var led *ledger
	h, w, err := agentwire.Accept(conn, func(h *agentwire.Hello) (*agentwire.Welcome, *agentwire.Reject) {
		w, r, l := s.decide(h)
		led = l
		return w, r
	})
	if err != nil {
		if led != nil {
			led.release(s.o.Now())
		}
		reason := "handshake"
		var rej *agentwire.Reject
		if errors.As(err, &rej) {
			reason = rej.Code.String()
		} else if agentwire.IsProtocolError(err) {
			reason = "protocol"
		}
		m.Closed.WithLabelValues(reason).Inc()
		agent := ""
		if h != nil {
			agent = h.AgentID
		}
		s.lg.Warn("agent refused", zap.String("remote_addr", remote), zap.String("agent", agent),
			zap.String("reason", reason), zap.Error(err))
		_ = nc.Close()
		return
	}
	_ = nc.SetDeadline(time.Time{})
	l := &link{srv: s, nc: nc, conn: conn, agent: s.agents[h.AgentID], remote: remote, session: w.SessionID,
		led: led, en2Size: int(w.Extranonce2Size), out: make(chan agentwire.Message, outQueue),
		acks: make(chan ackItem, outQueue), done: make(chan struct{})}
	s.mu.Lock()
	if old := s.links[h.AgentID]; old != nil {
		old.shut(agentwire.RejectReplaced, "a newer session of this agent took over")
	}
	s.links[h.AgentID] = l
	s.mu.Unlock()
	m.Connected.Inc()
	s.lg.Info("agent connected", zap.String("agent", h.AgentID), zap.String("remote_addr", remote),
		zap.String("software", h.Software), zap.Uint64("resumed_batch", w.ResumedBatch),
		zap.Uint64("prev_session", h.PrevSession))
	if cur := s.o.Jobs.Current(); cur != nil {
		l.send(jobMessage(cur, true))
	}

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); l.writer() }()
	go func() { defer wg.Done(); l.acker() }()
	l.reader()
	l.shut(0, "closed")
	wg.Wait()

	s.mu.Lock()
	if s.links[h.AgentID] == l {
		delete(s.links, h.AgentID)
	}
	s.mu.Unlock()
	led.release(s.o.Now())
	m.Connected.Dec()
	reason, _ := l.reason.Load().(string)
	m.Closed.WithLabelValues(reason).Inc()
	s.lg.Info("agent disconnected", zap.String("agent", h.AgentID), zap.String("remote_addr", remote),
		zap.String("reason", reason), zap.Uint64("batches", l.batches.Load()))
}

func (l *ledger) release(now time.Time) {
	l.mu.Lock()
	l.live--
	l.lastSeen = now
	l.mu.Unlock()
}

// writer sends what the link owes, in order.
func (l *link) writer() {
	batch := make([]agentwire.Message, 0, 64)
	for {
		select {
		case <-l.done:
			return
		case m := <-l.out:
			batch = append(batch[:0], m)
		drain:
			for len(batch) < cap(batch) {
				select {
				case m := <-l.out:
					batch = append(batch, m)
				default:
					break drain
				}
			}
			_ = l.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if err := l.conn.WriteMessages(batch...); err != nil {
				l.shut(0, "write_error")
				return
			}
		}
	}
}

// acker sends each batch's acknowledgement once its credit is durable.
func (l *link) acker() {
	for {
		select {
		case <-l.done:
			return
		case a := <-l.acks:
			if !l.led.awaitPublished(a.id, l.done) {
				return
			}
			l.send(&agentwire.BatchAck{BatchID: a.id, Duplicate: a.dup, Results: a.results})
		}
	}
}

// reader handles the agent's messages in order.
func (l *link) reader() {
	s := l.srv
	for {
		_ = l.nc.SetReadDeadline(time.Now().Add(s.o.IdleTimeout))
		msg, err := l.conn.ReadMessage()
		if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				l.shut(agentwire.RejectIdle, "nothing received for "+s.o.IdleTimeout.String())
			case agentwire.IsProtocolError(err):
				s.lg.Warn("agent protocol error", zap.String("agent", l.agent.ID), zap.Error(err))
				l.shut(agentwire.RejectProtocol, err.Error())
			case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, agentwire.ErrClosed):
				l.shut(0, "client_closed")
			default:
				l.shut(0, "read_error")
			}
			return
		}
		now := s.o.Now()
		switch m := msg.(type) {
		case *agentwire.Ping:
			l.send(&agentwire.Pong{Echo: m.Time, Time: now.UnixNano()})
		case *agentwire.Pong:
		case *agentwire.MinerLogin:
			l.login(now, m)
		case *agentwire.MinerLogout:
			l.logout(now, m)
		case *agentwire.ShareBatch:
			l.batch(now, m.BatchID, m.Time, m.Shares, m.Rejects, nil)
		case *agentwire.Block:
			l.batch(now, m.BatchID, m.Time, []agentwire.Share{m.Share}, nil, m)
		case *agentwire.Reject:
			s.lg.Info("agent closed the link", zap.String("agent", l.agent.ID), zap.String("code", m.Code.String()),
				zap.String("message", m.Message))
			l.shut(0, "agent_"+m.Code.String())
			return
		default:
			l.shut(agentwire.RejectProtocol, "an agent may not send "+msg.Type().String())
			return
		}
	}
}

func (l *link) login(now time.Time, m *agentwire.MinerLogin) {
	s := l.srv
	b := &binding{mask: m.VersionMask & s.o.PoolMask(), peer: ipOf(m.PeerIP)}
	account := m.User
	if m.Worker != "" {
		account += "." + m.Worker
	}
	user, worker, ok := session.ParseAccount(account)
	b.user, b.worker = user, worker
	b.valid = ok && len(m.Extranonce1Suffix) == s.o.SuffixSize
	if b.valid {
		b.en1 = append(append(make([]byte, 0, len(l.agent.Prefix)+s.o.SuffixSize), l.agent.Prefix...),
			m.Extranonce1Suffix...)
	}
	l.led.mu.Lock()
	l.led.miners[m.MinerID] = b
	l.led.mu.Unlock()
	if b.valid && !m.Resumed && s.o.Events != nil {
		s.o.Events.Authorized(now, b.user, b.worker, b.peer)
	}
}

func (l *link) logout(now time.Time, m *agentwire.MinerLogout) {
	s := l.srv
	l.led.mu.Lock()
	b := l.led.miners[m.MinerID]
	delete(l.led.miners, m.MinerID)
	l.led.mu.Unlock()
	if b != nil && b.valid && !m.Quiet && s.o.Events != nil {
		s.o.Events.Disconnected(now, b.user, b.worker, b.peer)
	}
}

// batch validates and credits one ShareBatch (or Block, blk set).
func (l *link) batch(now time.Time, id uint64, unix int64, shares []agentwire.Share,
	rejects []agentwire.RejectCount, blk *agentwire.Block) {
	s, m := l.srv, l.srv.o.Metrics
	l.batches.Add(1)
	l.lastBatch.Store(now.UnixNano())
	led := l.led
	led.mu.Lock()
	if id <= led.validated {
		led.mu.Unlock()
		m.Batches.WithLabelValues("duplicate").Inc()
		l.queueAck(ackItem{id: id, dup: true})
		return
	}
	led.validated = id
	bindings := make([]*binding, len(shares))
	for i := range shares {
		bindings[i] = led.miners[shares[i].MinerID]
	}
	rejBind := make([]*binding, len(rejects))
	for i := range rejects {
		rejBind[i] = led.miners[rejects[i].MinerID]
	}
	led.mu.Unlock()
	m.Batches.WithLabelValues("new").Inc()

	if unix == 0 || unix > now.Add(5*time.Minute).Unix() {
		unix = now.Unix()
	}
	tooOld := unix < now.Add(-bus.MaxAgentBatchAge).Unix()
	results := make([]agentwire.ResultCode, len(shares))
	type key struct{ user, worker string }
	sums := map[key]*bus.WorkerStats{}
	var order []key
	monitor := map[string]float64{}
	credit := func(b *binding, f func(w *bus.WorkerStats)) {
		k := key{b.user, b.worker}
		w := sums[k]
		if w == nil {
			w = &bus.WorkerStats{User: b.user, Worker: b.worker}
			sums[k] = w
			order = append(order, k)
		}
		f(w)
	}
	reject := func(b *binding, r stats.Reason, n uint64) {
		monitor["reject"] += float64(n)
		monitor["reject_"+r.String()] += float64(n)
		if b != nil && b.valid {
			credit(b, func(w *bus.WorkerStats) { w.Rejected += n })
		}
	}
	for i := range shares {
		sh := &shares[i]
		if tooOld {
			results[i] = agentwire.ResultStale
			continue
		}
		code, c := s.checkShare(now, bindings[i], sh, l.en2Size, &l.scratch)
		job := c.Job
		results[i] = code
		m.Shares.WithLabelValues(code.String()).Inc()
		if code != agentwire.ResultAccepted {
			if r, ok := reasonOf(code); ok {
				reject(bindings[i], r, 1)
			}
			continue
		}
		b := bindings[i]
		l.accepted.Add(1)
		credit(b, func(w *bus.WorkerStats) {
			w.Accepted++
			w.DiffSum += sh.Difficulty
			w.GoalSum += sh.Difficulty / job.NetDiff
		})
		monitor["share"]++
		monitor["pow"] += sh.Difficulty
		monitor["goal"] += sh.Difficulty / job.NetDiff
		if c.Block {
			monitor["block"]++
			l.foundBlock(now, b, blk, job, sh, c.Version, c.Hash)
		}
	}
	if tooOld {
		s.lg.Warn("agent batch older than the replay limit: not credited", zap.String("agent", l.agent.ID),
			zap.Uint64("batch", id), zap.Int64("time", unix))
	} else {
		for i, r := range rejects {
			if int(r.Reason) < int(stats.NumReasons) {
				reject(rejBind[i], stats.Reason(r.Reason), uint64(r.Count))
			} else {
				monitor["reject"] += float64(r.Count)
				if b := rejBind[i]; b != nil && b.valid {
					credit(b, func(w *bus.WorkerStats) { w.Rejected += uint64(r.Count) })
				}
			}
		}
	}

	var sb *bus.StatsBatch
	if len(order) > 0 || len(monitor) > 0 {
		var err error
		sb, err = bus.AgentBatch(l.agent.ID, l.led.key.instance, unix, id)
		if err != nil {
			s.lg.Warn("agent batch not credited", zap.String("agent", l.agent.ID), zap.Error(err))
			sb = nil
		} else {
			for _, k := range order {
				sb.Workers = append(sb.Workers, *sums[k])
			}
			for k, v := range monitor {
				sb.Monitor = append(sb.Monitor, bus.MonitorStat{Key: k, Value: v})
			}
		}
	}
	select {
	case led.queue <- creditJob{id: id, batch: sb}:
	case <-l.done:
		// The link is gone; the credit must still be made (the ledger
		// says validated): wait for room, bounded by shutdown.
		select {
		case led.queue <- creditJob{id: id, batch: sb}:
		case <-s.ctx.Done():
		}
	}
	l.queueAck(ackItem{id: id, results: results})
}

func (l *link) queueAck(a ackItem) {
	select {
	case l.acks <- a:
	case <-l.done:
	default:
		l.shut(0, "slow_consumer")
	}
}

// foundBlock hands a block candidate to the gateway's block sink.
func (l *link) foundBlock(now time.Time, b *binding, blk *agentwire.Block, job *work.Job, sh *agentwire.Share,
	version int32, hash chainhash.Hash) {
	s := l.srv
	user, worker := b.user, b.worker
	if blk != nil && user == "" {
		user, worker = blk.User, blk.Worker
	}
	// The same coinbase bytes in the job's own extranonce layout (the
	// jobmaster rebuilds the block from these fields).
	full := append(append([]byte(nil), b.en1...), sh.Extranonce2...)
	en1, en2 := full[:job.Extranonce1Size:job.Extranonce1Size], full[job.Extranonce1Size:]
	raw, err := job.Block(en1, en2, sh.NTime, sh.Nonce, version)
	if err != nil {
		s.lg.Error("assemble agent block", zap.String("job_id", sh.JobID), zap.Error(err))
	}
	fb := &bus.FoundBlock{JobID: sh.JobID, Extranonce1: en1, Extranonce2: en2, NTime: sh.NTime, Nonce: sh.Nonce,
		Version: version, BlockHash: hash, Source: s.o.Source + "/agent:" + l.agent.ID, User: user, Worker: worker,
		FoundUnixNano: now.UnixNano()}
	s.lg.Info("block candidate found behind an agent", zap.String("block_hash", hash.String()),
		zap.String("agent", l.agent.ID), zap.String("job_id", sh.JobID), zap.String("worker", user+"."+worker))
	s.o.Metrics.Blocks.Inc()
	s.o.Blocks.Submit(fb, raw)
	if s.o.Events != nil {
		s.o.Events.Block(now, hash.String(), user, worker)
	}
}
