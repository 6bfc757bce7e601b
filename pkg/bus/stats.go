package bus

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// StatsBatch is one gateway's counters for one closed unix minute, or one
// part of them when a minute has more workers than fit one message. It is
// published on <prefix>.<coin>.stats through JetStream with ID() as the
// message id, so a resend is de-duplicated by the server, and the consumer
// records the id in Redis so a redelivery changes nothing.
type StatsBatch struct {
	// Gateway is the sending gateway's instance name (the <host> of the
	// per-host monitor keys).
	Gateway string
	// Boot identifies the gateway's process run: a minute flushed in part
	// at shutdown and finished after a restart gives two batches with
	// different ids, both counted.
	Boot int64
	// Minute is the unix time of the minute, a multiple of 60.
	Minute int64
	// Part and Parts number the messages of one minute (0-based, Parts ≥ 1).
	Part, Parts uint32
	// Workers are the per user/worker counts.
	Workers []WorkerStats
	// Monitor are per-gateway values for the minute (pow, share, reject,
	// block, connections, new_authorized, reject_<reason>, ...); only part 0
	// carries them.
	Monitor []MonitorStat
}

// WorkerStats is one user.worker's minute.
type WorkerStats struct {
	User, Worker string
	// Accepted is the accepted share count; DiffSum the sum of their
	// credited difficulty (× 2^32 = hashes); GoalSum the sum of
	// difficulty / network difficulty.
	Accepted uint64
	DiffSum  float64
	GoalSum  float64
	// Rejected is the rejected share count (all reasons).
	Rejected uint64
}

// MonitorStat is one per-gateway monitor value for the minute.
type MonitorStat struct {
	Key   string
	Value float64
}

// AgentStatsPrefix starts the Gateway field of a batch that credits one
// mineragent share batch (see AgentBatch).
const AgentStatsPrefix = "agent:"

// MaxAgentBatchAge bounds how old an agent batch may be when a gateway
// credits it: well inside JetStream's duplicate window (DedupWindow), so a
// batch credited by two gateways is stored once.
const MaxAgentBatchAge = time.Hour

// AgentBatch returns an empty batch to credit one share batch of a
// mineragent: Gateway is "agent:<agent id>", Boot the agent's process
// instance, Minute the batch's minute and Part the batch id. The id, and so
// JetStream's and the metawriter's de-duplication, then depends only on the
// agent, its process and the batch, not on the gateway that credits it: a
// batch replayed to another gateway after a failover is applied once.
func AgentBatch(agentID string, instance uint64, unixTime int64, batchID uint64) (*StatsBatch, error) {
	if batchID == 0 || batchID >= math.MaxUint32 {
		return nil, fmt.Errorf("bus: agent batch id %d outside 1..%d", batchID, uint32(math.MaxUint32-1))
	}
	return &StatsBatch{Gateway: AgentStatsPrefix + agentID, Boot: int64(instance), Minute: unixTime - unixTime%60,
		Part: uint32(batchID), Parts: uint32(batchID) + 1}, nil
}

// IsAgent reports whether the batch credits a mineragent share batch.
func (b *StatsBatch) IsAgent() bool { return strings.HasPrefix(b.Gateway, AgentStatsPrefix) }

// ID is the de-duplication id: <gateway>.<boot>.<minute>.<part>.
func (b *StatsBatch) ID() string {
	return fmt.Sprintf("%s.%d.%d.%d", b.Gateway, b.Boot, b.Minute, b.Part)
}

const (
	maxWorkers = 1 << 16
	maxMonitor = 1 << 10
)

// Marshal encodes the batch.
func (b *StatsBatch) Marshal() []byte {
	e := newEncoder(TypeStats, 64+len(b.Workers)*64+len(b.Monitor)*32)
	e.str(b.Gateway)
	e.i64(b.Boot)
	e.i64(b.Minute)
	e.u32(b.Part)
	e.u32(b.Parts)
	e.uvarint(uint64(len(b.Workers)))
	for i := range b.Workers {
		w := &b.Workers[i]
		e.str(w.User)
		e.str(w.Worker)
		e.uvarint(w.Accepted)
		e.f64(w.DiffSum)
		e.f64(w.GoalSum)
		e.uvarint(w.Rejected)
	}
	e.uvarint(uint64(len(b.Monitor)))
	for _, m := range b.Monitor {
		e.str(m.Key)
		e.f64(m.Value)
	}
	return e.b
}

