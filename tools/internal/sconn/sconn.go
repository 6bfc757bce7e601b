// Package sconn is the client side of one Stratum V1 TCP connection for
// the test miner and the load generator: newline framing over a small
// growable buffer (stratum.SplitLine), receive timestamps, and the helpers
// that read the replies to subscribe and configure.
//
// # Receive timestamps
//
// ReadLine returns with each line the wall-clock time (Unix nanoseconds) at
// which it arrived. With kernel timestamps (Linux SO_TIMESTAMPNS, which TCP
// reports for the last segment a recvmsg consumed) this is when the kernel
// queued the bytes, so it does not include the time the reading goroutine
// waited to be scheduled: with thousands of connections on two cores that
// wait would otherwise dominate a fan-out measurement. Without them (other
// systems, or a socket that reports none) it is time.Now() after the read.
// Wall-clock time, unlike Go's monotonic readings, is comparable across the
// load generator's processes on one machine.
//
// # Memory
//
// A Conn starts with a buffer of the size given to Dial (1 KiB is plenty
// for replies; a mining.notify with a long merkle branch grows it once) and
// never holds more than MaxLine bytes.
//
// Concurrency: ReadLine and SetReadDeadline belong to one reading
// goroutine; Write may be called from another goroutine (callers serialise
// their writes); Close is safe from anywhere.
package sconn

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashgate/hashgate/pkg/stratum"
)

// MaxLine is the longest line accepted from a pool.
const MaxLine = 64 << 10

// ErrLineTooLong is returned when the pool sends a line over MaxLine.
var ErrLineTooLong = errors.New("sconn: line from pool too long")

// Conn is one Stratum client connection.
type Conn struct {
	nc       *net.TCPConn
	raw      syscall.RawConn
	kernelTS bool
	oob      []byte

	buf    []byte
	r, w   int
	lastRx int64 // timestamp of the most recent read
}

// Dial connects to addr (host:port) with d, enabling kernel receive
// timestamps when kernelTS is set and the system supports them. bufSize is
// the initial read buffer.
func Dial(ctx context.Context, d *net.Dialer, addr string, kernelTS bool, bufSize int) (*Conn, error) {
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		nc.Close()
		return nil, fmt.Errorf("sconn: %T is not a TCP connection", nc)
	}
	if bufSize < 256 {
		bufSize = 256
	}
	c := &Conn{nc: tc, buf: make([]byte, bufSize)}
	if kernelTS {
		if raw, err := tc.SyscallConn(); err == nil && enableTimestamps(raw) {
			c.raw, c.kernelTS = raw, true
			c.oob = make([]byte, oobSize)
		}
	}
	return c, nil
}

// KernelTimestamps reports whether receive times come from the kernel.
func (c *Conn) KernelTimestamps() bool { return c.kernelTS }

// LocalAddr returns the local address.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// RemoteAddr returns the pool's address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// Write writes b completely.
func (c *Conn) Write(b []byte) error {
	_, err := c.nc.Write(b)
	return err
}

// SetReadDeadline sets the deadline of ReadLine; a zero t means none.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.nc.SetReadDeadline(t) }

// SetWriteDeadline sets the deadline of Write.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.nc.SetWriteDeadline(t) }

// Close closes the connection.
func (c *Conn) Close() error { return c.nc.Close() }

// ReadLine returns the next non-empty line (without its newline) and the
// Unix-nanosecond time it arrived. The line is valid until the next call.
// A deadline error leaves any partial line buffered, so the caller may do
// other work and call again.
func (c *Conn) ReadLine() (line []byte, rx int64, err error) {
	for {
		for c.r < c.w {
			line, n, err := stratum.SplitLine(c.buf[c.r:c.w], MaxLine)
			if err != nil {
				if errors.Is(err, stratum.ErrLineTooLong) {
					return nil, 0, ErrLineTooLong
				}
				break // incomplete
			}
			c.r += n
			if len(line) == 0 {
				continue
			}
			return line, c.lastRx, nil
		}
		if c.r == c.w {
			c.r, c.w = 0, 0
		}
		if c.w == len(c.buf) {
			if c.r > 0 {
				c.w = copy(c.buf, c.buf[c.r:c.w])
				c.r = 0
			} else {
				if len(c.buf) >= MaxLine+1 {
					return nil, 0, ErrLineTooLong
				}
				nb := make([]byte, min(2*len(c.buf), MaxLine+1))
				c.w = copy(nb, c.buf[c.r:c.w])
				c.r = 0
				c.buf = nb
			}
		}
		n, ts, err := c.read(c.buf[c.w:])
		if n > 0 {
			c.w += n
			c.lastRx = ts
		}
		if err != nil {
			return nil, 0, err
		}
	}
}

// read reads into p with a receive timestamp.
func (c *Conn) read(p []byte) (int, int64, error) {
	if !c.kernelTS {
		n, err := c.nc.Read(p)
		return n, time.Now().UnixNano(), err
	}
	return recvTimestamped(c.raw, p, c.oob)
}

