package app

import (
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/hashgate/hashgate/mineragent/internal/config"
	"github.com/hashgate/hashgate/pkg/agentwire"
	"github.com/hashgate/hashgate/pkg/blockutil"
	"github.com/hashgate/hashgate/pkg/confutil"
	"github.com/hashgate/hashgate/pkg/stats"
	"github.com/hashgate/hashgate/pkg/testutil"
)

func logins(msgs []agentwire.Message) []*agentwire.MinerLogin {
	var out []*agentwire.MinerLogin
	for _, m := range msgs {
		if l, ok := m.(*agentwire.MinerLogin); ok {
			out = append(out, l)
		}
	}
	return out
}

// TestMinersBehindAgent: a miner gets the granted extranonce layout, its
// login goes up before its shares, an accepted share goes up in a batch
// with the credited difficulty, a refused one as a reject count, and its
// disconnection as a logout.
func TestMinersBehindAgent(t *testing.T) {
	j := testJob(t, "job1", 1)
	gw := newFakeGW(t, j, true)
	a, addr := startAgent(t, []string{gw.addr}, nil)

	m := dialMiner(t, addr)
	m.start("Alice.rig1")
	require.Equal(t, testPrefix, m.en1[:4], "extranonce1 starts with the granted prefix")
	require.Len(t, m.en1, 6)
	require.Equal(t, 6, m.en2n)
	require.Equal(t, 1e-6, m.diff)

	en2, nonce := m.find(j, 1, m.diff, false)
	require.Zero(t, m.submit("Alice.rig1", j, en2, nonce))
	require.Equal(t, 22, m.submit("Alice.rig1", j, en2, nonce), "a duplicate is refused locally")

	msgs := gw.waitFor("one share and a duplicate count", func(msgs []agentwire.Message) bool {
		rejects := 0
		for _, b := range batches(msgs) {
			for _, r := range b.Rejects {
				rejects += int(r.Count)
			}
		}
		return countShares(msgs) == 1 && rejects == 1
	})
	ls := logins(msgs)
	require.Len(t, ls, 1)
	l := ls[0]
	require.False(t, l.Resumed)
	require.Equal(t, "alice", l.User)
	require.Equal(t, "rig1", l.Worker)
	require.Equal(t, m.en1[4:], l.Extranonce1Suffix)
	require.Equal(t, "testminer/1.0", l.UserAgent)
	require.Equal(t, netip.MustParseAddr("127.0.0.1"), l.PeerIP)
	loginAt, shareAt := -1, -1
	for i, msg := range msgs {
		switch msg := msg.(type) {
		case *agentwire.MinerLogin:
			loginAt = i
		case *agentwire.ShareBatch:
			for _, sh := range msg.Shares {
				shareAt = i
				require.Equal(t, l.MinerID, sh.MinerID)
				require.Equal(t, j.ID, sh.JobID)
				require.Equal(t, en2, sh.Extranonce2)
				require.Equal(t, nonce, sh.Nonce)
				require.Equal(t, j.CurTime, sh.NTime)
				require.Equal(t, 1e-6, sh.Difficulty)
			}
			for _, r := range msg.Rejects {
				require.Equal(t, agentwire.RejectCount{MinerID: l.MinerID, Reason: uint8(stats.Duplicate), Count: 1}, r)
			}
		}
	}
	require.Less(t, loginAt, shareAt, "the login goes up before the share")

	m.c.Close()
	gw.waitFor("the logout", func(msgs []agentwire.Message) bool {
		for _, msg := range msgs {
			if lo, ok := msg.(*agentwire.MinerLogout); ok && lo.MinerID == l.MinerID && !lo.Quiet {
				return true
			}
		}
		return false
	})
	testutil.Eventually(t, 5*time.Second, func() bool {
		st := a.up.Status()
		return st.Linked && st.Server == gw.addr && st.PendingBatches == 0 && st.Results["accepted"] == 1
	}, "status after the acknowledgements: %+v", a.up.Status())
}

