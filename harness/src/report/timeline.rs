//! The history as series for the charts: latency and outcomes per second of scheduled send
//! time (warm-up included), the measured window's percentile spectrum, and the windows in
//! which faults were active.

use crate::history::{HistoryRecord, Outcome};
use crate::stats::new_histogram;
use crate::summary::Summary;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;

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
/// take 180 kB).
fn second_histogram() -> Histogram<u32> {
    Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("constant bounds are valid")
}

/// How many seconds behind the newest scheduled second a second's latencies stay open. The
/// history is written as operations end, each at most its client's timeouts and retries
/// after it was scheduled, far less than this; so memory holds ten minutes of histograms
/// (8 MB), not the whole run's (an hour would take 47 MB, a day 1.1 GB).
const OPEN_SECONDS: usize = 600;

/// A closed second's percentiles.
#[derive(Clone, Copy, Default)]
struct Quantiles {
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    max_ms: Option<f64>,
}

impl Quantiles {
    fn of(h: &Histogram<u32>) -> Quantiles {
        Quantiles {
            p50_ms: ms(h, 0.5),
            p99_ms: ms(h, 0.99),
            max_ms: ms(h, 1.0),
        }
    }
}

/// The history tallied for the charts one operation at a time (it is read as a stream).
pub struct Series {
    /// The latencies of the seconds still open, by second of scheduled send time.
    open: BTreeMap<usize, Histogram<u32>>,
    /// Every second below this one is closed: its percentiles are in `closed`.
    closed_below: usize,
    closed: Vec<Quantiles>,
    outcomes: Vec<[u64; Outcome::ALL.len()]>,
    /// Latencies that came after their second had closed, left out of its percentiles.
    late: u64,
    /// The measured window's latencies.
    measured: Histogram<u64>,
}

impl Series {
    /// For a load `total_s` long.
    pub fn new(total_s: f64) -> Series {
        let seconds = total_s.ceil().max(1.0) as usize;
        Series {
            open: BTreeMap::new(),
            closed_below: 0,
            closed: vec![Quantiles::default(); seconds],
            outcomes: vec![[0u64; Outcome::ALL.len()]; seconds],
            late: 0,
            measured: new_histogram(),
        }
    }

    pub fn add(&mut self, r: &HistoryRecord) {
        let second = ((r.scheduled_us / 1_000_000) as usize).min(self.outcomes.len() - 1);
        if let Some(i) = Outcome::ALL.iter().position(|o| *o == r.outcome) {
            self.outcomes[second][i] += 1;
        }
        if let Some(us) = r.latency_us {
            if second < self.closed_below {
                self.late += 1;
            } else {
                self.open
                    .entry(second)
                    .or_insert_with(second_histogram)
                    .saturating_record(us.max(1));
            }
            if r.measured {
                self.measured.saturating_record(us.max(1));
            }
        }
        self.close_below(second.saturating_sub(OPEN_SECONDS));
    }

    /// Closes every second below `limit`.
    fn close_below(&mut self, limit: usize) {
        while self.closed_below < limit {
            if let Some(h) = self.open.remove(&self.closed_below) {
                self.closed[self.closed_below] = Quantiles::of(&h);
            }
            self.closed_below += 1;
        }
    }

    /// Latencies that came more than `OPEN_SECONDS` after later-scheduled ones, and so are
    /// in no second's percentiles (they are in its outcomes and in the spectrum).
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Latency and outcomes for every second of the load.
    pub fn seconds(&self) -> Vec<Second> {
        self.outcomes
            .iter()
            .enumerate()
            .map(|(at_s, outcomes)| {
                let q = if at_s < self.closed_below {
                    self.closed[at_s]
                } else {
                    self.open.get(&at_s).map(Quantiles::of).unwrap_or_default()
                };
                Second {
                    at_s: at_s as u64,
                    p50_ms: q.p50_ms,
                    p99_ms: q.p99_ms,
                    max_ms: q.max_ms,
                    outcomes: *outcomes,
                }
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
    fn a_second_long_behind_the_newest_is_closed_with_its_percentiles() {
        let mut series = Series::new(2_000.0);
        series.add(&op(5_000_000, Some(40_000), Outcome::Completed));
        series.add(&op(5_500_000, Some(60_000), Outcome::Completed));
        for s in 6..1_500u64 {
            series.add(&op(s * 1_000_000, Some(1_000), Outcome::Completed));
        }
        assert!(
            series.open.len() <= OPEN_SECONDS + 1,
            "{} seconds open",
            series.open.len()
        );
        series.add(&op(5_900_000, Some(90_000), Outcome::Error));
        assert_eq!(series.late(), 1);
        let seconds = series.seconds();
        let max = seconds[5].max_ms.expect("answered");
        assert!(
            (60.0..61.0).contains(&max),
            "closed before the late one: {max}"
        );
        assert_eq!(seconds[5].outcomes.iter().sum::<u64>(), 3, "yet counted");
        let p50 = seconds[1_499].p50_ms.expect("still open");
        assert!((1.0..1.1).contains(&p50), "{p50}");
        assert_eq!(seconds[3].p50_ms, None);
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
