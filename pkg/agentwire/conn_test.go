package agentwire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"
)

var codecs = []Codec{CodecZstd, CodecS2, CodecNone}

// streamMessages is a realistic mixed sequence: the golden samples, then
// batches from a few miners that exercise the connection state.
func streamMessages() []Message { return streamOf(40, 30) }

func streamOf(batches, shares int) []Message {
	var msgs []Message
	for _, s := range samples() {
		msgs = append(msgs, s.msg)
	}
	for i := range batches {
		msgs = append(msgs, randomBatch(uint64(i), uint64(100+i), shares))
		if i%7 == 0 {
			msgs = append(msgs, &MinerLogout{MinerID: uint32(1 + i%50)})
		}
	}
	return msgs
}

// writeStream writes msgs through a Conn in groups of up to three per
// WriteMessages call and returns the wire bytes.
func writeStream(t testing.TB, codec Codec, msgs []Message) []byte {
	var buf bytes.Buffer
	c := NewConn(&buf, Options{Codec: codec})
	for i := 0; i < len(msgs); i += 3 {
		require.NoError(t, c.WriteMessages(msgs[i:min(i+3, len(msgs))]...))
	}
	return buf.Bytes()
}

func readAll(c *Conn) ([]Message, error) {
	var got []Message
	for {
		m, err := c.ReadMessage()
		if err != nil {
			return got, err
		}
		got = append(got, m)
	}
}

func TestConnBuffer(t *testing.T) {
	msgs := streamMessages()
	for _, codec := range codecs {
		t.Run(codec.String(), func(t *testing.T) {
			wire := writeStream(t, codec, msgs)
			require.Equal(t, []byte{'H', 'A', Version, byte(codec)}, wire[:4])
			c := NewConn(bytes.NewBuffer(wire), Options{})
			got, err := readAll(c)
			require.ErrorIs(t, err, io.EOF)
			require.Equal(t, msgs, got)
			st := c.Stats()
			require.Equal(t, uint64(len(wire)), st.WireRead)
			require.Equal(t, uint64(len(msgs)), st.MessagesRead)
		})
	}
}

// TestConnPipe runs both directions over net.Pipe (unbuffered: every write
// waits for the peer's read), with replies interleaved.
func TestConnPipe(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec.String(), func(t *testing.T) {
			a, g := net.Pipe()
			agent, gw := NewConn(a, Options{Codec: codec}), NewConn(g, Options{Codec: codec})
			defer agent.Close()
			defer gw.Close()
			msgs := streamMessages()
			done := make(chan error, 1)
			go func() {
				for i, m := range msgs {
					if err := agent.WriteMessages(m); err != nil {
						done <- err
						return
					}
					reply, err := agent.ReadMessage()
					if err != nil {
						done <- err
						return
					}
					if p, ok := reply.(*Pong); !ok || p.Echo != int64(i) {
						done <- fmt.Errorf("reply %d: %v", i, reply)
						return
					}
				}
				done <- nil
			}()
			for i, want := range msgs {
				got, err := gw.ReadMessage()
				require.NoError(t, err)
				require.Equal(t, want, got)
				require.NoError(t, gw.WriteMessages(&Pong{Echo: int64(i)}))
			}
			require.NoError(t, <-done)
			sa, sg := agent.Stats(), gw.Stats()
			require.Equal(t, sa.WireWritten, sg.WireRead)
			require.Equal(t, sa.RawWritten, sg.RawRead)
			require.Equal(t, sg.WireWritten, sa.WireRead)
			require.Equal(t, uint64(len(msgs)), sa.MessagesWritten)
			require.Equal(t, uint64(len(msgs)), sg.MessagesRead)
		})
	}
}

