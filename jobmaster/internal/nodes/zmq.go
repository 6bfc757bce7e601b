package nodes

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	zmq "github.com/pebbe/zmq4"
	"go.uber.org/zap"
)

// ParseHashBlock decodes a Bitcoin Core ZMQ hashblock message: three frames,
// the topic "hashblock", the 32-byte block hash in display (RPC) byte order,
// and a 4-byte little-endian sequence number. It returns the hash in
// internal byte order.
func ParseHashBlock(frames [][]byte) (chainhash.Hash, uint32, error) {
	var h chainhash.Hash
	if len(frames) != 3 {
		return h, 0, fmt.Errorf("zmq hashblock: %d frames, want 3", len(frames))
	}
	if string(frames[0]) != "hashblock" {
		return h, 0, fmt.Errorf("zmq hashblock: topic %q", frames[0])
	}
	if len(frames[1]) != 32 || len(frames[2]) != 4 {
		return h, 0, fmt.Errorf("zmq hashblock: body %d bytes, sequence %d bytes", len(frames[1]), len(frames[2]))
	}
	for i := 0; i < 32; i++ {
		h[i] = frames[1][31-i]
	}
	return h, binary.LittleEndian.Uint32(frames[2]), nil
}

// WatchZMQ subscribes to n's hashblock endpoint and reports every block
// hash. ZMQ reconnects by itself; malformed messages are logged at debug
// and skipped. It returns when ctx is done.
func (p *Pool) WatchZMQ(ctx context.Context, n *Node, onTip TipFunc) error {
	sock, err := zmq.NewSocket(zmq.SUB)
	if err != nil {
		return fmt.Errorf("zmq socket for %s: %w", n.Name, err)
	}
	defer sock.Close()
	if err := sock.SetLinger(0); err != nil {
		return fmt.Errorf("zmq linger: %w", err)
	}
	if err := sock.SetRcvtimeo(200 * time.Millisecond); err != nil {
		return fmt.Errorf("zmq rcvtimeo: %w", err)
	}
	if err := sock.SetSubscribe("hashblock"); err != nil {
		return fmt.Errorf("zmq subscribe: %w", err)
	}
	if err := sock.Connect(n.ZMQ); err != nil {
		return fmt.Errorf("zmq connect %s: %w", n.ZMQ, err)
	}
	lg := p.lg.With(zap.String("node", n.Name), zap.String("endpoint", n.ZMQ))
	lg.Info("zmq hashblock subscribed")
	var lastSeq uint32
	var have bool
	for ctx.Err() == nil {
		frames, err := sock.RecvMessageBytes(0)
		if err != nil {
			// Timeouts (EAGAIN) let us notice ctx; other errors too are
			// transient for a SUB socket.
			continue
		}
		h, seq, err := ParseHashBlock(frames)
		if err != nil {
			lg.Debug("zmq message ignored", zap.Error(err))
			continue
		}
		if have && seq != lastSeq+1 {
			lg.Info("zmq sequence gap", zap.Uint32("last", lastSeq), zap.Uint32("seq", seq))
		}
		lastSeq, have = seq, true
		onTip(h, n, "zmq", time.Now())
	}
	return nil
}
