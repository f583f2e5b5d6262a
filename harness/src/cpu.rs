//! The CPU each process of a run used while the load ran, per operation the load sent: the
//! figure capacity planning starts from, and the one that shows where a saturated machine's
//! time goes. The services' CPU comes from their `/metrics` (`process_cpu_seconds_total`,
//! Prometheus' standard name, so a target that exports it is measured too); the harness's
//! own (its generator and its proxies, on the same machine) from the operating system. Beside
//! them, how the host's CPU time was spent over the same window: busy, idle, or stolen by the
//! hypervisor for other guests, which says whether the machine was quiet while latency was
//! measured.

use crate::profile::fault_action::FaultAction;
use crate::profile::fault_plan::FaultOccurrence;
use crate::system::admin::AdminClient;
use crate::system::Endpoints;
use crate::topology::ServiceRole;
use futures_util::future::join_all;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use service::host_load::CpuTicks;
use service::metrics::{process_cpu_seconds, CPU_SECONDS_METRIC};
use std::collections::BTreeMap;
use std::time::Instant;

/// The name the harness's own CPU goes by, beside the services' roles.
pub const HARNESS: &str = "harness";

/// The CPU each process used while the load ran (warm-up included), per operation the load
/// sent (retries and shed answers count: each cost some CPU). A process that does not report
/// its CPU, or restarted during the load, is absent.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct CpuUse {
    /// From the reading before the load to the one after it.
    pub window_s: f64,
    pub operations: u64,
    /// Milliseconds of CPU per operation, by process: `coordinator`, `external`, `ledger`
    /// (from each one's `process_cpu_seconds_total`) and `harness` (its generator and proxies).
    pub ms_per_operation: BTreeMap<String, f64>,
    /// How the host's CPU time was spent over the same window (Linux; absent elsewhere, and
    /// in summaries written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostCpu>,
}

/// The host's CPU time over a window, in percent of all its CPUs' time: the three add up to
/// 100 (give or take rounding). Steal is time the hypervisor gave to other guests while this
/// one had work to do: a run with more than a few percent of it measured a busy machine's
/// latency, not the system's.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct HostCpu {
    pub busy_pct: f64,
    /// Idle or waiting on I/O.
    pub idle_pct: f64,
    pub steal_pct: f64,
}

impl HostCpu {
    /// From this much steal on, a run's latency says more about the machine than the system.
    pub const NOISY_STEAL_PCT: f64 = 5.0;

    pub fn noisy(&self) -> bool {
        self.steal_pct >= Self::NOISY_STEAL_PCT
    }

    /// "busy 88.0 % · idle 10.9 % · stolen 1.1 %", and a warning when it was noisy.
    pub fn describe(&self) -> String {
        let shares = format!(
            "busy {:.1} % · idle {:.1} % · stolen {:.1} %",
            self.busy_pct, self.idle_pct, self.steal_pct
        );
        if self.noisy() {
            format!("{shares} (a noisy machine: latency not comparable with a quiet run)")
        } else {
            shares
        }
    }
}

/// CPU seconds each process had used at one moment.
#[derive(Debug, Clone)]
pub struct CpuReading {
    at: Instant,
    seconds_by_process: BTreeMap<String, f64>,
    /// The host's CPU time; None where the system does not say.
    host: Option<CpuTicks>,
}

impl CpuReading {
    /// Reads every service that reports its CPU, and the harness's own. The services are
    /// asked at once, so one whose `/metrics` hangs holds the run up by one timeout at most.
    pub async fn take(admin: &AdminClient, endpoints: &Endpoints) -> CpuReading {
        let reads = ServiceRole::ALL.into_iter().filter_map(|role| {
            let base = endpoints.of(role)?;
            Some(async move {
                let text = admin.metrics(base, role).await;
                (role, text.and_then(|text| cpu_seconds_in(&text)))
            })
        });
        let mut seconds_by_process: BTreeMap<String, f64> = join_all(reads)
            .await
            .into_iter()
            .filter_map(|(role, seconds)| Some((role.as_str().to_owned(), seconds?)))
            .collect();
        if let Some(seconds) = process_cpu_seconds() {
            seconds_by_process.insert(HARNESS.to_owned(), seconds);
        }
        CpuReading {
            at: Instant::now(),
            seconds_by_process,
            host: CpuTicks::read(),
        }
    }
}

/// The services `faults` kill or restart: their CPU counters start over during the load.
pub fn restarted_by(faults: &[FaultOccurrence]) -> Vec<&'static str> {
    faults
        .iter()
        .filter_map(|fault| match fault.action {
            FaultAction::Kill { service } | FaultAction::Restart { service } => {
                Some(service.as_str())
            }
            _ => None,
        })
        .collect()
}

/// What each process used between `before` and `after`, per operation of `operations`. A
/// process missing from either reading is left out, and so is one in `restarted` or whose
/// counter went back: its CPU before the restart is not in the second reading.
pub fn per_operation(
    before: &CpuReading,
    after: &CpuReading,
    operations: u64,
    restarted: &[&str],
) -> CpuUse {
    let mut ms_per_operation = BTreeMap::new();
    if operations > 0 {
        for (process, end) in &after.seconds_by_process {
            let Some(start) = before.seconds_by_process.get(process) else {
                continue;
            };
            if end >= start && !restarted.contains(&process.as_str()) {
                let ms = (end - start) * 1000.0 / operations as f64;
                ms_per_operation.insert(process.clone(), (ms * 1000.0).round() / 1000.0);
            }
        }
    }
    CpuUse {
        window_s: after.at.saturating_duration_since(before.at).as_secs_f64(),
        operations,
        ms_per_operation,
        host: host_between(before.host.as_ref(), after.host.as_ref()),
    }
}

