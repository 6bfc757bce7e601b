package testutil

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeTB records failures instead of failing the real test. FailNow and
// Fatalf end the calling goroutine, as the real ones do, so the code under
// test must run in its own goroutine (see runFake).
type fakeTB struct {
	testing.TB // the real test, for TempDir, Cleanup, Helper, ...

	mu     sync.Mutex
	msgs   []string
	failed bool
}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
	f.failed = true
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	runtime.Goexit()
}

func (f *fakeTB) FailNow() {
	f.mu.Lock()
	f.failed = true
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeTB) Fail() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed = true
}

func (f *fakeTB) Failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

// runFake runs fn with a fakeTB on a new goroutine, waits for it to return
// or to stop through FailNow/Fatalf, and returns the fake.
func runFake(t *testing.T, fn func(tb testing.TB)) *fakeTB {
	t.Helper()
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f
}

func TestFreePort(t *testing.T) {
	tests := []struct {
		name       string
		goroutines int
		perG       int
	}{
		{name: "sequential", goroutines: 1, perG: 100},
		{name: "concurrent", goroutines: 8, perG: 25},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			seen := make(map[int]bool)
			var wg sync.WaitGroup
			for range tc.goroutines {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range tc.perG {
						p := FreePort(t)
						mu.Lock()
						seen[p] = !seen[p] // a repeat flips it to false
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			require.Len(t, seen, tc.goroutines*tc.perG, "a port was handed out twice")
			for p, once := range seen {
				require.True(t, once, "port %d handed out twice", p)
				require.GreaterOrEqual(t, p, 20000)
				require.LessOrEqual(t, p, 32767)
			}
		})
	}
}

func TestFreePortIsBindable(t *testing.T) {
	p := FreePort(t)
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	require.NoError(t, err)
	require.NoError(t, l.Close())
}

func TestEventually(t *testing.T) {
	tests := []struct {
		name       string
		trueAfter  int // cond returns true from this call on; -1 never
		timeout    time.Duration
		msgAndArgs []any
		wantFail   bool
		wantMsg    string
	}{
		{name: "immediately true", trueAfter: 1, timeout: time.Second},
		{name: "true after polls", trueAfter: 5, timeout: 5 * time.Second},
		{name: "never true", trueAfter: -1, timeout: 50 * time.Millisecond, wantFail: true, msgAndArgs: []any{"waiting for %s", "godot"}, wantMsg: "waiting for godot"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			start := time.Now()
			f := runFake(t, func(tb testing.TB) {
				Eventually(tb, tc.timeout, func() bool {
					calls++
					return tc.trueAfter > 0 && calls >= tc.trueAfter
				}, tc.msgAndArgs...)
			})
			require.Equal(t, tc.wantFail, f.Failed(), "messages: %v", f.msgs)
			if tc.wantFail {
				require.GreaterOrEqual(t, time.Since(start), tc.timeout)
				require.Len(t, f.msgs, 1)
				require.Contains(t, f.msgs[0], tc.wantMsg)
				require.Contains(t, f.msgs[0], "condition not met within "+tc.timeout.String())
				require.Greater(t, calls, 1, "cond must be polled repeatedly")
				return
			}
			require.Equal(t, tc.trueAfter, calls)
		})
	}
}

func TestBtcdPath(t *testing.T) {
	// A fake executable and a directory laid out like $GOPATH/bin.
	tmp := t.TempDir()
	fakeBtcd := filepath.Join(tmp, "fake-btcd")
	require.NoError(t, os.WriteFile(fakeBtcd, []byte("#!/bin/sh\n"), 0o755))
	gopath := filepath.Join(tmp, "gopath")
	require.NoError(t, os.MkdirAll(filepath.Join(gopath, "bin"), 0o755))
	gopathBtcd := filepath.Join(gopath, "bin", "btcd")
	require.NoError(t, os.WriteFile(gopathBtcd, []byte("#!/bin/sh\n"), 0o755))
	pathDir := filepath.Join(tmp, "path")
	require.NoError(t, os.MkdirAll(pathDir, 0o755))
	pathBtcd := filepath.Join(pathDir, "btcd")
	require.NoError(t, os.WriteFile(pathBtcd, []byte("#!/bin/sh\n"), 0o755))
	notExec := filepath.Join(tmp, "not-exec")
	require.NoError(t, os.WriteFile(notExec, []byte("x"), 0o644))
	empty := filepath.Join(tmp, "empty")
	require.NoError(t, os.MkdirAll(empty, 0o755))

	tests := []struct {
		name     string
		env      map[string]string
		want     string
		wantFail string
	}{
		{name: "env override", env: map[string]string{BtcdEnv: fakeBtcd, "PATH": pathDir}, want: fakeBtcd},
		{name: "env override not executable", env: map[string]string{BtcdEnv: notExec, "PATH": pathDir}, wantFail: btcdMissing},
		{name: "PATH", env: map[string]string{BtcdEnv: "", "PATH": pathDir, "GOPATH": gopath}, want: pathBtcd},
		{name: "GOPATH bin", env: map[string]string{BtcdEnv: "", "PATH": empty, "GOBIN": "", "GOPATH": empty + string(os.PathListSeparator) + gopath, "HOME": empty}, want: gopathBtcd},
		{name: "home go bin", env: map[string]string{BtcdEnv: "", "PATH": empty, "GOBIN": "", "GOPATH": "", "HOME": tmp + "/home"}, want: ""},
		{name: "missing everywhere", env: map[string]string{BtcdEnv: "", "PATH": empty, "GOBIN": "", "GOPATH": empty, "HOME": empty}, wantFail: btcdMissing},
	}
	// ~/go/bin/btcd for the "home go bin" case.
	homeBtcd := filepath.Join(tmp, "home", "go", "bin", "btcd")
	require.NoError(t, os.MkdirAll(filepath.Dir(homeBtcd), 0o755))
	require.NoError(t, os.WriteFile(homeBtcd, []byte("#!/bin/sh\n"), 0o755))
	tests[4].want = homeBtcd

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var got string
			f := runFake(t, func(tb testing.TB) { got = BtcdPath(tb) })
			if tc.wantFail != "" {
				require.True(t, f.Failed())
				require.Len(t, f.msgs, 1)
				require.Contains(t, f.msgs[0], tc.wantFail)
				return
			}
			require.False(t, f.Failed(), "messages: %v", f.msgs)
			require.Equal(t, tc.want, got)
		})
	}
}
