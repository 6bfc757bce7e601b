package spool

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAppendReadRemoveReopen(t *testing.T) {
	dir := t.TempDir()
	s, problems, err := Open(dir, 1<<20)
	require.NoError(t, err)
	require.Empty(t, problems)
	var seqs []uint64
	for i := 0; i < 5; i++ {
		seq, err := s.Append([]byte{byte(i), 1, 2, 3})
		require.NoError(t, err)
		seqs = append(seqs, seq)
	}
	require.Equal(t, seqs, s.Pending())
	require.NoError(t, s.Remove(seqs[1]))
	require.NoError(t, s.Remove(seqs[1]), "removing twice is harmless")
	require.Equal(t, 4, s.Len())

	// Reopen: the same records, in order; new ones come after.
	s2, problems, err := Open(dir, 1<<20)
	require.NoError(t, err)
	require.Empty(t, problems)
	require.Equal(t, []uint64{seqs[0], seqs[2], seqs[3], seqs[4]}, s2.Pending())
	b, err := s2.Read(seqs[3])
	require.NoError(t, err)
	require.Equal(t, []byte{3, 1, 2, 3}, b)
	seq, err := s2.Append([]byte("x"))
	require.NoError(t, err)
	require.Greater(t, seq, seqs[4])
	require.Equal(t, s.Bytes()+int64(len(encode([]byte("x")))), s2.Bytes())
}

func TestBounded(t *testing.T) {
	s, _, err := Open(t.TempDir(), 30)
	require.NoError(t, err)
	_, err = s.Append(make([]byte, 10))
	require.NoError(t, err)
	_, err = s.Append(make([]byte, 10))
	require.ErrorIs(t, err, ErrFull)
}

func TestCorruptMovedAside(t *testing.T) {
	dir := t.TempDir()
	s, _, err := Open(dir, 1<<20)
	require.NoError(t, err)
	seq, err := s.Append([]byte("hello"))
	require.NoError(t, err)
	p := s.path(seq)
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	b[5] ^= 0xff
	require.NoError(t, os.WriteFile(p, b, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "junk.rec"), []byte("junk"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".tmp-123"), []byte("half"), 0o600))
	s2, problems, err := Open(dir, 1<<20)
	require.NoError(t, err)
	require.Len(t, problems, 2)
	require.Zero(t, s2.Len())
	moved, _ := filepath.Glob(filepath.Join(dir, "corrupt", "*"))
	require.Len(t, moved, 2)
	_, err = os.Stat(filepath.Join(dir, ".tmp-123"))
	require.True(t, os.IsNotExist(err), "unfinished temp files are dropped")
}

func FuzzDecode(f *testing.F) {
	f.Add(encode([]byte("seed")))
	f.Fuzz(func(t *testing.T, b []byte) {
		data, err := decode(b)
		if err == nil {
			require.Equal(t, b, encode(data))
		}
	})
}
