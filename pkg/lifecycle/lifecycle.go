package lifecycle

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
)

// SignalContext returns a context that is cancelled by the first SIGINT or
// SIGTERM, and a function that releases its resources (call it with defer;
// it also cancels the context).
//
// As soon as the first signal arrives the signal handlers are removed (stop
// is called), so a second SIGINT or SIGTERM is handled the default way and
// kills the process immediately, even while a graceful shutdown hangs.
// context.Cause of the cancelled context tells which signal arrived.
func SignalContext() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // restore the default disposition for the second signal
	}()
	return ctx, stop
}

// WritePIDFile writes the current process id and a newline to path
// atomically (through a temporary file in the same directory and a rename),
// creating the parent directory with mode 0755 if needed. An existing file is
// replaced.
//
// The returned remove function deletes the file, but only if it still holds
// this process's pid, so a newer instance's pid file survives an old
// instance's exit; it ignores errors and may be called more than once. An
// empty path writes nothing and returns a no-op remove and a nil error.
func WritePIDFile(path string) (remove func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	pid := os.Getpid()
	if err := writeFileAtomic(path, []byte(strconv.Itoa(pid)+"\n")); err != nil {
		return func() {}, fmt.Errorf("write pid file: %w", err)
	}

	var once sync.Once
	return func() {
		once.Do(func() {
			data, err := os.ReadFile(path)
			if err != nil {
				return
			}
			if got, err := strconv.Atoi(string(bytes.TrimSpace(data))); err == nil && got == pid {
				_ = os.Remove(path)
			}
		})
	}, nil
}

// writeFileAtomic replaces path with a file holding data (mode 0644).
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	renamed := false
	defer func() {
		if !renamed {
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	renamed = true
	return nil
}

// HUP returns a channel that receives a value for each SIGHUP until ctx is
// done. The channel has a buffer of one and signals coalesce: SIGHUPs that
// arrive while a value is still pending are folded into it, so a slow reload
// runs once more rather than once per signal. The channel is never closed;
// select on ctx.Done() as well.
//
// Once ctx is done the handler is removed, and SIGHUP reverts to its previous
// handling (by default it terminates the process) unless another caller
// still subscribes to it.
func HUP(ctx context.Context) <-chan struct{} {
	out := make(chan struct{}, 1)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	go func() {
		defer signal.Stop(sig)
		coalesce(ctx, sig, out)
	}()
	return out
}

// coalesce forwards each value from in to out without blocking, dropping it
// when out already holds a pending value, until ctx is done.
func coalesce[T any](ctx context.Context, in <-chan T, out chan<- struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-in:
			if ctx.Err() != nil {
				return // select picks randomly; never forward after ctx is done
			}
			select {
			case out <- struct{}{}:
			default: // a reload is already pending
			}
		}
	}
}
