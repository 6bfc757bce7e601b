package vardiff

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// twoTo32 is the expected number of hashes per difficulty-1 share.
const twoTo32 = 4294967296.0

// simEpoch is the simulated clock's origin.
var simEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// maxSimShares stops a run whose difficulty collapsed far below the
// miner's rate (it would otherwise simulate billions of shares).
const maxSimShares = 2_000_000

// miner is a simulated miner: with hashrate H it finds shares of difficulty
// D as a Poisson process of rate H/(D·2^32) per second, using a seeded
// random source, so every run is reproducible.
type miner struct {
	// Hashrate is in hashes per second.
	Hashrate float64
	// Lag delays each difficulty change before it reaches the miner;
	// shares found meanwhile are credited at the old difficulty, as when
	// set_difficulty applies from the next job.
	Lag time.Duration
	// Tick is the OnIdle period; 0 means 2 s.
	Tick time.Duration
	// Schedule changes the hashrate at given times (0 = stopped).
	Schedule []change
	// Ceiling, when positive, is passed to SetCeiling before the run.
	Ceiling float64
}

// change is a difficulty change (or, in a Schedule, a hashrate change).
type change struct {
	At    time.Duration
	Value float64
}

// simResult is what a run observed.
type simResult struct {
	Start   float64         // difficulty at time 0
	Changes []change        // every difficulty change, in order
	Shares  int             // shares found
	Arrival []time.Duration // share times (first 10,000)
	Final   float64         // difficulty at the end
	Runaway bool            // stopped after maxSimShares
}

// optimal is the difficulty at which hashrate h finds one share per target.
func optimal(h float64, target time.Duration) float64 {
	return h * target.Seconds() / twoTo32
}

// run simulates dur of mining from difficulty start, driving s.OnShare for
// every share and s.OnIdle every Tick.
func (m miner) run(cfg *Config, start float64, dur time.Duration, seed uint64) simResult {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	tick := m.Tick
	if tick == 0 {
		tick = 2 * time.Second
	}
	s := New(cfg, start, simEpoch)
	if m.Ceiling > 0 {
		s.SetCeiling(m.Ceiling)
	}
	res := simResult{Start: s.Difficulty()}

	hashrate := m.Hashrate
	schedule := slices.Clone(m.Schedule)
	minerDiff := s.Difficulty() // what the miner works at
	var queue []change          // changes on their way to the miner

	const never = time.Duration(math.MaxInt64)
	now := time.Duration(0)
	draw := func() time.Duration {
		if hashrate <= 0 {
			return never
		}
		rate := hashrate / (minerDiff * twoTo32)
		return now + time.Duration(rng.ExpFloat64()/rate*1e9)
	}
	nextShare := draw()
	nextTick := tick
	record := func(d float64, changed bool) {
		if !changed {
			return
		}
		res.Changes = append(res.Changes, change{now, d})
		if m.Lag == 0 {
			minerDiff = d
			nextShare = draw() // memoryless: redraw at the new rate
		} else {
			queue = append(queue, change{now + m.Lag, d})
		}
	}
	for {
		next := min(nextShare, nextTick)
		switch {
		case len(schedule) > 0 && schedule[0].At <= next:
			now, hashrate, schedule = schedule[0].At, schedule[0].Value, schedule[1:]
			nextShare = draw()
			continue
		case len(queue) > 0 && queue[0].At <= next:
			now, minerDiff, queue = queue[0].At, queue[0].Value, queue[1:]
			nextShare = draw()
			continue
		}
		now = next
		if now >= dur {
			break
		}
		if now == nextTick {
			nextTick += tick
			record(s.OnIdle(simEpoch.Add(now)))
			continue
		}
		res.Shares++
		if len(res.Arrival) < 10_000 {
			res.Arrival = append(res.Arrival, now)
		}
		if res.Shares > maxSimShares {
			res.Runaway = true
			break
		}
		credited := minerDiff
		nextShare = draw()
		record(s.OnShare(simEpoch.Add(now), credited))
	}
	res.Final = s.Difficulty()
	return res
}

// within reports whether difficulty d gives a share rate within ±tol of one
// per target for a miner whose optimal difficulty is opt.
func within(d, opt, tol float64) bool {
	return math.Abs(opt/d-1) <= tol
}

// convergedAt returns the time from which the difficulty stayed within ±tol
// of opt until the end of the run, or -1 if it was not within at the end.
func (r simResult) convergedAt(opt, tol float64) time.Duration {
	at := time.Duration(-1)
	if within(r.Start, opt, tol) {
		at = 0
	}
	for _, c := range r.Changes {
		switch ok := within(c.Value, opt, tol); {
		case ok && at < 0:
			at = c.At
		case !ok:
			at = -1
		}
	}
	if r.Runaway {
		return -1
	}
	return at
}

// sharesBetween counts the recorded shares found in [from, to).
func (r simResult) sharesBetween(from, to time.Duration) int {
	n := 0
	for _, t := range r.Arrival {
		if t >= from && t < to {
			n++
		}
	}
	return n
}

// percentiles summarises convergence times (in seconds) of many runs.
type percentiles struct{ P50, P90, Max float64 }

func summarize(v []float64) percentiles {
	v = slices.Clone(v)
	slices.Sort(v)
	return percentiles{P50: v[len(v)/2], P90: v[len(v)*9/10], Max: v[len(v)-1]}
}