// TestFailoverReplaysUnacknowledged: the gateway in use acknowledges
// nothing and dies; the miner stays connected, the agent moves to the
// second gateway within about a second and replays every batch with its
// ids, after announcing the miner again.
func TestFailoverReplaysUnacknowledged(t *testing.T) {
	j := testJob(t, "job1", 1)
	gwA := newFakeGW(t, j, false)
	gwB := newFakeGW(t, j, true)
	a, addr := startAgent(t, []string{gwA.addr, gwB.addr}, nil)

	m := dialMiner(t, addr)
	m.start("bob.rig2")
	var nonces []uint32
	for i := uint32(1); i <= 3; i++ {
		en2, nonce := m.find(j, i, m.diff, false)
		require.Zero(t, m.submit("bob.rig2", j, en2, nonce))
		nonces = append(nonces, nonce)
	}
	atA := gwA.waitFor("three shares", func(msgs []agentwire.Message) bool { return countShares(msgs) == 3 })
	require.Equal(t, 3, a.up.Status().PendingShares, "nothing acknowledged yet")

	gwA.close()
	killed := time.Now()
	atB := gwB.waitFor("the replay", func(msgs []agentwire.Message) bool { return countShares(msgs) >= 3 })
	t.Logf("replayed on the second gateway %s after the first died", time.Since(killed).Round(time.Millisecond))
	require.IsType(t, &agentwire.MinerLogin{}, atB[0], "the miner is announced first")
	require.False(t, atB[0].(*agentwire.MinerLogin).Resumed, "its login was never confirmed: sent as new")
	bA, bB := batches(atA), batches(atB)
	for id, b := range bA {
		require.Contains(t, bB, id, "batch %d replayed with its id", id)
		require.Equal(t, b.Shares, bB[id].Shares)
		require.Equal(t, b.Time, bB[id].Time)
	}

	// The miner never noticed: it keeps working through gw-b.
	en2, nonce := m.find(j, 9, m.diff, false)
	require.Zero(t, m.submit("bob.rig2", j, en2, nonce))
	gwB.waitFor("the new share", func(msgs []agentwire.Message) bool { return countShares(msgs) == 4 })
	testutil.Eventually(t, 5*time.Second, func() bool {
		st := a.up.Status()
		return st.Linked && st.Server == gwB.addr && st.PendingShares == 0 && st.Failovers == 1
	}, "status: %+v", a.up.Status())

	gwB.mu.Lock()
	h := gwB.hellos[0]
	gwB.mu.Unlock()
	gwA.mu.Lock()
	require.Equal(t, gwA.hellos[0].Instance, h.Instance, "one agent process")
	gwA.mu.Unlock()
	require.Equal(t, uint64(1), h.PrevSession)
}

// TestResumeSkipsProcessedBatches: a gateway that already processed a
// batch (Welcome.ResumedBatch) does not get it again, and the miner is
// re-announced without an event.
func TestResumeSkipsProcessedBatches(t *testing.T) {
	j := testJob(t, "job1", 1)
	gw := newFakeGW(t, j, false)
	a, addr := startAgent(t, []string{gw.addr}, nil)
	m := dialMiner(t, addr)
	m.start("carol.rig3")
	en2, nonce := m.find(j, 1, m.diff, false)
	require.Zero(t, m.submit("carol.rig3", j, en2, nonce))
	first := gw.waitFor("the share", func(msgs []agentwire.Message) bool { return countShares(msgs) == 1 })
	var last uint64
	for id := range batches(first) {
		last = max(last, id)
	}
	gw.mu.Lock()
	gw.resumed, gw.ack = last, true
	for _, c := range gw.conns {
		c.Close()
	}
	n := len(gw.msgs)
	gw.mu.Unlock()

	testutil.Eventually(t, 10*time.Second, func() bool {
		st := a.up.Status()
		return st.Linked && st.Session == 2 && st.PendingBatches == 0
	}, "resumed: %+v", a.up.Status())
	en2, nonce = m.find(j, 2, m.diff, false)
	require.Zero(t, m.submit("carol.rig3", j, en2, nonce))
	all := gw.waitFor("the next share", func(msgs []agentwire.Message) bool { return countShares(msgs) == 2 })
	again := all[n:]
	for id := range batches(again) {
		require.Greater(t, id, last, "batch %d was already processed", id)
	}
	ls := logins(again)
	require.Len(t, ls, 1)
	require.True(t, ls[0].Resumed, "re-announced without an event")
	gw.mu.Lock()
	require.Equal(t, uint64(1), gw.hellos[1].PrevSession)
	gw.mu.Unlock()
}

