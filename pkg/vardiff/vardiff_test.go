package vardiff

import (
	"math"
	"strconv"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// bigMiner is a 100 TH/s miner (one S19-class machine).
const bigMiner = 100e12

// testCfg is DefaultConfig with the lowest allowed Min, as the simulations
// use it.
func testCfg() *Config {
	c := DefaultConfig()
	c.Min = MinDifficulty
	return &c
}

func TestDefaultConfigIsValid(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want []string // substrings of the joined error; none = valid
	}{
		{"defaults", func(*Config) {}, nil},
		{"min at 1e-8", func(c *Config) { c.Min, c.Start = 1e-8, 1e-8 }, nil},
		{"zero retarget", func(c *Config) { c.Retarget = 0 }, nil},
		{"target zero", func(c *Config) { c.Target = 0 }, []string{"target"}},
		{"min below 1e-12", func(c *Config) { c.Min = 1e-13 }, []string{"min difficulty"}},
		{"min NaN", func(c *Config) { c.Min = math.NaN() }, []string{"min difficulty"}},
		{"max below min", func(c *Config) { c.Max = 0.0001 }, []string{"max difficulty", "start difficulty"}},
		{"max infinite", func(c *Config) { c.Max = math.Inf(1) }, []string{"max difficulty"}},
		{"start above max", func(c *Config) { c.Start = 2e15 }, []string{"start difficulty"}},
		{"negative retarget", func(c *Config) { c.Retarget = -time.Second }, []string{"retarget"}},
		{"everything at once", func(c *Config) { *c = Config{Min: -1, Max: -2, Start: math.NaN(), Retarget: -1} },
			[]string{"target", "min difficulty", "max difficulty", "start difficulty", "retarget"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			if len(tc.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
			require.Contains(t, err.Error(), "vardiff: ")
		})
	}
}

func TestRound3(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{1024, "1020"},
		{1234567, "1.23e+06"},
		{999.6, "1000"},
		{1, "1"},
		{0.00058234, "0.000582"},
		{0.0005, "0.0005"},
		{4.6565423739069247e-10, "4.66e-10"},
		{1e15, "1e+15"},
		{123456789012345678901234567.0, "1.23e+26"},
		{1.23456e-20, "1.23e-20"},
	}
	for _, tc := range tests {
		got := round3(tc.in)
		require.Equal(t, tc.want, strconv.FormatFloat(got, 'g', -1, 64), "round3(%v)", tc.in)
	}
	require.Equal(t, 0.0, round3(0))
	require.True(t, math.IsInf(round3(math.Inf(1)), 1))
}

func TestStateIsSmall(t *testing.T) {
	// Sessions embed a State; its size is part of the per-session budget.
	require.LessOrEqual(t, unsafe.Sizeof(State{}), uintptr(104))
}

// (a) A miner whose start difficulty is 1000 times too high: nothing
// arrives, silence lowers it (exploring), then it lands on the estimate.
func TestConvergeFromTooHigh(t *testing.T) {
	cfg := testCfg()
	opt := optimal(bigMiner, cfg.Target)
	conv := convergence(t, cfg, miner{Hashrate: bigMiner}, opt*1000, opt, 100)
	t.Logf("1000x too high, 100 seeds: converged (±30%%) after p50 %.0f s, p90 %.0f s, max %.0f s", conv.P50, conv.P90, conv.Max)
	require.LessOrEqual(t, conv.P90, 60.0)
	require.LessOrEqual(t, conv.Max, 120.0)
}

// (b) A miner whose start difficulty is 1000 times too low floods for well
// under a second, then lands.
func TestConvergeFromTooLow(t *testing.T) {
	cfg := testCfg()
	opt := optimal(bigMiner, cfg.Target)
	conv := convergence(t, cfg, miner{Hashrate: bigMiner}, opt/1000, opt, 100)
	t.Logf("1000x too low, 100 seeds: converged after p50 %.2f s, p90 %.2f s, max %.2f s", conv.P50, conv.P90, conv.Max)
	require.LessOrEqual(t, conv.Max, 2.0)

	for seed := uint64(1); seed <= 20; seed++ {
		r := miner{Hashrate: bigMiner}.run(cfg, opt/1000, time.Minute, seed)
		require.LessOrEqual(t, r.sharesBetween(0, time.Minute), 150, "seed %d: flood", seed)
		require.LessOrEqual(t, r.sharesBetween(2*time.Second, time.Minute), 30, "seed %d: flood after 2 s", seed)
	}
}

