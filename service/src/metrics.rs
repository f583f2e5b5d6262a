//! Prometheus text exposition of a service's counters: operations by outcome and the store's
//! group-commit counters.

use crate::store::StoreStats;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

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
        out
    }
}