// TestBlockSentAtOnce: a block candidate does not wait for the batch
// interval and never travels in a batch.
func TestBlockSentAtOnce(t *testing.T) {
	j := testJob(t, "job1", 1e-5)
	gw := newFakeGW(t, j, true)
	_, addr := startAgent(t, []string{gw.addr}, func(c *config.Config) {
		c.BatchInterval = confutil.Duration(5 * time.Second)
	})
	m := dialMiner(t, addr)
	m.start("dave.rig4")
	en2, nonce := m.find(j, 1, m.diff, true)
	require.Zero(t, m.submit("dave.rig4", j, en2, nonce))
	sent := time.Now()
	var blk *agentwire.Block
	testutil.Eventually(t, 4*time.Second, func() bool {
		for _, msg := range gw.received() {
			if b, ok := msg.(*agentwire.Block); ok {
				blk = b
				return true
			}
		}
		return false
	}, "no block within 4s of a 5s batch interval: %s", describeMsgs(gw.received()))
	t.Logf("block upstream %s after the submit", time.Since(sent).Round(time.Millisecond))
	require.Equal(t, "dave", blk.User)
	require.Equal(t, "rig4", blk.Worker)
	require.Equal(t, nonce, blk.Share.Nonce)
	require.Equal(t, en2, blk.Share.Extranonce2)
	h, _ := j.ShareHash(m.en1, en2, j.CurTime, nonce, j.Version, nil)
	require.Equal(t, h, blk.Hash)
	require.True(t, blockutil.HashMeets(&h, &j.Target))
	require.Zero(t, countShares(gw.received()), "a block is never also in a batch")
	require.NotEmpty(t, logins(gw.received()), "the miner's login went with it")
}

// TestNoUpstreamSendsMinersAway: without any gateway for
// no_upstream_timeout, miners keep working at first, then are sent to the
// fallback pool and new ones are refused.
func TestNoUpstreamSendsMinersAway(t *testing.T) {
	j := testJob(t, "job1", 1)
	gw := newFakeGW(t, j, true)
	a, addr := startAgent(t, []string{gw.addr}, func(c *config.Config) {
		c.NoUpstreamTimeout = confutil.Duration(2 * time.Second)
		c.Fallback = config.Fallback{Host: "backup.example", Port: 3333}
	})
	m := dialMiner(t, addr)
	m.start("erin.rig5")
	gw.close()
	en2, nonce := m.find(j, 1, m.diff, false)
	require.Zero(t, m.submit("erin.rig5", j, en2, nonce), "the last job stays valid while the link is down")

	var reconnect []json.RawMessage
	for reconnect == nil {
		resp, _, err := m.read()
		require.NoError(t, err, "the miner must be told before it is disconnected")
		if resp.Method == "client.reconnect" {
			require.NoError(t, json.Unmarshal(resp.Params, &reconnect))
		}
	}
	require.Equal(t, []json.RawMessage{json.RawMessage(`"backup.example"`), json.RawMessage(`"3333"`),
		json.RawMessage(`0`)}, reconnect)
	_, _, err := m.read()
	require.Error(t, err, "then disconnected")
	require.True(t, a.refusing.Load())

	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Write([]byte(`{"id":1,"method":"mining.subscribe","params":[]}` + "\n"))
	buf := make([]byte, 64)
	if err == nil {
		_, err = c.Read(buf)
	}
	require.Error(t, err, "new miners are refused")
	require.NotContains(t, err.Error(), "timeout")
	require.Equal(t, 1, a.up.Status().PendingShares, "the share waits for a gateway")
}

