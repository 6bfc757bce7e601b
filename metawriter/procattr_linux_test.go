package main

import "syscall"

// childAttr makes the kernel kill a daemon under test when the test binary
// dies, so none outlives its test.
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
