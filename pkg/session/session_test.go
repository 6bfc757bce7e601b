package session

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/hashgate/hashgate/pkg/blockutil"
	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/extranonce"
	"github.com/hashgate/hashgate/pkg/stats"
	"github.com/hashgate/hashgate/pkg/stratum"
	"github.com/hashgate/hashgate/pkg/vardiff"
	"github.com/hashgate/hashgate/pkg/work"
)

// Jobs in these tests have a network difficulty of 2e-5, so a block takes
// about 86,000 hashes and shares between 1e-7 and 2e-5 are not blocks.
const netDiff = 2e-5

var netBits = func() uint32 {
	t, err := blockutil.TargetFromDifficulty(netDiff)
	if err != nil {
		panic(err)
	}
	return blockchain.BigToCompact(t.Big())
}()

func poolMask(m uint32) *atomic.Uint32 {
	var a atomic.Uint32
	a.Store(m)
	return &a
}

type fakeSink struct{ blocks []*bus.FoundBlock }

func (f *fakeSink) Submit(fb *bus.FoundBlock, raw []byte) { f.blocks = append(f.blocks, fb) }

type countRec map[string]int

func (c countRec) Share(r string) { c[r]++ }
func (c countRec) Block()         { c["block"]++ }

type harness struct {
	t     *testing.T
	env   *Env
	sink  *fakeSink
	count countRec
	now   time.Time
	s     *Session
	id    int
	seq   int
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, sink: &fakeSink{}, count: countRec{}, now: time.Unix(1700000000, 0)}
	clock := func() time.Time { return h.now }
	en, err := extranonce.New(4, 9, 10*time.Minute, clock)
	require.NoError(t, err)
	vd := vardiff.DefaultConfig()
	vd.Min, vd.Start = 1e-8, 1e-7
	h.env = &Env{Jobs: work.NewTable(30*time.Second, clock), Dedup: work.NewDedup(), Extranonce: en,
		Stats: stats.NewTable(), Blocks: h.sink, Vardiff: &vd, Counter: h.count, Log: zap.NewNop(),
		PoolMask: poolMask(0x1fffe000), Source: "gw-test", MaxWorkers: 4, MaxBadRequests: 3, Now: clock}
	h.s = New(h.env, 1, "127.0.0.1:5555")
	return h
}

// addJob puts a job with the given bits on the table (height h).
func (h *harness) addJob(id string, height int64, bits uint32, clean bool) *work.Job {
	params := &chaincfg.RegressionNetParams
	addr, err := blockutil.DecodeAddress("bcrt1ql7fk7lfuvazvrytsx4efz5pv75j23cfkmjfytk", params)
	require.NoError(h.t, err)
	cb, err := blockutil.BuildCoinbase(blockutil.CoinbaseParams{Height: height, Value: 5000000000,
		Payouts: []blockutil.Payout{{Address: addr, Weight: 1}}, Tag: []byte("/t/"), Extranonce1Size: 4, Extranonce2Size: 8})
	require.NoError(h.t, err)
	b := &bus.Job{ID: id, Height: height, PrevHash: chainhash.DoubleHashH([]byte(fmt.Sprint(height))),
		Version: 0x20000000, Bits: bits, CurTime: uint32(h.now.Unix()), MinTime: uint32(h.now.Unix()) - 600,
		Coinb1: cb.Coinb1, Coinb2: cb.Coinb2, Extranonce1Size: 4, Extranonce2Size: 8, Clean: clean,
		CoinbaseValue: 5000000000}
	j, err := work.Prepare(b, h.now)
	require.NoError(h.t, err)
	added, _ := h.env.Jobs.Add(j)
	require.True(h.t, added)
	return j
}

// send handles a line and decodes every line the session answered.
func (h *harness) send(line string) ([]stratum.Response, string) {
	out, reason := h.s.HandleLine([]byte(line))
	var res []stratum.Response
	for _, l := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		r, err := stratum.DecodeResponse(l)
		require.NoError(h.t, err, string(l))
		res = append(res, r)
	}
	return res, reason
}