// TestBadGateways: a wrong token is retried without a crash; garbage from
// the gateway closes the link, which is made again.
func TestBadGateways(t *testing.T) {
	j := testJob(t, "job1", 1)
	gw := newFakeGW(t, j, true)
	a, _ := startAgent(t, []string{gw.addr}, func(c *config.Config) { c.Token = "wrong" })
	testutil.Eventually(t, 10*time.Second, func() bool {
		gw.mu.Lock()
		defer gw.mu.Unlock()
		return len(gw.conns) >= 3
	}, "the agent retries")
	require.False(t, a.up.Linked())
	gw.mu.Lock()
	require.Empty(t, gw.hellos, "no session with a wrong token")
	gw.mu.Unlock()

	gw2 := newFakeGW(t, j, true)
	gw2.garbage = 1
	b, _ := startAgent(t, []string{gw2.addr}, nil)
	testutil.Eventually(t, 10*time.Second, func() bool {
		gw2.mu.Lock()
		defer gw2.mu.Unlock()
		return len(gw2.hellos) >= 2 && b.up.Linked()
	}, "the agent drops the garbled link and links again")
}

// TestRestartOnSamePort: a restarted agent binds its Stratum port at once
// although the connections its predecessor closed are in TIME-WAIT there
// (shell/restart.sh stops and starts right away).
func TestRestartOnSamePort(t *testing.T) {
	j := testJob(t, "job1", 1)
	gw := newFakeGW(t, j, true)
	cfg := config.Default()
	cfg.Instance, cfg.RunDir, cfg.AgentID, cfg.Token = "agent-test", t.TempDir(), "farm1", testToken
	cfg.Upstream.Servers = []config.Server{{Addr: gw.addr}}
	cfg.Stratum.Listen = "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	cfg.Stratum.Loops = 1
	cfg.Vardiff.Min, cfg.Vardiff.Start, cfg.Vardiff.Max = 1e-9, 1e-6, 1e-6
	cfg.ShutdownTimeout = confutil.Duration(2 * time.Second)
	for round := 0; round < 2; round++ {
		a, err := New(cfg, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), zap.NewAtomicLevel())
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		select {
		case <-a.server.Booted():
		case err := <-done:
			cancel()
			t.Fatalf("round %d: %v", round, err)
		}
		m := dialMiner(t, cfg.Stratum.Listen)
		m.start("frank.rig6")
		cancel() // the agent closes the miner's connection first: TIME-WAIT on its side
		require.NoError(t, <-done)
	}
}

// TestReplayQueueBounded: shares no gateway acknowledges are kept for
// max_replay_age, then dropped and counted (a gateway would not credit
// them anyway).
func TestReplayQueueBounded(t *testing.T) {
	j := testJob(t, "job1", 1)
	gw := newFakeGW(t, j, false) // never acknowledges
	a, addr := startAgent(t, []string{gw.addr}, func(c *config.Config) {
		c.MaxReplayAge = confutil.Duration(time.Second)
	})
	m := dialMiner(t, addr)
	m.start("gina.rig7")
	for i := uint32(1); i <= 3; i++ {
		en2, nonce := m.find(j, i, m.diff, false)
		require.Zero(t, m.submit("gina.rig7", j, en2, nonce))
	}
	gw.waitFor("three shares", func(msgs []agentwire.Message) bool { return countShares(msgs) == 3 })
	require.Equal(t, 3, a.up.Status().PendingShares)
	testutil.Eventually(t, 10*time.Second, func() bool {
		st := a.up.Status()
		return st.PendingShares == 0 && st.DroppedShares == 3
	}, "old batches dropped: %+v", a.up.Status())
}
