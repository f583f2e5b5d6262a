//! Latency and outcome statistics: per-worker HdrHistograms (µs, from the scheduled send
//! time) merged at the end, per-second interval histograms for the interval log, and the
//! live counters the progress line reads.

use crate::history::Outcome;
use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// Up to one hour in µs, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("constant bounds are valid")
}

/// Counts over the measured window. `scheduled` counts scheduled requests; the outcome
/// counts are per operation, so a user's retry counts as one more operation.
#[derive(Debug, Clone, Serialize, Deserialize, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Requests {
    pub scheduled: u64,
    pub retries: u64,
    pub completed: u64,
    pub failed: u64,
    pub pending: u64,
    pub shed: u64,
    pub errors: u64,
    pub overflow: u64,
}

impl Requests {
    /// Operations that got an answer or gave up on one (every outcome but overflow).
    pub fn operations(&self) -> u64 {
        self.completed + self.failed + self.pending + self.shed + self.errors
    }
}

/// From each operation's scheduled send time to its answer. None: too few samples to say.
#[derive(Debug, Clone, Serialize, Deserialize, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Latency {
    pub samples: u64,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
    pub max: Option<f64>,
    /// The mean (absent in summaries written before it was kept).
    #[serde(default)]
    pub mean: Option<f64>,
}

/// The latency figures of a histogram of µs (None where it has too few samples).
pub fn latency_of(h: &Histogram<u64>) -> Latency {
    Latency {
        samples: h.len(),
        p50: quantile_ms(h, 0.5),
        p90: quantile_ms(h, 0.9),
        p99: quantile_ms(h, 0.99),
        p999: quantile_ms(h, 0.999),
        max: (!h.is_empty()).then(|| h.max() as f64 / 1000.0),
        mean: (!h.is_empty()).then(|| h.mean() / 1000.0),
    }
}

/// What one worker measured.
pub struct WorkerStats {
    /// Measured operations, µs from the scheduled time.
    pub latency: Histogram<u64>,
    /// All operations (warm-up too), by the second their answer came, from the load's start.
    pub intervals: Intervals,
    pub outcomes: BTreeMap<Outcome, u64>,
    pub errors_by_kind: BTreeMap<String, u64>,
    /// The first reason each error kind came with (an unmapped answer's status and body).
    pub error_examples: BTreeMap<String, String>,
    pub retries: u64,
}

impl WorkerStats {
    pub fn new() -> Self {
        WorkerStats {
            latency: new_histogram(),
            intervals: Intervals::default(),
            outcomes: BTreeMap::new(),
            errors_by_kind: BTreeMap::new(),
            error_examples: BTreeMap::new(),
            retries: 0,
        }
    }

    /// One measured answer; an error's `reason` is kept as its kind's example when it is
    /// the first of its kind.
    pub fn record(
        &mut self,
        outcome: Outcome,
        latency_us: u64,
        error_kind: Option<&str>,
        reason: Option<&str>,
    ) {
        self.latency.saturating_record(latency_us);
        *self.outcomes.entry(outcome).or_insert(0) += 1;
        if let Some(kind) = error_kind {
            *self.errors_by_kind.entry(kind.to_owned()).or_insert(0) += 1;
            if let Some(reason) = reason {
                if !self.error_examples.contains_key(kind) {
                    self.error_examples
                        .insert(kind.to_owned(), reason.to_owned());
                }
            }
        }
    }

    pub fn record_interval(&mut self, second: u64, latency_us: u64) {
        self.intervals
            .with_second(second, |h| h.saturating_record(latency_us));
    }
}

impl Default for WorkerStats {
    fn default() -> Self {
        Self::new()
    }
}

/// All workers' statistics merged: the same figures, over the whole run.
pub type Merged = WorkerStats;

pub fn merge(workers: &[WorkerStats]) -> Merged {
    let mut merged = WorkerStats::new();
    for w in workers {
        let _ = merged.latency.add(&w.latency);
        for (second, h) in w.intervals.iter() {
            merged.intervals.with_second(second, |slot| {
                let _ = slot.add(&h);
            });
        }
        for (outcome, n) in &w.outcomes {
            *merged.outcomes.entry(*outcome).or_insert(0) += n;
        }
        for (kind, n) in &w.errors_by_kind {
            *merged.errors_by_kind.entry(kind.clone()).or_insert(0) += n;
        }
        for (kind, example) in &w.error_examples {
            merged
                .error_examples
                .entry(kind.clone())
                .or_insert_with(|| example.clone());
        }
        merged.retries += w.retries;
    }
    merged
}

/// Histograms by the second, each kept serialized (V2, deflate) once a later second has
/// begun. A histogram over the harness's bounds is some 380 kB, serialized about a kilobyte:
/// an hour of seconds costs megabytes, not gigabytes. Seconds come in order, nearly always;
/// one that comes late is decoded, added to and encoded again.
#[derive(Default)]
pub struct Intervals {
    /// The latest second begun, whole.
    newest: Option<(u64, Histogram<u64>)>,
    /// Every earlier second, serialized.
    earlier: BTreeMap<u64, Vec<u8>>,
}

