package stratum

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSplitLine(t *testing.T) {
	tests := []struct {
		name    string
		buf     string
		max     int
		line    string
		advance int
		err     error
	}{
		{name: "empty buffer", buf: "", err: ErrIncomplete},
		{name: "partial", buf: `{"id":1`, err: ErrIncomplete},
		{name: "one line", buf: "{}\n", line: "{}", advance: 3},
		{name: "crlf", buf: "{}\r\nnext", line: "{}", advance: 4},
		{name: "two lines", buf: "a\nb\n", line: "a", advance: 2},
		{name: "empty line", buf: "\n{}\n", line: "", advance: 1},
		{name: "cr only line", buf: "\r\n", line: "", advance: 2},
		{name: "whitespace line", buf: " \t \r\n{}", line: "", advance: 5},
		{name: "inner cr kept", buf: "a\rb\n", line: "a\rb", advance: 4},
		{name: "line of exactly max", buf: "abcd\n", max: 4, line: "abcd", advance: 5},
		{name: "max bytes buffered", buf: "abcd", max: 4, err: ErrIncomplete},
		{name: "max+1 bytes buffered", buf: "abcde", max: 4, err: ErrLineTooLong},
		{name: "line longer than max", buf: "abcde\n", max: 4, err: ErrLineTooLong},
		{name: "cr counts towards max", buf: "abcd\r\n", max: 4, err: ErrLineTooLong},
		{name: "later long line is not our problem", buf: "ab\ncdefgh", max: 4, line: "ab", advance: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			line, advance, err := SplitLine([]byte(tc.buf), tc.max)
			require.Equal(t, tc.err, err)
			require.Equal(t, tc.advance, advance)
			if tc.err != nil {
				require.Nil(t, line)
				return
			}
			require.NotNil(t, line)
			require.Equal(t, tc.line, string(line))
		})
	}
}

func TestSplitLineDefaultMax(t *testing.T) {
	full := bytes.Repeat([]byte("a"), DefaultMaxLine)

	_, _, err := SplitLine(full, 0)
	require.Equal(t, ErrIncomplete, err, "exactly 16 KiB without newline may still become a line")

	line, n, err := SplitLine(append(append([]byte{}, full...), '\n'), DefaultMaxLine)
	require.NoError(t, err)
	require.Len(t, line, DefaultMaxLine)
	require.Equal(t, DefaultMaxLine+1, n)

	over := append(append([]byte{}, full...), 'a') // 16 KiB + 1, no newline
	_, _, err = SplitLine(over, DefaultMaxLine)
	require.Equal(t, ErrLineTooLong, err)
	_, _, err = SplitLine(over, 0)
	require.Equal(t, ErrLineTooLong, err)

	_, _, err = SplitLine(append(over, '\n'), DefaultMaxLine)
	require.Equal(t, ErrLineTooLong, err)

	// A huge buffer is refused after looking at max+1 bytes only.
	huge := bytes.Repeat([]byte("b"), 4*DefaultMaxLine)
	huge = append(huge, '\n')
	_, _, err = SplitLine(huge, 0)
	require.Equal(t, ErrLineTooLong, err)
}

// TestSplitLineTooLongStream feeds 16 KiB + 1 bytes without a newline,
// one byte at a time, through the reader loop: the connection must be
// refused exactly when the limit is passed.
func TestSplitLineTooLongStream(t *testing.T) {
	s := &streamDecoder{max: DefaultMaxLine}
	s.feed([]byte(`{"id":1,"method":"mining.ping","params":[]}` + "\n"))
	require.NoError(t, s.err)
	require.Len(t, s.out, 1)
	for k := 0; k < DefaultMaxLine; k++ {
		s.feed([]byte{'x'})
		require.NoError(t, s.err, "byte %d", k)
	}
	s.feed([]byte{'x'})
	require.Equal(t, ErrLineTooLong, s.err)
}

