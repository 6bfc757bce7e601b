package testutil

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RedisEnv names the environment variable that overrides the redis-server
// binary.
const RedisEnv = "HASHGATE_REDIS_SERVER"

// redisMissing is the failure message when no redis-server can be found.
const redisMissing = "redis-server not found: run shell/deps.sh (apt-get install redis-server)"

// Redis harness timings.
const (
	redisStartTimeout = 15 * time.Second // until PING answers
	redisStopTimeout  = 10 * time.Second // SIGTERM grace before SIGKILL
	redisStartTries   = 3                // port collisions are retried
	redisDialTimeout  = time.Second
)

// RedisOptions configures StartRedisWith. The zero value is what StartRedis
// uses: no password.
type RedisOptions struct {
	// Password, when set, is passed as --requirepass; Do and Ping
	// authenticate with it.
	Password string
	// ExtraArgs are appended to redis-server's command line.
	ExtraArgs []string
}

// Redis is a real redis-server process started by StartRedis. It listens on
// 127.0.0.1 only and keeps an append-only file fsynced on every write
// (--appendonly yes --appendfsync always, no RDB snapshots), so whatever
// Redis acknowledged survives Stop, Kill and Start: a test can take Redis
// away and bring it back with its data, as a production outage would.
//
// Exported fields are read-only. Methods are safe for concurrent use, except
// that Start, Stop and Kill must not race with each other.
type Redis struct {
	// Port is the TCP port on 127.0.0.1; it stays the same across restarts.
	Port int
	// Password is the requirepass value, "" for none.
	Password string
	// Dir is the working directory: the append-only files and redis.log.
	Dir string

	path    string
	args    []string // command line without the port
	logPath string

	mu      sync.Mutex // guards cmd, exited, running
	cmd     *exec.Cmd
	exited  chan struct{}
	running bool
}

// RedisPath returns the redis-server binary: $HASHGATE_REDIS_SERVER if set,
// else redis-server from PATH, else /usr/bin/redis-server or
// /usr/local/bin/redis-server. If none exists the test fails (it is never
// skipped).
func RedisPath(t testing.TB) string {
	t.Helper()
	return findBinary(t, RedisEnv, "redis-server", []string{"/usr/bin", "/usr/local/bin"}, redisMissing)
}

// StartRedis starts a redis-server without a password; see StartRedisWith.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	return StartRedisWith(t, RedisOptions{})
}

// StartRedisWith starts redis-server on 127.0.0.1 at a port chosen by
// FreePort (protected mode on, no RDB snapshots, an fsync-always
// append-only file in a fresh t.TempDir), waits up to 15 s until it answers
// PING, and registers a t.Cleanup that stops it. On failure it prints the
// tail of the server's log and fails the test.
func StartRedisWith(t testing.TB, opts RedisOptions) *Redis {
	t.Helper()
	path := RedisPath(t)
	dir := t.TempDir()
	r := &Redis{Password: opts.Password, Dir: dir, path: path, logPath: filepath.Join(dir, "redis.log")}
	r.args = []string{
		"--bind", "127.0.0.1",
		"--protected-mode", "yes",
		"--dir", dir,
		"--save", "",
		"--appendonly", "yes",
		"--appendfsync", "always",
		"--daemonize", "no",
		"--logfile", "",
	}
	if opts.Password != "" {
		r.args = append(r.args, "--requirepass", opts.Password)
	}
	r.args = append(r.args, opts.ExtraArgs...)
	t.Cleanup(func() { r.Stop(t) })

	var lastErr error
	for try := 1; try <= redisStartTries; try++ {
		r.Port = FreePort(t)
		lastErr = r.start()
		if lastErr == nil {
			return r
		}
		if !strings.Contains(r.logTail(), "Address already in use") {
			break
		}
		t.Logf("redis-server: port collision on try %d, retrying with a new port", try)
	}
	t.Logf("redis-server log tail (%s):\n%s", r.logPath, r.logTail())
	t.Fatalf("start redis-server: %v", lastErr)
	return nil
}

// Addr returns "127.0.0.1:port".
func (r *Redis) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.Port)) }

