package lifecycle

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestWritePIDFile(t *testing.T) {
	dir := t.TempDir()
	pidLine := strconv.Itoa(os.Getpid()) + "\n"

	tests := []struct {
		name      string
		path      string
		replaceBy string // content written after WritePIDFile, "" keeps ours
		wantKept  bool   // whether remove must leave the file in place
	}{
		{name: "plain", path: filepath.Join(dir, "gateway.pid")},
		{name: "creates parent dirs", path: filepath.Join(dir, "run", "nested", "jobmaster.pid")},
		{name: "overwrites stale file", path: filepath.Join(dir, "stale.pid")},
		{name: "keeps a newer instance's file", path: filepath.Join(dir, "newer.pid"), replaceBy: "999999999\n", wantKept: true},
		{name: "keeps a garbled file", path: filepath.Join(dir, "garbled.pid"), replaceBy: "not a pid", wantKept: true},
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "stale.pid"), []byte("12345\n"), 0o600))

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			remove, err := WritePIDFile(tc.path)
			require.NoError(t, err)

			got, err := os.ReadFile(tc.path)
			require.NoError(t, err)
			require.Equal(t, pidLine, string(got))
			fi, err := os.Stat(tc.path)
			require.NoError(t, err)
			require.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
			dirInfo, err := os.Stat(filepath.Dir(tc.path))
			require.NoError(t, err)
			require.True(t, dirInfo.IsDir())

			if tc.replaceBy != "" {
				require.NoError(t, os.WriteFile(tc.path, []byte(tc.replaceBy), 0o644))
			}
			remove()
			remove() // idempotent

			_, err = os.Stat(tc.path)
			if tc.wantKept {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, os.ErrNotExist)
			}
		})
	}

	// No temporary files are left behind.
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		require.NotContains(t, e.Name(), ".tmp")
	}
}

func TestWritePIDFileEmptyPath(t *testing.T) {
	remove, err := WritePIDFile("")
	require.NoError(t, err)
	require.NotNil(t, remove)
	remove()
}

func TestWritePIDFileError(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(notDir, nil, 0o644))

	remove, err := WritePIDFile(filepath.Join(notDir, "x.pid"))
	require.ErrorContains(t, err, "write pid file")
	require.NotNil(t, remove, "remove must be callable even on error")
	remove()
}

func TestHUP(t *testing.T) {
	// A second subscriber keeps SIGHUP from killing the test binary once
	// HUP's handler is gone.
	guard := make(chan os.Signal, 4)
	signal.Notify(guard, syscall.SIGHUP)
	defer signal.Stop(guard)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hup := HUP(ctx)

	for i := range 2 {
		require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
		select {
		case <-hup:
		case <-time.After(5 * time.Second):
			t.Fatalf("SIGHUP %d not delivered", i+1)
		}
	}

	// After ctx is done nothing more is delivered.
	cancel()
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	drainGuard := time.After(5 * time.Second)
	for received := 0; received < 3; received++ {
		select {
		case <-guard:
		case <-drainGuard:
			t.Fatal("guard subscriber did not see the SIGHUPs")
		}
	}
	require.Never(t, func() bool { return len(hup) > 0 }, 200*time.Millisecond, 10*time.Millisecond)
}

func TestCoalesce(t *testing.T) {
	tests := []struct {
		name  string
		sends int
		want  int // values pending in out afterwards
	}{
		{name: "none", sends: 0, want: 0},
		{name: "one", sends: 2, want: 1}, // after the 2nd send the 1st is surely processed
		{name: "many coalesce", sends: 10, want: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			in := make(chan int) // unbuffered: a send completes only when coalesce takes it
			out := make(chan struct{}, 1)
			done := make(chan struct{})
			go func() {
				defer close(done)
				coalesce(ctx, in, out)
			}()

			for i := range tc.sends {
				in <- i
			}
			// Every send but the last has been fully handled; the last one
			// cannot add a second value to a buffer of one.
			require.Len(t, out, tc.want)

			cancel()
			<-done
		})
	}
}

func TestSignalContext(t *testing.T) {
	ctx, stop := SignalContext()
	defer stop()
	require.NoError(t, ctx.Err())

	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGTERM))
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("context not cancelled by SIGTERM")
	}
	require.ErrorIs(t, ctx.Err(), context.Canceled)
	require.EqualError(t, context.Cause(ctx), "terminated signal received")
	require.ErrorIs(t, context.Cause(ctx), context.Canceled)
}

func TestSignalContextStop(t *testing.T) {
	ctx, stop := SignalContext()
	stop()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("stop did not cancel the context")
	}
}