// TestConnTCP runs a gateway and an agent over a real loopback connection:
// the agent writes batches and logins from two goroutines while reading
// jobs and acks; the gateway reads and writes at the same time.
func TestConnTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()

	const batches, pings, jobs = 300, 100, 50
	gwDone := make(chan error, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			gwDone <- err
			return
		}
		gw := NewConn(nc, Options{MaxFrame: 1 << 20})
		defer gw.Close()
		// Writer: jobs, independent of the reader.
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				j := sampleJob()
				j.ID = fmt.Sprintf("job%d", i)
				if gw.WriteMessages(j) != nil {
					return
				}
			}
		}()
		next := uint64(1)
		for seen := 0; seen < batches+pings; {
			m, err := gw.ReadMessage()
			if err != nil {
				gwDone <- err
				return
			}
			seen++
			switch m := m.(type) {
			case *ShareBatch:
				if m.BatchID != next || len(m.Shares) == 0 {
					gwDone <- fmt.Errorf("batch %d, want %d", m.BatchID, next)
					return
				}
				next++
				if err := gw.WriteMessages(&BatchAck{BatchID: m.BatchID, Results: make([]ResultCode, len(m.Shares))}); err != nil {
					gwDone <- err
					return
				}
			case *Ping:
				if err := gw.WriteMessages(&Pong{Echo: m.Time, Time: time.Now().UnixNano()}); err != nil {
					gwDone <- err
					return
				}
			default:
				gwDone <- fmt.Errorf("unexpected %s", m.Type())
				return
			}
		}
		wg.Wait()
		gwDone <- nil
	}()

	nc, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	agent := NewConn(nc, Options{})
	defer agent.Close()

	var wg sync.WaitGroup
	wg.Add(2)
	var batchErr, pingErr error
	go func() {
		defer wg.Done()
		for i := range batches {
			if batchErr = agent.WriteMessages(randomBatch(uint64(i), uint64(i+1), 1+i%80)); batchErr != nil {
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := range pings {
			if pingErr = agent.WriteMessages(&Ping{Time: int64(i)}); pingErr != nil {
				return
			}
		}
	}()

	acks, pongs, gotJobs := 0, 0, 0
	for acks < batches || pongs < pings || gotJobs < jobs {
		m, err := agent.ReadMessage()
		require.NoError(t, err)
		switch m := m.(type) {
		case *BatchAck:
			acks++
			require.Equal(t, uint64(acks), m.BatchID, "acks arrive in batch order")
		case *Pong:
			pongs++
		case *Job:
			require.Equal(t, fmt.Sprintf("job%d", gotJobs), m.ID)
			gotJobs++
		}
	}
	wg.Wait()
	require.NoError(t, batchErr)
	require.NoError(t, pingErr)
	require.NoError(t, <-gwDone)
	st := agent.Stats()
	require.Less(t, st.WireWritten, st.RawWritten, "compressed")
	t.Logf("agent wrote %d raw / %d wire bytes", st.RawWritten, st.WireWritten)
}

// TestConnGarbled flips every byte of a compressed stream after the
// preamble, one at a time: the reader must stop with an error or deliver
// exactly the original messages, never panic and never deliver a wrong
// message.
func TestConnGarbled(t *testing.T) {
	msgs := streamMessages()[:24]
	for _, codec := range []Codec{CodecZstd, CodecS2} {
		t.Run(codec.String(), func(t *testing.T) {
			wire := writeStream(t, codec, msgs)
			errs := 0
			for pos := preambleSize; pos < len(wire); pos++ {
				bad := bytes.Clone(wire)
				bad[pos] ^= 0x55
				got, err := readAll(NewConn(bytes.NewBuffer(bad), Options{}))
				for i := range got {
					require.Equal(t, msgs[i], got[i], "flip at %d delivered a wrong message", pos)
				}
				if !errors.Is(err, io.EOF) {
					errs++
					require.True(t, IsProtocolError(err) || errors.Is(err, io.ErrUnexpectedEOF), "flip at %d: %v", pos, err)
				}
			}
			t.Logf("%s: %d of %d flipped bytes detected", codec, errs, len(wire)-preambleSize)
			require.Greater(t, errs, (len(wire)-preambleSize)*9/10)
		})
	}
}

// TestConnGarbledShareByte corrupts one byte in the middle of a share
// batch's compressed block: a clean error, no message of that write.
func TestConnGarbledShareByte(t *testing.T) {
	for _, codec := range []Codec{CodecZstd, CodecS2, CodecNone} {
		t.Run(codec.String(), func(t *testing.T) {
			var buf bytes.Buffer
			c := NewConn(&buf, Options{Codec: codec})
			require.NoError(t, c.WriteMessages(&Ping{Time: 1}))
			before := buf.Len()
			require.NoError(t, c.WriteMessages(randomBatch(1, 1, 200)))
			wire := buf.Bytes()
			wire[before+(len(wire)-before)/2] ^= 0x01
			r := NewConn(bytes.NewBuffer(wire), Options{})
			m, err := r.ReadMessage()
			require.NoError(t, err)
			require.Equal(t, &Ping{Time: 1}, m)
			_, err = r.ReadMessage()
			require.Error(t, err)
			require.NotErrorIs(t, err, io.EOF)
			require.True(t, IsProtocolError(err), "%v", err)
			_, err2 := r.ReadMessage()
			require.Equal(t, err, err2, "errors are sticky")
		})
	}
}

func TestConnVersionMismatch(t *testing.T) {
	// A version 2 agent: preamble and frames say 2.
	future := []byte{'H', 'A', 2, byte(CodecNone)}
	future = append(future, 'H', 'A', 2, byte(TypeHello), 3, 0, 0, 0, 1, 2, 3)
	_, err := NewConn(bytes.NewBuffer(future), Options{}).ReadMessage()
	var ve *VersionError
	require.ErrorAs(t, err, &ve)
	require.ErrorIs(t, err, ErrVersion)
	require.Equal(t, uint8(2), ve.Peer)
	require.Contains(t, err.Error(), "peer speaks version 2")
	require.Contains(t, err.Error(), "this build speaks version 1")
	require.Nil(t, ve.Reject)

	// A version 2 gateway explains itself with a Reject, readable here.
	body := mustMarshal(t, &Reject{Code: RejectVersion, Message: "gateway speaks protocol version 2, agent sent 1"})
	body = append(body, 0xee, 0xee) // a later version's extra field
	rej := []byte{'H', 'A', 2, byte(CodecNone), 'H', 'A', 2, byte(TypeReject), byte(len(body)), 0, 0, 0}
	rej = append(rej, body...)
	_, err = NewConn(bytes.NewBuffer(rej), Options{}).ReadMessage()
	require.ErrorAs(t, err, &ve)
	require.NotNil(t, ve.Reject)
	require.Equal(t, RejectVersion, ve.Reject.Code)
	require.Contains(t, err.Error(), "peer speaks version 2, this build speaks version 1")
	require.Contains(t, err.Error(), "gateway speaks protocol version 2, agent sent 1")

	// Same through zstd, as a real peer would send it.
	var buf bytes.Buffer
	buf.Write([]byte{'H', 'A', 2, byte(CodecZstd)})
	zw, err := zstd.NewWriter(&buf)
	require.NoError(t, err)
	_, err = zw.Write(rej[4:])
	require.NoError(t, err)
	require.NoError(t, zw.Flush())
	_, err = NewConn(&buf, Options{}).ReadMessage()
	require.ErrorAs(t, err, &ve)
	require.NotNil(t, ve.Reject)

	// A frame of another version inside a stream of ours.
	var ours bytes.Buffer
	ours.Write([]byte{'H', 'A', Version, byte(CodecNone)})
	ours.Write([]byte{'H', 'A', 9, byte(TypePing), 8, 0, 0, 0})
	_, err = NewConn(&ours, Options{}).ReadMessage()
	require.ErrorIs(t, err, ErrCorrupt, "the preamble settled the version")
	require.NotErrorIs(t, err, ErrVersion)
}

func TestConnBadStreams(t *testing.T) {
	tests := []struct {
		name string
		wire []byte
		err  error
	}{
		{"stratum client", []byte(`{"id":1,"method":"mining.subscribe","params":[]}` + "\n"), ErrBadMagic},
		{"tls client hello", []byte{0x16, 0x03, 0x01, 0x02, 0x00}, ErrBadMagic},
		{"unknown codec", []byte{'H', 'A', Version, 9}, ErrCodec},
		{"garbage after zstd preamble", append([]byte{'H', 'A', Version, byte(CodecZstd)}, bytes.Repeat([]byte{0x5a}, 64)...), ErrCorrupt},
		{"garbage after s2 preamble", append([]byte{'H', 'A', Version, byte(CodecS2)}, bytes.Repeat([]byte{0x5a}, 64)...), ErrCorrupt},
		{"bad frame magic", append([]byte{'H', 'A', Version, byte(CodecNone)}, "XXXXXXXX"...), ErrBadMagic},
		{"frame too large", append([]byte{'H', 'A', Version, byte(CodecNone)}, 'H', 'A', Version, byte(TypeJob), 0, 0, 0x40, 0x01), ErrTooLarge},
		{"bad seal", append(append([]byte{'H', 'A', Version, byte(CodecNone)}, frameOf(t, &Ping{})...),
			'H', 'A', Version, 0, 4, 0, 0, 0, 1, 2, 3, 4), ErrChecksum},
		{"seal of 5 bytes", append([]byte{'H', 'A', Version, byte(CodecNone)}, 'H', 'A', Version, 0, 5, 0, 0, 0, 1, 2, 3, 4, 5), ErrInvalid},
		{"undecodable message", append([]byte{'H', 'A', Version, byte(CodecNone)}, 'H', 'A', Version, byte(TypePing), 1, 0, 0, 0, 1), ErrShort},
		{"short preamble", []byte{'H', 'A'}, io.ErrUnexpectedEOF},
		{"ends inside a frame", append([]byte{'H', 'A', Version, byte(CodecNone)}, frameOf(t, &Ping{})[:10]...), io.ErrUnexpectedEOF},
		{"ends before the seal", append([]byte{'H', 'A', Version, byte(CodecNone)}, frameOf(t, &Ping{})...), io.ErrUnexpectedEOF},
		{"empty", nil, io.EOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewConn(bytes.NewBuffer(tc.wire), Options{}).ReadMessage()
			require.ErrorIs(t, err, tc.err)
		})
	}
}

