// Command writefloor measures what the kernel alone charges for the
// gateway's fan-out on this machine: one write of a notify-sized message
// to each of N loopback TCP connections, made with raw write(2) calls (no
// gnet, no encoding, no Go netpoll on the writing side), by one thread or
// by as many threads as the gateway has event loops.
//
// Usage:
//
//	writefloor [-conns 6000] [-size 500] [-threads 1] [-read] [-rounds 7]
//
// -read gives every receiving socket a goroutine blocked in Read, as a
// miner's client has, so each write also wakes a reader on the same
// machine. It prints the wall time per connection (min / median / max of
// the rounds) and the fan-out time this implies for 19,000 connections.
// Each connection costs three descriptors (both ends and the writer's
// copy), so keep -conns below a third of the open-file limit.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"sort"
	"sync"
	"syscall"
	"time"
)

func main() {
	conns := flag.Int("conns", 6000, "loopback connections")
	size := flag.Int("size", 500, "bytes written to each connection per round")
	threads := flag.Int("threads", 1, "writer threads (the gateway's event loops)")
	read := flag.Bool("read", false, "a goroutine reads every receiving socket")
	rounds := flag.Int("rounds", 7, "rounds (one write per connection each)")
	flag.Parse()
	if err := run(*conns, *size, *threads, *rounds, *read); err != nil {
		fmt.Fprintln(os.Stderr, "writefloor:", err)
		os.Exit(1)
	}
}

func run(n, size, threads, rounds int, read bool) error {
	if n < 1 || size < 1 || threads < 1 || rounds < 1 {
		return fmt.Errorf("-conns, -size, -threads and -rounds must be positive")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	var files []*os.File // the writers' descriptors (kept open by keeping these)
	var all []net.Conn
	defer func() {
		for _, c := range all {
			c.Close()
		}
		for _, f := range files {
			f.Close()
		}
	}()
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return fmt.Errorf("dial %d: %w", i, err)
		}
		s, err := ln.Accept()
		if err != nil {
			return fmt.Errorf("accept %d: %w", i, err)
		}
		all = append(all, c, s)
		f, err := s.(*net.TCPConn).File()
		if err != nil {
			return fmt.Errorf("descriptor %d: %w", i, err)
		}
		files = append(files, f)
		if read {
			go func() {
				b := make([]byte, 4096)
				for {
					if _, err := c.Read(b); err != nil {
						return
					}
				}
			}()
		}
	}
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	msg := make([]byte, size)
	for i := range msg {
		msg[i] = 'x'
	}
	msg[len(msg)-1] = '\n'
	per := make([]float64, 0, rounds)
	for r := 0; r < rounds; r++ {
		time.Sleep(300 * time.Millisecond) // readers drained, sockets idle
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, threads)
		for t := 0; t < threads; t++ {
			wg.Add(1)
			go func(t int) {
				defer wg.Done()
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				for i := t; i < len(fds); i += threads {
					if _, err := syscall.Write(fds[i], msg); err != nil {
						errs <- fmt.Errorf("write: %w", err)
						return
					}
				}
			}(t)
		}
		wg.Wait()
		select {
		case err := <-errs:
			return err
		default:
		}
		per = append(per, float64(time.Since(start).Nanoseconds())/1e3/float64(n))
	}
	sort.Float64s(per)
	med := per[len(per)/2]
	fmt.Printf("conns %d, %d B, %d writer thread(s), readers %v, %d CPUs\n", n, size, threads, read, runtime.NumCPU())
	fmt.Printf("wall per connection: min %.2f µs, median %.2f µs, max %.2f µs\n", per[0], med, per[len(per)-1])
	fmt.Printf("implied fan-out to 19,000 connections: min %.0f ms, median %.0f ms\n", per[0]*19, med*19)
	return nil
}
