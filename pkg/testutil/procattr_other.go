//go:build !linux

package testutil

import "syscall"

// childProcAttr returns no special attributes outside Linux; t.Cleanup is
// then the only thing that stops harness processes.
func childProcAttr() *syscall.SysProcAttr { return nil }
