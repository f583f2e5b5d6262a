//! `harness capacity --profile FILE`: the highest arrival rate at which the system still
//! meets the profile's SLO and error budget (the knee). Each step is a short run of the
//! profile at one constant rate, on a freshly started system, with no faults or with one of
//! the profile's faults held active (`--fault`). The rate doubles until a step misses, then
//! the gap is halved (`search`); the knee and the first rate that missed are run again to
//! show the boundary is stable, and the system is driven past the knee
//! (`PAST_KNEE_FACTORS`: 1.5×, 2× and 4×) to show whether goodput holds, degrades or
//! collapses. Writes `capacity.json`, `capacity.md` and
//! `capacity.html` (`render`).

pub mod cost;
pub mod overload;
pub mod render;
pub mod search;

use crate::cli::CapacityArgs;
use crate::cpu::HostCpu;
use crate::run::{self, FaultsOverride, RunOptions};
use crate::slo::LATENCY_INVARIANT;
use crate::stats::min_samples_for;
use crate::summary::Summary;
use crate::verdict::Verdict;
use crate::{profile, provenance};
use overload::{past_knee, past_knee_rate, PastKnee, PAST_KNEE_FACTORS};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

service::named_enum! {
    /// Why a step was run.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub enum Purpose {
        /// Part of the search for the knee.
        Search = "search",
        /// The knee, or the first rate that missed, run again.
        Repeat = "repeat",
        /// Past the knee, to see what goodput does under overload.
        PastKnee = "past_knee",
    }
}

/// What one step measured.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Step {
    pub rate_per_s: u32,
    pub purpose: Purpose,
    /// The SLO's latency bounds and the error budget held, and the generator kept up.
    pub meets: bool,
    pub verdict: Verdict,
    /// Why the step's run did not pass (the SLO, the budget, or an invariant).
    pub reasons: Vec<String>,
    /// Completed transfers per second of the measured window.
    pub goodput_rps: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub mean_ms: Option<f64>,
    pub error_rate: f64,
    /// Errors and shed answers over operations: what the error budget judges here.
    pub refused_rate: f64,
    pub scheduled: u64,
    pub shed: u64,
    pub pending: u64,
    pub errors: u64,
    pub overflow: u64,
    pub send_lag_ms_p99: f64,
    /// The generator, not the system, limited the step (`generator_limited`).
    pub generator_limited: bool,
    /// Requests in the system on average by Little's law: goodput × mean latency.
    pub concurrency: Option<f64>,
    /// The CPU each process used per operation during the step's load (`summary.json`'s
    /// `cpu`): what a transfer costs at this rate.
    #[serde(default)]
    pub cpu_ms_per_operation: BTreeMap<String, f64>,
    /// The requests those figures divide by, and the seconds they were measured over
    /// (absent in steps recorded before they were).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operations: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_window_s: Option<f64>,
    /// How the host's CPU was spent over the step's load (`summary.json`'s `cpu.host`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_cpu: Option<HostCpu>,
    /// Measured seconds: `--step-s`, or longer where the SLO's highest percentile needs
    /// more samples at this rate.
    pub duration_s: u32,
    /// The step's run folder.
    pub dir: String,
}

/// `capacity.json`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Capacity {
    pub profile: String,
    pub profile_file: String,
    pub seed: u64,
    pub git_revision: String,
    pub started_at: String,
    pub fault: Option<String>,
    /// The generator's HTTP/2 connections to the coordinator; 0 for HTTP/1.1.
    #[serde(default)]
    pub client_http2_connections: u32,
    /// The profile's peak arrival rate.
    pub expected_rate_per_s: f64,
    pub slo_p99_ms: u64,
    pub error_budget: f64,
    /// The profile's shed budget, which shed answers are judged against; None: they count
    /// against the error budget.
    #[serde(default)]
    pub shed_budget: Option<f64>,
    pub step_s: u32,
    pub warmup_s: u32,
    pub resolution: f64,
    pub max_rate_per_s: u32,
    /// The highest rate that met the SLO and the error budget.
    pub knee_rate_per_s: Option<u32>,
    /// The lowest rate that missed them.
    pub first_miss_rate_per_s: Option<u32>,
    /// Every run at the knee met the targets, and every run at the first miss missed them.
    pub knee_stable: Option<bool>,
    /// The knee over the profile's peak rate.
    pub headroom: Option<f64>,
    /// Goodput at twice the knee over goodput at the knee.
    pub goodput_at_twice_knee: Option<f64>,
    /// Goodput at each of `PAST_KNEE_FACTORS` that ran.
    #[serde(default)]
    pub past_knee: Vec<PastKnee>,
    /// What a served and a shed request cost each process, fitted over the steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_costs: Option<cost::CpuCosts>,
    pub steps: Vec<Step>,
}

