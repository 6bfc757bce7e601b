//go:build !linux

package sconn

import (
	"errors"
	"syscall"
)

const oobSize = 0

func enableTimestamps(syscall.RawConn) bool { return false }

func recvTimestamped(syscall.RawConn, []byte, []byte) (int, int64, error) {
	return 0, 0, errors.New("sconn: kernel timestamps need Linux")
}