impl Intervals {
    /// Calls `change` on the histogram of `second` (a new, empty one if it has none).
    pub fn with_second(&mut self, second: u64, change: impl FnOnce(&mut Histogram<u64>)) {
        match &mut self.newest {
            Some((newest, h)) if *newest == second => change(h),
            Some((newest, h)) if *newest < second => {
                let done = std::mem::replace(newest, second);
                self.earlier.insert(done, encode(h));
                h.reset();
                change(h);
            }
            Some(_) => {
                let mut h = self
                    .earlier
                    .get(&second)
                    .and_then(|bytes| decode(bytes))
                    .unwrap_or_else(new_histogram);
                change(&mut h);
                self.earlier.insert(second, encode(&h));
            }
            None => {
                let mut h = new_histogram();
                change(&mut h);
                self.newest = Some((second, h));
            }
        }
    }

    /// Every second's histogram, in order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, Histogram<u64>)> + '_ {
        let earlier = self
            .earlier
            .iter()
            .filter_map(|(&second, bytes)| Some((second, decode(bytes)?)));
        earlier.chain(self.newest.iter().map(|(second, h)| (*second, h.clone())))
    }

    pub fn is_empty(&self) -> bool {
        self.newest.is_none()
    }

    /// How many seconds hold a histogram.
    pub fn len(&self) -> usize {
        self.earlier.len() + usize::from(self.newest.is_some())
    }
}

fn encode(h: &Histogram<u64>) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Err(err) = V2DeflateSerializer::new().serialize(h, &mut bytes) {
        tracing::warn!(?err, "a second's latencies could not be kept");
    }
    bytes
}

fn decode(bytes: &[u8]) -> Option<Histogram<u64>> {
    hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut &bytes[..])
        .ok()
}

/// The fewest samples a quantile needs to be reported: ten beyond it (1,000 for p99).
pub fn min_samples_for(quantile: f64) -> u64 {
    (10.0 / (1.0 - quantile).max(1e-9)).ceil() as u64
}

/// The quantile in ms, or None when there are too few samples to say.
pub fn quantile_ms(h: &Histogram<u64>, quantile: f64) -> Option<f64> {
    (h.len() >= min_samples_for(quantile)).then(|| h.value_at_quantile(quantile) as f64 / 1000.0)
}

/// Writes the per-second histograms as a standard HdrHistogram interval log (V2, deflate),
/// readable by `HistogramLogProcessor` and the other HdrHistogram tools. Values are µs.
pub fn write_interval_log(
    path: &Path,
    intervals: &Intervals,
    start: SystemTime,
) -> std::io::Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut serializer = V2DeflateSerializer::new();
    let mut writer = IntervalLogWriterBuilder::new()
        .add_comment("BankTransfer harness: latency from scheduled send time, in microseconds")
        .with_start_time(start)
        .with_base_time(start)
        .with_max_value_divisor(1000.0)
        .begin_log_with(&mut file, &mut serializer)?;
    for (second, histogram) in intervals.iter() {
        writer
            .write_histogram(
                &histogram,
                Duration::from_secs(second),
                Duration::from_secs(1),
                None,
            )
            .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
    }
    drop(writer);
    std::io::Write::flush(&mut file)
}

/// An interval log as `write_interval_log` writes it: its start time (when it says one) and
/// its histograms by the second they start at, from the start of the load.
pub struct IntervalLog {
    pub start: Option<SystemTime>,
    pub intervals: Intervals,
}

impl IntervalLog {
    /// Reads the log at `path`; the error says what is wrong with it.
    pub fn read(path: &Path) -> Result<IntervalLog, String> {
        use base64::Engine;
        use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
        let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
        let mut log = IntervalLog {
            start: None,
            intervals: Intervals::default(),
        };
        let mut deserializer = hdrhistogram::serialization::Deserializer::new();
        for entry in IntervalLogIterator::new(&bytes) {
            match entry.map_err(|e| format!("{e:?}"))? {
                LogEntry::StartTime(since_epoch) => {
                    log.start = Some(std::time::UNIX_EPOCH + since_epoch);
                }
                LogEntry::BaseTime(_) => {}
                LogEntry::Interval(interval) => {
                    let encoded = base64::engine::general_purpose::STANDARD
                        .decode(interval.encoded_histogram())
                        .map_err(|e| e.to_string())?;
                    let histogram: Histogram<u64> = deserializer
                        .deserialize(&mut encoded.as_slice())
                        .map_err(|e| format!("{e:?}"))?;
                    let second = interval.start_timestamp().as_secs();
                    let mut added = Ok(());
                    log.intervals.with_second(second, |h| {
                        added = h.add(&histogram).map_err(|e| format!("{e:?}"));
                    });
                    added?;
                }
            }
        }
        Ok(log)
    }

    /// The intervals that start at or after `from`, merged.
    pub fn merged_from(&self, from: Duration) -> Result<Histogram<u64>, String> {
        let mut merged = new_histogram();
        let from = from.as_secs_f64().ceil() as u64;
        for (_, h) in self.intervals.iter().filter(|(second, _)| *second >= from) {
            merged.add(&h).map_err(|e| format!("{e:?}"))?;
        }
        Ok(merged)
    }
}