func (h *harness) req(method string, params ...any) ([]stratum.Response, string) {
	h.id++
	p, err := json.Marshal(params)
	require.NoError(h.t, err)
	return h.send(fmt.Sprintf(`{"id":%d,"method":%q,"params":%s}`, h.id, method, p))
}

func replyTo(t *testing.T, res []stratum.Response, id int) stratum.Response {
	var found []stratum.Response
	for _, r := range res {
		if string(r.ID) == fmt.Sprint(id) {
			found = append(found, r)
		}
	}
	require.Len(t, found, 1, "exactly one reply for id %d", id)
	return found[0]
}

func methods(res []stratum.Response) []string {
	var m []string
	for _, r := range res {
		if r.Method != "" {
			m = append(m, r.Method)
		}
	}
	return m
}

// start subscribes and authorizes; it returns extranonce1.
func (h *harness) start(worker string) []byte {
	res, _ := h.req("mining.subscribe", "cgminer/4.11", nil)
	var sub []json.RawMessage
	require.NoError(h.t, json.Unmarshal(replyTo(h.t, res, h.id).Result, &sub))
	var en1hex string
	require.NoError(h.t, json.Unmarshal(sub[1], &en1hex))
	en1, err := hex.DecodeString(en1hex)
	require.NoError(h.t, err)
	res, _ = h.req("mining.authorize", worker, "x")
	require.Equal(h.t, "true", string(replyTo(h.t, res, h.id).Result))
	return en1
}

// mine finds (en2, nonce) whose share difficulty is at least min (and, with
// below, under max), on job j with version v.
func (h *harness) mine(j *work.Job, en1 []byte, v int32, min, max float64) (string, string) {
	en2 := make([]byte, 8)
	h.seq++
	en2[0], en2[1] = byte(h.seq), byte(h.seq>>8) // every call mines fresh work
	for n := uint32(0); n < 1<<26; n++ {
		hash, _ := j.ShareHash(en1, en2, j.CurTime, n, v, nil)
		d := blockutil.HashDifficulty(&hash)
		if d >= min && d < max {
			return hex.EncodeToString(en2), fmt.Sprintf("%08x", n)
		}
	}
	h.t.Fatal("no nonce")
	return "", ""
}

func TestSubscribeHeldUntilFirstJob(t *testing.T) {
	h := newHarness(t)
	res, _ := h.req("mining.subscribe", "bitaxe/2.0")
	require.Empty(t, res, "no job yet: the subscribe reply waits")
	j := h.addJob("a1", 100, netBits, true)
	out := h.s.OnFirstJob(j)
	r, err := stratum.DecodeResponse(bytes.TrimSpace(out))
	require.NoError(t, err)
	require.Equal(t, "1", string(r.ID))
	var sub []json.RawMessage
	require.NoError(t, json.Unmarshal(r.Result, &sub))
	require.Len(t, sub, 3)
	require.Equal(t, "8", string(sub[2]), "extranonce2 size")
	var en1 string
	require.NoError(t, json.Unmarshal(sub[1], &en1))
	require.True(t, strings.HasPrefix(en1, "09"), "gateway id leads extranonce1")
	require.Empty(t, h.s.OnFirstJob(j), "only once")
}

func TestAuthorizeStartsWork(t *testing.T) {
	h := newHarness(t)
	h.addJob("a1", 100, netBits, true)
	h.req("mining.subscribe")
	res, _ := h.req("mining.authorize", "Alice.Rig-1", "d=0.00001")
	require.Equal(t, "true", string(replyTo(t, res, h.id).Result))
	require.Equal(t, []string{"mining.set_difficulty", "mining.notify"}, methods(res))
	require.Equal(t, "alice.rig-1", h.s.Worker())
	require.Equal(t, 0.00001, h.s.Difficulty(), "d= password sets the start difficulty")

	// A second worker on the same connection; bad names are refused with an
	// error reply, not a silent close.
	res, reason := h.req("mining.authorize", "bob.rig2", "")
	require.Equal(t, "true", string(replyTo(t, res, h.id).Result))
	require.Empty(t, methods(res), "work already started")
	for _, bad := range []string{"", "a b!c", strings.Repeat("x", 65), "ü.x"} {
		res, reason = h.req("mining.authorize", bad, "")
		require.Equal(t, 24, replyTo(t, res, h.id).Error.Code, bad)
		require.Empty(t, reason)
	}
}

