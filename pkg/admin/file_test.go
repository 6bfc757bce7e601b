package admin_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hashgate/hashgate/pkg/admin"
	"github.com/stretchr/testify/require"
)

func TestWriteAddrFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		path string
		url  string
	}{
		{name: "new file", path: filepath.Join(dir, "gateway.admin"), url: "http://127.0.0.1:7101"},
		{name: "overwrite", path: filepath.Join(dir, "gateway.admin"), url: "http://127.0.0.1:40123"},
		{name: "missing parent dir", path: filepath.Join(dir, "run", "sub", "jobmaster.admin"), url: "http://[::1]:7102"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, admin.WriteAddrFile(tc.path, tc.url))
			got, err := os.ReadFile(tc.path)
			require.NoError(t, err)
			require.Equal(t, tc.url+"\n", string(got))

			fi, err := os.Stat(tc.path)
			require.NoError(t, err)
			require.Equal(t, os.FileMode(0o644), fi.Mode().Perm())

			// No temporary files are left next to it.
			entries, err := os.ReadDir(filepath.Dir(tc.path))
			require.NoError(t, err)
			for _, e := range entries {
				require.NotContains(t, e.Name(), ".tmp", "leftover temp file")
			}
		})
	}
}

func TestWriteAddrFileErrors(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(notDir, nil, 0o644))

	err := admin.WriteAddrFile(filepath.Join(notDir, "x.admin"), "http://127.0.0.1:1")
	require.ErrorContains(t, err, "write admin address file")

	// Renaming onto a directory fails and leaves no temp file behind.
	target := filepath.Join(dir, "adir")
	require.NoError(t, os.Mkdir(target, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(target, "keep"), nil, 0o644))
	err = admin.WriteAddrFile(target, "http://127.0.0.1:1")
	require.Error(t, err)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 2, "only the two fixtures may remain")
}

func TestRemoveFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.admin")
	require.NoError(t, admin.WriteAddrFile(path, "http://127.0.0.1:1"))

	admin.RemoveFile(path)
	_, err := os.Stat(path)
	require.ErrorIs(t, err, os.ErrNotExist)

	// Missing files and empty paths are fine.
	admin.RemoveFile(path)
	admin.RemoveFile("")
}