/// How the host's CPU time between two readings was spent, in percent to one decimal.
fn host_between(before: Option<&CpuTicks>, after: Option<&CpuTicks>) -> Option<HostCpu> {
    let (before, after) = (before?, after?);
    let percent = |share: f64| (share * 1000.0).round() / 10.0;
    let idle = after.idle_share_since(before)?;
    let steal = after.steal_share_since(before)?;
    Some(HostCpu {
        busy_pct: percent((1.0 - idle - steal).max(0.0)),
        idle_pct: percent(idle),
        steal_pct: percent(steal),
    })
}

/// The value of `process_cpu_seconds_total` in a Prometheus text exposition (the first
/// sample, with or without labels); None when it has none.
pub fn cpu_seconds_in(text: &str) -> Option<f64> {
    metric_in(text, CPU_SECONDS_METRIC)
}

/// The value of the metric `name` in a Prometheus text exposition (the first sample, with
/// or without labels), when it is a number at least 0; None when it has none.
pub fn metric_in(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let rest = line.strip_prefix(name)?;
            let value = if let Some(labelled) = rest.strip_prefix('{') {
                labelled.split_once('}')?.1
            } else if rest.starts_with(' ') {
                rest
            } else {
                return None; // another metric whose name starts the same way
            };
            value.split_whitespace().next()?.parse::<f64>().ok()
        })
        .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_cpu_counter_is_read_with_or_without_labels() {
        let ours = "# HELP process_cpu_seconds_total x\n# TYPE process_cpu_seconds_total counter\n\
                    bank_store_writes_total{service=\"ledger\"} 12\n\
                    process_cpu_seconds_total{service=\"ledger\"} 3.250\n";
        assert_eq!(cpu_seconds_in(ours), Some(3.25));
        let standard = "process_cpu_seconds_total 17.5 1700000000000\n";
        assert_eq!(cpu_seconds_in(standard), Some(17.5));
        let lookalike = "process_cpu_seconds_total_extra 9\n";
        assert_eq!(cpu_seconds_in(lookalike), None);
        assert_eq!(cpu_seconds_in("process_cpu_seconds_total NaN\n"), None);
        assert_eq!(cpu_seconds_in("bank_store_writes_total 1\n"), None);
    }

    #[tokio::test]
    async fn services_whose_metrics_hang_cost_one_timeout_together_and_are_left_out() {
        use crate::system::admin::METRICS_TIMEOUT;
        // Accepts every connection and never answers on any.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let endpoints = Endpoints {
            coordinator: base.clone(),
            gateway: base.clone(),
            external: Some(base.clone()),
            ledger: Some(base),
            books: Default::default(),
            api: None,
        };
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let admin = AdminClient::new(http);
        let started = Instant::now();
        let reading = CpuReading::take(&admin, &endpoints).await;
        let took = started.elapsed();
        // Asked one after the other, the three would take three timeouts.
        assert!(took >= METRICS_TIMEOUT, "the reads did wait: {took:?}");
        assert!(took < METRICS_TIMEOUT * 2, "the reads overlapped: {took:?}");
        let processes: Vec<&str> = reading
            .seconds_by_process
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(processes, [HARNESS], "only the harness's own CPU is known");
    }

    #[test]
    fn cpu_is_divided_by_the_operations_and_a_restarted_process_is_left_out() {
        let at = Instant::now();
        let reading = |seconds: &[(&str, f64)], at: Instant| CpuReading {
            at,
            seconds_by_process: seconds.iter().map(|(p, s)| ((*p).to_owned(), *s)).collect(),
            host: None,
        };
        let before = reading(
            &[("coordinator", 10.0), ("ledger", 50.0), ("harness", 1.0)],
            at,
        );
        let after = reading(
            &[
                ("coordinator", 13.0),
                ("ledger", 0.5),
                ("harness", 2.0),
                ("external", 4.0),
            ],
            at + Duration::from_secs(10),
        );
        let used = per_operation(&before, &after, 10_000, &[]);
        assert_eq!(used.operations, 10_000);
        assert!((used.window_s - 10.0).abs() < 1e-9);
        assert_eq!(used.ms_per_operation.get("coordinator"), Some(&0.3));
        assert_eq!(used.ms_per_operation.get("harness"), Some(&0.1));
        assert_eq!(used.ms_per_operation.get("ledger"), None, "restarted");
        assert_eq!(
            used.ms_per_operation.get("external"),
            None,
            "not read before"
        );
        assert!(per_operation(&before, &after, 0, &[])
            .ms_per_operation
            .is_empty());
        let killed = per_operation(&before, &after, 10_000, &["coordinator"]);
        assert_eq!(killed.ms_per_operation.get("coordinator"), None, "killed");
        assert_eq!(killed.ms_per_operation.get("harness"), Some(&0.1));
    }

    #[test]
    fn the_host_share_busy_idle_and_stolen_adds_up_and_needs_both_readings() {
        let ticks = |total, idle, steal| CpuTicks { total, idle, steal };
        let host = host_between(Some(&ticks(1_000, 300, 10)), Some(&ticks(2_000, 400, 60)));
        assert_eq!(
            host,
            Some(HostCpu {
                busy_pct: 85.0,
                idle_pct: 10.0,
                steal_pct: 5.0
            })
        );
        assert_eq!(host_between(None, Some(&ticks(2_000, 400, 60))), None);
        assert_eq!(
            host_between(Some(&ticks(1_000, 300, 10)), Some(&ticks(1_000, 300, 10))),
            None,
            "no time passed"
        );
    }
}