func TestConfigure(t *testing.T) {
	h := newHarness(t)
	res, _ := h.send(`{"id":1,"method":"mining.configure","params":[["version-rolling","minimum-difficulty","subscribe-extranonce","mystery"],{"version-rolling.mask":"ffffffff","version-rolling.min-bit-count":2,"minimum-difficulty.value":0.25}]}`)
	var got map[string]any
	require.NoError(t, json.Unmarshal(replyTo(t, res, 1).Result, &got))
	require.Equal(t, true, got["version-rolling"])
	require.Equal(t, "1fffe000", got["version-rolling.mask"], "granted = requested ∧ pool mask")
	require.Equal(t, true, got["minimum-difficulty"])
	require.Equal(t, true, got["subscribe-extranonce"])
	require.Equal(t, false, got["mystery"], "unknown extensions answered as unsupported")
	require.True(t, h.s.ExtranonceSubscribed())
	require.Equal(t, 0.25, h.s.Difficulty())

	res, _ = h.send(`{"id":2,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"00006000","version-rolling.min-bit-count":4}]}`)
	require.NoError(t, json.Unmarshal(replyTo(t, res, 2).Result, &got))
	require.Equal(t, false, got["version-rolling"], "min-bit-count cannot be met")
}

func TestEveryRequestGetsOneReply(t *testing.T) {
	h := newHarness(t)
	h.addJob("a1", 100, netBits, true)
	lines := []string{
		`{"id":1,"method":"mining.extranonce.subscribe","params":[]}`,
		`{"id":2,"method":"mining.ping","params":[]}`,
		`{"id":3,"method":"mining.get_transactions","params":["a1"]}`,
		`{"id":4,"method":"mining.nonsense","params":[]}`,
		`{"id":5,"method":"mining.suggest_difficulty","params":[0.001]}`,
		`{"id":6,"method":"mining.configure","params":[["unknown-ext"],{}]}`,
		`{"id":7,"method":"mining.submit","params":["w","a1","0000000000000000","00000000","00000000"]}`,
		`{"id":8,"method":"mining.subscribe","params":[]}`,
		`{"id":9,"method":"mining.authorize","params":["w","x"]}`,
		`{"id":10,"method":"mining.submit","params":["w","a1","00","00000000","00000000"]}`,
		`{"id":11,"method":"mining.suggest_difficulty","params":["abc"]}`,
	}
	for i, l := range lines {
		res, _ := h.send(l)
		replyTo(t, res, i+1)
	}
	// Notifications (null id) get no reply (server notifications may follow).
	res, _ := h.send(`{"id":null,"method":"mining.suggest_difficulty","params":[2]}`)
	for _, r := range res {
		require.NotEmpty(t, r.Method, "only notifications, no reply")
	}
}

func TestMalformedBudget(t *testing.T) {
	h := newHarness(t)
	for i := 0; i < 3; i++ {
		_, reason := h.send(`{"id":1,"method":`)
		require.Empty(t, reason)
	}
	_, reason := h.send(`not json at all`)
	require.Equal(t, CloseParseError, reason)
}

