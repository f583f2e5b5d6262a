//! What a comparison reads of a run: its `summary.json`, and the latency histogram of its
//! measured window merged from the `latency.hlog` beside it (absent for a summary kept on
//! its own: then only the summary's figures are compared).

use crate::stats::IntervalLog;
use crate::summary::Summary;
use hdrhistogram::Histogram;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The summary file of a run folder, and the interval log beside it.
pub use crate::summary::SUMMARY_FILE;
pub const LATENCY_LOG_FILE: &str = "latency.hlog";

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a summary: {source}")]
    Summary {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: not an HdrHistogram interval log: {why}")]
    Log { path: PathBuf, why: String },
}

/// One side of a comparison.
#[derive(Debug)]
pub struct Run {
    /// Where it was read from, as given.
    pub source: PathBuf,
    pub summary: Summary,
    /// Latency in µs over the measured window, when the interval log is there.
    pub histogram: Option<Histogram<u64>>,
}

/// Reads a run folder, or a summary file (with the interval log beside it, if any).
pub fn run(path: &Path) -> Result<Run, LoadError> {
    let summary_path = if path.is_dir() {
        path.join(SUMMARY_FILE)
    } else {
        path.to_owned()
    };
    let text = std::fs::read_to_string(&summary_path).map_err(|source| LoadError::Io {
        path: summary_path.clone(),
        source,
    })?;
    let summary: Summary = serde_json::from_str(&text).map_err(|source| LoadError::Summary {
        path: summary_path.clone(),
        source,
    })?;
    let log = summary_path.with_file_name(LATENCY_LOG_FILE);
    let histogram = if log.exists() {
        let warmup = Duration::from_secs_f64(summary.warmup_s.max(0.0));
        Some(measured_histogram(&log, warmup)?)
    } else {
        None
    };
    Ok(Run {
        source: path.to_owned(),
        summary,
        histogram,
    })
}

/// The intervals of the log that start after the warm-up, merged.
fn measured_histogram(path: &Path, warmup: Duration) -> Result<Histogram<u64>, LoadError> {
    let bad = |why: String| LoadError::Log {
        path: path.to_owned(),
        why,
    };
    IntervalLog::read(path)
        .and_then(|log| log.merged_from(warmup))
        .map_err(bad)
}
