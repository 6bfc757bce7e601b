package agentwire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// Encoder turns messages into frames for one direction of one connection.
// It keeps, per miner, the difficulty and extranonce2 of the latest share it
// encoded, which the connection encoding of ShareBatch refers to; the
// peer's Decoder keeps the same state. Frames from an Encoder must be
// decoded, in order, by one Decoder that has seen every earlier frame.
//
// Not safe for concurrent use (Conn serialises its writes).
type Encoder struct {
	ctx     shareContext
	scratch batchScratch
}

// NewEncoder returns an Encoder with no state.
func NewEncoder() *Encoder { return &Encoder{} }

// AppendFrame appends m as one frame to dst. On error nothing is appended
// and the state is unchanged.
func (e *Encoder) AppendFrame(dst []byte, m Message) ([]byte, error) {
	start := len(dst)
	dst = append(dst, magic0, magic1, Version, byte(m.Type()), 0, 0, 0, 0)
	var err error
	if b, ok := m.(*ShareBatch); ok {
		dst, err = e.scratch.appendBatch(dst, b, &e.ctx)
	} else {
		dst, err = m.AppendMarshal(dst)
	}
	if err != nil {
		return dst[:start], fmt.Errorf("encode %s: %w", m.Type(), err)
	}
	n := len(dst) - start - HeaderSize
	if n > MaxFrame { // unreachable with the field limits; kept as a guard
		return dst[:start], fmt.Errorf("%w: %s of %d bytes", ErrTooLarge, m.Type(), n)
	}
	binary.LittleEndian.PutUint32(dst[start+4:], uint32(n))
	if l, ok := m.(*MinerLogout); ok {
		e.ctx.forget(l.MinerID)
	}
	return dst, nil
}

// Decoder decodes frame bodies for one direction of one connection,
// resolving ShareBatch's references to earlier shares (see Encoder).
//
// Not safe for concurrent use.
type Decoder struct {
	ctx     shareContext
	scratch batchScratch
}

// NewDecoder returns a Decoder with no state.
func NewDecoder() *Decoder { return &Decoder{} }

// Decode decodes one frame body of type t. The message does not alias body.
func (d *Decoder) Decode(t Type, body []byte) (Message, error) {
	switch t {
	case TypeShareBatch:
		var b ShareBatch
		if err := d.scratch.decodeBatch(&b, body, &d.ctx); err != nil {
			return nil, err
		}
		return &b, nil
	case TypeMinerLogout:
		var l MinerLogout
		if err := l.Unmarshal(body); err != nil {
			return nil, err
		}
		d.ctx.forget(l.MinerID)
		return &l, nil
	}
	return Decode(t, body)
}

// ---------------------------------------------------------------------------

// Codec is the compression a side applies to what it writes. The stream
// preamble names it, so a reader needs no configuration.
type Codec uint8

// Codecs. The numbers are written in the stream preamble and never change.
const (
	// CodecZstd is zstd (klauspost/compress, SpeedFastest, 256 KiB
	// window) as one endless frame, flushed after every write: blocks keep
	// the history of earlier writes. The default.
	CodecZstd Codec = 1
	// CodecS2 is the S2 stream format, flushed after every write; every
	// flush is an independent block (no history, no entropy coding).
	CodecS2 Codec = 2
	// CodecNone sends frames as they are.
	CodecNone Codec = 3
)

func (c Codec) String() string {
	switch c {
	case CodecZstd:
		return "zstd"
	case CodecS2:
		return "s2"
	case CodecNone:
		return "none"
	}
	return fmt.Sprintf("codec(%d)", uint8(c))
}