/// Counters the progress line reads while the load runs.
pub struct LiveStats {
    scheduled: AtomicU64,
    outcomes: [AtomicU64; 6],
    latency: Mutex<Histogram<u64>>,
    active_faults: Mutex<Vec<String>>,
    /// Violations the live reconciler found so far.
    violations: AtomicU64,
}

impl LiveStats {
    pub fn new() -> Self {
        LiveStats {
            scheduled: AtomicU64::new(0),
            outcomes: Default::default(),
            latency: Mutex::new(new_histogram()),
            active_faults: Mutex::new(Vec::new()),
            violations: AtomicU64::new(0),
        }
    }

    /// Violations found so far by the live reconciler (shown on the progress line).
    pub fn set_violations(&self, count: u64) {
        self.violations.store(count, Ordering::Relaxed);
    }

    pub fn violations(&self) -> u64 {
        self.violations.load(Ordering::Relaxed)
    }

    /// The faults active now, by name (shown on the progress line).
    pub fn set_active_faults(&self, names: Vec<String>) {
        match self.active_faults.lock() {
            Ok(mut a) => *a = names,
            Err(poisoned) => *poisoned.into_inner() = names,
        }
    }

    pub fn active_faults(&self) -> Vec<String> {
        match self.active_faults.lock() {
            Ok(a) => a.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn scheduled(&self) {
        self.scheduled.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record(&self, outcome: Outcome, latency_us: u64) {
        let slot = Outcome::ALL.iter().position(|o| *o == outcome).unwrap_or(0);
        self.outcomes[slot].fetch_add(1, Ordering::Relaxed);
        if outcome != Outcome::Overflow {
            let mut h = match self.latency.lock() {
                Ok(h) => h,
                Err(poisoned) => poisoned.into_inner(),
            };
            h.saturating_record(latency_us);
        }
    }

    pub fn snapshot(&self) -> LiveSnapshot {
        let p99_ms = {
            let h = match self.latency.lock() {
                Ok(h) => h,
                Err(poisoned) => poisoned.into_inner(),
            };
            (!h.is_empty()).then(|| h.value_at_quantile(0.99) as f64 / 1000.0)
        };
        LiveSnapshot {
            scheduled: self.scheduled.load(Ordering::Relaxed),
            outcomes: std::array::from_fn(|i| self.outcomes[i].load(Ordering::Relaxed)),
            p99_ms,
        }
    }
}

impl Default for LiveStats {
    fn default() -> Self {
        Self::new()
    }
}

pub struct LiveSnapshot {
    pub scheduled: u64,
    /// In the order of [`Outcome::ALL`].
    pub outcomes: [u64; 6],
    pub p99_ms: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_kept_serialized_hold_what_was_recorded_even_a_late_one() {
        let mut intervals = Intervals::default();
        let mut plain: BTreeMap<u64, Histogram<u64>> = BTreeMap::new();
        // Mostly in order; second 3 comes back after 5 has begun.
        let records = (0..6_000u64)
            .map(|i| (i / 1_000, 1 + i * 37 % 90_000))
            .chain([(3, 777_777), (5, 12), (0, 2_000_000)]);
        for (second, us) in records {
            intervals.with_second(second, |h| h.saturating_record(us));
            plain
                .entry(second)
                .or_insert_with(new_histogram)
                .saturating_record(us);
        }
        let kept: Vec<_> = intervals.iter().collect();
        assert_eq!(kept.len(), plain.len());
        for ((second, h), (expected_second, expected)) in kept.iter().zip(&plain) {
            assert_eq!(second, expected_second);
            assert_eq!(h, expected, "second {second}");
        }
    }

    #[test]
    fn an_hour_of_seconds_costs_megabytes() {
        let mut worker = WorkerStats::new();
        for second in 0..3_600u64 {
            for i in 0..200u64 {
                worker.record_interval(second, 1_000 + (i * 7_919 + second) % 150_000);
            }
        }
        let held: usize = worker.intervals.earlier.values().map(Vec::len).sum();
        // A whole histogram a second would be over a gigabyte.
        assert!(held < 16 << 20, "{held} bytes");
        assert_eq!(worker.intervals.len(), 3_600);
    }

    #[test]
    fn each_error_kind_keeps_its_first_reason_as_its_example_through_a_merge() {
        let mut first = WorkerStats::new();
        first.record(Outcome::Error, 10, Some("unmapped"), Some("200 {\"a\":1}"));
        first.record(Outcome::Error, 10, Some("unmapped"), Some("200 {\"a\":2}"));
        first.record(Outcome::Error, 10, Some("timeout"), None);
        let mut second = WorkerStats::new();
        second.record(Outcome::Error, 10, Some("unmapped"), Some("418 tea"));
        let merged = merge(&[first, second]);
        assert_eq!(merged.errors_by_kind["unmapped"], 3);
        assert_eq!(merged.error_examples["unmapped"], "200 {\"a\":1}");
        assert!(!merged.error_examples.contains_key("timeout"));
    }
}
