package vardiff

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// MinDifficulty is the smallest Min a Config may set. Miners can always
// get fractional difficulty down to 1e-8 (tiny ESP32-class devices); configs
// may go lower still for test networks: regtest's network difficulty is
// about 4.66e-10, and load tests need shares below it that are not blocks.
const MinDifficulty = 1e-12

// Estimator tuning (see doc.go for how each value was chosen). They are
// properties of the statistics, not of the pool, so they are not in Config.
const (
	// windowTargets is τ, the estimator's memory, in Targets; at one share
	// per Target it holds about 2τ = 128 shares' worth of evidence.
	windowTargets = 64.0
	// shortTargets is the memory of the second, short window that
	// detects a changed hashrate; shortDrop is how far its silence bound
	// must fall below the long estimate to count as a change.
	shortTargets = 8.0
	shortDrop    = 1.0986122886681098 // ln 3
	// landShares is the evidence, in share equivalents, needed before the
	// difficulty is set to the estimate: ±10 % (1σ).
	landShares = 96.0
	// zScore is how significant a deviation must be to change a landed
	// difficulty; minBand is the smallest deviation ever acted on.
	zScore  = 3.5
	minBand = 0.18 // ln(1.2)
	// farBand: changes by a factor of two or more ignore Config.Retarget.
	farBand = math.Ln2
	// idleBand: silence lowers the difficulty when, even if a share
	// arrived right now, the estimate would be below half of it.
	idleBand = math.Ln2
	// explore is the share rate, in shares per Target, kept while
	// gathering evidence after significant silence; exploreSlack is the
	// hysteresis of that descent.
	explore      = 24.0
	exploreSlack = 1.5
	// lagTargets is how long (in Targets) a miner is assumed to keep
	// working at an older, higher difficulty after a lowering, unless a
	// share credited at the new difficulty shows it switched sooner.
	lagTargets = 2.0
)

// Config holds the vardiff parameters shared by every session of a port.
// A Config must not be modified after it has been passed to New; to change
// parameters, build a new Config and start new States from it.
type Config struct {
	// Target is the desired interval between a worker's shares.
	Target time.Duration
	// Min and Max clamp the difficulty; Min may be as low as
	// MinDifficulty (1e-12). The network difficulty set by SetCeiling
	// overrides both.
	Min, Max float64
	// Start is the difficulty of a new session unless the caller passes
	// another one to New.
	Start float64
	// Retarget is the minimum time between two small changes (less than a
	// factor of two). Large changes, while converging or after the
	// miner's hashrate changed a lot, and lowering on silence are not
	// delayed.
	Retarget time.Duration
}

// DefaultConfig returns the defaults: one share every 5 s, difficulty
// between 0.001 and 1e15 starting at 1024, small changes at most every 30 s.
func DefaultConfig() Config {
	return Config{
		Target:   5 * time.Second,
		Min:      0.001,
		Max:      1e15,
		Start:    1024,
		Retarget: 30 * time.Second,
	}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("vardiff: "+format, args...))
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	if c.Target < time.Millisecond {
		bad("target %s must be at least 1ms", c.Target)
	}
	if !finite(c.Min) || c.Min < MinDifficulty {
		bad("min difficulty %v must be a finite number >= %v", c.Min, MinDifficulty)
	}
	if !finite(c.Max) || !(c.Max >= c.Min) {
		bad("max difficulty %v must be a finite number >= min %v", c.Max, c.Min)
	}
	if !finite(c.Start) || !(c.Start >= c.Min && c.Start <= c.Max) {
		bad("start difficulty %v must lie within [%v, %v]", c.Start, c.Min, c.Max)
	}
	if c.Retarget < 0 {
		bad("retarget %s must not be negative", c.Retarget)
	}
	return errors.Join(errs...)
}

// State is one worker's variable difficulty. It is a value type (104
// bytes) so that a session can embed it; the zero value is not usable,
// start with New.
//
// State is not safe for concurrent use: it belongs to the event loop that
// owns the session. None of its methods allocate, start goroutines or read
// the clock; every time is passed in by the caller.
type State struct {
	cfg     *Config
	diff    float64 // current difficulty
	ceiling float64 // network difficulty; 0 = none

	// The rate estimator: sums decayed with time constant τ in which every
	// moment is weighted by 1/diff at that moment. a sums credited share
	// difficulty × weight (share equivalents), a2 their squares (for the
	// effective sample size a²/a2), b the weighted time in seconds. a/b
	// estimates the miner's rate in difficulty units per second.
	a, a2, b float64
	// The same sums over the short window, which detects a changed
	// hashrate.
	sa, sa2, sb float64

	last       int64 // unix ns the sums were decayed to
	lastChange int64 // unix ns of the last difficulty change

	// pend is the highest difficulty the miner may still be working at
	// after a lowering, until a share credited at the new difficulty
	// arrives or lagTargets pass; 0 when none.
	pend float64
	// exploring is set by significant silence while evidence is scarce:
	// the difficulty is kept low to gather evidence fast (see doc.go).
	exploring bool
}

