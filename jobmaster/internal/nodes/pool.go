// Package nodes manages the jobmaster's Bitcoin nodes: an ordered failover
// pool with per-node health, and the watchers that notice new tips (a fast
// getbestblockhash poll, ZMQ hashblock subscriptions and getblocktemplate
// long polls).
//
// Concurrency: Pool and Node are safe for concurrent use. Watchers run in
// their own goroutines and report through callbacks that must not block.
package nodes

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hashgate/hashgate/pkg/noderpc"
)

// Node is one Bitcoin node with its health.
type Node struct {
	Name     string
	Client   *noderpc.Client
	ZMQ      string
	LongPoll bool
	Timeout  time.Duration

	mu        sync.Mutex
	up        bool
	failures  int
	downUntil time.Time
	lastErr   error
	lastOK    time.Time
}

// Status is a node's health snapshot for /status.
type Status struct {
	Name      string    `json:"name"`
	URL       string    `json:"url"`
	Up        bool      `json:"up"`
	Failures  int       `json:"failures"`
	LastError string    `json:"last_error,omitempty"`
	LastOK    time.Time `json:"last_ok"`
}

// Pool is the ordered list of nodes.
type Pool struct {
	nodes []*Node
	lg    *zap.Logger
	now   func() time.Time
	// OnChange, if set, is called (without locks held) when a node goes
	// up or down.
	OnChange func(n *Node, up bool)
}

// NewPool returns a pool over nodes in failover order; every node starts up.
func NewPool(nodes []*Node, lg *zap.Logger) *Pool {
	if lg == nil {
		lg = zap.NewNop()
	}
	for _, n := range nodes {
		n.up = true
	}
	return &Pool{nodes: nodes, lg: lg, now: time.Now}
}

// Nodes returns the nodes in order.
func (p *Pool) Nodes() []*Node { return p.nodes }

// Up reports whether the node is considered healthy.
func (n *Node) Up() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.up
}

// Status returns a snapshot.
func (n *Node) Status() Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := Status{Name: n.Name, URL: n.Client.URL(), Up: n.up, Failures: n.failures, LastOK: n.lastOK}
	if n.lastErr != nil {
		s.LastError = n.lastErr.Error()
	}
	return s
}

// Succeeded records a good answer from n.
func (p *Pool) Succeeded(n *Node) {
	n.mu.Lock()
	was := n.up
	n.up, n.failures, n.lastErr, n.lastOK = true, 0, nil, p.now()
	n.mu.Unlock()
	if !was {
		p.lg.Info("node is back", zap.String("node", n.Name))
		if p.OnChange != nil {
			p.OnChange(n, true)
		}
	}
}

// Failed records a failed call. Transport errors, authentication failures,
// garbage answers and "still syncing" answers take the node out of rotation
// with a growing back-off (1 s doubling to 30 s); other RPC errors (the node
// answered sensibly but refused) do not.
func (p *Pool) Failed(n *Node, err error) {
	if !Disqualifying(err) {
		return
	}
	n.mu.Lock()
	was := n.up
	n.failures++
	n.lastErr = err
	n.up = false
	backoff := time.Second << min(n.failures-1, 5)
	if backoff > 30*time.Second {
		backoff = 30 * time.Second
	}
	n.downUntil = p.now().Add(backoff)
	n.mu.Unlock()
	if was {
		p.lg.Warn("node is down", zap.String("node", n.Name), zap.Error(err))
		if p.OnChange != nil {
			p.OnChange(n, false)
		}
	}
}

// Disqualifying reports whether err means the node cannot be used now.
func Disqualifying(err error) bool {
	if err == nil {
		return false
	}
	var rpcErr *noderpc.RPCError
	if errors.As(err, &rpcErr) {
		// -9 not connected, -10 initial block download, -28 warming up.
		return rpcErr.Code == -9 || rpcErr.Code == -10 || rpcErr.Code == -28
	}
	// Transport errors, unauthorized, bad templates, anything else.
	return true
}

// Active returns the first healthy node, or, when all are down, the one
// whose back-off ends first (so work resumes as soon as any node answers).
func (p *Pool) Active() *Node {
	var best *Node
	var bestAt time.Time
	for _, n := range p.nodes {
		n.mu.Lock()
		up, at := n.up, n.downUntil
		n.mu.Unlock()
		if up {
			return n
		}
		if best == nil || at.Before(bestAt) {
			best, bestAt = n, at
		}
	}
	return best
}

// Down returns the nodes currently out of rotation whose back-off is over
// (due for a probe).
func (p *Pool) due() []*Node {
	now := p.now()
	var out []*Node
	for _, n := range p.nodes {
		n.mu.Lock()
		if !n.up && !now.Before(n.downUntil) {
			out = append(out, n)
		}
		n.mu.Unlock()
	}
	return out
}

// Check returns nil when every node is up, else an error naming the nodes
// that are down (for /healthz "degraded").
func (p *Pool) Check() error {
	var down []string
	for _, n := range p.nodes {
		s := n.Status()
		if !s.Up {
			down = append(down, fmt.Sprintf("%s: %s", s.Name, s.LastError))
		}
	}
	if len(down) > 0 {
		return fmt.Errorf("nodes down: %s", strings.Join(down, "; "))
	}
	return nil
}

// Statuses returns every node's snapshot.
func (p *Pool) Statuses() []Status {
	out := make([]Status, len(p.nodes))
	for i, n := range p.nodes {
		out[i] = n.Status()
	}
	return out
}

// Template fetches a block template, trying nodes in failover order
// starting with the active one. It returns the node that answered.
func (p *Pool) Template(ctx context.Context) (*noderpc.Template, *Node, error) {
	var errs []error
	tried := map[*Node]bool{}
	order := append([]*Node{p.Active()}, p.nodes...)
	for _, n := range order {
		if tried[n] || (len(tried) > 0 && !n.Up() && n != p.Active()) {
			continue
		}
		tried[n] = true
		cctx, cancel := context.WithTimeout(ctx, n.Timeout)
		t, err := n.Client.GetBlockTemplate(cctx, noderpc.TemplateRequest{Rules: []string{"segwit"}})
		cancel()
		if err == nil {
			p.Succeeded(n)
			return t, n, nil
		}
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		p.Failed(n, err)
		errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
	}
	return nil, nil, fmt.Errorf("getblocktemplate: %w", errors.Join(errs...))
}
