package blocksink

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/hashgate/hashgate/pkg/bus"
)

func TestRecordRoundTrip(t *testing.T) {
	queued := time.Unix(1_700_000_123, 456)
	for _, raw := range [][]byte{nil, {0x01}, bytes.Repeat([]byte{0xab}, 1<<20)} {
		fb, _ := fakeBlock(3)
		b := encodeRecord(queued, fb.Marshal(), raw)
		r, err := decodeRecord(b)
		require.NoError(t, err)
		require.Equal(t, *fb, r.fb)
		require.Equal(t, fb.Marshal(), r.msg)
		require.Equal(t, raw, r.raw)
		require.True(t, queued.Equal(r.queued))
		b[len(b)/2] ^= 0xff // decode never aliases
		require.Equal(t, *fb, r.fb)
	}
}

func TestRecordDamage(t *testing.T) {
	fb, raw := fakeBlock(3)
	good := encodeRecord(time.Unix(1, 0), fb.Marshal(), raw)
	// Every single-bit flip and every truncation is detected.
	for i := range good {
		for bit := range 8 {
			bad := bytes.Clone(good)
			bad[i] ^= 1 << bit
			_, err := decodeRecord(bad)
			require.Error(t, err, "bit %d of byte %d", bit, i)
		}
	}
	for n := range len(good) {
		_, err := decodeRecord(good[:n])
		require.Error(t, err, "truncated to %d", n)
	}
	_, err := decodeRecord(append(bytes.Clone(good), 0))
	require.Error(t, err, "trailing byte")
}

// (e) Corrupt spool files are moved aside to failed/ with an Error, never
// deleted and never fatal; good ones load, and a complete temporary file
// (a crash between fsync and rename) is adopted.
func TestCorruptSpoolMovedAside(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o600))
	}
	rec := func(i int) (*bus.FoundBlock, []byte) {
		fb, raw := fakeBlock(i)
		return fb, encodeRecord(time.Unix(int64(i), 0), fb.Marshal(), raw)
	}

	good, goodRec := rec(1)
	write(good.BlockHash.String()+spoolExt, goodRec)

	flipped, b := rec(2)
	b[30] ^= 0x40 // bad checksum
	write(flipped.BlockHash.String()+spoolExt, b)

	write("garbage"+spoolExt, []byte("not a spool record at all"))
	write("empty"+spoolExt, nil)
	trunc, b := rec(3)
	write(trunc.BlockHash.String()+spoolExt, b[:len(b)-7])

	_, b = rec(4)
	other, _ := fakeBlock(5)
	write(other.BlockHash.String()+spoolExt, b) // someone else's record under this name

	adopted, b := rec(6)
	write("."+adopted.BlockHash.String()+".123"+tmpExt, b) // complete, never renamed
	write(".deadbeef.456"+tmpExt, b[:10])                  // incomplete
	write("README", []byte("not ours: ignored"))

	lg, obs := logs(t)
	s, err := New(Options{SpoolDir: dir, Logger: lg})
	require.NoError(t, err)
	require.Equal(t, 2, s.Pending(), "the good record and the adopted temporary file")

	names := func(paths []string) []string {
		var out []string
		for _, p := range paths {
			out = append(out, filepath.Base(p))
		}
		return out
	}
	require.ElementsMatch(t, []string{good.BlockHash.String() + spoolExt, adopted.BlockHash.String() + spoolExt},
		names(spoolFiles(t, dir)))
	require.ElementsMatch(t, []string{
		flipped.BlockHash.String() + spoolExt, "garbage" + spoolExt, "empty" + spoolExt,
		trunc.BlockHash.String() + spoolExt, other.BlockHash.String() + spoolExt, ".deadbeef.456" + tmpExt,
	}, names(failedFiles(t, dir)), "moved aside, never deleted")
	bad := obs.FilterMessage("corrupt block spool file moved aside")
	require.Equal(t, 6, bad.Len())
	for _, e := range bad.All() {
		require.Equal(t, zap.ErrorLevel, e.Level)
	}
	_, err = os.Stat(filepath.Join(dir, "README"))
	require.NoError(t, err)

	// A second corrupt file with a name already in failed/ doesn't
	// overwrite the first.
	write("garbage"+spoolExt, []byte("more garbage"))
	_, err = New(Options{SpoolDir: dir, Logger: lg})
	require.NoError(t, err)
	require.Len(t, failedFiles(t, dir), 7)
}

func FuzzDecodeRecord(f *testing.F) {
	fb, raw := fakeBlock(1)
	f.Add(encodeRecord(time.Unix(1, 2), fb.Marshal(), raw))
	f.Add(encodeRecord(time.Unix(1, 2), fb.Marshal(), nil))
	f.Add([]byte(spoolMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		again := encodeRecord(r.queued, r.msg, r.raw)
		require.Equal(t, b, again, "a record that decodes re-encodes to the same bytes")
	})
}