// TestConnFrameLimit: a reader with a small limit refuses a larger frame
// from its header, before reading (or decompressing) the body.
func TestConnFrameLimit(t *testing.T) {
	j := sampleJob()
	j.Coinb2 = make([]byte, 2000)
	for _, codec := range codecs {
		var buf bytes.Buffer
		w := NewConn(&buf, Options{Codec: codec})
		require.NoError(t, w.WriteMessages(&Ping{}))
		require.NoError(t, w.WriteMessages(j))
		r := NewConn(&buf, Options{MaxFrame: 1024})
		_, err := r.ReadMessage()
		require.NoError(t, err)
		_, err = r.ReadMessage()
		require.ErrorIs(t, err, ErrTooLarge, codec)
		require.Contains(t, err.Error(), "job frame of")
		require.LessOrEqual(t, r.maxSeen, 1024)
	}
}

// TestConnDecompressionBomb: a few kilobytes of zstd that inflate to
// hundreds of megabytes of frames are refused after at most one write
// unit's worth, not inflated.
func TestConnDecompressionBomb(t *testing.T) {
	// One endless unit of tiny valid frames (pings, never sealed).
	ping := frameOf(t, &Ping{})
	var buf bytes.Buffer
	buf.Write([]byte{'H', 'A', Version, byte(CodecZstd)})
	zw, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedBetterCompression))
	require.NoError(t, err)
	chunk := bytes.Repeat(ping, 1<<14)
	for range 1 << 6 { // 16 MiB of frames
		_, err = zw.Write(chunk)
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	t.Logf("bomb: %d compressed bytes", buf.Len())
	r := NewConn(&buf, Options{MaxFrame: 4096})
	_, err = r.ReadMessage()
	require.ErrorIs(t, err, ErrTooLarge)
	require.Less(t, r.Stats().RawRead, uint64(2<<20), "stopped after one unit")
	require.Empty(t, r.queue, "nothing of the refused unit delivered")

	// One frame claiming 4 MiB of zeros: refused from its header with the
	// default limit lowered; read and decoded (and refused by the decoder)
	// within the limit otherwise.
	buf.Reset()
	buf.Write([]byte{'H', 'A', Version, byte(CodecZstd)})
	zw, err = zstd.NewWriter(&buf)
	require.NoError(t, err)
	_, err = zw.Write(AppendFrame(nil, TypeJob, make([]byte, MaxFrame)))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	wire := buf.Bytes()
	_, err = NewConn(bytes.NewBuffer(wire), Options{MaxFrame: 1 << 20}).ReadMessage()
	require.ErrorIs(t, err, ErrTooLarge)
	_, err = NewConn(bytes.NewBuffer(wire), Options{}).ReadMessage()
	require.ErrorIs(t, err, ErrInvalid) // job id of length 0
}

