package agentwire

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSplitFrame(t *testing.T) {
	ping := frameOf(t, &Ping{Time: 5})
	tests := []struct {
		name    string
		buf     []byte
		typ     Type
		body    []byte
		advance int
		err     error
	}{
		{name: "empty", buf: nil, err: ErrIncomplete},
		{name: "one byte", buf: []byte("H"), err: ErrIncomplete},
		{name: "bad first byte", buf: []byte("{"), err: ErrBadMagic},
		{name: "bad second byte", buf: []byte("HB"), err: ErrBadMagic},
		{name: "version only", buf: []byte{'H', 'A', Version}, err: ErrIncomplete},
		{name: "other version", buf: []byte{'H', 'A', 7}, err: ErrVersion},
		{name: "header without length", buf: ping[:7], err: ErrIncomplete},
		{name: "too large from the header", buf: []byte{'H', 'A', Version, byte(TypeJob), 1, 0, 0x40, 0}, err: ErrTooLarge},
		{name: "largest allowed, incomplete", buf: []byte{'H', 'A', Version, byte(TypeJob), 0, 0, 0x40, 0}, err: ErrIncomplete},
		{name: "body incomplete", buf: ping[:len(ping)-1], err: ErrIncomplete},
		{name: "one frame", buf: ping, typ: TypePing, body: ping[HeaderSize:], advance: len(ping)},
		{name: "two frames", buf: append(bytes.Clone(ping), ping...), typ: TypePing, body: ping[HeaderSize:], advance: len(ping)},
		{name: "empty body", buf: []byte{'H', 'A', Version, 0xee, 0, 0, 0, 0, 'H'}, typ: 0xee, body: []byte{}, advance: HeaderSize},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			typ, body, advance, err := SplitFrame(tc.buf)
			require.ErrorIs(t, err, tc.err)
			require.Equal(t, tc.advance, advance)
			require.Equal(t, tc.typ, typ)
			if tc.err != nil {
				require.Nil(t, body)
				return
			}
			require.Equal(t, tc.body, body)
			require.Equal(t, len(body), cap(body), "body cannot be appended into the next frame")
		})
	}
}

func TestVersionErrorText(t *testing.T) {
	_, _, _, err := SplitFrame([]byte{'H', 'A', 3, 1, 0, 0, 0, 0})
	require.ErrorIs(t, err, ErrVersion)
	require.EqualError(t, err, "agentwire: protocol version mismatch: peer speaks version 3, this build speaks version 1")
	ve := &VersionError{Peer: 0, Local: Version, Reject: &Reject{Code: RejectVersion, Message: "too old"}}
	require.Equal(t, "agentwire: protocol version mismatch: peer speaks version 0, this build speaks version 1 (peer says: version: too old)", ve.Error())
}

// splitAll decodes every frame of stream with a reader loop that only ever
// sees what arrived so far: chunks are appended to a buffer, complete
// frames are consumed, a partial frame waits for the next chunk.
func splitAll(t *testing.T, chunks [][]byte) []Message {
	t.Helper()
	dec := NewDecoder()
	var buf, pending []byte
	var out []Message
	for _, c := range chunks {
		buf = append(buf, c...)
		consumed := 0
		for {
			typ, body, n, err := SplitFrame(buf[consumed:])
			if err == ErrIncomplete {
				break
			}
			require.NoError(t, err)
			m, err := dec.Decode(typ, body)
			require.NoError(t, err)
			out = append(out, m)
			consumed += n
		}
		pending = append(pending[:0], buf[consumed:]...)
		buf, pending = pending, buf
	}
	require.Empty(t, buf, "bytes left over")
	return out
}

// TestSplitFrameStream is the split-frame test (nats split_test.go style):
// a stream of every message type, with connection-state batches, is split
// at every byte position into two reads, then fed one byte at a time, then
// in one read; every way yields the same messages.
func TestSplitFrameStream(t *testing.T) {
	msgs := streamOf(8, 6)
	enc := NewEncoder()
	var stream []byte
	for _, m := range msgs {
		var err error
		stream, err = enc.AppendFrame(stream, m)
		require.NoError(t, err)
	}
	t.Logf("%d messages, %d bytes", len(msgs), len(stream))
	require.Equal(t, msgs, splitAll(t, [][]byte{stream}), "coalesced")

	var bytewise [][]byte
	for i := range stream {
		bytewise = append(bytewise, stream[i:i+1])
	}
	require.Equal(t, msgs, splitAll(t, bytewise), "one byte at a time")

	for i := 0; i <= len(stream); i++ {
		got := splitAll(t, [][]byte{stream[:i], stream[i:]})
		require.Equal(t, msgs, got, "split at %d", i)
	}

	// Three-way splits around every frame boundary.
	var bounds []int
	for off := 0; off < len(stream); {
		_, _, n, err := SplitFrame(stream[off:])
		require.NoError(t, err)
		off += n
		bounds = append(bounds, off)
	}
	for _, b := range bounds {
		for _, d := range []int{-1, 0, 1} {
			i := min(max(b+d, 0), len(stream))
			j := min(i+HeaderSize/2, len(stream))
			require.Equal(t, msgs, splitAll(t, [][]byte{stream[:i], stream[i:j], stream[j:]}))
		}
	}
}
