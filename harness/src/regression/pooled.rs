//! A paired judgement of a latency quantile between two builds run interleaved: the
//! quantile of B's latencies pooled over every round, over that of A's, with a percentile
//! bootstrap interval that resamples whole rounds (the same rounds in both arms, so that
//! the noise a round met stays paired).
//!
//! Why not the median of the rounds' own ratios (`paired`), as for CPU? A round of 4 s at
//! 400/s holds 1,600 latencies, and its p99 is its 16th slowest: one stall of a shared
//! machine, a few tens of ms, lifts that many at once, and the round's p99 then measures
//! the stall rather than the build. Pooled over 16 rounds, the p99 is the 256th slowest of
//! 25,600, which a stall or two cannot carry alone. The pooled ratio is a smooth function
//! of the rounds, so its bootstrap interval needs no sign test beside it: a regression is
//! over the threshold with the interval clear of 1 (`docs/regression-ci.md` gives the
//! trials that measured both rules).

use super::paired::{decide, percentile_interval, PairedJudgement, BOOTSTRAP_RESAMPLES, MIN_PAIRS};
use crate::stats::min_samples_for;
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Every histogram of the rounds as cumulative counts on one grid of values.
struct Grid {
    /// The values any histogram recorded (each bucket's highest equivalent), ascending.
    values: Vec<u64>,
    /// Per histogram, how many of its values are at most `values[g]`.
    cumulative: Vec<Vec<u64>>,
}

impl Grid {
    fn new(histograms: &[&Histogram<u64>]) -> Grid {
        let mut values: Vec<u64> = histograms
            .iter()
            .flat_map(|h| h.iter_recorded().map(|v| v.value_iterated_to()))
            .collect();
        values.sort_unstable();
        values.dedup();
        let cumulative = histograms
            .iter()
            .map(|h| {
                let mut counts = vec![0_u64; values.len()];
                for v in h.iter_recorded() {
                    if let Ok(g) = values.binary_search(&v.value_iterated_to()) {
                        counts[g] = counts[g].saturating_add(v.count_at_value());
                    }
                }
                let mut running = 0_u64;
                for c in counts.iter_mut() {
                    running = running.saturating_add(*c);
                    *c = running;
                }
                counts
            })
            .collect();
        Grid { values, cumulative }
    }

