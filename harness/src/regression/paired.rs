//! A paired, distribution-free judgement of one metric between two builds run interleaved
//! (A B B A …): each round gives a pair, and the effect is the median of the pairs' ratios
//! B/A, with a percentile bootstrap interval of that median (resampling whole pairs, so the
//! noise both arms met in a round cancels) and a two-sided sign test over the pairs. Nothing
//! is assumed of the metric's distribution.
//!
//! A regression needs both: the interval clear of 1 and the sign test under 1 - confidence.
//! At 16 pairs the percentile interval of a median is narrower than its confidence says: an
//! A/A trial's p99 had 12 pairs of 16 lean one way, its interval 1.02-1.40 but its sign test
//! p 0.077, and the interval alone called it a regression.
//!
//! A metric is worse when it grows (CPU per transfer); for one that is worse when it falls
//! (throughput), judge its reciprocal. A latency quantile with the rounds' latencies at hand
//! is better judged pooled (`pooled`): a round's own p99 is carried by one stall.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Bootstrap resamples: enough that the interval's ends move by well under 0.1 % between
/// seeds.
pub const BOOTSTRAP_RESAMPLES: usize = 10_000;

/// The fewest pairs a judgement is made on: the sign test cannot reach 5 % with fewer.
pub const MIN_PAIRS: usize = 6;

/// What the pairs say of B against A.
#[derive(Debug, Clone, PartialEq)]
pub struct PairedJudgement {
    pub pairs: usize,
    /// B's figure over A's: the median of the pairs' ratios here, the ratio of the pooled
    /// quantiles in `pooled`.
    pub ratio: f64,
    /// The bootstrap interval of the ratio, at `confidence`.
    pub interval: (f64, f64),
    pub confidence: f64,
    /// The two-sided sign test's p-value: how often pairs leaning one way this much would
    /// happen if neither arm were slower (None where the decision does not use it).
    pub sign_test_p: Option<f64>,
    pub decision: Decision,
}

/// The judgement against a threshold (a growth of `threshold` is a regression).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// B is worse by at least the threshold, the interval excludes no change, and the
    /// sign test is significant.
    Regression,
    /// The median ratio is under the threshold: no regression that size was seen (the
    /// interval says how large a one the pairs could have missed).
    NoRegression,
    /// The median ratio is over the threshold but the interval still holds no change, or
    /// the sign test is not significant: about this many pairs in all would tell.
    CannotTell { pairs_needed: usize },
}

/// The median of `values` (which must not be empty); sorts them.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// How many of `ratios` (B/A) lean above 1, and how many differ from 1 at all.
fn leaning_up(ratios: &[f64]) -> (usize, usize) {
    let slower = ratios.iter().filter(|r| **r > 1.0).count();
    let faster = ratios.iter().filter(|r| **r < 1.0).count();
    (slower, slower + faster)
}

/// About how many pairs the sign test would need to reach `alpha` if they kept leaning up
/// as `slower` of `differing` do now (`cap` when it never would).
fn pairs_for_sign_test(slower: usize, differing: usize, alpha: f64, cap: usize) -> usize {
    if differing == 0 {
        return cap;
    }
    let share = slower as f64 / differing as f64;
    (differing..cap)
        .find(|&m| sign_test((share * m as f64).floor() as usize, m) < alpha)
        .unwrap_or(cap)
}

/// P(X >= k) + P(X <= n-k) for X ~ Binomial(n, 1/2), k >= n/2: the sign test's two-sided
/// p-value for k pairs of n leaning one way.
fn sign_test(leaning: usize, n: usize) -> f64 {
    if n == 0 {
        return 1.0;
    }
    let k = leaning.max(n - leaning);
    // ln C(n, i) built up term by term; n is a count of rounds, small.
    let mut ln_choose = 0.0_f64;
    let mut tail = 0.0_f64;
    for i in 0..=n {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        if i >= k {
            tail += (ln_choose - n as f64 * std::f64::consts::LN_2).exp();
        }
    }
    (2.0 * tail).min(1.0)
}