// TestSubmitValidationOrder walks every rejection in the documented order,
// then an accepted share, a block, a duplicate and a stale share.
func TestSubmitValidationOrder(t *testing.T) {
	h := newHarness(t)
	j := h.addJob("j1", 100, netBits, true)
	code := func(res []stratum.Response) int {
		r := replyTo(t, res, h.id)
		if r.Error == nil {
			return 0
		}
		return r.Error.Code
	}
	res, _ := h.req("mining.submit", "alice.w", "j1", "0000000000000000", fmt.Sprintf("%08x", j.CurTime), "00000000")
	require.Equal(t, 25, code(res), "not subscribed")
	en1 := h.start("alice.w")
	res, _ = h.req("mining.submit", "mallory.w", "j1", "0000000000000000", fmt.Sprintf("%08x", j.CurTime), "00000000")
	require.Equal(t, 24, code(res), "worker not authorized on this connection")
	res, _ = h.req("mining.submit", "alice.w", "j1", "00000000", fmt.Sprintf("%08x", j.CurTime), "00000000")
	require.Equal(t, 20, code(res), "extranonce2 of the wrong size")
	res, _ = h.req("mining.submit", "alice.w", "nope", "0000000000000000", fmt.Sprintf("%08x", j.CurTime), "00000000")
	require.Equal(t, 21, code(res), "unknown job")
	res, _ = h.req("mining.submit", "alice.w", "j1", "0000000000000000", fmt.Sprintf("%08x", j.MinTime-1), "00000000")
	require.Equal(t, 20, code(res), "ntime before mintime")
	require.Contains(t, replyTo(t, res, h.id).Error.Message, "ntime")
	res, _ = h.req("mining.submit", "alice.w", "j1", "0000000000000000", fmt.Sprintf("%08x", uint32(h.now.Unix())+7201), "00000000")
	require.Equal(t, 20, code(res), "ntime too far ahead")
	res, _ = h.req("mining.submit", "alice.w", "j1", "0000000000000000", fmt.Sprintf("%08x", j.CurTime), "00000000", "00002000")
	require.Equal(t, 20, code(res), "version bits without configure")
	require.Contains(t, replyTo(t, res, h.id).Error.Message, "version")

	// Low difficulty, then a good share, then the same share again.
	en2, nonce := h.mine(j, en1, j.Version, 0, 1e-7)
	res, _ = h.req("mining.submit", "alice.w", "j1", en2, fmt.Sprintf("%08x", j.CurTime), nonce)
	require.Equal(t, 23, code(res), "low difficulty")
	en2, nonce = h.mine(j, en1, j.Version, 1e-7, netDiff)
	res, _ = h.req("mining.submit", "alice.w", "j1", en2, fmt.Sprintf("%08x", j.CurTime), nonce)
	require.Equal(t, 0, code(res), "accepted")
	res, _ = h.req("mining.submit", "alice.w", "j1", en2, fmt.Sprintf("%08x", j.CurTime), nonce)
	require.Equal(t, 22, code(res), "duplicate")
	require.Empty(t, h.sink.blocks)

	// A share at the network target is a block, handed to the sink.
	en2, nonce = h.mine(j, en1, j.Version, netDiff, 1e300)
	res, _ = h.req("mining.submit", "alice.w", "j1", en2, fmt.Sprintf("%08x", j.CurTime), nonce)
	require.Equal(t, 0, code(res))
	require.Len(t, h.sink.blocks, 1)
	fb := h.sink.blocks[0]
	require.Equal(t, "j1", fb.JobID)
	require.Equal(t, en1, fb.Extranonce1)
	require.Equal(t, "alice", fb.User)
	require.Equal(t, "w", fb.Worker)
	require.Equal(t, "gw-test", fb.Source)
	hash, _ := j.ShareHash(fb.Extranonce1, fb.Extranonce2, fb.NTime, fb.Nonce, fb.Version, nil)
	require.Equal(t, hash, fb.BlockHash)

	// A new height: old work is stale for shares, but blocks still count.
	h.addJob("j2", 101, netBits, true)
	en2, nonce = h.mine(j, en1, j.Version, 1e-7, netDiff)
	res, _ = h.req("mining.submit", "alice.w", "j1", en2, fmt.Sprintf("%08x", j.CurTime), nonce)
	require.Equal(t, 21, code(res), "stale share")
	en2, nonce = h.mine(j, en1, j.Version, netDiff, 1e300)
	res, _ = h.req("mining.submit", "alice.w", "j1", en2, fmt.Sprintf("%08x", j.CurTime), nonce)
	require.Equal(t, 0, code(res), "a block on the previous tip is still taken")
	require.Len(t, h.sink.blocks, 2)

	for _, r := range []string{"not_subscribed", "unauthorized", "bad_extranonce2", "unknown_job", "bad_ntime",
		"bad_version", "low_difficulty", "duplicate", "stale", "accepted"} {
		require.Positive(t, h.count[r], r)
	}
}