// convergence runs seeds 10-minute simulations and summarises when each
// converged, failing if one never did.
func convergence(t *testing.T, cfg *Config, m miner, start, opt float64, seeds int) percentiles {
	t.Helper()
	var conv []float64
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		r := m.run(cfg, start, 10*time.Minute, seed)
		c := r.convergedAt(opt, 0.3)
		require.GreaterOrEqual(t, c, time.Duration(0), "seed %d never converged; changes %v", seed, r.Changes)
		conv = append(conv, c.Seconds())
	}
	return summarize(conv)
}

// (c) At the right difficulty, changes are rare.
func TestSteadyStateChangesRarely(t *testing.T) {
	cfg := testCfg()
	opt := optimal(bigMiner, cfg.Target)
	var total, worst int
	for seed := uint64(1); seed <= 50; seed++ {
		r := miner{Hashrate: bigMiner}.run(cfg, opt, time.Hour, seed)
		total += len(r.Changes)
		worst = max(worst, len(r.Changes))
		require.LessOrEqual(t, len(r.Changes), 10, "seed %d: %v", seed, r.Changes)
		require.True(t, within(r.Final, opt, 0.3), "seed %d ends at %.3g×", seed, r.Final/opt)
	}
	t.Logf("steady state, 50 seeds × 1 h: %.2f changes per hour on average, at most %d", float64(total)/50, worst)
}

// (d) A miner that goes silent is lowered by OnIdle, step by step, down to
// Min; a short pause is not enough.
func TestSilentMinerIsLoweredStepByStep(t *testing.T) {
	cfg := testCfg()
	cfg.Min = 0.001
	opt := optimal(bigMiner, cfg.Target)
	const stop = 10 * time.Minute
	for seed := uint64(1); seed <= 10; seed++ {
		m := miner{Hashrate: bigMiner, Schedule: []change{{stop, 0}}}
		r := m.run(cfg, opt, stop+10*time.Minute, seed)
		var after []change
		for _, c := range r.Changes {
			if c.At >= stop {
				after = append(after, c)
			}
		}
		require.GreaterOrEqual(t, len(after), 3, "seed %d: %v", seed, after)
		require.Greater(t, after[0].At-stop, 30*time.Second, "seed %d: lowered after a short pause", seed)
		require.Less(t, after[0].At-stop, 5*time.Minute, "seed %d: first lowering too late", seed)
		prev := math.Inf(1)
		for _, c := range after {
			require.Less(t, c.Value, prev, "seed %d: OnIdle raised: %v", seed, after)
			prev = c.Value
		}
		require.Equal(t, cfg.Min, r.Final, "seed %d", seed)
	}

	// Directly: with shares stopped, only OnIdle calls, nothing is raised
	// and the difficulty ends at Min.
	s := New(cfg, 1e6, simEpoch)
	now := simEpoch
	steps := 0
	for i := 0; i < 300; i++ {
		now = now.Add(2 * time.Second)
		before := s.Difficulty()
		d, changed := s.OnIdle(now)
		require.LessOrEqual(t, d, before)
		require.Equal(t, changed, d != before)
		if changed {
			steps++
		}
	}
	require.Equal(t, cfg.Min, s.Difficulty())
	t.Logf("silent from difficulty 1e6: %d steps to Min in 10 min", steps)
}

// A changed hashrate is followed; ×10 quickly thanks to the short window.
func TestHashrateChangeIsFollowed(t *testing.T) {
	cfg := testCfg()
	opt := optimal(bigMiner, cfg.Target)
	const at = 10 * time.Minute
	for _, tc := range []struct {
		factor float64
		limit  time.Duration
	}{{10, 2 * time.Minute}, {0.1, 6 * time.Minute}} {
		var conv []float64
		for seed := uint64(1); seed <= 50; seed++ {
			m := miner{Hashrate: bigMiner, Schedule: []change{{at, bigMiner * tc.factor}}}
			r := m.run(cfg, opt, at+15*time.Minute, seed)
			c := r.convergedAt(opt*tc.factor, 0.3)
			require.Greater(t, c, at, "seed %d", seed)
			require.LessOrEqual(t, c-at, tc.limit, "seed %d: %v", seed, r.Changes)
			conv = append(conv, (c - at).Seconds())
		}
		p := summarize(conv)
		t.Logf("hashrate ×%g: followed after p50 %.0f s, p90 %.0f s, max %.0f s", tc.factor, p.P50, p.P90, p.Max)
	}
}

