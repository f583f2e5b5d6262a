//! `summary.json`: the machine-readable verdict of a run, and the exit code that goes with
//! it. Its JSON Schema, `harness/schema/summary.schema.json`, is generated from these types.

use crate::cpu::CpuUse;
use crate::faults::FaultRecord;
use crate::phases::Phases;
use crate::profile::plan::Shard;
use crate::reconcile::{Invariant, Money, ViolationClass};
use crate::slo::SloResult;
use crate::stats::{Latency, Requests};
use crate::verdict::{Generator, Verdict};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The summary's file in a run folder.
pub const SUMMARY_FILE: &str = "summary.json";

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
    /// For each error kind, the reason its first measured answer came with: for `unmapped`,
    /// the status and the start of the body no rule matched.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub error_examples: BTreeMap<String, String>,
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
    /// How the run was reconciled as it went (absent: whole at the end, because the system's
    /// books or saga log do not read by pages, or the folder was reconciled again whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciled_live: Option<crate::reconcile::LiveReconciliation>,
    /// Each fault occurrence with its requested, applied and healed times.
    pub faults: Vec<FaultRecord>,
    /// The part of a sharded run this folder holds (absent for a whole run): its verdict is
    /// `unknown` until `harness merge` judges the shards together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// How many shards' folders `harness merge` made this run of (absent for a run of one
    /// process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<u32>,
    /// When the run was asked to end early (SIGTERM or Ctrl-C), in seconds from the start of
    /// the load (absent for a run that ran to its end): the folder holds the partial run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted_at_s: Option<f64>,
}

/// One figure of a run that a regression check follows over builds or over time.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// `throughput_rps`, `p50_ms`, `p99_ms` or `cpu_ms_per_transfer.<process>`.
    pub name: String,
    /// Whether a higher value is worse.
    pub higher_is_worse: bool,
    pub value: f64,
}

/// The latency figures a regression check follows, each with the quantile of latency it is.
pub const LATENCY_FIGURES: [(&str, f64); 2] = [("p50_ms", 0.50), ("p99_ms", 0.99)];

/// The quantile of latency a figure is, if it is a latency figure.
pub fn latency_quantile(figure: &str) -> Option<f64> {
    LATENCY_FIGURES
        .iter()
        .find(|(name, _)| *name == figure)
        .map(|(_, quantile)| *quantile)
}

impl Summary {
    /// Reads a `summary.json` file; the error says why it is not one.
    pub fn read_file(path: &std::path::Path) -> Result<Summary, String> {
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        serde_json::from_str(&text).map_err(|e| format!("not a summary: {e}"))
    }

    /// The figures a regression check follows: throughput, p50 and p99, and the CPU a
    /// transfer cost each process measured.
    pub fn figures(&self) -> Vec<Figure> {
        let figure = |name: String, higher_is_worse: bool, value: f64| Figure {
            name,
            higher_is_worse,
            value,
        };
        let mut out = vec![figure("throughput_rps".into(), false, self.throughput_rps)];
        let latency = &self.latency_ms;
        for ((name, _), value) in LATENCY_FIGURES.iter().zip([latency.p50, latency.p99]) {
            if let Some(value) = value {
                out.push(figure((*name).into(), true, value));
            }
        }
        for (process, ms) in &self.cpu.ms_per_operation {
            out.push(figure(format!("cpu_ms_per_transfer.{process}"), true, *ms));
        }
        out
    }
}

/// A passing summary of the smoke profile, for the tests of what reads summaries.
#[cfg(test)]
pub(crate) mod example {
    use super::Summary;
    use crate::reconcile::{Invariant, InvariantName, Money};
    use crate::slo::SloResult;
    use crate::stats::{Latency, Requests};
    use crate::verdict::{Generator, Verdict};
    use std::collections::BTreeMap;

    pub(crate) fn summary(throughput_rps: f64, error_rate: f64) -> Summary {
        Summary {
            schema_version: 1,
            profile: "smoke".to_owned(),
            profile_file: "chaos-profiles/smoke.yaml".to_owned(),
            seed: 42,
            design: "saga".to_owned(),
            git_revision: "unknown".to_owned(),
            started_at: "2026-11-25T00:00:00Z".to_owned(),
            target: "launched".to_owned(),
            settings_not_applied: Vec::new(),
            verdict: Verdict::Pass,
            verdict_reasons: Vec::new(),
            duration_s: 12.0,
            warmup_s: 2.0,
            throughput_rps,
            requests: Requests::default(),
            errors_by_kind: BTreeMap::new(),
            error_examples: BTreeMap::new(),
            latency_ms: Latency::default(),
            phases: Default::default(),
            slo: SloResult {
                p99_ms: 200,
                met: Some(true),
                percentiles: Vec::new(),
                error_budget: 0.0,
                error_rate,
                error_budget_met: true,
                shed_budget: None,
                shed_rate: 0.0,
            },
            generator: Generator {
                send_lag_ms_p99: 1.0,
                send_lag_ms_max: 2.0,
                usable: true,
                reason: None,
            },
            cpu: Default::default(),
            connections_by_hop: None,
            money: Money::default(),
            invariants: vec![Invariant {
                name: InvariantName::Conservation,
                holds: Some(true),
                violations: 0,
                detail: String::new(),
            }],
            anomalies: BTreeMap::new(),
            convergence_ms: Some(10),
            reconciled_live: None,
            faults: Vec::new(),
            shard: None,
            shards: None,
            interrupted_at_s: None,
        }
    }
}
