package agentwire

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzSplitFrame: SplitFrame never panics, a frame it returns re-encodes to
// the same bytes, and every prefix of a frame is "incomplete" or the same
// error (split halves, nats style).
func FuzzSplitFrame(f *testing.F) {
	for _, s := range samples() {
		f.Add(frameOf(f, s.msg))
	}
	f.Add([]byte{'H', 'A', 2, 1, 0, 0, 0, 0})
	f.Add([]byte{'H', 'A', Version, 1, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, buf []byte) {
		typ, body, n, err := SplitFrame(buf)
		if err != nil {
			require.Zero(t, n)
			require.Nil(t, body)
			return
		}
		require.Equal(t, HeaderSize+len(body), n)
		require.LessOrEqual(t, len(body), MaxFrame)
		require.Equal(t, buf[:n], AppendFrame(nil, typ, body))
		for i := 0; i < n; i += 1 + i/32 { // every header prefix, then sparser
			_, _, m, err := SplitFrame(buf[:i])
			require.ErrorIs(t, err, ErrIncomplete)
			require.Zero(t, m)
		}
		_, _, _, err = SplitFrame(buf[:n-1])
		require.ErrorIs(t, err, ErrIncomplete)
	})
}

// FuzzUnmarshal decodes a body as the message type named by the first
// byte; whatever decodes must encode, decode again and compare equal.
func FuzzUnmarshal(f *testing.F) {
	for _, s := range samples() {
		f.Add(append([]byte{byte(s.msg.Type())}, mustMarshal(f, s.msg)...))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		typ := Type(in[0])
		a, err := Decode(typ, in[1:])
		if err != nil {
			return
		}
		enc, err := a.Marshal()
		require.NoError(t, err, "a decoded %s must encode", typ)
		b, err := Decode(typ, enc)
		require.NoError(t, err)
		require.Equal(t, a, b)
	})
}

// FuzzDecodeStream reads a frame stream with a stateful Decoder, re-encodes
// what it decoded with an Encoder and decodes that with a fresh Decoder:
// the messages must match (the connection encoding round trip).
func FuzzDecodeStream(f *testing.F) {
	enc := NewEncoder()
	var stream []byte
	for _, m := range streamOf(6, 8) {
		stream, _ = enc.AppendFrame(stream, m)
	}
	f.Add(stream)
	f.Add(frameOf(f, sampleBatch()))
	f.Fuzz(func(t *testing.T, stream []byte) {
		dec := NewDecoder()
		var got []Message
		for len(stream) > 0 {
			typ, body, n, err := SplitFrame(stream)
			if err != nil {
				break
			}
			stream = stream[n:]
			m, err := dec.Decode(typ, body)
			if err != nil {
				break
			}
			got = append(got, m)
		}
		enc, dec2 := NewEncoder(), NewDecoder()
		for _, m := range got {
			frame, err := enc.AppendFrame(nil, m)
			require.NoError(t, err)
			typ, body, _, err := SplitFrame(frame)
			require.NoError(t, err)
			m2, err := dec2.Decode(typ, body)
			require.NoError(t, err)
			require.Equal(t, m, m2)
		}
	})
}

// FuzzConnRead feeds arbitrary bytes to a Conn reader with a small frame
// limit: it must end with an error (io.EOF at the earliest), never panic,
// never accept a frame over the limit, and only deliver sealed units.
func FuzzConnRead(f *testing.F) {
	for _, codec := range codecs {
		f.Add(writeStream(f, codec, streamOf(3, 5)))
	}
	f.Add([]byte{'H', 'A', Version, byte(CodecNone), 'H', 'A', Version, byte(TypeJob), 0, 0, 0, 1})
	f.Add([]byte{'H', 'A', 2, byte(CodecZstd), 0x28, 0xb5, 0x2f, 0xfd})
	const limit = 4096
	f.Fuzz(func(t *testing.T, data []byte) {
		c := NewConn(bytes.NewBuffer(data), Options{MaxFrame: limit})
		for range 10000 {
			m, err := c.ReadMessage()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					require.True(t, IsProtocolError(err), "unclassified error %v", err)
				}
				break
			}
			require.NotNil(t, m)
		}
		require.LessOrEqual(t, c.maxSeen, limit)
		require.LessOrEqual(t, len(c.queue), maxUnitMessages)
	})
}
