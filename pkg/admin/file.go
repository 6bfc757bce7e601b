package admin

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteAddrFile writes url and a newline to path atomically: the content goes
// to a temporary file in the same directory, which is then renamed over path,
// so a watchdog reading the file never sees a partial URL. The parent
// directory is created (mode 0755) if missing; the file gets mode 0644.
func WriteAddrFile(path, url string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write admin address file: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write admin address file: %w", err)
	}
	// Remove the temporary file unless it was renamed into place.
	renamed := false
	defer func() {
		if !renamed {
			_ = os.Remove(tmp.Name())
		}
	}()

	if _, err := tmp.WriteString(url + "\n"); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write admin address file %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write admin address file %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write admin address file %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write admin address file: %w", err)
	}
	renamed = true
	return nil
}

// RemoveFile removes the file at path, ignoring every error (including the
// file not existing). It is meant for deferred cleanup of files such as the
// admin address file. An empty path does nothing.
func RemoveFile(path string) {
	if path != "" {
		_ = os.Remove(path)
	}
}
