package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"time"
)

// process is a server binary started by one of the harnesses, its stdout
// and stderr appended to a log file.
type process struct {
	cmd *exec.Cmd
	// exited is closed once the process has been reaped.
	exited chan struct{}
}

// startProcess starts path with args in dir, appending its output to
// logPath; it is killed with the test binary (childProcAttr).
func startProcess(path string, args []string, dir, logPath string) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Dir = dir
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("exec %s: %w", path, err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		_ = logFile.Close()
		close(p.exited)
	}()
	return p, nil
}

// errExited reports a process that died while starting.
type errExited struct {
	name  string
	state *os.ProcessState
}

func (e errExited) Error() string {
	return fmt.Sprintf("%s exited during startup (%s)", e.name, e.state)
}

// waitReady polls ready every interval until it returns nil (ready), the
// process exits (errExited), or timeout passes (ready's last error).
func (p *process) waitReady(name string, timeout, interval time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		select {
		case <-p.exited:
			return errExited{name: name, state: p.cmd.ProcessState}
		case <-time.After(interval):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %s: %w", name, timeout, err)
		}
	}
}