func TestConnWriteErrors(t *testing.T) {
	var buf bytes.Buffer
	c := NewConn(&buf, Options{})
	// An invalid message fails the whole call, writes nothing, and leaves
	// the Conn (and its share state) usable.
	b := randomBatch(1, 1, 10)
	err := c.WriteMessages(b, &MinerLogout{})
	require.ErrorIs(t, err, ErrInvalid)
	require.Zero(t, buf.Len())
	require.NoError(t, c.WriteMessages(b))
	b2 := randomBatch(2, 2, 10)
	require.NoError(t, c.WriteMessages(b2))
	got, err := readAll(NewConn(&buf, Options{}))
	require.ErrorIs(t, err, io.EOF)
	require.Equal(t, []Message{b, b2}, got)

	// A transport error is sticky.
	fw := &failWriter{after: 0}
	c = NewConn(fw, Options{})
	err = c.WriteMessages(&Ping{})
	require.ErrorIs(t, err, errBroken)
	require.Equal(t, err, c.WriteMessages(&Ping{}))
}

var errBroken = errors.New("broken pipe")

type failWriter struct{ after int }

func (f *failWriter) Write(p []byte) (int, error) { return 0, errBroken }
func (f *failWriter) Read(p []byte) (int, error)  { return 0, io.EOF }