// TestVersionRolling: rolled bits inside the granted mask are accepted and
// change the header; bits outside are refused; duplicates consider the
// version (ASICBoost miners roll it).
func TestVersionRolling(t *testing.T) {
	h := newHarness(t)
	j := h.addJob("v1", 100, netBits, true)
	h.send(`{"id":100,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"1fffe000"}]}`)
	en1 := h.start("alice.w")
	rolled := int32(uint32(j.Version) | 0x00004000)
	en2, nonce := h.mine(j, en1, rolled, 1e-7, netDiff)
	res, _ := h.req("mining.submit", "alice.w", "v1", en2, fmt.Sprintf("%08x", j.CurTime), nonce, "00004000")
	require.Nil(t, replyTo(t, res, h.id).Error)
	// Same en2/ntime/nonce, different version bits: a different share, so
	// never a false duplicate (it may be low difficulty, but not code 22).
	res, _ = h.req("mining.submit", "alice.w", "v1", en2, fmt.Sprintf("%08x", j.CurTime), nonce, "00008000")
	if e := replyTo(t, res, h.id).Error; e != nil {
		require.NotEqual(t, 22, e.Code)
	}
	res, _ = h.req("mining.submit", "alice.w", "v1", en2, fmt.Sprintf("%08x", j.CurTime), nonce, "20000000")
	require.Equal(t, 20, replyTo(t, res, h.id).Error.Code, "bit outside the mask")

	// The operator narrows the pool mask: the miner is told, and bits that
	// are no longer granted are refused.
	h.env.PoolMask.Store(0x00ffe000)
	line := h.s.PoolMaskChanged()
	require.Equal(t, `{"id":null,"method":"mining.set_version_mask","params":["00ffe000"]}`+"\n", string(line))
	require.Nil(t, h.s.PoolMaskChanged(), "only once per change")
	en2, nonce = h.mine(j, en1, int32(uint32(j.Version)|0x10000000), 1e-7, netDiff)
	res, _ = h.req("mining.submit", "alice.w", "v1", en2, fmt.Sprintf("%08x", j.CurTime), nonce, "10000000")
	require.Equal(t, 20, replyTo(t, res, h.id).Error.Code, "bit no longer granted")
}

// TestDifficultyChangeNeverRejects: work issued at the old difficulty is
// judged by it, even after the difficulty went up.
func TestDifficultyChangeNeverRejects(t *testing.T) {
	h := newHarness(t)
	j := h.addJob("d1", 100, netBits, true)
	en1 := h.start("alice.w")
	require.Equal(t, 1e-7, h.s.Difficulty())
	res, _ := h.req("mining.suggest_difficulty", 1e-5)
	require.Equal(t, "true", string(replyTo(t, res, h.id).Result))
	require.Equal(t, []string{"mining.set_difficulty", "mining.notify"}, methods(res), "applied at once with the job again")
	require.Equal(t, 1e-5, h.s.Difficulty())
	// A share meeting only the old difficulty on the job sent at it.
	en2, nonce := h.mine(j, en1, j.Version, 1e-7, 1e-5)
	res, _ = h.req("mining.submit", "alice.w", "d1", en2, fmt.Sprintf("%08x", j.CurTime), nonce)
	require.Nil(t, replyTo(t, res, h.id).Error, "judged by the difficulty of the work")
	// A new job is sent at the new difficulty only.
	j2 := h.addJob("d2", 101, netBits, true)
	_, notify := h.s.JobFrames(j2, true)
	require.NotNil(t, notify)
	en2, nonce = h.mine(j2, en1, j2.Version, 1e-7, 1e-5)
	res, _ = h.req("mining.submit", "alice.w", "d2", en2, fmt.Sprintf("%08x", j2.CurTime), nonce)
	require.Equal(t, 23, replyTo(t, res, h.id).Error.Code)
}

