//! `summary.json`: the machine-readable verdict of a run, and the exit code that goes with
//! it. Its JSON Schema, `harness/schema/summary.schema.json`, is generated from these types.

use crate::faults::FaultRecord;
use crate::phases::Phases;
use crate::reconcile::{Invariant, Money, ViolationClass};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The summary's file in a run folder.
pub const SUMMARY_FILE: &str = "summary.json";

service::named_enum! {
    /// `pass`: every invariant and the SLO held. `fail`: one did not. `unknown`: nothing
    /// failed but something could not be checked (no dumps, too few samples). `unusable`: the
    /// generator could not keep to its schedule, so the figures say nothing about the service.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub enum Verdict {
        Pass = "pass",
        Fail = "fail",
        Unknown = "unknown",
        Unusable = "unusable",
    }
}

impl Verdict {
    /// 0 pass; 1 an invariant or the SLO failed (or could not be shown to hold); 2 the
    /// harness could not do its job (an unusable generator).
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Pass => 0,
            Verdict::Fail | Verdict::Unknown => 1,
            Verdict::Unusable => 2,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Summary {
    pub schema_version: u32,
    #[schemars(pattern(r"^[a-z0-9_-]{1,64}$"))]
    pub profile: String,
    pub profile_file: String,
    pub seed: u64,
    /// The coordinator design that ran, as the system's saga log names it (free text); the
    /// profile's when the harness started the system and the log could not be read, `not
    /// reported` for a target without one.
    pub design: String,
    #[schemars(pattern(r"^([0-9a-f]{40}(-dirty)?|unknown)$"))]
    pub git_revision: String,
    #[schemars(pattern(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"))]
    pub started_at: String,
    pub target: String,
    /// The profile's `service:` settings a target ran without (`--ignore-service-settings`),
    /// one line each: `service.<role>.<name>: <value>: <why>`.
    #[serde(default)]
    pub settings_not_applied: Vec<String>,
    pub verdict: Verdict,
    /// Why the verdict is not `pass`, one line each.
    pub verdict_reasons: Vec<String>,
    /// The measured window (warm-up excluded).
    pub duration_s: f64,
    pub warmup_s: f64,
    pub throughput_rps: f64,
    pub requests: Requests,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub latency_ms: Latency,
    /// The latency before, during and after the faults (empty in a summary written before
    /// phases were measured).
    #[serde(default)]
    pub phases: Phases,
    pub slo: SloResult,
    pub generator: Generator,
    /// The CPU each process used while the load ran (empty in a summary written before it
    /// was measured).
    #[serde(default)]
    pub cpu: CpuUse,
    /// The TCP connections each hop's proxy accepted while the load ran (warm-up included),
    /// by hop: a client that reuses its connections opens a handful, one that does not opens
    /// one per request. Known with the embedded proxy only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections_by_hop: Option<BTreeMap<String, u64>>,
    pub money: Money,
    pub invariants: Vec<Invariant>,
    pub anomalies: BTreeMap<ViolationClass, u64>,
    pub convergence_ms: Option<u64>,
    /// Each fault occurrence with its requested, applied and healed times.
    pub faults: Vec<FaultRecord>,
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

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SloResult {
    pub p99_ms: u64,
    /// None when p99 has too few samples to judge.
    pub met: Option<bool>,
    pub percentiles: Vec<PercentileResult>,
    pub error_budget: f64,
    pub error_rate: f64,
    pub error_budget_met: bool,
    /// The profile's bound on the shed fraction (absent: not judged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shed_budget: Option<f64>,
    /// Shed answers over all operations.
    #[serde(default)]
    pub shed_rate: f64,
}

impl SloResult {
    /// Whether the shed fraction is within its budget (true when there is none).
    pub fn shed_budget_met(&self) -> bool {
        self.shed_budget.is_none_or(|b| self.shed_rate <= b)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct PercentileResult {
    pub name: String,
    pub bound_ms: u64,
    pub value_ms: Option<f64>,
    pub met: Option<bool>,
}

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

/// How well the generator kept to its own schedule.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Generator {
    pub send_lag_ms_p99: f64,
    pub send_lag_ms_max: f64,
    pub usable: bool,
    pub reason: Option<String>,
}