// IsTimeout reports whether err is a deadline expiry.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// ParseID returns a reply's numeric id (0 for null or non-numeric ids).
func ParseID(raw json.RawMessage) uint64 {
	id, err := strconv.ParseUint(strings.TrimSpace(string(raw)), 10, 64)
	if err != nil {
		return 0
	}
	return id
}

// Subscription is what a mining.subscribe reply carries.
type Subscription struct {
	// SessionID is the id to send back in a later subscribe to resume
	// (the mining.notify subscription id, else the first one).
	SessionID   string
	Extranonce1 []byte
	EN2Size     int
}

// ParseSubscribeResult decodes [[["mining.set_difficulty","sid"],
// ["mining.notify","sid"]],"<en1 hex>",<en2 size>]. The subscription list
// may also be a single pair, as some pools send.
func ParseSubscribeResult(raw json.RawMessage) (Subscription, error) {
	var arr []json.RawMessage
	if err := json.Unmarshal(raw, &arr); err != nil || len(arr) < 3 {
		return Subscription{}, fmt.Errorf("sconn: subscribe result %.80s: not [subs, en1, en2size]", raw)
	}
	var s Subscription
	var en1 string
	if err := json.Unmarshal(arr[1], &en1); err != nil {
		return s, fmt.Errorf("sconn: subscribe result: extranonce1: %w", err)
	}
	b, err := hex.DecodeString(en1)
	if err != nil {
		return s, fmt.Errorf("sconn: subscribe result: extranonce1 %q: %w", en1, err)
	}
	s.Extranonce1 = b
	if err := json.Unmarshal(arr[2], &s.EN2Size); err != nil || s.EN2Size < 1 || s.EN2Size > 32 {
		return s, fmt.Errorf("sconn: subscribe result: extranonce2 size %s", arr[2])
	}
	// Subscriptions: a list of [method, id] pairs, or one pair.
	var pairs [][]any
	if json.Unmarshal(arr[0], &pairs) != nil {
		var one []any
		if json.Unmarshal(arr[0], &one) == nil {
			pairs = [][]any{one}
		}
	}
	for _, p := range pairs {
		if len(p) < 2 {
			continue
		}
		m, _ := p[0].(string)
		id, _ := p[1].(string)
		if id == "" {
			continue
		}
		if s.SessionID == "" || m == "mining.notify" {
			s.SessionID = id
		}
	}
	return s, nil
}

// ParseConfigureResult reads the version-rolling part of a mining.configure
// reply: whether it was granted and the mask.
func ParseConfigureResult(raw json.RawMessage) (mask uint32, granted bool) {
	var res map[string]json.RawMessage
	if json.Unmarshal(raw, &res) != nil {
		return 0, false
	}
	var ok bool
	if json.Unmarshal(res["version-rolling"], &ok) != nil || !ok {
		return 0, false
	}
	var ms string
	if json.Unmarshal(res["version-rolling.mask"], &ms) != nil {
		return 0, false
	}
	m, err := strconv.ParseUint(ms, 16, 32)
	if err != nil {
		return 0, false
	}
	return uint32(m), true
}

// ParseVersionMask reads mining.set_version_mask params ["1fffe000"].
func ParseVersionMask(params json.RawMessage) (uint32, bool) {
	var ps []string
	if json.Unmarshal(params, &ps) != nil || len(ps) == 0 {
		return 0, false
	}
	m, err := strconv.ParseUint(ps[0], 16, 32)
	return uint32(m), err == nil
}

// ParseReconnect reads client.reconnect params [host, port, wait]; empty
// host or zero port mean "the same".
func ParseReconnect(params json.RawMessage) (host string, port int, wait time.Duration) {
	var ps []any
	if json.Unmarshal(params, &ps) != nil {
		return "", 0, 0
	}
	if len(ps) > 0 {
		host, _ = ps[0].(string)
	}
	if len(ps) > 1 {
		switch v := ps[1].(type) {
		case string:
			port, _ = strconv.Atoi(v)
		case float64:
			port = int(v)
		}
	}
	if len(ps) > 2 {
		if v, ok := ps[2].(float64); ok && v > 0 {
			wait = time.Duration(v * float64(time.Second))
		}
	}
	return host, port, wait
}

// ParseURL accepts stratum+tcp://host:port, tcp://host:port or host:port
// and returns host:port.
func ParseURL(u string) (string, error) {
	for _, p := range []string{"stratum+tcp://", "stratum://", "tcp://"} {
		u = strings.TrimPrefix(u, p)
	}
	u = strings.TrimSuffix(u, "/")
	host, port, err := net.SplitHostPort(u)
	if err != nil || host == "" || port == "" {
		return "", fmt.Errorf("url %q: want stratum+tcp://host:port", u)
	}
	return net.JoinHostPort(host, port), nil
}
