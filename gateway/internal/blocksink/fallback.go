package blocksink

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/hashgate/hashgate/pkg/noderpc"
)

// nodeTimeout bounds each RPC call of a fallback submission: a 4 MB block
// is 8 MB of hex to upload and validate.
const nodeTimeout = 30 * time.Second

// fallbackOutcome is what our own submission to the nodes achieved.
type fallbackOutcome struct {
	result string // a fallback* label value
	reason string // per-node detail
	height int64  // from getblockheader when a node holds it on its best chain
}

// submitToNodes submits the block to every node in parallel and asks each
// whether it now holds the block. A node holds it in its best chain when
// getblockheader reports confirmations >= 1; off it when getblockheader
// reports fewer (Bitcoin Core) or only getblock finds it (btcd answers
// getblockheader for main-chain blocks only). submitblock's own answer is
// only a reason: btcd answers null even for an orphan.
func submitToNodes(ctx context.Context, nodes []Node, raw []byte, hash chainhash.Hash) fallbackOutcome {
	blockHex := hex.EncodeToString(raw)
	type nodeResult struct {
		state  string // fallbackAccepted, fallbackSideChain, fallbackRejected or fallbackUnreachable
		reason string
		height int64
	}
	outs := make([]nodeResult, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := &outs[i]
			cctx, cancel := context.WithTimeout(ctx, nodeTimeout)
			defer cancel()
			reject, err := n.Client.SubmitBlock(cctx, blockHex)
			if err != nil && noderpc.IsTransport(err) {
				o.state, o.reason = fallbackUnreachable, fmt.Sprintf("%s: %v", n.Name, err)
				return
			}
			// The node answered: whatever it said, ask whether it holds
			// the block (it may have had it already).
			if info, herr := n.Client.GetBlockHeader(cctx, hash); herr == nil {
				o.height = info.Height
				if info.Confirmations >= 1 {
					o.state = fallbackAccepted
				} else {
					o.state = fallbackSideChain
				}
				return
			} else if noderpc.IsTransport(herr) {
				o.state, o.reason = fallbackUnreachable, fmt.Sprintf("%s: confirm: %v", n.Name, herr)
				return
			}
			if _, berr := n.Client.GetBlockHex(cctx, hash); berr == nil {
				o.state = fallbackSideChain
				return
			} else if noderpc.IsTransport(berr) {
				o.state, o.reason = fallbackUnreachable, fmt.Sprintf("%s: confirm: %v", n.Name, berr)
				return
			}
			o.state = fallbackRejected
			switch {
			case err != nil:
				o.reason = fmt.Sprintf("%s: %v", n.Name, err)
			case reject != "":
				o.reason = n.Name + ": " + reject
			default:
				o.reason = n.Name + ": accepted by submitblock but unknown afterwards (orphan?)"
			}
		}()
	}
	wg.Wait()

	var out fallbackOutcome
	count := map[string]int{}
	var reasons []string
	for _, o := range outs {
		count[o.state]++
		if o.reason != "" {
			reasons = append(reasons, o.reason)
		}
		if o.state == fallbackAccepted {
			out.height = o.height
		}
	}
	out.reason = strings.Join(reasons, "; ")
	switch {
	case count[fallbackAccepted] > 0:
		out.result = fallbackAccepted
	case count[fallbackSideChain] > 0:
		out.result = fallbackSideChain
	case count[fallbackRejected] > 0:
		out.result = fallbackRejected
	default:
		out.result = fallbackUnreachable
	}
	if ctx.Err() != nil && out.result == fallbackUnreachable {
		out.reason = errors.Join(ctx.Err(), errors.New(out.reason)).Error()
	}
	return out
}