/// The decision on an effect `estimate` (B/A) with its `interval` and, where given, the
/// sign test over `leaning` (pairs up, pairs that differ), from `n` pairs, against
/// `threshold`: a regression when the estimate is at least 1 + threshold, the interval lies
/// above 1 and the sign test is under `alpha`; none when the estimate is under the
/// threshold; else about how many pairs would tell.
pub(super) fn decide(
    estimate: f64,
    interval: (f64, f64),
    leaning: Option<(usize, usize)>,
    alpha: f64,
    n: usize,
    threshold: f64,
) -> Decision {
    let signs_agree =
        leaning.is_none_or(|(slower, differing)| sign_test(slower, differing) < alpha);
    if estimate < 1.0 + threshold {
        Decision::NoRegression
    } else if interval.0 > 1.0 && signs_agree {
        Decision::Regression
    } else {
        // The interval's lower end must clear 1; its width falls as one over the square
        // root of the pairs. The sign test must reach `alpha` at the share leaning up now.
        let half_width = (estimate - interval.0).max(f64::EPSILON);
        let room = estimate - 1.0;
        let scale = (half_width / room).powi(2);
        let for_interval = (n as f64 * scale).ceil() as usize;
        let for_sign_test = leaning.map_or(0, |(slower, differing)| {
            pairs_for_sign_test(slower, differing, alpha, n * 64)
        });
        Decision::CannotTell {
            pairs_needed: for_interval.max(for_sign_test).max(n + 1),
        }
    }
}

/// The `(tail, 1 - tail)` percentiles of sorted `values`.
pub(super) fn percentile_interval(sorted: &[f64], confidence: f64) -> (f64, f64) {
    let tail = (1.0 - confidence) / 2.0;
    let at =
        |q: f64| sorted[((q * (sorted.len() - 1) as f64).round() as usize).min(sorted.len() - 1)];
    (at(tail), at(1.0 - tail))
}

