package session

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/hashgate/hashgate/pkg/stratum"
	"github.com/hashgate/hashgate/pkg/work"
)

// TestSizes keeps what a daemon holds per miner in its size classes: a
// field more moves Session to the next class (384 bytes).
func TestSizes(t *testing.T) {
	if n := unsafe.Sizeof(Session{}); n > 352 {
		t.Errorf("Session is %d bytes, want at most 352", n)
	}
	if n := unsafe.Sizeof(worker{}); n > 32 {
		t.Errorf("worker is %d bytes, want at most 32", n)
	}
	t.Logf("Session %d bytes, worker %d bytes", unsafe.Sizeof(Session{}), unsafe.Sizeof(worker{}))
}

// TestHeldSubscribeResumes: a subscribe held until the first job resumes
// the extranonce1 it names (the last subscribe's), and the minimum
// difficulty configured before it still holds after.
func TestHeldSubscribeResumes(t *testing.T) {
	h := newHarness(t)
	h.addJob("r1", 100, netBits, true)
	en1 := h.start("alice.w")
	h.s.Close()

	// A fresh table: no job yet, so the next subscribe is held.
	h.env.Jobs = work.NewTable(30*time.Second, func() time.Time { return h.now })
	h.s = New(h.env, 2, "127.0.0.1:6666")
	h.send(`{"id":1,"method":"mining.configure","params":[["minimum-difficulty"],{"minimum-difficulty.value":0.5}]}`)
	res, _ := h.req("mining.subscribe", "cgminer", "deadbeef")
	require.Empty(t, res, "held")
	res, _ = h.req("mining.subscribe", "cgminer", hex.EncodeToString(en1))
	require.Empty(t, res, "held")
	subID := h.id
	j := h.addJob("r2", 101, netBits, true)
	r, err := stratum.DecodeResponse(bytes.TrimSpace(h.s.OnFirstJob(j)))
	require.NoError(t, err)
	require.Equal(t, fmt.Sprint(subID), string(r.ID), "the last subscribe is answered")
	var sub []json.RawMessage
	require.NoError(t, json.Unmarshal(r.Result, &sub))
	require.Equal(t, `"`+hex.EncodeToString(en1)+`"`, string(sub[1]), "extranonce1 resumed")
	require.Empty(t, h.s.OnFirstJob(j), "only once")

	h.req("mining.suggest_difficulty", 0.01)
	require.Equal(t, 0.5, h.s.Difficulty(), "the configured minimum holds")
}

// TestWorkerNames: a worker's user and worker parts are ParseAccount's,
// sharing the account's bytes when the account reads "user.worker".
func TestWorkerNames(t *testing.T) {
	for account, want := range map[string][3]string{
		"alice.rig1":       {"alice", "rig1", "alice.rig1"},
		"alice.rig1.extra": {"alice", "rig1", "alice.rig1"},
		"Alice.Rig1":       {"alice", "rig1", "alice.rig1"},
		"alice":            {"alice", "default", "alice.default"},
		"alice:rig1":       {"alice", "rig1", "alice.rig1"},
		" alice.rig1":      {"alice", "rig1", "alice.rig1"},
		"a.b":              {"a", "b", "a.b"},
		"alice.default":    {"alice", "default", "alice.default"},
		strings.Repeat("u", 64) + "." + strings.Repeat("w", 64) + ".x": {strings.Repeat("u", 64),
			strings.Repeat("w", 64), strings.Repeat("u", 64) + "." + strings.Repeat("w", 64)},
		strings.Repeat("U", 64) + ":" + strings.Repeat("W", 64): {strings.Repeat("u", 64),
			strings.Repeat("w", 64), strings.Repeat("u", 64) + "." + strings.Repeat("w", 64)},
	} {
		user, wname, ok := ParseAccount(account)
		require.True(t, ok, account)
		w := newWorker(account, user, wname)
		require.Equal(t, want, [3]string{w.user(), w.wname(), w.id()}, account)
		require.Equal(t, account, w.name())
		if strings.HasPrefix(account, want[2]) {
			require.Equal(t, unsafe.StringData(account), unsafe.StringData(w.buf), "%s: shared", account)
			require.Equal(t, account, w.buf, "%s: nothing else kept", account)
		}
	}
}

// sizedXN hands out extranonce1 values of any size (a counter in the last
// bytes) and records what is released.
type sizedXN struct {
	size     int
	next     byte
	released [][]byte
}

func (x *sizedXN) Size() int { return x.size }
func (x *sizedXN) Allocate(dst []byte, _ string) (bool, error) {
	x.next++
	for i := range dst {
		dst[i] = x.next + byte(i)
	}
	return false, nil
}
func (x *sizedXN) Release(en1 []byte) { x.released = append(x.released, bytes.Clone(en1)) }

// TestExtranonce1Sizes: an extranonce1 is kept in the session up to
// len(en1Buf) bytes and apart beyond; either way the miner gets it in the
// subscribe reply (also a held one) and in set_extranonce, its shares are
// hashed with it, and Close releases it, also next to a configured minimum
// difficulty.
func TestExtranonce1Sizes(t *testing.T) {
	for _, size := range []int{0, 1, 4, 8, 15, 16, 20} {
		for _, held := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d held %v", size, held), func(t *testing.T) {
				h := newHarness(t)
				xn := &sizedXN{size: size}
				h.env.Extranonce = xn
				h.send(`{"id":100,"method":"mining.configure","params":[["minimum-difficulty","subscribe-extranonce"],{"minimum-difficulty.value":1e-7}]}`)
				var j *work.Job
				if !held {
					j = h.addJob("a1", 100, netBits, true)
				}
				res, reason := h.req("mining.subscribe", "cgminer/4.11")
				require.Empty(t, reason)
				if held {
					require.Empty(t, res)
					j = h.addJob("a1", 100, netBits, true)
					out := h.s.OnFirstJob(j)
					r, err := stratum.DecodeResponse(bytes.TrimSpace(out))
					require.NoError(t, err)
					res = []stratum.Response{r}
				}
				var sub []json.RawMessage
				require.NoError(t, json.Unmarshal(replyTo(t, res, h.id).Result, &sub))
				want := make([]byte, size)
				for i := range want {
					want[i] = 1 + byte(i)
				}
				require.Equal(t, `"`+hex.EncodeToString(want)+`"`, string(sub[1]))
				require.Equal(t, want, h.s.Extranonce1())
				require.NotNil(t, h.s.Extranonce1(), "subscribed: non-nil even when empty")
				require.Equal(t, size > len(h.s.en1Buf), h.s.en1Len == en1Long)
				require.Equal(t, 1e-7, h.s.minDiff(), "the minimum difficulty is kept")

				res, _ = h.req("mining.authorize", "alice.w", "x")
				require.Equal(t, "true", string(replyTo(t, res, h.id).Result))
				en2, nonce := h.mine(j, want, j.Version, 1e-7, netDiff)
				res, _ = h.req("mining.submit", "alice.w", "a1", en2, fmt.Sprintf("%08x", j.CurTime), nonce)
				require.Nil(t, replyTo(t, res, h.id).Error, "accepted: hashed with the extranonce1")
				require.Contains(t, string(h.s.SetExtranonceFrame()), hex.EncodeToString(want))

				h.s.Close()
				require.Equal(t, [][]byte{want}, xn.released)
			})
		}
	}
}
