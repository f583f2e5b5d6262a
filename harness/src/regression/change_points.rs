//! Change points in a series of runs' figures, by E-Divisive means (Matteson and James, "A
//! Nonparametric Approach for Multiple Change Point Analysis of Multivariate Data", JASA
//! 2014), the method MongoDB's performance CI uses (Daly et al., ICPE 2020): each segment is
//! split where the energy distance between its two sides, weighted by their sizes, is
//! largest; a split is kept when a permutation test finds that distance unlikely under no
//! change (p below the significance level); the search goes on in the segments the kept
//! splits make, until no split is significant. Univariate, with exponent 1 (`alpha`), each
//! segment split over its whole length. Nothing is assumed of the figures' distribution.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// Permutations per significance test.
pub const PERMUTATIONS: usize = 199;

/// A change point: the series' index of the first value after the change.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangePoint {
    pub index: usize,
    /// The permutation test's p-value.
    pub p_value: f64,
    /// Mean after over mean before, in the segments the split separates.
    pub mean_ratio: f64,
}

/// The weighted energy statistic of splitting `values` at `at` (left `..at`, right `at..`).
fn energy(values: &[f64], at: usize) -> f64 {
    let (left, right) = values.split_at(at);
    let (m, n) = (left.len() as f64, right.len() as f64);
    let mut between = 0.0;
    for x in left {
        for y in right {
            between += (x - y).abs();
        }
    }
    let within = |side: &[f64]| {
        let k = side.len();
        if k < 2 {
            return 0.0;
        }
        let mut sum = 0.0;
        for i in 0..k {
            for j in i + 1..k {
                sum += (side[i] - side[j]).abs();
            }
        }
        sum / (k * (k - 1) / 2) as f64
    };
    let distance = 2.0 * between / (m * n) - within(left) - within(right);
    m * n / (m + n) * distance
}

/// The best split of `values` with at least `min_size` on each side: (index, statistic).
fn best_split(values: &[f64], min_size: usize) -> Option<(usize, f64)> {
    (min_size..=values.len().checked_sub(min_size)?)
        .map(|at| (at, energy(values, at)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// The change points of `series` at significance `alpha_level` (0.05), each side of a split
/// at least `min_size` values long; in the series' order. `seed` fixes the permutations, so
/// the same series gives the same answer.
pub fn find(series: &[f64], alpha_level: f64, min_size: usize, seed: u64) -> Vec<ChangePoint> {
    let min_size = min_size.max(2);
    let mut rng = StdRng::seed_from_u64(seed);
    // The segments, as bounds into the series; each kept split cuts one in two.
    let mut bounds = vec![0, series.len()];
    let mut found = Vec::new();
    loop {
        // The strongest split over every segment.
        let best = bounds
            .windows(2)
            .filter_map(|w| {
                best_split(&series[w[0]..w[1]], min_size)
                    .map(|(at, statistic)| (w[0], w[1], w[0] + at, statistic))
            })
            .max_by(|a, b| a.3.total_cmp(&b.3));
        let Some((start, end, index, statistic)) = best else {
            break;
        };
        // Under no change, any order of each segment's values is as likely: how often does
        // a shuffle give a split this strong?
        let mut as_strong = 0;
        let mut shuffled: Vec<Vec<f64>> = bounds
            .windows(2)
            .map(|w| series[w[0]..w[1]].to_vec())
            .collect();
        for _ in 0..PERMUTATIONS {
            let strongest = shuffled
                .iter_mut()
                .filter_map(|segment| {
                    segment.shuffle(&mut rng);
                    best_split(segment, min_size).map(|(_, s)| s)
                })
                .fold(f64::NEG_INFINITY, f64::max);
            if strongest >= statistic {
                as_strong += 1;
            }
        }
        let p_value = (as_strong + 1) as f64 / (PERMUTATIONS + 1) as f64;
        if p_value >= alpha_level {
            break;
        }
        let before = mean(&series[start..index]);
        let after = mean(&series[index..end]);
        found.push(ChangePoint {
            index,
            p_value,
            mean_ratio: if before == 0.0 {
                f64::NAN
            } else {
                after / before
            },
        });
        let at = bounds.partition_point(|b| *b < index);
        bounds.insert(at, index);
    }
    found.sort_by_key(|c| c.index);
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// 30 runs of a figure near 100 with the spread of CI runs (about 5 %), the second half
    /// `step` times the first.
    fn history(step: f64, seed: u64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..30)
            .map(|i| {
                let level = if i < 15 { 100.0 } else { 100.0 * step };
                level * (1.0 + rng.gen_range(-0.05..0.05))
            })
            .collect()
    }

    #[test]
    fn a_fifteen_percent_step_is_found_where_it_is() {
        for seed in 0..5 {
            let found = find(&history(1.15, seed), 0.05, 3, seed);
            assert_eq!(found.len(), 1, "seed {seed}: {found:?}");
            assert_eq!(found[0].index, 15, "seed {seed}: {found:?}");
            assert!(found[0].mean_ratio > 1.1, "{found:?}");
        }
    }

    #[test]
    fn a_flat_history_has_no_change_point() {
        let mut false_alarms = 0;
        for seed in 0..20 {
            false_alarms += usize::from(!find(&history(1.0, seed), 0.05, 3, seed).is_empty());
        }
        // At a 5 % level, about one in twenty: three would be an unlikely run of bad luck.
        assert!(false_alarms <= 2, "{false_alarms} of 20 flat histories");
    }

    #[test]
    fn two_steps_are_two_change_points_and_the_same_seed_the_same_answer() {
        let mut series = history(1.0, 9);
        for (i, value) in series.iter_mut().enumerate() {
            if i >= 10 {
                *value *= 1.3;
            }
            if i >= 20 {
                *value *= 1.3;
            }
        }
        let found = find(&series, 0.05, 3, 1);
        let at: Vec<usize> = found.iter().map(|c| c.index).collect();
        assert_eq!(at, [10, 20], "{found:?}");
        assert_eq!(find(&series, 0.05, 3, 1), found);
    }

    #[test]
    fn a_series_too_short_to_split_has_none() {
        assert!(find(&[1.0, 2.0, 3.0], 0.05, 2, 1).is_empty());
        assert!(find(&[], 0.05, 2, 1).is_empty());
    }
}