// Unmarshal decodes a batch, replacing every field of b. Non-finite numbers
// are refused: they would poison Redis counters.
func (b *StatsBatch) Unmarshal(data []byte) error {
	d := newDecoder(data, TypeStats)
	var out StatsBatch
	out.Gateway = d.Str(0, maxString, "gateway")
	out.Boot = d.I64()
	out.Minute = d.I64()
	out.Part = d.U32()
	out.Parts = d.U32()
	if n := d.Length(maxWorkers, 0, "workers"); n > 0 && n <= len(data) {
		out.Workers = make([]WorkerStats, n)
		for i := range out.Workers {
			w := &out.Workers[i]
			w.User = d.Str(0, maxString, "user")
			w.Worker = d.Str(0, maxString, "worker")
			w.Accepted = d.Uvarint()
			w.DiffSum = d.F64()
			w.GoalSum = d.F64()
			w.Rejected = d.Uvarint()
			if !finite(w.DiffSum) || !finite(w.GoalSum) {
				d.Fail(fmt.Errorf("bus: stats for %s.%s are not finite", w.User, w.Worker))
			}
		}
	} else if n > len(data) {
		d.Fail(ErrShort)
	}
	if n := d.Length(maxMonitor, 0, "monitor"); n > 0 && n <= len(data) {
		out.Monitor = make([]MonitorStat, n)
		for i := range out.Monitor {
			out.Monitor[i].Key = d.Str(0, maxString, "monitor key")
			out.Monitor[i].Value = d.F64()
			if !finite(out.Monitor[i].Value) {
				d.Fail(fmt.Errorf("bus: monitor %s is not finite", out.Monitor[i].Key))
			}
		}
	} else if n > len(data) {
		d.Fail(ErrShort)
	}
	if err := d.Finish(); err != nil {
		return err
	}
	if out.Minute%60 != 0 || out.Parts == 0 || out.Part >= out.Parts {
		return fmt.Errorf("bus: stats batch minute %d part %d/%d is malformed", out.Minute, out.Part, out.Parts)
	}
	*b = out
	return nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// Event kinds.
const (
	EventConnected    = "connected"
	EventDisconnected = "disconnected"
	EventNewWorker    = "new_worker"
	EventBlock        = "block"
)

// Event is something that happened on a gateway: a miner connected or
// disconnected, a user.worker was seen for the first time this hour, a
// block was found. Published on <prefix>.<coin>.event through JetStream with
// ID() as the message id.
type Event struct {
	// Gateway is the sender; Boot identifies its process run and Seq
	// numbers its events within the run.
	Gateway string
	Boot    int64
	Seq     uint64
	// Time is the unix time of the event.
	Time int64
	// Kind is one of the Event* constants.
	Kind string
	// User, Worker and Peer (the miner's IP address) describe who.
	User, Worker, Peer string
	// Coin, Name and Hash describe a found block (Name is the coin name as
	// written in newblock, Hash the block hash in display order).
	Coin, Name, Hash string
}

// ID is the de-duplication id: <gateway>.<boot>.<seq>.
func (e *Event) ID() string { return fmt.Sprintf("%s.%d.%d", e.Gateway, e.Boot, e.Seq) }

// Marshal encodes the event.
func (e *Event) Marshal() []byte {
	en := newEncoder(TypeEvent, 96+len(e.User)+len(e.Worker)+len(e.Peer)+len(e.Hash))
	en.str(e.Gateway)
	en.i64(e.Boot)
	en.uvarint(e.Seq)
	en.i64(e.Time)
	en.str(e.Kind)
	en.str(e.User)
	en.str(e.Worker)
	en.str(e.Peer)
	en.str(e.Coin)
	en.str(e.Name)
	en.str(e.Hash)
	return en.b
}

// Unmarshal decodes an event, replacing every field of e.
func (e *Event) Unmarshal(data []byte) error {
	d := newDecoder(data, TypeEvent)
	var out Event
	out.Gateway = d.Str(0, maxString, "gateway")
	out.Boot = d.I64()
	out.Seq = d.Uvarint()
	out.Time = d.I64()
	out.Kind = d.Str(0, 64, "kind")
	out.User = d.Str(0, maxString, "user")
	out.Worker = d.Str(0, maxString, "worker")
	out.Peer = d.Str(0, maxString, "peer")
	out.Coin = d.Str(0, 64, "coin")
	out.Name = d.Str(0, 64, "name")
	out.Hash = d.Str(0, 128, "hash")
	if err := d.Finish(); err != nil {
		return err
	}
	*e = out
	return nil
}
