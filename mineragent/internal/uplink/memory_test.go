package uplink

import (
	"encoding/binary"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"go.uber.org/zap"

	"github.com/hashgate/hashgate/pkg/agentwire"
	"github.com/hashgate/hashgate/pkg/bus"
	"github.com/hashgate/hashgate/pkg/session"
	"github.com/hashgate/hashgate/pkg/stratum"
	"github.com/hashgate/hashgate/pkg/testutil"
	"github.com/hashgate/hashgate/pkg/vardiff"
	"github.com/hashgate/hashgate/pkg/work"
)

type nopHandler struct{}

func (nopHandler) Welcome(*agentwire.Welcome) {}
func (nopHandler) Job(*agentwire.Job)         {}

type nopCounter struct{}

func (nopCounter) Share(string) {}
func (nopCounter) Block()       {}

type nopBlocks struct{}

func (nopBlocks) Submit(*bus.FoundBlock, []byte) {}

// idsOnly is an Upstream that keeps nothing per worker: the reference the
// Client's own cost is measured against.
type idsOnly struct{ next atomic.Uint32 }

func (u *idsOnly) Login(*session.Session, string, string) uint32          { return u.next.Add(1) }
func (u *idsOnly) Logout(*session.Session, uint32)                        {}
func (u *idsOnly) Share(*session.Session, uint32, *session.AcceptedShare) {}

// counterXN hands out extranonce1 values from a counter and keeps nothing.
type counterXN struct{ next atomic.Uint32 }

func (x *counterXN) Size() int { return 4 }
func (x *counterXN) Allocate(dst []byte, _ string) (bool, error) {
	binary.BigEndian.PutUint32(dst, x.next.Add(1))
	return false, nil
}
func (x *counterXN) Release([]byte) {}

// TestMemoryPerMiner reports the live heap the Client keeps per logged-in
// miner (its miner record and map entry), measured against an Upstream
// that keeps nothing, with miners handshaking as the load generator's do
// (configure, subscribe, authorize). It prints the figures (run with -v);
// it judges nothing.
func TestMemoryPerMiner(t *testing.T) {
	const n = 2000
	now := time.Now()
	vd := vardiff.DefaultConfig()
	var mask atomic.Uint32
	mask.Store(0x1fffe000)
	table := work.NewTable(30*time.Second, nil)
	j, err := work.NewJob(&bus.Job{ID: "j1", Height: 100, Bits: 0x1d00ffff, Version: 0x20000000,
		CurTime: uint32(now.Unix()), MinTime: uint32(now.Unix()) - 600, Coinb1: make([]byte, 45),
		Coinb2: make([]byte, 110), Extranonce1Size: 4, Extranonce2Size: 8, Clean: true}, now)
	if err != nil {
		t.Fatal(err)
	}
	table.Add(j)
	env := &session.Env{Jobs: table, Dedup: work.NewWindowDedup(30*time.Second, nil), Extranonce: &counterXN{},
		Blocks: nopBlocks{}, Vardiff: &vd, Counter: nopCounter{}, Log: zap.NewNop(), PoolMask: &mask,
		MaxWorkers: 64, MaxBadRequests: 20, Now: time.Now}
	c, err := New(Options{Servers: []Server{{Addr: "127.0.0.1:1"}}, Instance: 1, Handler: nopHandler{}})
	if err != nil {
		t.Fatal(err)
	}
	c.prefixLen, c.en1Size = 2, 4 // as a Welcome sets them

	lines := make([][][]byte, 2*n)
	for i := range lines {
		b := stratum.AppendRequest(nil, 1, "mining.configure", []string{"version-rolling"},
			map[string]any{"version-rolling.mask": "1fffe000", "version-rolling.min-bit-count": 2})
		lines[i] = [][]byte{b, stratum.AppendRequest(nil, 2, "mining.subscribe", "hgminer-load/1.0"),
			stratum.AppendRequest(nil, 3, "mining.authorize", "farm."+strconv.Itoa(i%n), "x")}
	}
	sc := new(session.Scratch)
	sessions := make([]*session.Session, 0, 2*n)
	open := func(up session.Upstream, from, to int) {
		env.Upstream = up
		for i := from; i < to; i++ {
			s := session.New(env, uint64(i), "10.1."+strconv.Itoa(i>>8&255)+"."+strconv.Itoa(i&255)+":40000")
			s.ShareScratch(sc)
			for _, l := range lines[i] {
				if _, reason := s.HandleLine(l); reason != session.CloseNone {
					t.Fatalf("closed: %s", reason)
				}
			}
			if !s.Ready() {
				t.Fatal("session not ready")
			}
			sessions = append(sessions, s)
		}
	}
	open(&idsOnly{}, 0, 100) // warm up what is allocated once
	warm := sessions
	sessions = make([]*session.Session, 0, 2*n)

	h0 := testutil.LiveHeap()
	open(&idsOnly{}, 0, n)
	h1 := testutil.LiveHeap()
	open(c, n, 2*n)
	h2 := testutil.LiveHeap()
	if got := c.Status().Miners; got != n {
		t.Fatalf("%d miners, want %d", got, n)
	}
	ref, all := float64(h1-h0)/n, float64(int64(h2)-int64(h1))/n
	t.Logf("heap per miner: %.0f B for the session alone, %.0f B with the Client: %.0f B in the Client",
		ref, all, all-ref)
	runtime.KeepAlive(sessions)
	runtime.KeepAlive(warm)
	runtime.KeepAlive(lines)
}

// TestMinerSize keeps the per-miner record in the 112-byte size class.
func TestMinerSize(t *testing.T) {
	if n := unsafe.Sizeof(miner{}); n > 112 {
		t.Fatalf("miner is %d bytes, want at most 112", n)
	}
}