#[derive(Debug, thiserror::Error)]
pub enum CapacityError {
    #[error(transparent)]
    Profile(#[from] profile::ProfileError),
    #[error("step at {rate}/s: {source}")]
    Step { rate: u32, source: run::RunError },
    #[error("step at {rate}/s: {path}: {detail}")]
    Summary {
        rate: u32,
        path: PathBuf,
        detail: String,
    },
    #[error("cannot write {path}: {source}")]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The fraction of operations that were errors or shed.
fn refused_or_failed(s: &Summary) -> f64 {
    let operations = s.requests.operations();
    if operations == 0 {
        return 0.0;
    }
    (s.requests.errors + s.requests.shed) as f64 / operations as f64
}

/// Whether a step kept its budgets. A system that refuses load has not carried it, so shed
/// answers always count: against the profile's shed budget when it has one (as a run is
/// judged, so the knee is the highest rate at which the profile passes), and otherwise
/// against the error budget, together with the errors (a run without a shed budget does
/// not count them at all).
fn within_budgets(s: &Summary) -> bool {
    match s.slo.shed_budget {
        Some(_) => s.slo.error_budget_met && s.slo.shed_budget_met(),
        None => refused_or_failed(s) <= s.slo.error_budget,
    }
}

/// Whether a step met what capacity is measured against: every latency bound of the SLO,
/// its budgets (`within_budgets`), and a generator that kept up.
fn meets(s: &Summary) -> bool {
    let latency_holds = s
        .invariants
        .iter()
        .any(|i| i.name == LATENCY_INVARIANT && i.holds == Some(true));
    latency_holds && within_budgets(s) && s.generator.usable
}

/// The generator, not the system, limited the step: it fell behind its schedule (the run
/// is unusable) by a lag that is a large part of the latency measured. A lag that is small
/// beside a p99 of hundreds of ms is the overloaded machine's, and the system's latency
/// stands; overflow (the generator's in-flight cap full) is the system being slow.
fn generator_limited(s: &Summary) -> bool {
    !s.generator.usable
        && s.latency_ms
            .p99
            .is_none_or(|p99| s.generator.send_lag_ms_p99 > GENERATOR_SHARE * p99)
}

/// The share of a step's p99 above which the generator's send lag is what the step measured.
const GENERATOR_SHARE: f64 = 0.25;

fn step_of(s: &Summary, rate: u32, purpose: Purpose, dir: &Path) -> Step {
    let duration_s = s.duration_s.round() as u32;
    let l = &s.latency_ms;
    Step {
        rate_per_s: rate,
        purpose,
        meets: meets(s),
        verdict: s.verdict,
        reasons: s.verdict_reasons.clone(),
        goodput_rps: s.throughput_rps,
        p50_ms: l.p50,
        p99_ms: l.p99,
        p999_ms: l.p999,
        mean_ms: l.mean,
        error_rate: s.slo.error_rate,
        refused_rate: refused_or_failed(s),
        scheduled: s.requests.scheduled,
        shed: s.requests.shed,
        pending: s.requests.pending,
        errors: s.requests.errors,
        overflow: s.requests.overflow,
        send_lag_ms_p99: s.generator.send_lag_ms_p99,
        generator_limited: generator_limited(s),
        concurrency: l.mean.map(|m| s.throughput_rps * m / 1000.0),
        cpu_ms_per_operation: s.cpu.ms_per_operation.clone(),
        operations: Some(s.cpu.operations),
        cpu_window_s: Some(s.cpu.window_s),
        host_cpu: s.cpu.host,
        duration_s,
        dir: dir.display().to_string(),
    }
}

/// The longest a step is made to run to gather enough samples for the SLO's percentiles.
const LONGEST_STEP_S: u32 = 60;

/// Measured seconds of a step at `rate`: `--step-s`, or long enough for the SLO's highest
/// percentile to be shown (`stats::min_samples_for`), up to `LONGEST_STEP_S`.
fn step_duration_s(step_s: u32, rate: u32, highest_quantile: f64) -> u32 {
    let needed = min_samples_for(highest_quantile).div_ceil(u64::from(rate.max(1)));
    step_s.max(
        u32::try_from(needed)
            .unwrap_or(u32::MAX)
            .min(LONGEST_STEP_S),
    )
}

/// The run options of every step, from the command line.
fn step_options(args: &CapacityArgs, rate: u32, duration_s: u32, out: PathBuf) -> RunOptions {
    RunOptions {
        profile: args.profile.clone(),
        out: Some(out),
        seed: args.seed,
        duration_s: Some(duration_s),
        rate: Some(rate),
        client_http2_connections: args.client_http2_connections,
        warmup_s: Some(args.warmup_s),
        convergence_window_s: Some(args.convergence_window_s),
        faults: args
            .fault
            .clone()
            .map_or(FaultsOverride::None, FaultsOverride::Hold),
        silent: true,
        target_file: args.target_file.clone(),
        // A target keeps the accounts an earlier step created.
        take_existing_accounts: args.target_file.is_some(),
        ..RunOptions::default()
    }
}

/// Runs one step and reads its summary back.
async fn run_step(
    args: &CapacityArgs,
    highest_quantile: f64,
    steps_dir: &Path,
    number: usize,
    rate: u32,
    purpose: Purpose,
) -> Result<Step, CapacityError> {
    let dir = steps_dir.join(format!("{number:02}-{rate}"));
    let duration_s = step_duration_s(args.step_s, rate, highest_quantile);
    run::run(step_options(args, rate, duration_s, dir.clone()))
        .await
        .map_err(|source| CapacityError::Step { rate, source })?;
    let path = dir.join(crate::summary::SUMMARY_FILE);
    let summary: Summary = std::fs::read(&path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()))
        .map_err(|detail| CapacityError::Summary {
            rate,
            path: path.clone(),
            detail,
        })?;
    let step = step_of(&summary, rate, purpose, &dir);
    println!("{}", render::step_line(number, &step));
    Ok(step)
}

/// The rates a search, its repeats and the overload steps run, in order.
async fn measure(
    args: &CapacityArgs,
    highest_quantile: f64,
    start: u32,
    steps_dir: &Path,
) -> Result<(search::Search, Vec<Step>), CapacityError> {
    let mut search = search::Search::new(start, args.max, args.resolution);
    let mut steps = Vec::new();
    let step = |rate: u32, purpose: Purpose, number: usize| {
        run_step(args, highest_quantile, steps_dir, number, rate, purpose)
    };
    while let Some(rate) = search.next_rate() {
        let s = step(rate, Purpose::Search, steps.len() + 1).await?;
        search.record(rate, s.meets);
        steps.push(s);
    }
    let Some(knee) = search.knee() else {
        return Ok((search, steps));
    };
    for rate in [Some(knee), search.first_miss()].into_iter().flatten() {
        steps.push(step(rate, Purpose::Repeat, steps.len() + 1).await?);
    }
    if search.first_miss().is_some() {
        for factor in PAST_KNEE_FACTORS {
            let rate = past_knee_rate(knee, factor);
            if rate > knee {
                steps.push(step(rate, Purpose::PastKnee, steps.len() + 1).await?);
            }
        }
    }
    Ok((search, steps))
}

/// `harness capacity`. Exit 0 with a knee, 1 when even the first step missed, 2 when a step
/// could not run.
pub async fn run(args: CapacityArgs) -> Result<i32, CapacityError> {
    let (profile, plan) = profile::load(&args.profile)?;
    let peak = plan
        .rate
        .iter()
        .map(|s| s.from_per_s.max(s.to_per_s))
        .fold(0.0, f64::max);
    let start = args.start.unwrap_or(((peak / 4.0).round() as u32).max(50));
    let started_at = SystemTime::now();
    let out = args.out.clone().unwrap_or_else(|| {
        let fault = args
            .fault
            .as_deref()
            .map_or(String::new(), |f| format!("-{f}"));
        PathBuf::from("results").join(format!(
            "{}-capacity-{}{fault}",
            provenance::compact(started_at),
            profile.name
        ))
    });
    let steps_dir = out.join("steps");
    // A step's overrides (a --fault the profile lacks, say) are refused before any step runs.
    let (_, step_plan) =
        run::options::plan(&step_options(&args, start, args.step_s, steps_dir.clone()))?;
    std::fs::create_dir_all(&steps_dir).map_err(|source| CapacityError::Output {
        path: steps_dir.clone(),
        source,
    })?;
    println!(
        "capacity of `{}`{}{}: steps of {} s after {} s warm-up from {start}/s; results in {}",
        profile.name,
        args.fault
            .as_deref()
            .map_or(String::new(), |f| format!(" with `{f}` held active")),
        match step_plan.client_http2_connections {
            0 => String::new(),
            n => format!(" over {n} HTTP/2 connection(s)"),
        },
        args.step_s,
        args.warmup_s,
        out.display()
    );
    let highest_quantile = plan
        .slo
        .percentiles
        .iter()
        .map(|(_, q, _)| *q)
        .fold(0.99, f64::max);
    let (search, steps) = measure(&args, highest_quantile, start, &steps_dir).await?;
    let knee = search.knee();
    let first_miss = search.first_miss();
    let knee_stable = knee.map(|k| {
        steps.iter().filter(|s| s.rate_per_s == k).all(|s| s.meets)
            && first_miss
                .is_none_or(|m| steps.iter().filter(|s| s.rate_per_s == m).all(|s| !s.meets))
    });
    let cores = std::thread::available_parallelism()
        .map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX));
    let cpu_costs = cost::fit(&steps, cores);
    let past_knee = knee.map_or_else(Vec::new, |k| past_knee(&steps, k, cpu_costs.as_ref()));
    let goodput_at_twice_knee = past_knee
        .iter()
        .find(|p| p.factor == 2.0)
        .map(|p| p.of_knee);
    let capacity = Capacity {
        profile: profile.name.clone(),
        profile_file: args.profile.display().to_string(),
        seed: args.seed.unwrap_or(plan.seed),
        git_revision: provenance::git_revision(),
        started_at: provenance::rfc3339(started_at),
        fault: args.fault.clone(),
        client_http2_connections: step_plan.client_http2_connections,
        expected_rate_per_s: peak,
        slo_p99_ms: u64::try_from(plan.slo.p99.as_millis()).unwrap_or(u64::MAX),
        error_budget: plan.slo.error_budget,
        shed_budget: plan.slo.shed_budget,
        step_s: args.step_s,
        warmup_s: args.warmup_s,
        resolution: args.resolution,
        max_rate_per_s: args.max,
        knee_rate_per_s: knee,
        first_miss_rate_per_s: first_miss,
        knee_stable,
        headroom: knee.filter(|_| peak > 0.0).map(|k| f64::from(k) / peak),
        goodput_at_twice_knee,
        past_knee,
        cpu_costs,
        steps,
    };
    write(&out, &capacity)?;
    print!("{}", render::conclusion(&capacity));
    println!("results: {}", out.display());
    Ok(if knee.is_some() { 0 } else { 1 })
}