// New returns the state of a new session at difficulty start (clamped);
// start <= 0 means cfg.Start. cfg must be valid and stay unchanged while
// the State is in use.
func New(cfg *Config, start float64, now time.Time) State {
	if !(start > 0) || math.IsInf(start, 0) {
		start = cfg.Start
	}
	ns := now.UnixNano()
	s := State{cfg: cfg, last: ns, lastChange: ns}
	s.diff = s.Clamp(start)
	return s
}

// Difficulty returns the current difficulty.
func (s *State) Difficulty() float64 { return s.diff }

// Clamp limits d to [Min, Max] and then to the network difficulty set by
// SetCeiling, which wins over Min.
func (s *State) Clamp(d float64) float64 {
	if math.IsNaN(d) || d < s.cfg.Min {
		d = s.cfg.Min
	}
	if d > s.cfg.Max {
		d = s.cfg.Max
	}
	if s.ceiling > 0 && d > s.ceiling {
		d = s.ceiling
	}
	return d
}

// SetCeiling sets the network difficulty, above which the difficulty never
// goes (a share never needs more work than a block); netDiff <= 0 removes
// the ceiling. On regtest (about 4.66e-10) the ceiling is below any Min and
// wins: the difficulty becomes the network difficulty. It returns the
// difficulty and whether it changed, in which case the caller announces it.
func (s *State) SetCeiling(netDiff float64) (newDiff float64, changed bool) {
	if !(netDiff > 0) || math.IsInf(netDiff, 0) {
		netDiff = 0
	}
	s.ceiling = netDiff
	return s.set(s.Clamp(s.diff), s.lastChange)
}

// Suggest applies mining.suggest_difficulty: the difficulty becomes d,
// clamped to [Min, Max] and the ceiling, up or down, and the estimator
// starts afresh from that value. Vardiff keeps running afterwards, so a
// suggestion far from the miner's real rate is corrected like any other
// start value. It returns the new difficulty.
func (s *State) Suggest(d float64, now time.Time) float64 {
	ns := now.UnixNano()
	s.clear()
	s.pend = 0
	s.exploring = false
	s.last = ns
	s.lastChange = ns
	s.diff = s.Clamp(d)
	return s.diff
}

// OnShare records an accepted share credited at shareDiff (which differs
// from Difficulty while the miner still works on jobs sent before a
// change) and retargets if the evidence says so. It returns the difficulty
// and whether it changed, in which case the caller sends
// mining.set_difficulty.
func (s *State) OnShare(now time.Time, shareDiff float64) (newDiff float64, changed bool) {
	ns := now.UnixNano()
	s.advance(ns)
	if shareDiff > 0 && !math.IsInf(shareDiff, 0) {
		x := shareDiff / s.diff
		s.a += x
		s.a2 += x * x
		s.sa += x
		s.sa2 += x * x
		if shareDiff <= s.diff {
			s.pend = 0 // the miner works at the current difficulty
		}
	}
	return s.retarget(ns)
}

// OnIdle lets silence count as evidence; call it periodically (every one
// to five seconds) for every session. A miner that stops finding shares is
// lowered step by step: the original only retargeted on shares, so an
// over-difficult miner was never lowered. It returns the difficulty and
// whether it changed. It never raises.
func (s *State) OnIdle(now time.Time) (newDiff float64, changed bool) {
	ns := now.UnixNano()
	s.advance(ns)
	return s.retarget(ns)
}

