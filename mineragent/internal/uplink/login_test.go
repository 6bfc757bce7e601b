package uplink

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/hashgate/hashgate/pkg/agentwire"
	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/session"
	"github.com/hashgate/hashgate/pkg/stratum"
	"github.com/hashgate/hashgate/pkg/vardiff"
	"github.com/hashgate/hashgate/pkg/work"
)

// fixedXN hands out the same extranonce1 of any size.
type fixedXN struct{ en1 []byte }

func (x *fixedXN) Size() int { return len(x.en1) }
func (x *fixedXN) Allocate(dst []byte, _ string) (bool, error) {
	copy(dst, x.en1)
	return false, nil
}
func (x *fixedXN) Release([]byte) {}

// TestLoginMessage: a miner's MinerLogin carries what its session said
// (account, address, user agent, version mask, extranonce1 suffix), for
// short and long suffixes and for a miner that authorized before
// subscribing.
func TestLoginMessage(t *testing.T) {
	now := time.Now()
	j, err := work.NewJob(&bus.Job{ID: "j1", Height: 100, Bits: 0x1d00ffff, Version: 0x20000000,
		CurTime: uint32(now.Unix()), Coinb1: make([]byte, 45), Coinb2: make([]byte, 110),
		Extranonce1Size: 12, Extranonce2Size: 8, Clean: true}, now)
	require.NoError(t, err)
	for _, tc := range []struct {
		name      string
		en1       []byte
		prefixLen int
		authFirst bool
	}{
		{"short", []byte{0xff, 0, 0, 1, 0xab, 0xcd}, 4, false},
		{"long", []byte{0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, 1, false},
		{"empty", []byte{0xff, 0, 0, 1}, 4, false},
		{"authorized first", []byte{0xff, 0, 0, 1, 0xab, 0xcd}, 4, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			table := work.NewTable(30*time.Second, nil)
			table.Add(j)
			vd := vardiff.DefaultConfig()
			var mask atomic.Uint32
			mask.Store(0x1fffe000)
			c, err := New(Options{Servers: []Server{{Addr: "127.0.0.1:1"}}, Instance: 1, Handler: nopHandler{}})
			require.NoError(t, err)
			c.prefixLen, c.en1Size = tc.prefixLen, len(tc.en1)
			env := &session.Env{Jobs: table, Dedup: work.NewWindowDedup(30*time.Second, nil),
				Extranonce: &fixedXN{en1: tc.en1}, Blocks: nopBlocks{}, Vardiff: &vd, Counter: nopCounter{},
				Upstream: c, Log: zap.NewNop(), PoolMask: &mask, MaxWorkers: 4, MaxBadRequests: 4, Now: time.Now}
			s := session.New(env, 1, "[::ffff:10.1.2.3]:4000")
			lines := [][]byte{
				stratum.AppendRequest(nil, 1, "mining.configure", []string{"version-rolling"},
					map[string]any{"version-rolling.mask": "ffffffff"}),
				stratum.AppendRequest(nil, 2, "mining.subscribe", "bmminer/2.0.0"),
				stratum.AppendRequest(nil, 3, "mining.authorize", "Farm.Rig7", "x"),
			}
			if tc.authFirst {
				lines[1], lines[2] = lines[2], lines[1]
			}
			for _, l := range lines {
				s.HandleLine(l)
			}
			require.True(t, s.Ready())
			c.mu.Lock()
			defer c.mu.Unlock()
			require.Len(t, c.miners, 1)
			for _, m := range c.miners {
				if tc.authFirst {
					require.True(t, m.waitEn1, "authorized before its extranonce1")
					c.refresh(m, s)
					require.False(t, m.waitEn1)
				}
				l := c.loginMsg(m, true)
				wantSfx := tc.en1[tc.prefixLen:]
				if len(wantSfx) == 0 {
					wantSfx = nil
				}
				ua := "bmminer/2.0.0"
				if tc.authFirst {
					ua = "" // not subscribed yet when it logged in
				}
				require.Equal(t, &agentwire.MinerLogin{MinerID: m.id, Resumed: true, Extranonce1Suffix: wantSfx,
					User: "farm", Worker: "rig7", VersionMask: 0x1fffe000,
					PeerIP: netip.MustParseAddr("10.1.2.3"), UserAgent: ua}, l)
			}
		})
	}
}
