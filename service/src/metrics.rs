//! Prometheus text exposition of a service's counters: operations by outcome and the store's
//! group-commit counters.

use crate::store::StoreStats;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

/// Appends one gauge of `service` in Prometheus text format 0.0.4.
pub fn write_gauge(out: &mut String, name: &str, help: &str, service: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{{service=\"{service}\"}} {value}"
    );
}

/// Counts operations by `(operation, outcome)`.
#[derive(Default)]
pub struct Counters {
    by_label: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

impl Counters {
    pub fn inc(&self, operation: &'static str, outcome: &'static str) {
        let mut map = match self.by_label.lock() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        *map.entry((operation, outcome)).or_insert(0) += 1;
    }

    /// The counters and store stats of `service` in Prometheus text format 0.0.4.
    pub fn render(&self, service: &str, store: &StoreStats) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP bank_operations_total Operations handled, by operation and outcome."
        );
        let _ = writeln!(out, "# TYPE bank_operations_total counter");
        let map = match self.by_label.lock() {
            Ok(map) => map.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        for ((operation, outcome), count) in map {
            let _ = writeln!(
                out,
                "bank_operations_total{{service=\"{service}\",operation=\"{operation}\",outcome=\"{outcome}\"}} {count}"
            );
        }
        let batches = store.batches_committed.load(Ordering::Relaxed);
        let writes = store.writes_committed.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP bank_store_batches_total Transactions committed (one fsync each).\n# TYPE bank_store_batches_total counter\nbank_store_batches_total{{service=\"{service}\"}} {batches}"
        );
        let _ = writeln!(
            out,
            "# HELP bank_store_writes_total Writes committed inside those transactions.\n# TYPE bank_store_writes_total counter\nbank_store_writes_total{{service=\"{service}\"}} {writes}"
        );
        let refused = store.writes_refused.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP bank_store_writes_refused_total Writes whose commit a disk fault failed (disk_fault.rs).\n# TYPE bank_store_writes_refused_total counter\nbank_store_writes_refused_total{{service=\"{service}\"}} {refused}"
        );
        if let Some(cpu_s) = process_cpu_seconds() {
            let _ = writeln!(
                out,
                "# HELP {CPU_SECONDS_METRIC} User and system CPU time of the process since it started.\n# TYPE {CPU_SECONDS_METRIC} counter\n{CPU_SECONDS_METRIC}{{service=\"{service}\"}} {cpu_s:.3}"
            );
        }
        if let Some(bytes) = process_resident_bytes() {
            let _ = writeln!(
                out,
                "# HELP {RESIDENT_BYTES_METRIC} Resident memory size in bytes.\n# TYPE {RESIDENT_BYTES_METRIC} gauge\n{RESIDENT_BYTES_METRIC}{{service=\"{service}\"}} {bytes}"
            );
        }
        out
    }
}

/// Prometheus' standard name for a process's CPU time, in seconds.
pub const CPU_SECONDS_METRIC: &str = "process_cpu_seconds_total";

/// Prometheus' standard name for a process's resident memory, in bytes.
pub const RESIDENT_BYTES_METRIC: &str = "process_resident_memory_bytes";

/// The memory this process holds resident now, in bytes ([`RESIDENT_BYTES_METRIC`]), from
/// `VmRSS` in `/proc/self/status`; None where the system does not say.
pub fn process_resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse::<u64>()
        .ok()?;
    kib.checked_mul(1024)
}

/// User and system CPU time this process has used, in seconds ([`CPU_SECONDS_METRIC`]), so
/// a run can tell the CPU each transfer cost.
pub fn process_cpu_seconds() -> Option<f64> {
    use nix::sys::resource::{getrusage, UsageWho};
    let usage = getrusage(UsageWho::RUSAGE_SELF).ok()?;
    let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    Some(seconds(usage.user_time()) + seconds(usage.system_time()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resident_size_counts_memory_the_process_writes() {
        // 256 MB written, so resident: the process holds at least that.
        let held = vec![1u8; 256 << 20];
        let resident = process_resident_bytes().expect("VmRSS");
        assert!(held.iter().step_by(4096).all(|&b| b == 1));
        assert!(resident >= 256 << 20, "{resident} bytes");
    }
}