// start launches the process on r.Port and waits for PING.
func (r *Redis) start() error {
	args := append([]string{"--port", strconv.Itoa(r.Port)}, r.args...)
	p, err := startProcess(r.path, args, r.Dir, r.logPath)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.cmd, r.exited, r.running = p.cmd, p.exited, true
	r.mu.Unlock()

	err = p.waitReady("redis-server", redisStartTimeout, 20*time.Millisecond, r.Ping)
	if err != nil {
		if _, died := err.(errExited); died {
			r.mu.Lock()
			r.running = false
			r.mu.Unlock()
		} else {
			r.stop(syscall.SIGKILL, 0)
		}
	}
	return err
}

// Start starts a stopped or killed server again on the same port, directory
// and password, waits until it answers PING (it has then reloaded its
// append-only file) and fails the test otherwise. It does nothing if the
// server is running.
func (r *Redis) Start(t testing.TB) {
	t.Helper()
	if r.Running() {
		return
	}
	if err := r.start(); err != nil {
		t.Logf("redis-server log tail (%s):\n%s", r.logPath, r.logTail())
		t.Fatalf("restart redis-server on port %d: %v", r.Port, err)
	}
}

// Stop shuts the server down gracefully: SIGTERM (Redis fsyncs its
// append-only file and exits), then SIGKILL if it has not exited within
// 10 s. It waits for the process to be gone. Calling it on a stopped server
// does nothing.
func (r *Redis) Stop(t testing.TB) {
	t.Helper()
	if !r.stop(syscall.SIGTERM, redisStopTimeout) {
		t.Logf("redis-server did not exit within %s of SIGTERM; killed it", redisStopTimeout)
	}
}

// Kill ends the server with SIGKILL, as a crash would, and waits for the
// process to be gone. With appendfsync always, every write Redis
// acknowledged is still in the append-only file. Calling it on a stopped
// server does nothing.
func (r *Redis) Kill(t testing.TB) {
	t.Helper()
	r.stop(syscall.SIGKILL, 0)
}

// stop signals the process and waits up to grace (then kills it). It
// reports false if the process had to be killed after the grace period.
func (r *Redis) stop(sig syscall.Signal, grace time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.running {
		return true
	}
	r.running = false
	_ = r.cmd.Process.Signal(sig)
	if sig == syscall.SIGKILL {
		<-r.exited
		return true
	}
	select {
	case <-r.exited:
		return true
	case <-time.After(grace):
		_ = r.cmd.Process.Kill()
		<-r.exited
		return false
	}
}

// Running reports whether the server process is up (started and not yet
// stopped or exited).
func (r *Redis) Running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.running {
		return false
	}
	select {
	case <-r.exited:
		return false
	default:
		return true
	}
}

// Ping sends PING on a fresh connection and returns nil if the server
// answered PONG.
func (r *Redis) Ping() error {
	v, err := r.Do("PING")
	if err != nil {
		return err
	}
	if v != "PONG" {
		return fmt.Errorf("redis: PING answered %v", v)
	}
	return nil
}

// Do runs one command on a fresh connection (authenticating first when the
// server has a password) and returns the reply: a string for simple and bulk
// strings, int64 for integers, nil for a nil reply, []any for arrays; an
// error reply is returned as an error. It is a tiny client for harness
// checks and for tests of modules that must not depend on a Redis library;
// tests that do use one should prefer it.
func (r *Redis) Do(args ...string) (any, error) {
	conn, err := net.DialTimeout("tcp", r.Addr(), redisDialTimeout)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	rd := bufio.NewReader(conn)
	if r.Password != "" {
		if _, err := roundTrip(conn, rd, "AUTH", r.Password); err != nil {
			return nil, fmt.Errorf("redis auth: %w", err)
		}
	}
	return roundTrip(conn, rd, args...)
}

// roundTrip writes one RESP command and reads its reply.
func roundTrip(conn net.Conn, rd *bufio.Reader, args ...string) (any, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return nil, err
	}
	return readReply(rd)
}

// errRedisReply marks an error reply from the server.
var errRedisReply = errors.New("redis error reply")

// readReply reads one RESP2 reply.
func readReply(rd *bufio.Reader) (any, error) {
	line, err := rd.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("redis: empty reply line")
	}
	body := line[1:]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return nil, fmt.Errorf("%w: %s", errRedisReply, body)
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, nil
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = readReply(rd); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("redis: unexpected reply %q", line)
}

// logTail returns the end of the server's log.
func (r *Redis) logTail() string {
	data, err := os.ReadFile(r.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if len(data) > logTailBytes {
		data = data[len(data)-logTailBytes:]
	}
	return string(data)
}
