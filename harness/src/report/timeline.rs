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

fn ms<T: hdrhistogram::Counter>(h: &Histogram<T>, quantile: f64) -> Option<f64> {
    (!h.is_empty()).then(|| h.value_at_quantile(quantile) as f64 / 1000.0)
}

/// One second's latencies, to two significant digits (13 kB, where the run's own histograms
/// take 180 kB: an hour of seconds would otherwise hold 650 MB at once).
fn second_histogram() -> Histogram<u32> {
    Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("constant bounds are valid")
}

/// The history tallied for the charts one operation at a time (it is read as a stream).
pub struct Series {
    /// Per second of scheduled send time.
    latency: Vec<Histogram<u32>>,
    outcomes: Vec<[u64; Outcome::ALL.len()]>,
    /// The measured window's latencies.
    measured: Histogram<u64>,
}

impl Series {
    /// For a load `total_s` long.
    pub fn new(total_s: f64) -> Series {
        let seconds = total_s.ceil().max(1.0) as usize;
        Series {
            latency: (0..seconds).map(|_| second_histogram()).collect(),
            outcomes: vec![[0u64; Outcome::ALL.len()]; seconds],
            measured: new_histogram(),
        }
    }

    pub fn add(&mut self, r: &HistoryRecord) {
        let second = ((r.scheduled_us / 1_000_000) as usize).min(self.latency.len() - 1);
        if let Some(i) = Outcome::ALL.iter().position(|o| *o == r.outcome) {
            self.outcomes[second][i] += 1;
        }
        if let Some(us) = r.latency_us {
            self.latency[second].saturating_record(us.max(1));
            if r.measured {
                self.measured.saturating_record(us.max(1));
            }
        }
    }

    /// Latency and outcomes for every second of the load.
    pub fn seconds(&self) -> Vec<Second> {
        self.latency
            .iter()
            .zip(&self.outcomes)
            .enumerate()
            .map(|(at_s, (h, outcomes))| Second {
                at_s: at_s as u64,
                p50_ms: ms(h, 0.5),
                p99_ms: ms(h, 0.99),
                max_ms: ms(h, 1.0),
                outcomes: *outcomes,
            })
            .collect()
    }

    /// The measured window's latency distribution as (percentile, ms) points, dense in the
    /// tail, for a percentile spectrum.
    pub fn spectrum(&self) -> Vec<(f64, f64)> {
        let h = &self.measured;
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
}

/// Latency and outcomes for every second of the load, `total_s` long.
#[cfg(test)]
fn per_second(history: &[HistoryRecord], total_s: f64) -> Vec<Second> {
    let mut series = Series::new(total_s);
    history.iter().for_each(|r| series.add(r));
    series.seconds()
}

#[cfg(test)]
fn spectrum(history: &[HistoryRecord]) -> Vec<(f64, f64)> {
    let mut series = Series::new(1.0);
    history.iter().for_each(|r| series.add(r));
    series.spectrum()
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
