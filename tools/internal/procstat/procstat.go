// Package procstat reads another process's CPU time and resident memory
// from /proc (Linux), and the few series the load report needs from a
// daemon's Prometheus /metrics page.
package procstat

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/<pid>/stat. It is
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// Sample is one reading of a process.
type Sample struct {
	// CPUSeconds is utime + stime.
	CPUSeconds float64
	// RSSBytes is VmRSS.
	RSSBytes int64
}

// Read samples process pid.
func Read(pid int) (Sample, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Sample{}, err
	}
	cpu, err := parseStat(stat)
	if err != nil {
		return Sample{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Sample{}, err
	}
	rss, err := parseRSS(status)
	if err != nil {
		return Sample{}, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	return Sample{CPUSeconds: cpu, RSSBytes: rss}, nil
}

// parseStat returns (utime+stime) in seconds. The command name may hold
// spaces and parentheses, so fields are counted after the last ')'.
func parseStat(b []byte) (float64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("no ')' in stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("stat has %d fields", len(f)+2)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bad utime/stime %q %q", f[11], f[12])
	}
	return float64(ut+st) / clockTicks, nil
}

// parseRSS returns VmRSS in bytes.
func parseRSS(b []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "VmRSS:") {
			continue
		}
		f := strings.Fields(line[len("VmRSS:"):])
		if len(f) < 1 {
			break
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, err
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("no VmRSS line")
}

// Metrics is a parsed Prometheus text page: series ("name{labels}" exactly
// as printed, or "name") to value.
type Metrics map[string]float64

// Scrape fetches and parses url (the /metrics page).
func Scrape(ctx context.Context, url string) (Metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return ParseMetrics(resp.Body)
}

// ParseMetrics parses the Prometheus text exposition format, keeping
// every sample line.
func ParseMetrics(r io.Reader) (Metrics, error) {
	m := Metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		// The value follows the series, after the closing brace if any.
		cut := strings.LastIndexByte(line, '}')
		rest := line
		series := ""
		if cut >= 0 {
			series, rest = line[:cut+1], line[cut+1:]
		} else {
			sp := strings.IndexByte(line, ' ')
			if sp < 0 {
				continue
			}
			series, rest = line[:sp], line[sp:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		m[series] = v
	}
	return m, sc.Err()
}

// Sum adds every series of metric name (any labels) whose labels contain
// all of match (e.g. `result="accepted"`).
func (m Metrics) Sum(name string, match ...string) float64 {
	var s float64
	for k, v := range m {
		if k != name && !strings.HasPrefix(k, name+"{") {
			continue
		}
		ok := true
		for _, x := range match {
			if !strings.Contains(k, x) {
				ok = false
				break
			}
		}
		if ok {
			s += v
		}
	}
	return s
}

// ByLabel returns the series of metric name keyed by the value of label.
func (m Metrics) ByLabel(name, label string) map[string]float64 {
	out := map[string]float64{}
	prefix := name + "{"
	for k, v := range m {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		i := strings.Index(k, label+`="`)
		if i < 0 {
			continue
		}
		rest := k[i+len(label)+2:]
		j := strings.IndexByte(rest, '"')
		if j < 0 {
			continue
		}
		out[rest[:j]] += v
	}
	return out
}