func TestConnClose(t *testing.T) {
	a, g := net.Pipe()
	agent := NewConn(a, Options{})
	gw := NewConn(g, Options{})
	done := make(chan error, 1)
	go func() {
		_, err := gw.ReadMessage()
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	require.NoError(t, gw.Close())
	select {
	case err := <-done:
		require.ErrorIs(t, err, ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock ReadMessage")
	}
	_, err := gw.ReadMessage()
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, gw.WriteMessages(&Ping{}), ErrClosed)
	require.NoError(t, gw.Close(), "idempotent")
	require.Error(t, agent.WriteMessages(&Ping{}), "peer closed")
	agent.Close()
}

// TestConnManyMessagesOneCall seals long writes in several units.
func TestConnManyMessagesOneCall(t *testing.T) {
	var msgs []Message
	for i := range 3 * sealMessages {
		msgs = append(msgs, &MinerLogin{MinerID: uint32(i + 1), User: "alice", Worker: fmt.Sprintf("rig%05d", i),
			Extranonce1Suffix: []byte{byte(i >> 8), byte(i)}})
	}
	for _, codec := range codecs {
		var buf bytes.Buffer
		require.NoError(t, NewConn(&buf, Options{Codec: codec}).WriteMessages(msgs...))
		got, err := readAll(NewConn(&buf, Options{}))
		require.ErrorIs(t, err, io.EOF)
		require.Equal(t, msgs, got)
	}
}