/// Judges the pairs `(a, b)` of one metric, each a round's value in arm A and in arm B;
/// pairs with a value that is not positive and finite are left out. `threshold` is the
/// growth that counts as a regression (0.10 for 10 %), `seed` fixes the resampling.
/// None with fewer than `MIN_PAIRS` usable pairs.
pub fn judge(
    pairs: &[(f64, f64)],
    threshold: f64,
    confidence: f64,
    seed: u64,
) -> Option<PairedJudgement> {
    let mut ratios: Vec<f64> = pairs
        .iter()
        .filter(|(a, b)| a.is_finite() && b.is_finite() && *a > 0.0 && *b > 0.0)
        .map(|(a, b)| b / a)
        .collect();
    let n = ratios.len();
    if n < MIN_PAIRS {
        return None;
    }
    let ratio = median(&mut ratios);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut sample = vec![0.0; n];
    let mut medians: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| {
            for slot in sample.iter_mut() {
                *slot = ratios[rng.gen_range(0..n)];
            }
            median(&mut sample)
        })
        .collect();
    medians.sort_by(f64::total_cmp);
    let interval = percentile_interval(&medians, confidence);
    let leaning = leaning_up(&ratios);
    let sign_test_p = sign_test(leaning.0, leaning.1);
    let decision = decide(
        ratio,
        interval,
        Some(leaning),
        1.0 - confidence,
        n,
        threshold,
    );
    Some(PairedJudgement {
        pairs: n,
        ratio,
        interval,
        confidence,
        sign_test_p: Some(sign_test_p),
        decision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pairs of a metric near 100 with round-to-round noise both arms share, and noise of
    /// their own, B scaled by `effect`.
    fn rounds(n: usize, effect: f64, own_noise: f64, seed: u64) -> Vec<(f64, f64)> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let shared = 100.0 * rng.gen_range(0.7..1.3);
                let a = shared * (1.0 + rng.gen_range(-own_noise..own_noise));
                let b = shared * effect * (1.0 + rng.gen_range(-own_noise..own_noise));
                (a, b)
            })
            .collect()
    }

    #[test]
    fn a_ten_percent_slowdown_under_shared_noise_is_a_regression() {
        let judged = judge(&rounds(12, 1.10, 0.02, 1), 0.05, 0.95, 7).expect("judged");
        assert_eq!(judged.decision, Decision::Regression, "{judged:?}");
        assert!(
            judged.interval.0 > 1.0 && judged.interval.1 < 1.2,
            "{judged:?}"
        );
        assert!(judged.sign_test_p.is_some_and(|p| p < 0.01), "{judged:?}");
    }

    #[test]
    fn the_same_build_twice_is_no_regression() {
        for seed in 0..20 {
            let judged = judge(&rounds(12, 1.0, 0.02, seed), 0.05, 0.95, seed).expect("judged");
            assert_eq!(judged.decision, Decision::NoRegression, "{judged:?}");
        }
    }

    #[test]
    fn an_effect_over_the_threshold_that_noise_hides_cannot_tell_and_says_how_many_pairs_would() {
        // Ratios 0.96 to 1.16: the median (1.10) is over 5 % but two pairs lean the other way.
        let pairs: Vec<(f64, f64)> = [1.14, 0.96, 1.12, 0.98, 1.16, 1.08]
            .iter()
            .map(|r| (100.0, 100.0 * r))
            .collect();
        let judged = judge(&pairs, 0.05, 0.95, 3).expect("judged");
        let Decision::CannotTell { pairs_needed } = judged.decision else {
            panic!("{judged:?}");
        };
        assert!(pairs_needed > 6, "{judged:?}");
    }

    #[test]
    fn an_effect_under_the_threshold_is_no_regression_of_that_size() {
        let judged = judge(&rounds(12, 1.02, 0.02, 5), 0.10, 0.95, 5).expect("judged");
        assert_eq!(judged.decision, Decision::NoRegression, "{judged:?}");
    }

    #[test]
    fn too_few_pairs_or_unusable_values_are_not_judged() {
        assert_eq!(judge(&rounds(5, 1.5, 0.01, 1), 0.05, 0.95, 1), None);
        let mut pairs = rounds(6, 1.5, 0.01, 1);
        pairs[0].0 = 0.0;
        assert_eq!(judge(&pairs, 0.05, 0.95, 1), None);
    }

    #[test]
    fn an_interval_clear_of_one_without_a_significant_sign_test_cannot_tell() {
        // The p99 of an A/A trial (the same build in both arms), 16 rounds on the shared
        // machine: 12 pairs lean up, 4 down (sign test p 0.077), the median ratio 1.23.
        let pairs = [
            (6.095, 6.527),
            (4.247, 6.219),
            (4.851, 6.135),
            (6.787, 7.931),
            (7.267, 6.127),
            (4.467, 5.963),
            (7.687, 6.351),
            (6.151, 6.295),
            (4.183, 4.987),
            (4.415, 4.035),
            (4.271, 5.703),
            (4.319, 6.039),
            (3.847, 7.331),
            (3.741, 5.975),
            (4.199, 5.951),
            (6.679, 6.159),
        ];
        let judged = judge(&pairs, 0.10, 0.95, 11).expect("judged");
        assert!(
            judged
                .sign_test_p
                .is_some_and(|p| (p - 0.0768).abs() < 1e-3),
            "{judged:?}"
        );
        assert!(judged.ratio > 1.10, "{judged:?}");
        let Decision::CannotTell { pairs_needed } = judged.decision else {
            panic!("{judged:?}");
        };
        // 3 of 4 leaning up reaches 5 % at 15 of 20.
        assert_eq!(pairs_needed, 20, "{judged:?}");
    }

    #[test]
    fn without_a_sign_test_the_interval_alone_decides() {
        // As `pooled` decides: no pairs to count, the interval must clear 1.
        assert_eq!(
            decide(1.2, (1.05, 1.4), None, 0.05, 16, 0.10),
            Decision::Regression
        );
        let Decision::CannotTell { pairs_needed } = decide(1.2, (0.98, 1.4), None, 0.05, 16, 0.10)
        else {
            panic!("an interval holding 1 cannot tell");
        };
        assert!(pairs_needed > 16, "{pairs_needed}");
        assert_eq!(
            decide(1.05, (1.01, 1.1), None, 0.05, 16, 0.10),
            Decision::NoRegression
        );
    }

    #[test]
    fn the_sign_test_matches_the_binomial_tails() {
        // 6 of 6 one way: 2 / 64.
        assert!((sign_test(6, 6) - 0.03125).abs() < 1e-12);
        // 5 of 6: 2 * 7 / 64.
        assert!((sign_test(5, 6) - 0.21875).abs() < 1e-12);
        assert!((sign_test(3, 6) - 1.0).abs() < 1e-12);
    }
}
