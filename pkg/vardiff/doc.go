// Package vardiff is per-worker variable difficulty: it picks the share
// difficulty so that each worker submits about one share per Config.Target,
// whatever its hashrate, from an ESP32 at 500 kH/s (difficulty ~0.0006) to a
// farm proxy at several PH/s.
//
// # Use
//
// A session embeds a State made by New. The gateway calls OnShare for every
// accepted share, with the difficulty the share was credited at, and
// OnIdle every one to five seconds from a ticker. Both return the difficulty
// and whether it changed; on a change the caller sends
// mining.set_difficulty (and should make it effective promptly, e.g. with a
// fresh mining.notify, while still accepting shares of older jobs at their
// old difficulty). Suggest handles mining.suggest_difficulty and
// SetCeiling the network difficulty.
//
// # Concurrency and cost
//
// A State is owned by one event loop and is not safe for concurrent use.
// It starts no goroutines and never reads the clock: the caller passes
// now. No method allocates; OnShare costs about 200 ns on a 2-core Xeon
// (exponentials for two windows, logarithms, a square root).
//
// # The estimator
//
// A miner with hashrate H finds shares of difficulty D as a Poisson process
// of rate H/(D·2^32). Its work rate R = H/2^32 is measured in difficulty
// units per second; the right difficulty is R × Target.
//
// R is estimated from exponentially decayed sums (time constant τ = 64
// Targets, 320 s by default) in which every moment is weighted by 1/D, the
// difficulty in force at that moment: a sums the credited difficulty of
// each share times that weight ("share equivalents"), b the weighted time.
// R ≈ a/b. Weighting by 1/D makes the estimate the maximum-likelihood rate
// when D varies (time spent at a very high difficulty, where shares are
// rare, counts for little), and crediting shares at the difficulty they
// were actually mined at keeps it unbiased while a miner still works at
// the previous difficulty after a change. The effective number of shares
// behind the estimate is n = a²/Σx² (x = one share's share equivalent); its
// relative error is about 1/√n. At one share per Target n settles near 128
// (±9 %).
//
// Silence is evidence too. "If a share arrived right now" gives an upper
// bound up = (a+1)/b on the rate; when even that says the difficulty is
// more than twice too high, the miner is slower than assumed. This is what
// lowers a miner that stopped finding shares (the original retargeted on
// shares only, bug P3 of the ViaBTC specification). Until a share credited
// at the new difficulty arrives (or 2 Targets pass), the phantom share is
// assumed to come at the previous, higher difficulty, so a miner that is
// slow to apply a lowering is not lowered again on that account.
//
// # The rules
//
//  1. Landed (n ≥ 96 share equivalents, the estimate is known to ±10 %):
//     the difficulty becomes the estimate when it is significantly off,
//     |ln(est/D)| > max(0.18, 3.5/√n), about ×1.36 at steady state. A change
//     smaller than ×2 waits until Config.Retarget has passed since the
//     previous change. The silence bound lowers it too (to the bound).
//  2. A changed hashrate: a second, short window (8 Targets) is compared
//     with the long one. When it shows significantly more than twice the
//     rate, or a silence that the long estimate can't explain (its bound
//     below a third of the estimate), the history is dropped and the worker
//     starts again as a new session.
//  3. Not enough evidence (a new session, after Suggest or rule 2): nothing
//     changes until silence is significant (the bound says ×2 too high).
//     Then the worker is "exploring": the difficulty follows the silence
//     bound down to bound/24, so that shares soon arrive at about 24 per
//     Target, and the 96 share equivalents needed to land on an accurate
//     value are gathered in seconds instead of minutes. A flood (starting
//     far too low) gathers them by itself. Only rule 1 ever raises.
//
// Every new value is rounded to three significant digits (0.000582, 1.23e+06)
// to keep set_difficulty lines short, then clamped to [Min, Max] and to the
// network difficulty (the ceiling wins over Min, as on regtest where the
// network difficulty is 4.66e-10).
//
// # Measured behaviour
//
// From the simulator in sim_test.go (Target 5 s, OnIdle every 2 s, a
// 100 TH/s miner, 200 seeds, "converged" = the share rate stays within
// ±30 % of one per Target for the rest of a 10-minute run):
//
//	start 1000× too high  converged p50 45 s, p90 50 s, max 65 s; ~100 shares in the first minute
//	start 1000× too low   converged p50 0.5 s, max 0.6 s; ~110 shares in the first minute
//	start 30× too high    p50 36 s, p90 43 s
//	start 4× too low      p50 122 s, max 158 s (96 shares at 4 per Target)
//	steady state, 1 hour  median 0 changes, p90 3, max 6 (mostly one start-up exploration)
//	hashrate ×10          tracked in p50 59 s, max 85 s
//	hashrate ÷10          tracked in p50 199 s, max 339 s
//	hashrate ×2 or ÷2     tracked in p50 6–8 min: within the noise of a 64-Target window
//	miner goes silent     first lowering after ~1.5–2 min of silence, then down to Min within ~2 min
//	500 kH/s from 1024    converged p50 65 s, ends at ~0.00058 (Min 1e-8)
//
// A miner that applies changes 3 s late converges from 1000× too high in p50
// 57 s, p90 66 s; 10 s late, p50 74 s, p90 171 s.
package vardiff