const (
	preambleSize = 4
	zstdWindow   = 256 << 10 // encoder window: ~13 s of a 10,000-miner upstream
	zstdMaxWin   = 8 << 20   // largest window a reader accepts
	s2Block      = 64 << 10
	bufSize      = 32 << 10

	// A write unit (the frames between two seals) is sealed after the
	// message that takes it past sealBytes or sealMessages.
	sealBytes    = 256 << 10
	sealMessages = 1024
	// Readers refuse units beyond these (one frame at the limit fits).
	maxUnitExtra    = 512 << 10
	maxUnitMessages = 4 * sealMessages
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Read errors besides the framing ones.
var (
	// ErrCorrupt means the compressed stream is damaged: the decompressor
	// refused it, or it decompressed to an impossible frame header.
	ErrCorrupt = errors.New("agentwire: corrupt compressed stream")
	// ErrClosed is returned by reads and writes after Close.
	ErrClosed = errors.New("agentwire: connection closed")
)

// Options configure a Conn.
type Options struct {
	// Codec compresses what this side writes; zero means CodecZstd.
	Codec Codec
	// MaxFrame is the largest frame body this side reads (decompression
	// bomb and memory bound); zero or more than MaxFrame means MaxFrame. A
	// gateway may use far less: agents send nothing near 1 MiB.
	MaxFrame int
}

// Stats are a Conn's byte and message counters. Raw bytes are frame bytes
// (headers, bodies and seals) before compression; wire bytes are what went
// through the io.ReadWriter (preamble and compressed stream).
type Stats struct {
	RawWritten, WireWritten uint64
	RawRead, WireRead       uint64
	MessagesWritten         uint64
	MessagesRead            uint64
}

// Add returns the sum of two sets of counters (links over time).
func (s Stats) Add(o Stats) Stats {
	return Stats{RawWritten: s.RawWritten + o.RawWritten, WireWritten: s.WireWritten + o.WireWritten,
		RawRead: s.RawRead + o.RawRead, WireRead: s.WireRead + o.WireRead,
		MessagesWritten: s.MessagesWritten + o.MessagesWritten, MessagesRead: s.MessagesRead + o.MessagesRead}
}

// Conn is one agent link endpoint: frames, compressed in each direction,
// over an io.ReadWriter (a net.Conn or *tls.Conn).
//
// Stream format, per direction: a 4-byte preamble, magic "HA" | Version |
// Codec, uncompressed; then the compressed frames. Each WriteMessages call
// ends with a seal frame (TypeSeal, body: CRC-32C of the frames since the
// previous seal) and a compressor flush, so its messages reach the peer at
// once. ReadMessage verifies the seal before it returns any message of the
// unit, so a message corrupted anywhere below the frame layer is never
// delivered.
//
// Concurrency: WriteMessages is safe for concurrent use; ReadMessage is
// meant for one reading goroutine (concurrent calls are serialised); one
// reader and any writers may run at the same time, as net.Conn allows.
// Stats and Close are safe at any time. Deadlines are the caller's: set
// them on the net.Conn.
//
// Errors are sticky: after a read error every ReadMessage returns it, after
// a write error every WriteMessages does. Close the Conn then.
type Conn struct {
	rw    io.ReadWriter
	codec Codec
	limit int

	wmu   sync.Mutex
	enc   *Encoder
	wbuf  []byte
	bw    *bufio.Writer
	zw    flushWriter
	wdone bool // preamble written
	werr  error

	rmu     sync.Mutex
	dec     *Decoder
	br      *bufio.Reader // decompressed stream
	cr      *countReader
	zdec    *zstd.Decoder
	rstart  bool // preamble read
	peerVer uint8
	rerr    error
	queue   []Message
	qhead   int
	hdr     [HeaderSize]byte
	rbuf    []byte
	maxSeen int // largest frame body accepted (tests)

	closed atomic.Bool
	stats  struct {
		rawW, wireW, rawR, wireR, msgW, msgR atomic.Uint64
	}
}

type flushWriter interface {
	io.Writer
	Flush() error
}

type nopFlusher struct{ io.Writer }

func (nopFlusher) Flush() error { return nil }

type countWriter struct {
	w io.Writer
	n *atomic.Uint64
}

func (c countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(uint64(n))
	return n, err
}

// countReader counts wire bytes and remembers the transport's first error,
// so that ReadMessage can tell it from a decompressor error.
type countReader struct {
	r   io.Reader
	n   *atomic.Uint64
	err error
}

func (c *countReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	c.n.Add(uint64(n))
	if err != nil {
		c.err = err
	}
	return n, err
}

// NewConn returns a Conn on rw. Nothing is read or written until the first
// ReadMessage or WriteMessages.
func NewConn(rw io.ReadWriter, opts Options) *Conn {
	c := &Conn{rw: rw, codec: opts.Codec, limit: opts.MaxFrame, enc: NewEncoder(), dec: NewDecoder()}
	if c.codec == 0 {
		c.codec = CodecZstd
	}
	if c.limit <= 0 || c.limit > MaxFrame {
		c.limit = MaxFrame
	}
	return c
}

// Stats returns the counters so far.
func (c *Conn) Stats() Stats {
	return Stats{
		RawWritten: c.stats.rawW.Load(), WireWritten: c.stats.wireW.Load(),
		RawRead: c.stats.rawR.Load(), WireRead: c.stats.wireR.Load(),
		MessagesWritten: c.stats.msgW.Load(), MessagesRead: c.stats.msgR.Load(),
	}
}

// startWriter writes the preamble and sets up the compressor.
func (c *Conn) startWriter() error {
	c.wdone = true
	c.bw = bufio.NewWriterSize(countWriter{c.rw, &c.stats.wireW}, bufSize)
	if _, err := c.bw.Write([]byte{magic0, magic1, Version, byte(c.codec)}); err != nil {
		return err
	}
	switch c.codec {
	case CodecZstd:
		zw, err := zstd.NewWriter(c.bw, zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(zstdWindow),
			zstd.WithLowerEncoderMem(true), zstd.WithEncoderCRC(false))
		if err != nil {
			return err
		}
		c.zw = zw
	case CodecS2:
		c.zw = s2.NewWriter(c.bw, s2.WriterConcurrency(1), s2.WriterBlockSize(s2Block))
	case CodecNone:
		c.zw = nopFlusher{c.bw}
	default:
		return fmt.Errorf("%w: %d", ErrCodec, c.codec)
	}
	return nil
}

// WriteMessages encodes msgs as frames, seals them, compresses them and
// flushes the stream, so they leave in one write with no added delay. Call
// it once per batch of messages (a 100 ms share batch with the logins and
// logouts of the same period, say): every call costs a seal and a flush.
//
// A message that fails to encode (a limit, a forbidden value) fails the
// whole call before anything is written, and the Conn stays usable. Any
// other error is sticky.
func (c *Conn) WriteMessages(msgs ...Message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	if c.closed.Load() {
		return ErrClosed
	}
	if len(msgs) == 0 {
		return nil
	}
	// Check everything first: encoding a ShareBatch or MinerLogout changes
	// the Encoder's state, which must only happen for frames that are sent.
	for _, m := range msgs {
		if v, ok := m.(interface{ check() error }); ok {
			if err := v.check(); err != nil {
				return fmt.Errorf("encode %s: %w", m.Type(), err)
			}
		}
	}
	if !c.wdone {
		if err := c.startWriter(); err != nil {
			c.werr = fmt.Errorf("agentwire: write: %w", err)
			return c.werr
		}
	}
	buf := c.wbuf[:0]
	unit, count, crc := 0, 0, uint32(0)
	for i, m := range msgs {
		start := len(buf)
		var err error
		buf, err = c.enc.AppendFrame(buf, m)
		if err != nil {
			if i > 0 { // earlier frames changed the state but are not sent
				c.werr = err
			}
			return err
		}
		crc = crc32.Update(crc, castagnoli, buf[start:])
		count++
		if len(buf)-unit >= sealBytes || count >= sealMessages {
			buf, unit, count, crc = appendSeal(buf, crc), len(buf)+HeaderSize+4, 0, 0
		}
	}
	if count > 0 {
		buf = appendSeal(buf, crc)
	}
	if cap(buf) <= 1<<20 {
		c.wbuf = buf
	}
	if _, err := c.zw.Write(buf); err != nil {
		c.werr = fmt.Errorf("agentwire: write: %w", err)
		return c.werr
	}
	if err := c.zw.Flush(); err != nil {
		c.werr = fmt.Errorf("agentwire: write: %w", err)
		return c.werr
	}
	if err := c.bw.Flush(); err != nil {
		c.werr = fmt.Errorf("agentwire: write: %w", err)
		return c.werr
	}
	c.stats.rawW.Add(uint64(len(buf)))
	c.stats.msgW.Add(uint64(len(msgs)))
	return nil
}

func appendSeal(dst []byte, crc uint32) []byte {
	dst = append(dst, magic0, magic1, Version, byte(TypeSeal), 4, 0, 0, 0)
	return binary.LittleEndian.AppendUint32(dst, crc)
}

// ReadMessage returns the next message. It returns io.EOF when the peer
// closed the stream between write units, and otherwise wraps the errors of
// this package: ErrBadMagic, a *VersionError (carrying the peer's Reject if
// it sent one), ErrTooLarge, ErrCodec, ErrCorrupt, ErrChecksum, ErrShort
// and the other decoding errors. A received Reject is returned as a message;
// it is also an error value.
func (c *Conn) ReadMessage() (Message, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.qhead < len(c.queue) {
		m := c.queue[c.qhead]
		c.queue[c.qhead] = nil
		c.qhead++
		return m, nil
	}
	if c.rerr != nil {
		return nil, c.rerr
	}
	if c.closed.Load() {
		return nil, ErrClosed
	}
	c.queue, c.qhead = c.queue[:0], 0
	if err := c.readUnit(); err != nil {
		c.queue = c.queue[:0]
		c.rerr = err
		if c.closed.Load() {
			c.rerr = ErrClosed
		}
		return nil, c.rerr
	}
	c.stats.msgR.Add(uint64(len(c.queue)))
	m := c.queue[0]
	c.queue[0] = nil
	c.qhead = 1
	return m, nil
}

// startReader reads the preamble and sets up the decompressor.
func (c *Conn) startReader() error {
	c.rstart = true
	cr := &countReader{r: c.rw, n: &c.stats.wireR}
	c.cr = cr
	var p [preambleSize]byte
	if _, err := io.ReadFull(cr, p[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("agentwire: read preamble: %w", err)
		}
		return err // io.EOF: closed before sending anything
	}
	if p[0] != magic0 || p[1] != magic1 {
		return fmt.Errorf("%w: stream starts with %q", ErrBadMagic, p[:])
	}
	c.peerVer = p[2]
	switch Codec(p[3]) {
	case CodecZstd:
		d, err := zstd.NewReader(cr, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(zstdMaxWin), zstd.WithDecoderMaxMemory(zstdMaxWin))
		if err != nil {
			return err
		}
		c.zdec = d
		c.br = bufio.NewReaderSize(d, bufSize)
	case CodecS2:
		c.br = bufio.NewReaderSize(s2.NewReader(cr, s2.ReaderMaxBlockSize(s2Block)), bufSize)
	case CodecNone:
		c.br = bufio.NewReaderSize(cr, bufSize)
	default:
		if c.peerVer != Version {
			return &VersionError{Peer: c.peerVer, Local: Version}
		}
		return fmt.Errorf("%w: %d", ErrCodec, p[3])
	}
	return nil
}

// readFull reads from the decompressed stream. Transport errors (timeouts,
// closed connections) are passed on wrapped; anything else the
// decompressor says is ErrCorrupt.
func (c *Conn) readFull(p []byte, atStart bool) error {
	n, err := io.ReadFull(c.br, p)
	c.stats.rawR.Add(uint64(n))
	terr := c.cr.err
	switch {
	case err == nil:
		return nil
	case atStart && n == 0 && errors.Is(terr, io.EOF):
		return io.EOF // closed cleanly between write units
	case terr != nil && !errors.Is(terr, io.EOF):
		return fmt.Errorf("agentwire: read: %w", terr)
	case errors.Is(terr, io.EOF) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("agentwire: read: stream ended inside a frame: %w", io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("%w: %v", ErrCorrupt, err)
}

// readUnit reads frames up to the next seal into c.queue.
func (c *Conn) readUnit() error {
	if !c.rstart {
		if err := c.startReader(); err != nil {
			return err
		}
	}
	maxUnit := c.limit + maxUnitExtra
	unit, crc := 0, uint32(0)
	for {
		atStart := unit == 0 && len(c.queue) == 0
		if err := c.readFull(c.hdr[:], atStart); err != nil {
			return err
		}
		if c.peerVer != Version {
			return c.versionMismatch()
		}
		n, err := checkHeader(c.hdr[:], c.limit)
		if ve := (*VersionError)(nil); errors.As(err, &ve) {
			// The preamble settled the version: this is damage.
			return fmt.Errorf("%w: frame header says version %d in a version %d stream", ErrCorrupt, ve.Peer, Version)
		}
		if err != nil {
			return err
		}
		unit += HeaderSize + n
		if unit > maxUnit || len(c.queue) >= maxUnitMessages {
			return fmt.Errorf("%w: write unit over %d bytes or %d messages", ErrTooLarge, maxUnit, maxUnitMessages)
		}
		if cap(c.rbuf) < n {
			c.rbuf = make([]byte, n)
		}
		body := c.rbuf[:n]
		if err := c.readFull(body, false); err != nil {
			return err
		}
		c.maxSeen = max(c.maxSeen, n)
		t := Type(c.hdr[3])
		if t == TypeSeal {
			if n != 4 {
				return fmt.Errorf("%w: seal of %d bytes", ErrInvalid, n)
			}
			if got := binary.LittleEndian.Uint32(body); got != crc {
				return fmt.Errorf("%w: seal %08x, frames %08x", ErrChecksum, got, crc)
			}
			if len(c.queue) > 0 {
				return nil
			}
			unit = 0
			continue
		}
		crc = crc32.Update(crc, castagnoli, c.hdr[:])
		crc = crc32.Update(crc, castagnoli, body)
		m, err := c.dec.Decode(t, body)
		if err != nil {
			return err
		}
		c.queue = append(c.queue, m)
	}
}

// versionMismatch reads what a peer of another version sent: a Reject (its
// frame header and body are frozen) is attached to the error.
func (c *Conn) versionMismatch() error {
	ve := &VersionError{Peer: c.peerVer, Local: Version}
	h := c.hdr[:]
	if h[0] != magic0 || h[1] != magic1 || Type(h[3]) != TypeReject {
		return ve
	}
	n := binary.LittleEndian.Uint32(h[4:])
	if n > 2*MaxReasonLen {
		return ve
	}
	body := make([]byte, n)
	if c.readFull(body, false) != nil {
		return ve
	}
	var r Reject
	if r.Unmarshal(body) == nil {
		ve.Reject = &r
	}
	return ve
}

// Close closes the underlying io.ReadWriter if it is an io.Closer, which
// ends a blocked ReadMessage or WriteMessages, and releases the codecs.
// Reads and writes fail with ErrClosed afterwards.
func (c *Conn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	var err error
	if cl, ok := c.rw.(io.Closer); ok {
		err = cl.Close()
	}
	c.rmu.Lock()
	if c.zdec != nil {
		c.zdec.Close()
		c.zdec = nil
	}
	c.br = nil
	c.rerr = ErrClosed
	c.rmu.Unlock()
	c.wmu.Lock()
	if c.werr == nil {
		c.werr = ErrClosed
	}
	c.zw = nil
	c.wmu.Unlock()
	return err
}