func TestSessionResume(t *testing.T) {
	h := newHarness(t)
	h.addJob("r1", 100, netBits, true)
	en1 := h.start("alice.w")
	h.s.Close()
	h.now = h.now.Add(5 * time.Minute)
	s2 := New(h.env, 2, "127.0.0.1:6666")
	h.s = s2
	res, _ := h.req("mining.subscribe", "cgminer", hex.EncodeToString(en1))
	var sub []json.RawMessage
	require.NoError(t, json.Unmarshal(replyTo(t, res, h.id).Result, &sub))
	require.Equal(t, `"`+hex.EncodeToString(en1)+`"`, string(sub[1]), "extranonce1 resumed")
}

func TestParseAccount(t *testing.T) {
	for in, want := range map[string][2]string{
		"Alice.Rig1": {"alice", "rig1"}, "alice": {"alice", "default"}, "a:b": {"a", "b"},
		"a.b.c": {"a", "b"}, " a . b ": {"a", "b"}, "bc1qxyz.w_1": {"bc1qxyz", "w_1"},
	} {
		u, w, ok := ParseAccount(in)
		require.True(t, ok, in)
		require.Equal(t, want, [2]string{u, w}, in)
	}
	for _, bad := range []string{"", ".w", "a.b$", strings.Repeat("u", 65)} {
		_, _, ok := ParseAccount(bad)
		require.False(t, ok, bad)
	}
}

// BenchmarkSubmitAccepted: the whole mining.submit path of a share that is
// accepted (decode, every check, the duplicate set, the share hash, the
// reply). The shares are mined at setup to meet the session's difficulty
// (1e-7) and not the network's; the duplicate set is reset after each pass
// over them.
func BenchmarkSubmitAccepted(b *testing.B) {
	h := newHarness(&testing.T{})
	j := h.addJob("b1", 100, netBits, true)
	h.t = &testing.T{}
	en1 := h.start("alice.w")
	lines := make([][]byte, 256)
	for i := range lines {
		en2, nonce := h.mine(j, en1, j.Version, 1e-7, j.NetDiff)
		lines[i] = []byte(fmt.Sprintf(`{"id":%d,"method":"mining.submit","params":["alice.w","b1","%s","%08x","%s"]}`,
			i, en2, j.CurTime, nonce))
	}
	for _, l := range lines { // a dry run: every line is accepted
		if out, _ := h.s.HandleLine(l); !bytes.Contains(out, []byte(`"result":true`)) {
			b.Fatalf("setup share not accepted: %s", out)
		}
	}
	h.env.Dedup = work.NewDedup()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%len(lines) == 0 && i > 0 {
			b.StopTimer()
			h.env.Dedup = work.NewDedup()
			b.StartTimer()
		}
		out, _ := h.s.HandleLine(lines[i%len(lines)])
		if len(out) == 0 {
			b.Fatal("no reply")
		}
	}
}

type upRec struct {
	rejects []string
	logins  []string
	logouts []uint32
	shares  []AcceptedShare
	ids     []uint32
	en2s    [][]byte
}

func (u *upRec) Login(s *Session, user, worker string) uint32 {
	u.logins = append(u.logins, user+"."+worker)
	return uint32(100 + len(u.logins))
}
func (u *upRec) Logout(s *Session, id uint32) { u.logouts = append(u.logouts, id) }
func (u *upRec) Reject(s *Session, id uint32, r stats.Reason) {
	u.rejects = append(u.rejects, fmt.Sprintf("%d:%s", id, r))
}
func (u *upRec) Share(s *Session, id uint32, sh *AcceptedShare) {
	u.ids = append(u.ids, id)
	u.en2s = append(u.en2s, append([]byte(nil), sh.Extranonce2...))
	u.shares = append(u.shares, *sh)
}

