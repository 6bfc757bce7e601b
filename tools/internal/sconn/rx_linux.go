//go:build linux

package sconn

import (
	"io"
	"syscall"
	"time"
	"unsafe"
)

// oobSize holds one SCM_TIMESTAMPNS control message (a timespec).
var oobSize = syscall.CmsgSpace(int(unsafe.Sizeof(syscall.Timespec{})))

// enableTimestamps turns on SO_TIMESTAMPNS; TCP then reports the arrival
// time of the last segment each recvmsg consumed.
func enableTimestamps(raw syscall.RawConn) bool {
	var serr error
	err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	})
	return err == nil && serr == nil
}

// recvTimestamped reads into p with recvmsg through the runtime poller (so
// read deadlines apply) and returns the kernel's receive time, or
// time.Now() when the kernel attached none.
func recvTimestamped(raw syscall.RawConn, p, oob []byte) (int, int64, error) {
	var n, oobn int
	var rerr error
	err := raw.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = syscall.Recvmsg(int(fd), p, oob, 0)
		return rerr != syscall.EAGAIN
	})
	if err != nil {
		return 0, 0, err
	}
	if rerr != nil {
		return 0, 0, rerr
	}
	if n == 0 {
		return 0, 0, io.EOF
	}
	if ts, ok := parseTimestamp(oob[:oobn]); ok {
		return n, ts, nil
	}
	return n, time.Now().UnixNano(), nil
}

// parseTimestamp finds SCM_TIMESTAMPNS in a control buffer.
func parseTimestamp(b []byte) (int64, bool) {
	msgs, err := syscall.ParseSocketControlMessage(b)
	if err != nil {
		return 0, false
	}
	for _, m := range msgs {
		if m.Header.Level != syscall.SOL_SOCKET || m.Header.Type != syscall.SCM_TIMESTAMPNS ||
			len(m.Data) < int(unsafe.Sizeof(syscall.Timespec{})) {
			continue
		}
		ts := (*syscall.Timespec)(unsafe.Pointer(&m.Data[0]))
		if ts.Sec == 0 && ts.Nsec == 0 {
			return 0, false
		}
		return ts.Nano(), true
	}
	return 0, false
}
