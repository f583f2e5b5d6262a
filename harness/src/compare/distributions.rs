//! Two latency distributions side by side, beside the metric-by-metric judgement: a ladder
//! of quantiles (each shown only where both runs have the samples for it) and the
//! Kolmogorov–Smirnov distance between the two, with the distance that two samples of one
//! distribution stay under 99 times in 100.

use crate::stats::min_samples_for;
use hdrhistogram::Histogram;

/// A quantile of both distributions.
#[derive(Debug, Clone)]
pub struct Rung {
    pub quantile: f64,
    pub baseline_ms: f64,
    pub current_ms: f64,
}

/// Both latency distributions, side by side.
#[derive(Debug, Clone)]
pub struct Distributions {
    pub ladder: Vec<Rung>,
    /// The largest gap between the two cumulative distributions (0: the same, 1: apart).
    pub ks_distance: f64,
    /// The distance two samples of one distribution stay under 99 times in 100.
    pub ks_critical: f64,
}

/// The Kolmogorov–Smirnov coefficient for 99 %.
const KS_99: f64 = 1.628;
/// The ladder of quantiles shown.
const LADDER: [f64; 7] = [0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 0.9999];

/// The largest gap between the cumulative distributions of two histograms.
fn ks_distance(a: &Histogram<u64>, b: &Histogram<u64>) -> f64 {
    let steps = |h: &Histogram<u64>| -> Vec<(u64, f64)> {
        let n = h.len().max(1) as f64;
        let mut seen = 0u64;
        h.iter_recorded()
            .map(|v| {
                seen += v.count_at_value();
                (h.highest_equivalent(v.value_iterated_to()), seen as f64 / n)
            })
            .collect()
    };
    let (sa, sb) = (steps(a), steps(b));
    let (mut i, mut j) = (0, 0);
    let (mut fa, mut fb, mut distance) = (0.0f64, 0.0f64, 0.0f64);
    while i < sa.len() || j < sb.len() {
        let next_a = sa.get(i).map_or(u64::MAX, |s| s.0);
        let next_b = sb.get(j).map_or(u64::MAX, |s| s.0);
        let at = next_a.min(next_b);
        while i < sa.len() && sa[i].0 == at {
            fa = sa[i].1;
            i += 1;
        }
        while j < sb.len() && sb[j].0 == at {
            fb = sb[j].1;
            j += 1;
        }
        distance = distance.max((fa - fb).abs());
    }
    distance
}

pub fn distributions(base: &Histogram<u64>, cur: &Histogram<u64>) -> Distributions {
    let ladder = LADDER
        .iter()
        .filter(|&&q| base.len() >= min_samples_for(q) && cur.len() >= min_samples_for(q))
        .map(|&q| Rung {
            quantile: q,
            baseline_ms: base.value_at_quantile(q) as f64 / 1000.0,
            current_ms: cur.value_at_quantile(q) as f64 / 1000.0,
        })
        .collect();
    let (n, m) = (base.len().max(1) as f64, cur.len().max(1) as f64);
    Distributions {
        ladder,
        ks_distance: ks_distance(base, cur),
        ks_critical: KS_99 * ((n + m) / (n * m)).sqrt(),
    }
}
