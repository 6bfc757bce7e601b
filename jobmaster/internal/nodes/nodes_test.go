package nodes

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/stretchr/testify/require"

	"github.com/hashgate/hashgate/pkg/noderpc"
)

func TestParseHashBlock(t *testing.T) {
	want := chainhash.DoubleHashH([]byte("block"))
	display := make([]byte, 32)
	for i := range display {
		display[i] = want[31-i]
	}
	seq := binary.LittleEndian.AppendUint32(nil, 42)
	h, s, err := ParseHashBlock([][]byte{[]byte("hashblock"), display, seq})
	require.NoError(t, err)
	require.Equal(t, want, h)
	require.Equal(t, uint32(42), s)
	require.Equal(t, want.String(), chainhash.Hash(h).String())

	for name, frames := range map[string][][]byte{
		"two frames":  {[]byte("hashblock"), display},
		"wrong topic": {[]byte("rawblock"), display, seq},
		"short hash":  {[]byte("hashblock"), display[:31], seq},
		"long seq":    {[]byte("hashblock"), display, append(seq, 0)},
	} {
		_, _, err := ParseHashBlock(frames)
		require.Error(t, err, name)
	}
}

func TestDisqualifying(t *testing.T) {
	require.False(t, Disqualifying(nil))
	require.True(t, Disqualifying(&noderpc.TransportError{Op: "x", Err: errors.New("refused")}))
	require.True(t, Disqualifying(noderpc.ErrUnauthorized))
	require.True(t, Disqualifying(&noderpc.RPCError{Code: -10, Message: "Bitcoin is downloading blocks..."}))
	require.False(t, Disqualifying(&noderpc.RPCError{Code: -25, Message: "bad-prevblk"}))
}

// fakeNode answers getbestblockhash / getblocktemplate like a node, or fails.
func fakeNode(t *testing.T, hash string, fail *atomic.Bool) *Node {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		var req struct {
			ID json.RawMessage `json:"id"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		_, _ = w.Write([]byte(`{"result":"` + hash + `","error":null,"id":` + string(req.ID) + `}`))
	}))
	t.Cleanup(srv.Close)
	cl, err := noderpc.New(noderpc.Options{URL: srv.URL, Timeout: time.Second})
	require.NoError(t, err)
	return &Node{Name: hash[:4], Client: cl, Timeout: time.Second}
}

func TestPoolFailoverAndFailback(t *testing.T) {
	var fail1, fail2 atomic.Bool
	h1 := chainhash.DoubleHashH([]byte("1")).String()
	h2 := chainhash.DoubleHashH([]byte("2")).String()
	n1, n2 := fakeNode(t, h1, &fail1), fakeNode(t, h2, &fail2)
	p := NewPool([]*Node{n1, n2}, nil)
	var changes []string
	p.OnChange = func(n *Node, up bool) {
		if up {
			changes = append(changes, n.Name+" up")
		} else {
			changes = append(changes, n.Name+" down")
		}
	}
	require.Same(t, n1, p.Active())
	require.NoError(t, p.Check())

	fail1.Store(true)
	_, ok := p.bestHash(context.Background(), n1)
	require.False(t, ok)
	require.Same(t, n2, p.Active(), "fails over to the second node")
	require.ErrorContains(t, p.Check(), n1.Name)

	// Back-off: the first node is not probed before its time.
	require.Empty(t, p.due())
	now := time.Now().Add(2 * time.Second)
	p.now = func() time.Time { return now }
	require.Equal(t, []*Node{n1}, p.due())

	fail1.Store(false)
	h, ok := p.bestHash(context.Background(), n1)
	require.True(t, ok)
	require.Equal(t, h1, h.String())
	require.Same(t, n1, p.Active(), "fails back to the preferred node")
	require.Equal(t, []string{n1.Name + " down", n1.Name + " up"}, changes)

	// All down: the one whose back-off ends first is still offered.
	fail1.Store(true)
	fail2.Store(true)
	p.bestHash(context.Background(), n1)
	p.bestHash(context.Background(), n2)
	require.NotNil(t, p.Active())
	_, _, err := p.Template(context.Background())
	require.Error(t, err)
}