fn write(out: &Path, capacity: &Capacity) -> Result<(), CapacityError> {
    let files = [
        (
            "capacity.json",
            serde_json::to_string_pretty(capacity).unwrap_or_default() + "\n",
        ),
        ("capacity.md", render::markdown(capacity)),
        ("capacity.html", render::html(capacity)),
    ];
    for (name, text) in files {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(|source| CapacityError::Output { path, source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed smoke baseline (a passing run) with `shed` of its completed answers
    /// turned into shed ones, judged under `shed_budget` and an error budget of 0.
    fn step_with_shed(shed: u64, shed_budget: Option<f64>) -> Summary {
        let mut s: Summary = serde_json::from_str(include_str!(
            "../../../results/baselines/smoke/summary.json"
        ))
        .expect("the committed baseline is a summary");
        assert!(meets(&s), "the baseline itself meets its targets");
        s.requests.completed -= shed;
        s.requests.shed += shed;
        s.slo.error_budget = 0.0;
        s.slo.shed_budget = shed_budget;
        s.slo.shed_rate = shed as f64 / s.requests.operations() as f64;
        s
    }

    #[test]
    fn shed_answers_count_against_the_shed_budget_or_else_the_error_budget() {
        let operations = step_with_shed(0, None).requests.operations();
        // Without a shed budget, a single shed answer spends an error budget of 0.
        assert!(meets(&step_with_shed(0, None)));
        assert!(!meets(&step_with_shed(1, None)));
        // With one, shed answers are judged against it, as the run's verdict judges them.
        let one_percent = operations / 100;
        assert!(meets(&step_with_shed(one_percent, Some(0.01))));
        assert!(!meets(&step_with_shed(one_percent + 1, Some(0.01))));
        // Errors still spend the error budget.
        let mut failing = step_with_shed(1, Some(0.01));
        failing.requests.completed -= 1;
        failing.requests.errors += 1;
        failing.slo.error_budget_met = false;
        assert!(!meets(&failing));
    }

    #[test]
    fn a_step_runs_long_enough_for_the_slo_percentiles() {
        assert_eq!(step_duration_s(10, 1_000, 0.99), 10);
        assert_eq!(step_duration_s(10, 50, 0.99), 20);
        assert_eq!(step_duration_s(10, 250, 0.999), 40);
        assert_eq!(step_duration_s(10, 50, 0.9999), LONGEST_STEP_S);
    }
}
