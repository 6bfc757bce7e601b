package nodes

import (
	"context"
	"errors"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"go.uber.org/zap"

	"github.com/hashgate/hashgate/pkg/noderpc"
)

// TipFunc receives a best-block hash seen on a node; via says how it was
// noticed ("poll", "zmq", "longpoll"). It must not block.
type TipFunc func(hash chainhash.Hash, n *Node, via string, seen time.Time)

// TemplateFunc receives a template a long poll returned. It must not block.
type TemplateFunc func(t *noderpc.Template, n *Node, seen time.Time)

// Poll asks the active node for its best block hash every interval and
// reports changes; it also probes nodes that are down so they are taken back
// when they recover. It returns when ctx is done.
func (p *Pool) Poll(ctx context.Context, interval time.Duration, onTip TipFunc) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	last := map[*Node]chainhash.Hash{}
	probeEvery := time.Second
	nextProbe := time.Now().Add(probeEvery)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		n := p.Active()
		if h, ok := p.bestHash(ctx, n); ok && h != last[n] {
			last[n] = h
			onTip(h, n, "poll", time.Now())
		}
		if time.Now().After(nextProbe) {
			nextProbe = time.Now().Add(probeEvery)
			for _, d := range p.due() {
				if d != n {
					p.bestHash(ctx, d)
				}
			}
		}
	}
}

func (p *Pool) bestHash(ctx context.Context, n *Node) (chainhash.Hash, bool) {
	cctx, cancel := context.WithTimeout(ctx, n.Timeout)
	h, err := n.Client.GetBestBlockHash(cctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			p.Failed(n, err)
		}
		return chainhash.Hash{}, false
	}
	p.Succeeded(n)
	return h, true
}

// LongPoll keeps a BIP22 long poll open on the active node (when that node
// has longpoll enabled) and reports every template it returns. It returns
// when ctx is done.
func (p *Pool) LongPoll(ctx context.Context, onTemplate TemplateFunc) error {
	var id string
	var idNode *Node
	for ctx.Err() == nil {
		n := p.Active()
		if !n.LongPoll {
			if !sleep(ctx, time.Second) {
				return nil
			}
			continue
		}
		if n != idNode {
			id = ""
		}
		timeout := n.Timeout
		if id != "" {
			timeout = 10 * time.Minute
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		t, err := n.Client.GetBlockTemplate(cctx, noderpc.TemplateRequest{Rules: []string{"segwit"}, LongPollID: id})
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil && id != "" && errors.Is(err, context.DeadlineExceeded):
			// The long poll simply ran out; ask again.
			continue
		case err != nil:
			p.lg.Debug("long poll failed", zap.String("node", n.Name), zap.Error(err))
			p.Failed(n, err)
			id = ""
			if !sleep(ctx, time.Second) {
				return nil
			}
			continue
		}
		p.Succeeded(n)
		if id != "" {
			// The first answer only arms the long poll; later ones are
			// news.
			onTemplate(t, n, time.Now())
		}
		if t.LongPollID == "" {
			// The node does not long-poll; do not spin.
			if !sleep(ctx, 30*time.Second) {
				return nil
			}
		}
		id, idNode = t.LongPollID, n
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