// A miner that applies a new difficulty a few seconds late (it finishes
// the old job first) still converges, and shares credited at the old
// difficulty don't mislead the estimate.
func TestLateMinerConverges(t *testing.T) {
	cfg := testCfg()
	opt := optimal(bigMiner, cfg.Target)
	m := miner{Hashrate: bigMiner, Lag: 3 * time.Second}
	high := convergence(t, cfg, m, opt*1000, opt, 50)
	low := convergence(t, cfg, m, opt/1000, opt, 50)
	t.Logf("3 s late miner: from 1000x too high p50 %.0f s, p90 %.0f s; from 1000x too low p50 %.1f s, p90 %.1f s",
		high.P50, high.P90, low.P50, low.P90)
	require.LessOrEqual(t, high.P90, 120.0)
	require.LessOrEqual(t, low.P90, 5.0)
}

// (e) Min, Max and the network difficulty.
func TestClampAndCeiling(t *testing.T) {
	cfg := DefaultConfig() // Min 0.001, Max 1e15
	now := simEpoch

	s := New(&cfg, 0, now)
	require.Equal(t, cfg.Start, s.Difficulty(), "start <= 0 means cfg.Start")
	s = New(&cfg, 1e-6, now)
	require.Equal(t, cfg.Min, s.Difficulty())
	s = New(&cfg, 1e20, now)
	require.Equal(t, cfg.Max, s.Difficulty())
	require.Equal(t, cfg.Min, s.Clamp(math.NaN()))
	require.Equal(t, cfg.Min, s.Clamp(-5))
	require.Equal(t, 42.0, s.Clamp(42))

	// Regtest: the network difficulty (4.66e-10) is below Min and wins.
	const regtest = 4.6565423739069247e-10
	s = New(&cfg, 1024, now)
	d, changed := s.SetCeiling(regtest)
	require.True(t, changed)
	require.Equal(t, regtest, d)
	require.Equal(t, regtest, s.Difficulty())
	require.Equal(t, regtest, s.Clamp(cfg.Min))
	d, changed = s.SetCeiling(regtest)
	require.False(t, changed)
	require.Equal(t, regtest, d)
	// However fast shares come, the difficulty stays at the ceiling and
	// no change is reported.
	for i := 0; i < 1000; i++ {
		now = now.Add(time.Millisecond)
		d, changed := s.OnShare(now, regtest)
		require.False(t, changed)
		require.Equal(t, regtest, d)
	}
	require.Equal(t, regtest, s.Suggest(1000, now))
	// Without the ceiling, Min applies again.
	d, changed = s.SetCeiling(0)
	require.True(t, changed)
	require.Equal(t, cfg.Min, d)
	require.Equal(t, 1000.0, s.Clamp(1000))
	// A ceiling above the difficulty changes nothing either.
	s = New(&cfg, 1024, now)
	_, changed = s.SetCeiling(1e12)
	require.False(t, changed)

	// A simulated S19 on regtest: never above the network difficulty.
	r := miner{Hashrate: bigMiner, Ceiling: regtest}.run(&cfg, 0, time.Minute, 1)
	require.Empty(t, r.Changes)
	require.Equal(t, regtest, r.Final)

	// Max: a miner that wants more ends at Max; Min: one that wants less
	// ends at Min.
	capped := DefaultConfig()
	capped.Max = 1000
	r = miner{Hashrate: bigMiner}.run(&capped, 1000, 10*time.Minute, 1)
	require.Equal(t, 1000.0, r.Final)
	r = miner{Hashrate: 1e6}.run(&cfg, 1, 10*time.Minute, 1) // wants 0.0012
	require.InDelta(t, optimal(1e6, cfg.Target), r.Final, 0.3*optimal(1e6, cfg.Target))
	r = miner{Hashrate: 100e3}.run(&cfg, 1, 10*time.Minute, 1) // wants 0.00012
	require.Equal(t, cfg.Min, r.Final)
}

// (f) mining.suggest_difficulty is honoured up and down, clamped, and
// starts the estimator afresh.
func TestSuggest(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Max = 1e9
	now := simEpoch
	s := New(&cfg, 1024, now)

	require.Equal(t, 65536.0, s.Suggest(65536, now))
	require.Equal(t, 65536.0, s.Difficulty())
	require.Equal(t, 0.5, s.Suggest(0.5, now))
	require.Equal(t, 0.5, s.Difficulty())
	require.Equal(t, 0.0123456, s.Suggest(0.0123456, now), "suggestions are not rounded")
	require.Equal(t, cfg.Min, s.Suggest(1e-7, now))
	require.Equal(t, cfg.Max, s.Suggest(1e12, now))

	// Long history at 1024, then the miner suggests 16: the history is
	// forgotten, so the next shares (at the new, faster rate) don't move
	// it back up before there is new evidence.
	opt := optimal(bigMiner, cfg.Target)
	s = New(&cfg, opt, now)
	for i := 0; i < 200; i++ {
		now = now.Add(cfg.Target)
		s.OnShare(now, opt)
	}
	require.Equal(t, opt/4, s.Suggest(opt/4, now))
	for i := 0; i < 50; i++ {
		now = now.Add(cfg.Target / 4)
		_, changed := s.OnShare(now, opt/4)
		require.False(t, changed, "share %d after Suggest", i)
	}

	// Suggesting the right value: vardiff keeps it.
	tiny := testCfg()
	want := optimal(500e3, tiny.Target)
	for seed := uint64(1); seed <= 10; seed++ {
		r := miner{Hashrate: 500e3}.runAfterSuggest(tiny, want, 10*time.Minute, seed)
		require.LessOrEqual(t, len(r.Changes), 2, "seed %d: %v", seed, r.Changes)
		require.True(t, within(r.Final, want, 0.3), "seed %d: %v", seed, r.Final)
	}
}