// retarget applies the rules described in doc.go. Only a share raises.
func (s *State) retarget(ns int64) (float64, bool) {
	if s.b <= 0 {
		return s.diff, false
	}
	t := s.cfg.Target.Seconds()
	var n float64
	if s.a2 > 0 {
		n = s.a * s.a / s.a2
	}
	// The silence bound assumes one more share arrives right now,
	// credited at the highest difficulty the miner may still work at.
	ph := 1.0
	if s.pend > s.diff {
		if time.Duration(ns-s.lastChange) < time.Duration(lagTargets*float64(s.cfg.Target)) {
			ph = s.pend / s.diff
		} else {
			s.pend = 0
		}
	}
	est := s.a / s.b * t       // the difficulty the rate asks for
	up := (s.a + ph) / s.b * t // the same if a share arrived now

	if n >= landShares && s.sb > 0 {
		// A changed hashrate shows first in the short window: many more
		// shares than the long estimate allows, or a silence it can't
		// explain. The history then describes another miner: start
		// afresh, as for a new session.
		var sn float64
		if s.sa2 > 0 {
			sn = s.sa * s.sa / s.sa2
		}
		sEst := s.sa / s.sb * t
		sUp := (s.sa + ph) / s.sb * t
		if (sn > 0 && math.Log(sEst/est) > max(farBand, zScore/math.Sqrt(sn))) ||
			math.Log(est/sUp) > shortDrop {
			s.clear()
			s.exploring = false
			return s.diff, false
		}
	}

	if n >= landShares {
		// Landed: follow the estimate when it is significantly off.
		s.exploring = false
		l := math.Log(est / s.diff)
		if math.Abs(l) > max(minBand, zScore/math.Sqrt(n)) {
			if math.Abs(l) < farBand && time.Duration(ns-s.lastChange) < s.cfg.Retarget {
				return s.diff, false
			}
			return s.set(s.Clamp(round3(est)), ns)
		}
		if math.Log(s.diff/up) > idleBand {
			return s.set(s.Clamp(round3(up)), ns)
		}
		return s.diff, false
	}

	// Too little evidence to land. Significant silence starts exploring:
	// the difficulty follows the silence bound down, far enough that
	// shares arrive quickly and the evidence to land is soon gathered.
	if !s.exploring {
		if math.Log(s.diff/up) <= idleBand {
			return s.diff, false
		}
		s.exploring = true
		if s.a > 0 {
			// Shares seen before the silence describe an earlier
			// hashrate: start afresh.
			s.clear()
			return s.diff, false
		}
	}
	if goal := up / explore; s.diff > goal*exploreSlack {
		return s.set(s.Clamp(round3(goal)), ns)
	}
	return s.diff, false
}

// clear forgets the evidence gathered so far.
func (s *State) clear() {
	s.a, s.a2, s.b = 0, 0, 0
	s.sa, s.sa2, s.sb = 0, 0, 0
}

// set makes d the difficulty, recording the change time when it changed.
func (s *State) set(d float64, ns int64) (float64, bool) {
	if d == s.diff {
		return d, false
	}
	if d < s.diff {
		s.pend = max(s.pend, s.diff)
	}
	s.diff = d
	s.lastChange = ns
	return d, true
}

// advance decays the sums to ns and adds the weighted time since the last
// update. A clock that went backwards adds nothing.
func (s *State) advance(ns int64) {
	dt := ns - s.last
	if dt <= 0 {
		return
	}
	s.last = ns
	sec := float64(dt) / 1e9
	s.a, s.a2, s.b = decay(s.a, s.a2, s.b, sec, windowTargets*s.cfg.Target.Seconds(), s.diff)
	s.sa, s.sa2, s.sb = decay(s.sa, s.sa2, s.sb, sec, shortTargets*s.cfg.Target.Seconds(), s.diff)
}

// decay ages one window's sums by sec seconds (time constant tau) and adds
// the weighted time spent at difficulty diff.
func decay(a, a2, b, sec, tau, diff float64) (float64, float64, float64) {
	x := sec / tau
	f := math.Exp(-x)
	return a * f, a2 * f * f, b*f - tau*math.Expm1(-x)/diff
}

// pow10 holds the powers of ten that float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// round3 rounds d to three significant digits and returns the float64
// nearest to that decimal, so that it prints short (0.000582, 1.23e+06).
// Below about 1e-20 the result is only close to that decimal.
func round3(d float64) float64 {
	if !(d > 0) || math.IsInf(d, 0) {
		return d
	}
	e := int(math.Floor(math.Log10(d))) - 2 // d = m × 10^e, 100 <= m < 1000
	if e >= 0 {
		return math.Round(d/p10(e)) * p10(e)
	}
	return math.Round(d*p10(-e)) / p10(-e)
}

// p10 returns 10^n for n >= 0.
func p10(n int) float64 {
	if n < len(pow10) {
		return pow10[n]
	}
	return math.Pow10(n)
}