    /// The `quantile` (nearest rank) of histograms `of`, each weighted by `weights`.
    fn quantile(&self, of: &[usize], weights: &[u64], quantile: f64) -> Option<u64> {
        let below = |g: usize| -> u64 {
            of.iter()
                .zip(weights)
                .map(|(&h, &w)| w.saturating_mul(self.cumulative[h][g]))
                .sum()
        };
        let last = self.values.len().checked_sub(1)?;
        let total = below(last);
        if total == 0 {
            return None;
        }
        let rank = ((quantile * total as f64).ceil() as u64).clamp(1, total);
        // The first grid value with at least `rank` values at or under it.
        let (mut low, mut high) = (0, last);
        while low < high {
            let middle = (low + high) / 2;
            if below(middle) < rank {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        self.values.get(low).copied()
    }
}

/// The judgement, with each arm's pooled quantile over all rounds.
#[derive(Debug, Clone, PartialEq)]
pub struct PooledJudgement {
    pub judgement: PairedJudgement,
    /// A's and B's quantile over all their rounds, in the histograms' unit.
    pub a_value: u64,
    pub b_value: u64,
}

/// Judges `quantile` (0.99 for p99) of latency between the arms, each round a pair of
/// histograms `(a, b)`; rounds where either arm recorded nothing are left out. `threshold`
/// is the growth that counts as a regression (0.10 for 10 %), `seed` fixes the resampling.
/// None with fewer than `MIN_PAIRS` usable rounds, or fewer latencies in an arm than the
/// quantile needs (`stats::min_samples_for`: a run too short to report its own p99 may
/// still be judged on the pool of its rounds).
pub fn judge(
    rounds: &[(&Histogram<u64>, &Histogram<u64>)],
    quantile: f64,
    threshold: f64,
    confidence: f64,
    seed: u64,
) -> Option<PooledJudgement> {
    let usable: Vec<&(&Histogram<u64>, &Histogram<u64>)> = rounds
        .iter()
        .filter(|(a, b)| !a.is_empty() && !b.is_empty())
        .collect();
    let n = usable.len();
    let enough = |arm: fn(&(&Histogram<u64>, &Histogram<u64>)) -> u64| {
        usable.iter().map(|pair| arm(pair)).sum::<u64>() >= min_samples_for(quantile)
    };
    if n < MIN_PAIRS || !enough(|(a, _)| a.len()) || !enough(|(_, b)| b.len()) {
        return None;
    }
    let histograms: Vec<&Histogram<u64>> = usable.iter().flat_map(|(a, b)| [*a, *b]).collect();
    let grid = Grid::new(&histograms);
    let arm_a: Vec<usize> = (0..n).map(|i| 2 * i).collect();
    let arm_b: Vec<usize> = (0..n).map(|i| 2 * i + 1).collect();
    let ratio_for = |weights: &[u64]| -> Option<(u64, u64, f64)> {
        let a = grid.quantile(&arm_a, weights, quantile)?;
        let b = grid.quantile(&arm_b, weights, quantile)?;
        (a > 0).then(|| (a, b, b as f64 / a as f64))
    };
    let (a_value, b_value, ratio) = ratio_for(&vec![1; n])?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut weights = vec![0_u64; n];
    let mut ratios: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .filter_map(|_| {
            weights.iter_mut().for_each(|w| *w = 0);
            for _ in 0..n {
                weights[rng.gen_range(0..n)] += 1;
            }
            ratio_for(&weights).map(|(_, _, r)| r)
        })
        .collect();
    if ratios.is_empty() {
        return None;
    }
    ratios.sort_by(f64::total_cmp);
    let interval = percentile_interval(&ratios, confidence);
    let decision = decide(ratio, interval, None, 1.0 - confidence, n, threshold);
    Some(PooledJudgement {
        judgement: PairedJudgement {
            pairs: n,
            ratio,
            interval,
            confidence,
            sign_test_p: None,
            decision,
        },
        a_value,
        b_value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regression::paired::Decision;

    /// A round of 1,600 latencies in µs: most near `typical_us`, 2 % in a tail near
    /// `tail_us`, and `stalled` of them lifted to 30 ms by a stall of the machine.
    fn round(typical_us: u64, tail_us: u64, stalled: u64, wobble: u64) -> Histogram<u64> {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
        for i in 0..1_600_u64 {
            let value = if i < stalled {
                30_000
            } else if i % 50 == 0 {
                tail_us + (i * 7 + wobble) % 400
            } else {
                typical_us + (i * 13 + wobble) % 500
            };
            h.record(value).expect("in bounds");
        }
        h
    }

    /// Sixteen rounds; a stall of the machine falls in one arm of every fourth round.
    fn rounds(b_tail_us: u64) -> Vec<(Histogram<u64>, Histogram<u64>)> {
        (0..16_u64)
            .map(|i| {
                let (stall_a, stall_b) = match i % 8 {
                    0 => (20, 0),
                    4 => (0, 20),
                    _ => (0, 0),
                };
                (
                    round(2_800, 6_000, stall_a, i * 31),
                    round(2_800, b_tail_us, stall_b, i * 17),
                )
            })
            .collect()
    }

    fn judged(rounds: &[(Histogram<u64>, Histogram<u64>)], quantile: f64) -> PooledJudgement {
        let refs: Vec<(&Histogram<u64>, &Histogram<u64>)> =
            rounds.iter().map(|(a, b)| (a, b)).collect();
        judge(&refs, quantile, 0.10, 0.95, 1).expect("enough rounds")
    }

    #[test]
    fn a_fifth_slower_tail_is_a_regression_of_p99_and_none_of_p50() {
        let r = rounds(7_200);
        let p99 = judged(&r, 0.99);
        assert_eq!(p99.judgement.decision, Decision::Regression, "{p99:?}");
        assert!((p99.judgement.ratio - 1.2).abs() < 0.05, "{p99:?}");
        let p50 = judged(&r, 0.50);
        assert_eq!(p50.judgement.decision, Decision::NoRegression, "{p50:?}");
    }

    #[test]
    fn stalls_that_fall_in_either_arm_are_no_regression() {
        // The rounds' own p99 ratios swing past 1.5 either way where a stall falls; the
        // pooled p99 looks past them.
        let p99 = judged(&rounds(6_000), 0.99);
        assert_eq!(p99.judgement.decision, Decision::NoRegression, "{p99:?}");
        assert!(p99.a_value == p99.b_value || (p99.judgement.ratio - 1.0).abs() < 0.05);
    }

    #[test]
    fn fewer_usable_rounds_than_the_paired_test_needs_is_no_judgement() {
        let r: Vec<(Histogram<u64>, Histogram<u64>)> = rounds(7_200).into_iter().take(5).collect();
        let refs: Vec<(&Histogram<u64>, &Histogram<u64>)> = r.iter().map(|(a, b)| (a, b)).collect();
        assert!(judge(&refs, 0.99, 0.10, 0.95, 1).is_none());
    }
}