// runAfterSuggest is run for a session whose miner suggested d first.
func (m miner) runAfterSuggest(cfg *Config, d float64, dur time.Duration, seed uint64) simResult {
	s := New(cfg, 0, simEpoch)
	return m.run(cfg, s.Suggest(d, simEpoch), dur, seed)
}

// (g) ESP32-class miners need fractional difficulty far below 1.
func TestTinyMiner(t *testing.T) {
	cfg := testCfg()
	const hashrate = 500e3
	opt := optimal(hashrate, cfg.Target) // 0.000582
	var conv []float64
	for seed := uint64(1); seed <= 50; seed++ {
		r := miner{Hashrate: hashrate}.run(cfg, 0, 20*time.Minute, seed) // from Start 1024
		c := r.convergedAt(opt, 0.3)
		require.GreaterOrEqual(t, c, time.Duration(0), "seed %d: %v", seed, r.Changes)
		conv = append(conv, c.Seconds())
		require.InDelta(t, 0.00058, r.Final, 0.0002, "seed %d", seed)
		require.LessOrEqual(t, len(strconv.FormatFloat(r.Final, 'g', -1, 64)), 8, "seed %d: %v prints long", seed, r.Final)
	}
	p := summarize(conv)
	t.Logf("500 kH/s from 1024 (optimal %.3g): converged after p50 %.0f s, p90 %.0f s, max %.0f s", opt, p.P50, p.P90, p.Max)
}

// Bad input never produces a bad difficulty.
func TestOddInput(t *testing.T) {
	cfg := DefaultConfig()
	now := simEpoch
	s := New(&cfg, math.Inf(1), now)
	require.Equal(t, cfg.Start, s.Difficulty())
	for _, d := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		now = now.Add(time.Second)
		got, _ := s.OnShare(now, d)
		require.False(t, math.IsNaN(got) || math.IsInf(got, 0) || got <= 0, "share diff %v gave %v", d, got)
	}
	// A clock that goes backwards.
	for i := 0; i < 100; i++ {
		got, _ := s.OnShare(now.Add(-time.Duration(i)*time.Second), 1024)
		require.False(t, math.IsNaN(got) || got <= 0)
		got, _ = s.OnIdle(now.Add(-time.Hour))
		require.False(t, math.IsNaN(got) || got <= 0)
	}
	_, changed := s.SetCeiling(math.NaN())
	require.False(t, changed)
}

// (h) The share path allocates nothing.
func TestNoAllocations(t *testing.T) {
	cfg := DefaultConfig()
	now := simEpoch
	s := New(&cfg, 1024, now)
	allocs := testing.AllocsPerRun(1000, func() {
		now = now.Add(100 * time.Millisecond)
		s.OnShare(now, s.Difficulty())
	})
	require.Zero(t, allocs, "OnShare")
	allocs = testing.AllocsPerRun(1000, func() {
		now = now.Add(2 * time.Second)
		s.OnIdle(now)
	})
	require.Zero(t, allocs, "OnIdle")
	allocs = testing.AllocsPerRun(100, func() {
		s.Suggest(64, now)
		s.SetCeiling(1e9)
	})
	require.Zero(t, allocs, "Suggest/SetCeiling")
}

func BenchmarkOnShare(b *testing.B) {
	cfg := DefaultConfig()
	now := simEpoch
	s := New(&cfg, 1024, now)
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(5 * time.Second)
		s.OnShare(now, s.Difficulty())
	}
}

func BenchmarkOnIdle(b *testing.B) {
	cfg := DefaultConfig()
	now := simEpoch
	s := New(&cfg, 1024, now)
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(2 * time.Second)
		s.OnIdle(now)
	}
}
