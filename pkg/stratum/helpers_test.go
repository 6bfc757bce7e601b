package stratum

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// mkID builds an ID from raw JSON text, as DecodeRequest would store it.
func mkID(raw string) ID {
	var id ID
	if raw != "null" {
		id.n = uint8(copy(id.raw[:], raw))
	}
	return id
}

// testLine is one captured request line from testdata/lines.
type testLine struct {
	name string // file name without .txt
	raw  []byte // file contents, newline included
}

// readTestLines returns every testdata/lines/*.txt file, sorted by name.
func readTestLines(t testing.TB) []testLine {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "lines", "*.txt"))
	require.NoError(t, err)
	require.NotEmpty(t, paths)
	sort.Strings(paths)
	out := make([]testLine, 0, len(paths))
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		require.NoError(t, err)
		require.True(t, bytes.HasSuffix(raw, []byte("\n")), "%s must end in a newline", p)
		require.Equal(t, 1, bytes.Count(raw, []byte("\n")), "%s must hold one line", p)
		out = append(out, testLine{name: strings.TrimSuffix(filepath.Base(p), ".txt"), raw: raw})
	}
	return out
}

// decoded is a snapshot of one DecodeRequest call, comparable with == (so
// the split-frame tests can compare thousands of runs cheaply).
type decoded struct {
	ID            ID
	Method        Method
	MethodName    [64]byte
	MethodNameLen uint8
	Submit        Submit
	Params        string
	Err           error
}

// decodeFresh decodes line into a new Request.
func decodeFresh(line []byte) decoded {
	var r Request
	return snapshot(&r, DecodeRequest(line, &r))
}

func snapshot(r *Request, err error) decoded {
	return decoded{
		ID: r.ID, Method: r.Method, MethodName: r.MethodName, MethodNameLen: r.MethodNameLen,
		Submit: r.Submit, Params: string(r.Params), Err: err,
	}
}

// requireSameDecodes compares two decode sequences, falling back to
// require.Equal (and its diff) only when they differ.
func requireSameDecodes(t testing.TB, want, got []decoded) {
	t.Helper()
	if len(want) == len(got) {
		same := true
		for k := range want {
			if want[k] != got[k] {
				same = false
				break
			}
		}
		if same {
			return
		}
	}
	require.Equal(t, want, got)
}

// streamDecoder is the reader loop the gateway runs in OnTraffic: append the
// bytes read, split every complete line, decode it, keep the partial tail.
// After decoding a line it overwrites the line's bytes, so any decoded value
// that aliased the read buffer would show up as a mismatch.
type streamDecoder struct {
	max     int
	pending []byte
	out     []decoded
	err     error // first framing error; the connection would be closed
}

func (s *streamDecoder) feed(chunk []byte) {
	if s.err != nil {
		return
	}
	s.pending = append(s.pending, chunk...)
	consumed := 0
	for consumed < len(s.pending) {
		line, n, err := SplitLine(s.pending[consumed:], s.max)
		if err == ErrIncomplete {
			break
		}
		if err != nil {
			s.err = err
			return
		}
		consumed += n
		if len(line) == 0 {
			continue
		}
		var r Request
		err = DecodeRequest(line, &r)
		for k := range line {
			line[k] = 'X'
		}
		s.out = append(s.out, snapshot(&r, err))
	}
	s.pending = append(s.pending[:0], s.pending[consumed:]...)
}
