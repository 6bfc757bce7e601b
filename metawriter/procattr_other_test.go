//go:build !linux

package main

import "syscall"

// childAttr: outside Linux only the test's cleanup stops the daemon.
func childAttr() *syscall.SysProcAttr { return nil }
