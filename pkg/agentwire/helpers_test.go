package agentwire

import (
	"flag"
	"math"
	"net/netip"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files")

func en2(b ...byte) []byte { return b }

func sampleJob() *Job {
	return &Job{
		ID: "18c2f3a4b5c60001", Height: 840000,
		PrevHash: chainhash.DoubleHashH([]byte("prev")),
		Coinb1:   []byte{1, 0, 0, 0, 1, 0xaa, 0xbb},
		Coinb2:   []byte{0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0},
		MerkleBranch: []chainhash.Hash{chainhash.DoubleHashH([]byte("a")),
			chainhash.DoubleHashH([]byte("b"))},
		Version: 0x20000000, Bits: 0x17034219, NTime: 1713571767, MinTime: 1713568000,
		Clean: true, NetworkDifficulty: 86388558925171.02,
	}
}

// sampleBatch exercises every share encoding: two job runs, ascending and
// descending miner ids, a miner twice (difficulty and extranonce2 taken
// from its earlier share), little- and big-endian extranonce2 counters,
// short, long and no version bits, rolled ntime, and power-of-two,
// decimal and float difficulties.
func sampleBatch() *ShareBatch {
	return &ShareBatch{BatchID: 7001, Time: 1713571802, Shares: []Share{
		{MinerID: 3, JobID: "18c2f3a4b5c60001", Extranonce2: en2(5, 0, 0, 0, 0, 0), NTime: 1713571767,
			Nonce: 0xdeadbeef, VersionBits: 0x0aa2e000, Difficulty: 65536},
		{MinerID: 17, JobID: "18c2f3a4b5c60001", Extranonce2: en2(0, 0, 0, 0, 0x01, 0x02), NTime: 1713571770,
			Nonce: 0x01020304, Difficulty: 16300},
		{MinerID: 17, JobID: "18c2f3a4b5c60001", Extranonce2: en2(0, 0, 0, 0, 0x01, 0x03), NTime: 1713571770,
			Nonce: 0x05060708, VersionBits: 0x80000001, Difficulty: 16300},
		{MinerID: 2, JobID: "18c2f3a4b5c60002", Extranonce2: en2(0xff, 0xff, 0xff, 0xff, 0xff, 0xff), NTime: 1713571800,
			Nonce: 0xffffffff, VersionBits: 0x1fffe000, Difficulty: 0.00123},
		{MinerID: 4000000000, JobID: "18c2f3a4b5c60002", Extranonce2: en2(1, 2, 3, 4, 5, 6), NTime: 1713571790,
			Nonce: 0, Difficulty: 3.3333333333333335},
	}, Rejects: []RejectCount{{MinerID: 3, Reason: 7, Count: 2}, {MinerID: 4000000000, Reason: 4, Count: 1}}}
}

func sampleBlock() *Block {
	return &Block{BatchID: 7002, Time: 1713571802, Share: Share{MinerID: 17, JobID: "18c2f3a4b5c60002",
		Extranonce2: en2(0, 0, 0, 0, 0x01, 0x04), NTime: 1713571801, Nonce: 0x9abcdef0,
		VersionBits: 0x00006000, Difficulty: 16300}, User: "alice", Worker: "rig01",
		Hash: chainhash.DoubleHashH([]byte("block"))}
}

type sample struct {
	name string
	msg  Message
}

// samples are the golden messages, one or more per type, in a fixed order.
func samples() []sample {
	return []sample{
		{"hello", &Hello{ProtocolVersion: Version, AgentID: "farm-eu1.agent_01", Token: "s3cr3t-t0ken",
			Software: "mineragent/0.1.0", PrevSession: 0x1122334455667788, LastAcked: 7000, Instance: 0x0123456789abcdef}},
		{"hello_fresh", &Hello{ProtocolVersion: Version, AgentID: "a", Token: "t", Instance: 1}},
		{"welcome", &Welcome{SessionID: 0x99aabbccddeeff01, Extranonce1Prefix: []byte{0x07, 0x00, 0x12, 0x34},
			Extranonce1Size: 6, Extranonce2Size: 6, VersionMask: 0x1fffe000, ServerTime: 1713571767123456789,
			ResumedBatch: 6998}},
		{"reject", &Reject{Code: RejectBadToken, Message: "unknown agent or wrong token"}},
		{"reject_version", &Reject{Code: RejectVersion, Message: "gateway speaks protocol version 1, agent sent 2"}},
		{"ping", &Ping{Time: 1713571767123456789}},
		{"pong", &Pong{Echo: 1713571767123456789, Time: 1713571767125000000}},
		{"job", sampleJob()},
		{"job_empty_branch", &Job{ID: "1", Height: 1, Coinb1: []byte{1}, Coinb2: []byte{2}, Version: 4,
			Bits: 0x207fffff, NTime: 1296688602, MinTime: 1296688602, NetworkDifficulty: 4.6565423739069247e-10}},
		{"share_batch", sampleBatch()},
		{"share_batch_empty", &ShareBatch{BatchID: 1}},
		{"share_batch_rejects_only", &ShareBatch{BatchID: 3, Time: 1713571803,
			Rejects: []RejectCount{{MinerID: 9, Reason: 8, Count: 300}}}},
		{"share_batch_long_en2", &ShareBatch{BatchID: 2, Shares: []Share{
			{MinerID: 1, JobID: "j", Extranonce2: []byte("0123456789ab"), NTime: 5, Nonce: 6, Difficulty: 1e-8},
			{MinerID: 1, JobID: "j", Extranonce2: []byte("0123456789ac"), NTime: 4, Nonce: 7, Difficulty: 1e-8},
		}}},
		{"block", sampleBlock()},
		{"batch_ack", &BatchAck{BatchID: 7001, Results: []ResultCode{ResultAccepted, ResultDuplicate,
			ResultAccepted, ResultAccepted, ResultLowDifficulty}}},
		{"batch_ack_all_accepted", &BatchAck{BatchID: 7002, Results: make([]ResultCode, 3)}},
		{"batch_ack_duplicate", &BatchAck{BatchID: 6999, Duplicate: true}},
		{"miner_login", &MinerLogin{MinerID: 17, Extranonce1Suffix: []byte{0x00, 0x11}, User: "alice",
			Worker: "rig01", VersionMask: 0x1fffe000, PeerIP: netip.MustParseAddr("10.1.2.3"),
			UserAgent: "bmminer/2.0.0"}},
		{"miner_login_resumed", &MinerLogin{MinerID: 4000000000, Resumed: true, Extranonce1Suffix: []byte{0xff, 0xfe},
			User: "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", PeerIP: netip.MustParseAddr("fd00::1")}},
		{"miner_logout", &MinerLogout{MinerID: 17}},
		{"miner_logout_quiet", &MinerLogout{MinerID: 4000000000, Quiet: true}},
	}
}

func mustMarshal(t testing.TB, m Message) []byte {
	t.Helper()
	b, err := m.Marshal()
	require.NoError(t, err)
	return b
}

// frameOf is the self-contained frame of m.
func frameOf(t testing.TB, m Message) []byte {
	return AppendFrame(nil, m.Type(), mustMarshal(t, m))
}

// randomBatch builds n shares from seed for property tests.
func randomBatch(seed uint64, id uint64, n int) *ShareBatch {
	r := newRand(seed)
	b := &ShareBatch{BatchID: id}
	for range n {
		s := Share{MinerID: uint32(1 + r.next()%50), JobID: []string{"a", "b"}[r.next()%2],
			Extranonce2: make([]byte, 4), NTime: 1000 + uint32(r.next()%5), Nonce: uint32(r.next())}
		putLE(s.Extranonce2, r.next()%1000)
		if r.next()%2 == 0 {
			s.VersionBits = uint32(r.next()) & vbitsShortMask
		}
		switch r.next() % 4 {
		case 0:
			s.Difficulty = math.Ldexp(1, int(r.next()%40)-20)
		case 1:
			s.Difficulty = float64(100+r.next()%900) * pow10[r.next()%6] / 1e3
		case 2:
			s.Difficulty = 1 + float64(r.next()%1000)/7
		default:
			s.Difficulty = 16384
		}
		b.Shares = append(b.Shares, s)
	}
	b.Sort()
	return b
}

// rng is a tiny deterministic generator (splitmix64).
type rng struct{ s uint64 }

func newRand(seed uint64) *rng { return &rng{s: seed} }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}
