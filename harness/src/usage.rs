//! What each process of a run held and used over it, so that a leak shows as a line that
//! climbs, the system's or the harness's: every service's resident memory and CPU time from
//! its `/metrics` (Prometheus' standard `process_resident_memory_bytes` and
//! `process_cpu_seconds_total`, so a target that exports them is drawn too), and the
//! harness's own from the operating system. Sampled from the start of the load until the
//! run's evidence is reconciled, a second apart, or further apart on long runs so a run
//! keeps at most `MAX_SAMPLES`.

use crate::cpu::{metric_in, HARNESS};
use crate::system::admin::AdminClient;
use crate::system::Endpoints;
use crate::topology::ServiceRole;
use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use service::metrics::{
    process_cpu_seconds, process_resident_bytes, CPU_SECONDS_METRIC, RESIDENT_BYTES_METRIC,
};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// The run folder's file of samples.
pub const USAGE_FILE: &str = "usage.json";

/// The most samples a run keeps: an hour a second apart.
pub const MAX_SAMPLES: u32 = 3600;

/// The shortest time between samples.
const EVERY_AT_LEAST: Duration = Duration::from_secs(1);

/// One process at one moment; a figure it does not report is absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessUsage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resident_bytes: Option<u64>,
    /// CPU time since the process started, in seconds (a restart starts it again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_s: Option<f64>,
}

/// Every process at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageSample {
    /// Seconds from the start of the load.
    pub at_s: f64,
    /// By process: `harness`, `coordinator`, `external`, `ledger`.
    pub processes: BTreeMap<String, ProcessUsage>,
}

/// The time between samples on a run whose load lasts `load`.
pub fn every(load: Duration) -> Duration {
    (load / MAX_SAMPLES).max(EVERY_AT_LEAST)
}

/// Samples every `every` from `start` until `stop` is sent (or dropped), then returns what
/// it took.
pub async fn sample(
    admin: AdminClient,
    endpoints: Endpoints,
    start: Instant,
    every: Duration,
    mut stop: oneshot::Receiver<()>,
) -> Vec<UsageSample> {
    let mut samples = Vec::new();
    let mut next = start;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            _ = &mut stop => break,
        }
        next += every;
        samples.push(UsageSample {
            at_s: Instant::now()
                .saturating_duration_since(start)
                .as_secs_f64(),
            processes: read_all(&admin, &endpoints).await,
        });
    }
    samples
}

/// Every process's figures now: the services asked at once.
async fn read_all(admin: &AdminClient, endpoints: &Endpoints) -> BTreeMap<String, ProcessUsage> {
    let reads = ServiceRole::ALL.into_iter().filter_map(|role| {
        let base = endpoints.of(role)?;
        Some(async move { (role, admin.metrics(base, role).await) })
    });
    let mut processes: BTreeMap<String, ProcessUsage> = join_all(reads)
        .await
        .into_iter()
        .filter_map(|(role, text)| {
            let text = text?;
            let usage = ProcessUsage {
                resident_bytes: metric_in(&text, RESIDENT_BYTES_METRIC).map(|b| b as u64),
                cpu_s: metric_in(&text, CPU_SECONDS_METRIC),
            };
            let reported = usage.resident_bytes.is_some() || usage.cpu_s.is_some();
            reported.then(|| (role.as_str().to_owned(), usage))
        })
        .collect();
    processes.insert(HARNESS.to_owned(), own());
    processes
}

/// The harness's own figures, from the operating system.
fn own() -> ProcessUsage {
    ProcessUsage {
        resident_bytes: process_resident_bytes(),
        cpu_s: process_cpu_seconds(),
    }
}

/// Each process's CPU use between samples, in percent of one core, at the later sample's
/// time. A counter that went back (the process started again) gives no point there.
pub fn cpu_percent(samples: &[UsageSample], process: &str) -> Vec<(f64, f64)> {
    samples
        .windows(2)
        .filter_map(|pair| {
            let before = pair[0].processes.get(process)?.cpu_s?;
            let after = pair[1].processes.get(process)?.cpu_s?;
            let seconds = pair[1].at_s - pair[0].at_s;
            (after >= before && seconds > 0.0)
                .then(|| (pair[1].at_s, (after - before) / seconds * 100.0))
        })
        .collect()
}

/// Each process's resident memory over the run, in MB.
pub fn resident_mb(samples: &[UsageSample], process: &str) -> Vec<(f64, f64)> {
    samples
        .iter()
        .filter_map(|s| {
            let bytes = s.processes.get(process)?.resident_bytes?;
            Some((s.at_s, bytes as f64 / 1e6))
        })
        .collect()
}

/// The processes the samples name, in order.
pub fn processes(samples: &[UsageSample]) -> Vec<String> {
    let mut names: Vec<String> = samples
        .iter()
        .flat_map(|s| s.processes.keys().cloned())
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(at_s: f64, cpu_s: f64, resident_bytes: u64) -> UsageSample {
        UsageSample {
            at_s,
            processes: BTreeMap::from([(
                "ledger".to_owned(),
                ProcessUsage {
                    resident_bytes: Some(resident_bytes),
                    cpu_s: Some(cpu_s),
                },
            )]),
        }
    }

    #[test]
    fn cpu_is_the_counter_s_rise_over_the_time_and_a_restart_gives_no_point() {
        let samples = [
            at(0.0, 10.0, 1_000_000),
            at(2.0, 11.0, 2_000_000),
            at(3.0, 0.2, 3_000_000),
            at(4.0, 0.5, 4_000_000),
        ];
        let cpu = cpu_percent(&samples, "ledger");
        assert_eq!(cpu.len(), 2, "{cpu:?}");
        assert!((cpu[0].1 - 50.0).abs() < 1e-9 && (cpu[1].1 - 30.0).abs() < 1e-9);
        assert_eq!(resident_mb(&samples, "ledger")[3], (4.0, 4.0));
        assert!(cpu_percent(&samples, "coordinator").is_empty());
    }

    #[test]
    fn long_runs_are_sampled_further_apart_to_keep_at_most_max_samples() {
        assert_eq!(every(Duration::from_secs(60)), EVERY_AT_LEAST);
        let day = Duration::from_secs(24 * 3600);
        assert_eq!(every(day), Duration::from_secs(24));
        assert!(day.as_secs() / every(day).as_secs() <= u64::from(MAX_SAMPLES));
    }

    #[test]
    fn the_harness_reads_its_own_memory_and_cpu() {
        // 256 MB written, so resident: the process holds at least that.
        let held = vec![1u8; 256 << 20];
        let after = own();
        assert!(held.iter().step_by(4096).all(|&b| b == 1));
        let resident = after.resident_bytes.expect("the resident size");
        assert!(resident >= 256 << 20, "{resident} bytes");
        assert!(after.cpu_s.is_some_and(|s| s > 0.0));
    }
}
