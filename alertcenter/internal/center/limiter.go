package center

import (
	"sync"
	"time"
)

// Limiter bounds for the per-host state.
const (
	maxHosts    = 10000            // buckets kept; beyond it new hosts share one
	overflowKey = "\x00overflow"   // the shared bucket
	idleForget  = 10 * time.Minute // a full, quiet bucket is forgotten after this
)

// Limiter is a token bucket per sending host. It is safe for concurrent
// use. A nil *Limiter allows everything.
type Limiter struct {
	rate  float64 // tokens per second
	burst float64

	mu    sync.Mutex
	hosts map[string]*bucket
}

type bucket struct {
	tokens     float64
	at         time.Time // last refill
	seen       time.Time // last Allow
	suppressed uint64    // refused since the last summary
}

// Suppressed is one host's refused count, to report.
type Suppressed struct {
	Host  string
	Count uint64
}

// NewLimiter allows n alerts per period per host, in bursts of n; n ≤ 0
// returns nil (no limit).
func NewLimiter(n int, per time.Duration) *Limiter {
	if n <= 0 || per <= 0 {
		return nil
	}
	return &Limiter{rate: float64(n) / per.Seconds(), burst: float64(n), hosts: make(map[string]*bucket)}
}

// Allow takes a token from host's bucket, or counts a refusal.
func (l *Limiter) Allow(host string, now time.Time) bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.hosts[host]
	if b == nil {
		if len(l.hosts) >= maxHosts {
			l.forgetLocked(now)
		}
		key := host
		if len(l.hosts) >= maxHosts {
			key = overflowKey
		}
		if b = l.hosts[key]; b == nil {
			b = &bucket{tokens: l.burst, at: now, seen: now}
			l.hosts[key] = b
		}
	}
	b.seen = now
	l.refill(b, now)
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	b.suppressed++
	return false
}

// Due returns, and resets, the refused counts of hosts that have a token
// again; each summary takes that token.
func (l *Limiter) Due(now time.Time) []Suppressed {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Suppressed
	for h, b := range l.hosts {
		if b.suppressed == 0 {
			continue
		}
		l.refill(b, now)
		if b.tokens >= 1 {
			b.tokens--
			out = append(out, Suppressed{Host: h, Count: b.suppressed})
			b.suppressed = 0
		}
	}
	l.forgetLocked(now)
	return out
}

// Hosts returns how many hosts have state.
func (l *Limiter) Hosts() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.hosts)
}

func (l *Limiter) refill(b *bucket, now time.Time) {
	if el := now.Sub(b.at); el > 0 {
		b.tokens = min(l.burst, b.tokens+el.Seconds()*l.rate)
		b.at = now
	}
}

// forgetLocked drops buckets that have nothing to report and were quiet
// for idleForget (they would be full again by then).
func (l *Limiter) forgetLocked(now time.Time) {
	for h, b := range l.hosts {
		if b.suppressed == 0 && now.Sub(b.seen) > idleForget {
			delete(l.hosts, h)
		}
	}
}
