package testutil

import "syscall"

// childProcAttr makes the kernel kill a harness child process when the test
// binary dies (e.g. on a test timeout panic), so no btcd outlives its test.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
