//! `summary.json` from what a run measured: the outcome counts and latency of the measured
//! window, the SLO and the verdict (`slo`, `verdict`), the reconciliation's money and
//! invariants, and where the run came from (seed, profile, git revision).

use super::options::RunOptions;
use crate::cpu::CpuUse;
use crate::faults::FaultRecord;
use crate::history::Outcome;
use crate::loadgen::LoadReport;
use crate::phases::Phases;
use crate::profile::plan::RunPlan;
use crate::reconcile::Reconciliation;
use crate::stats::{Merged, Requests};
use crate::summary::Summary;
use crate::verdict::Verdict;
use crate::{provenance, slo, verdict};
use std::collections::BTreeMap;
use std::time::SystemTime;

/// Everything a summary is made of.
/// The design of a target whose saga log could not be read.
pub const NOT_REPORTED: &str = "not reported";

pub struct Measured<'a> {
    pub options: &'a RunOptions,
    pub plan: &'a RunPlan,
    pub load: &'a LoadReport,
    pub merged: &'a Merged,
    pub phases: Phases,
    pub reconciliation: Reconciliation,
    pub convergence_ms: Option<u64>,
    /// The design the system's saga log names, when it could be read.
    pub system_design: Option<String>,
    /// The coordinator's URL, when the harness did not start the system.
    pub target: Option<&'a str>,
    /// The profile's service settings the target was run without.
    pub settings_not_applied: Vec<String>,
    pub faults: Vec<FaultRecord>,
    pub cpu: CpuUse,
    pub connections_by_hop: Option<BTreeMap<String, u64>>,
    pub started_at: SystemTime,
    /// When the run was asked to end early, in seconds from the start of the load.
    pub interrupted_at_s: Option<f64>,
}

fn requests(load: &LoadReport, merged: &Merged) -> Requests {
    let count = |o: Outcome| merged.outcomes.get(&o).copied().unwrap_or(0);
    Requests {
        scheduled: load.scheduled_measured,
        retries: merged.retries,
        completed: count(Outcome::Completed),
        failed: count(Outcome::Failed),
        pending: count(Outcome::Pending),
        shed: count(Outcome::Shed),
        errors: count(Outcome::Error),
        overflow: load.overflow_measured,
    }
}

/// What the generator measured of itself, with the lag it may have: a tenth of the p99
/// bound, and never under 10 ms (the timer's granularity and a loaded machine's scheduling
/// make a few ms of lag ordinary).
pub fn generator_load(
    lag_p99_ms: f64,
    lag_max_ms: f64,
    p99_bound_ms: u64,
    overflow: u64,
) -> verdict::GeneratorLoad {
    verdict::GeneratorLoad {
        send_lag_ms_p99: lag_p99_ms,
        send_lag_ms_max: lag_max_ms,
        lag_limit_ms: (p99_bound_ms as f64 / 10.0).max(10.0),
        overflow_measured: overflow,
    }
}

/// `summary` with a new reconciliation (`harness reconcile DIR`): the money, the invariants
/// and the verdict judged again; the latency, the SLO and the generator as the run measured.
pub fn rejudge(summary: Summary, reconciliation: Reconciliation) -> Summary {
    let mut invariants = reconciliation.invariants;
    invariants.extend(
        summary
            .invariants
            .iter()
            .filter(|i| i.name == slo::LATENCY_INVARIANT)
            .cloned(),
    );
    let judged = verdict::judge(
        &invariants,
        slo::budget_exceeded(&summary.slo),
        generator_load(
            summary.generator.send_lag_ms_p99,
            summary.generator.send_lag_ms_max,
            summary.slo.p99_ms,
            summary.requests.overflow,
        ),
    );
    Summary {
        verdict: judged.verdict,
        verdict_reasons: judged.reasons,
        generator: judged.generator,
        money: reconciliation.money,
        invariants,
        anomalies: reconciliation.anomalies,
        reconciled_live: reconciliation.live,
        ..summary
    }
}

pub fn summarize(m: Measured<'_>) -> Summary {
    let requests = requests(m.load, m.merged);
    let slo = slo::judge(&m.plan.slo, &m.merged.latency, &m.phases, &requests);
    let reconciliation_failed = m
        .reconciliation
        .invariants
        .iter()
        .any(|i| i.holds == Some(false));
    let mut invariants = m.reconciliation.invariants;
    invariants.push(slo.invariant);
    let judged = verdict::judge(
        &invariants,
        slo.error_budget_exceeded,
        generator_load(
            m.load.send_lag.value_at_quantile(0.99) as f64 / 1000.0,
            m.load.send_lag.max() as f64 / 1000.0,
            slo.result.p99_ms,
            m.load.overflow_measured,
        ),
    );
    let (verdict, verdict_reasons) = if let Some(at_s) = m.interrupted_at_s {
        // A money or contract violation found in a partial run is one all the same; a
        // partial run shows nothing to hold.
        let verdict = match judged.verdict {
            Verdict::Fail if reconciliation_failed => Verdict::Fail,
            _ => Verdict::Unknown,
        };
        let mut reasons = vec![format!(
            "interrupted {at_s:.1} s into the load: the load stopped, every fault applied was healed, and this is the partial run"
        )];
        reasons.extend(judged.reasons);
        (verdict, reasons)
    } else if m.plan.shard.is_whole() {
        (judged.verdict, judged.reasons)
    } else {
        (
            Verdict::Unknown,
            vec![format!(
                "shard {} of a run: its books hold every shard's transfers and its history only its own; `harness merge` of the {} shards' folders reconciles and judges the run",
                m.plan.shard, m.plan.shard.count
            )],
        )
    };
    let duration_s = m.plan.duration.as_secs_f64();
    Summary {
        schema_version: 1,
        profile: m.plan.name.clone(),
        profile_file: m.options.profile.display().to_string(),
        seed: m.plan.seed,
        design: m.system_design.clone().unwrap_or_else(|| {
            if m.target.is_some() {
                NOT_REPORTED.to_owned()
            } else {
                m.plan.coordinator.design.as_str().to_owned()
            }
        }),
        git_revision: provenance::git_revision(),
        started_at: provenance::rfc3339(m.started_at),
        target: m.target.unwrap_or("launched").to_owned(),
        settings_not_applied: m.settings_not_applied,
        verdict,
        verdict_reasons,
        duration_s,
        warmup_s: m.plan.warmup.as_secs_f64(),
        throughput_rps: requests.completed as f64 / duration_s.max(f64::EPSILON),
        latency_ms: crate::stats::latency_of(&m.merged.latency),
        phases: m.phases,
        requests,
        errors_by_kind: m.merged.errors_by_kind.clone(),
        error_examples: m.merged.error_examples.clone(),
        slo: slo.result,
        generator: judged.generator,
        cpu: m.cpu,
        connections_by_hop: m.connections_by_hop,
        money: m.reconciliation.money,
        invariants,
        anomalies: m.reconciliation.anomalies,
        reconciled_live: m.reconciliation.live,
        convergence_ms: m.convergence_ms,
        faults: m.faults,
        shard: (!m.plan.shard.is_whole()).then_some(m.plan.shard),
        shards: None,
        interrupted_at_s: m.interrupted_at_s,
    }
}
