//! The history as series for the charts: latency and outcomes per second of scheduled send
//! time (warm-up included), the measured window's percentile spectrum, and the windows in
//! which faults were active.

use crate::history::{HistoryRecord, Outcome};
use crate::stats::new_histogram;
use crate::summary::Summary;
use hdrhistogram::Histogram;

/// What the operations scheduled in one second saw.
pub struct Second {
    /// Seconds from the start of the load.
    pub at_s: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// How many operations ended each way, in the order of `Outcome::ALL`.
    pub outcomes: [u64; Outcome::ALL.len()],
}

/// One fault's active window, in seconds from the start of the load.
pub struct FaultWindow {
    pub name: String,
    pub from_s: f64,
    pub to_s: f64,
}

fn ms(h: &Histogram<u64>, quantile: f64) -> Option<f64> {
    (!h.is_empty()).then(|| h.value_at_quantile(quantile) as f64 / 1000.0)
}

/// Latency and outcomes for every second of the load, `total_s` long.
pub fn per_second(history: &[HistoryRecord], total_s: f64) -> Vec<Second> {
    let seconds = total_s.ceil().max(1.0) as usize;
    let mut latency: Vec<Histogram<u64>> = (0..seconds).map(|_| new_histogram()).collect();
    let mut outcomes = vec![[0u64; Outcome::ALL.len()]; seconds];
    for r in history {
        let second = ((r.scheduled_us / 1_000_000) as usize).min(seconds - 1);
        if let Some(i) = Outcome::ALL.iter().position(|o| *o == r.outcome) {
            outcomes[second][i] += 1;
        }
        if let Some(us) = r.latency_us {
            latency[second].saturating_record(us.max(1));
        }
    }
    latency
        .iter()
        .zip(outcomes)
        .enumerate()
        .map(|(at_s, (h, outcomes))| Second {
            at_s: at_s as u64,
            p50_ms: ms(h, 0.5),
            p99_ms: ms(h, 0.99),
            max_ms: ms(h, 1.0),
            outcomes,
        })
        .collect()
}

/// The measured window's latency distribution as (percentile, ms) points, dense in the
/// tail, for a percentile spectrum.
pub fn spectrum(history: &[HistoryRecord]) -> Vec<(f64, f64)> {
    let mut h = new_histogram();
    for r in history.iter().filter(|r| r.measured) {
        if let Some(us) = r.latency_us {
            h.saturating_record(us.max(1));
        }
    }
    if h.is_empty() {
        return Vec::new();
    }
    h.iter_quantiles(5)
        .map(|v| {
            (
                v.quantile_iterated_to(),
                v.value_iterated_to() as f64 / 1000.0,
            )
        })
        .take_while(|(q, _)| *q < 1.0)
        .chain(std::iter::once((1.0, h.max() as f64 / 1000.0)))
        .collect()
}

/// The windows in which each fault was active, as read back; a fault never healed lasts to
/// the end of the load.
pub fn fault_windows(summary: &Summary) -> Vec<FaultWindow> {
    let end_s = summary.warmup_s + summary.duration_s;
    summary
        .faults
        .iter()
        .filter_map(|f| {
            Some(FaultWindow {
                name: f.name.clone(),
                from_s: f.applied_at_s?,
                to_s: f.healed_at_s.unwrap_or(end_s),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(scheduled_us: u64, latency_us: Option<u64>, outcome: Outcome) -> HistoryRecord {
        let measured = scheduled_us >= 1_000_000;
        crate::history::test_record(scheduled_us, latency_us, outcome, measured)
    }

    #[test]
    fn seconds_hold_their_operations() {
        let history = vec![
            op(100, Some(5_000), Outcome::Completed),
            op(1_200_000, Some(9_000), Outcome::Completed),
            op(1_500_000, Some(300_000), Outcome::Error),
            op(1_700_000, None, Outcome::Overflow),
        ];
        let seconds = per_second(&history, 3.0);
        assert_eq!(seconds.len(), 3);
        let completed = Outcome::ALL
            .iter()
            .position(|o| *o == Outcome::Completed)
            .expect("completed is an outcome");
        assert_eq!(seconds[0].outcomes[completed], 1);
        assert_eq!(seconds[1].outcomes.iter().sum::<u64>(), 3);
        assert!(seconds[1].max_ms.expect("answered") >= 299.0);
        assert_eq!(seconds[2].p99_ms, None);
    }

    #[test]
    fn the_spectrum_is_of_the_measured_window_and_rises() {
        let mut history: Vec<_> = (0..1000)
            .map(|i| op(1_000_000 + i, Some(1_000 + i * 10), Outcome::Completed))
            .collect();
        history.push(op(10, Some(900_000), Outcome::Completed));
        let points = spectrum(&history);
        assert!(points.len() > 10);
        assert!(points
            .windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        let (q, max) = *points.last().expect("points");
        assert_eq!(q, 1.0);
        assert!(max < 20.0, "the warm-up's 900 ms is not in it: {max}");
    }
}