// TestUpstreamSeesWhatTheSessionAccepts: the mineragent's hook gets every
// worker login, every accepted share (with the header fields needed to
// re-validate it, blocks flagged) and nothing rejected, then the logouts.
func TestUpstreamSeesWhatTheSessionAccepts(t *testing.T) {
	h := newHarness(t)
	up := &upRec{}
	h.env.Upstream = up
	j := h.addJob("u1", 100, netBits, true)
	h.send(`{"id":100,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"ffffffff"}]}`)
	en1 := h.start("alice.rig1")
	res, _ := h.req("mining.authorize", "alice.rig2", "x")
	require.Equal(t, "true", string(replyTo(t, res, h.id).Result))
	require.Equal(t, []string{"alice.rig1", "alice.rig2"}, up.logins)
	require.Equal(t, uint32(0x1fffe000), h.s.VersionMask())
	require.Equal(t, en1, h.s.Extranonce1())
	require.Equal(t, "cgminer/4.11", h.s.UserAgent())
	require.Equal(t, "127.0.0.1", h.s.PeerIP())

	rolled := int32(uint32(j.Version) | 0x00006000)
	en2, nonce := h.mine(j, en1, rolled, 1e-7, netDiff)
	res, _ = h.req("mining.submit", "alice.rig2", "u1", en2, fmt.Sprintf("%08x", j.CurTime), nonce, "00006000")
	require.Nil(t, replyTo(t, res, h.id).Error)
	// The same share again is a duplicate: not forwarded.
	res, _ = h.req("mining.submit", "alice.rig2", "u1", en2, fmt.Sprintf("%08x", j.CurTime), nonce, "00006000")
	require.Equal(t, 22, replyTo(t, res, h.id).Error.Code)
	require.Len(t, up.shares, 1)
	require.Equal(t, []string{"102:duplicate"}, up.rejects, "refused shares are counted upstream")
	sh := up.shares[0]
	require.Equal(t, uint32(102), up.ids[0])
	require.Equal(t, j, sh.Job)
	require.Equal(t, en2, hex.EncodeToString(up.en2s[0]))
	require.Equal(t, rolled, sh.Version)
	require.Equal(t, uint32(0x00006000), sh.VersionBits)
	require.Equal(t, h.s.Difficulty(), sh.Difficulty)
	require.False(t, sh.Block)
	want, _ := j.ShareHash(en1, up.en2s[0], j.CurTime, sh.Nonce, rolled, nil)
	require.Equal(t, want, sh.Hash)

	// A block candidate is forwarded flagged, credited at the session's
	// difficulty.
	en2, nonce = h.mine(j, en1, j.Version, netDiff, 1e300)
	res, _ = h.req("mining.submit", "alice.rig1", "u1", en2, fmt.Sprintf("%08x", j.CurTime), nonce)
	require.Nil(t, replyTo(t, res, h.id).Error)
	require.Len(t, up.shares, 2)
	require.True(t, up.shares[1].Block)
	require.Equal(t, uint32(101), up.ids[1])
	require.Zero(t, up.shares[1].VersionBits, "not rolled")
	require.Len(t, h.sink.blocks, 1)

	h.s.Close()
	require.Equal(t, []uint32{101, 102}, up.logouts)
}

// TestSubmitDoesNotAllocate guards the share path: deciding an accepted
// share allocates nothing (the duplicate set's growth aside, which
// averages to well under one allocation per share).
func TestSubmitDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's instrumentation allocates in crypto/sha256")
	}
	h := newHarness(t)
	j := h.addJob("b1", 100, netBits, true)
	en1 := h.start("alice.w")
	lines := make([][]byte, 300)
	for i := range lines {
		en2, nonce := h.mine(j, en1, j.Version, h.s.Difficulty(), netDiff)
		lines[i] = []byte(fmt.Sprintf(`{"id":%d,"method":"mining.submit","params":["alice.w","b1","%s","%08x","%s"]}`,
			i, en2, j.CurTime, nonce))
	}
	i := 0
	allocs := testing.AllocsPerRun(len(lines)-1, func() {
		if out, _ := h.s.HandleLine(lines[i]); !bytes.Contains(out, []byte(`"result":true`)) {
			t.Fatalf("share %d not accepted: %s", i, out)
		}
		i++
	})
	if allocs >= 1 {
		t.Fatalf("%.2f allocations per accepted share, want 0", allocs)
	}
}