// splitStream is a mix of captured lines (valid and invalid), blank lines
// and CRLF endings, as one connection might send them.
func splitStream(t *testing.T) []byte {
	var b bytes.Buffer
	for k, l := range readTestLines(t) {
		b.Write(l.raw)
		switch k % 5 {
		case 1:
			b.WriteString("\n")
		case 3:
			b.WriteString("  \t\r\n")
		}
	}
	b.Write(AppendSubmitRequest(nil, 99, "bob.rig", "ff", []byte{1, 2, 3, 4, 5, 6, 7, 8}, 0x65f1a2b3, 0xdeadbeef, 0x1fffe000, true))
	return b.Bytes()
}

// TestSplitFrames is nats' split_test applied to Stratum framing: the same
// stream split at every byte position, fed byte by byte, and coalesced into
// one read must decode to the same requests.
func TestSplitFrames(t *testing.T) {
	stream := splitStream(t)

	var want []decoded
	for _, raw := range bytes.SplitAfter(stream, []byte("\n")) {
		line := bytes.TrimSuffix(bytes.TrimSuffix(raw, []byte("\n")), []byte("\r"))
		if len(bytes.Trim(line, " \t\r")) == 0 {
			continue
		}
		want = append(want, decodeFresh(bytes.Clone(line)))
	}
	require.Greater(t, len(want), 40)

	run := func(t *testing.T, chunks ...[]byte) {
		t.Helper()
		s := &streamDecoder{max: DefaultMaxLine}
		for _, c := range chunks {
			s.feed(bytes.Clone(c))
		}
		require.NoError(t, s.err)
		require.Empty(t, s.pending)
		requireSameDecodes(t, want, s.out)
	}

	t.Run("coalesced", func(t *testing.T) { run(t, stream) })
	t.Run("byte by byte", func(t *testing.T) {
		chunks := make([][]byte, len(stream))
		for k := range stream {
			chunks[k] = stream[k : k+1]
		}
		run(t, chunks...)
	})
	t.Run("every split point", func(t *testing.T) {
		for p := 0; p <= len(stream); p++ {
			run(t, stream[:p], stream[p:])
		}
	})
	t.Run("three chunks", func(t *testing.T) {
		for p := 0; p <= len(stream); p += 7 {
			q := min(len(stream), p+1+p%61)
			run(t, stream[:p], stream[p:q], stream[q:])
		}
	})
}

func FuzzSplitLine(f *testing.F) {
	f.Add([]byte("{}\n"), 0)
	f.Add([]byte("a\r\nb"), 2)
	f.Add([]byte(" \t\r\n"), 4)
	f.Add([]byte(strings.Repeat("a", 70)+"\n"), 64)
	for _, l := range readTestLines(f) {
		f.Add(l.raw, 0)
		f.Add(l.raw, len(l.raw)/2)
	}
	f.Fuzz(func(t *testing.T, buf []byte, max int) {
		max = int(uint16(max)) // keep limits in a range that the inputs reach
		eff := max
		if eff == 0 {
			eff = DefaultMaxLine
		}
		line, advance, err := SplitLine(buf, max)
		nl := bytes.IndexByte(buf, '\n')
		switch err {
		case nil:
			require.Equal(t, nl+1, advance)
			require.LessOrEqual(t, nl, eff)
			require.NotNil(t, line)
			require.LessOrEqual(t, len(line), nl)
			require.True(t, bytes.HasPrefix(buf, line))
			trimmed := bytes.TrimSuffix(buf[:nl], []byte("\r"))
			if len(bytes.Trim(trimmed, " \t\r")) == 0 {
				require.Empty(t, line)
			} else {
				require.Equal(t, trimmed, line)
			}
		case ErrIncomplete:
			require.Equal(t, -1, nl)
			require.LessOrEqual(t, len(buf), eff)
			require.Zero(t, advance)
			require.Nil(t, line)
		case ErrLineTooLong:
			require.True(t, nl == -1 && len(buf) > eff || nl > eff)
			require.Zero(t, advance)
			require.Nil(t, line)
		default:
			t.Fatalf("unexpected error %v", err)
		}
	})
}
