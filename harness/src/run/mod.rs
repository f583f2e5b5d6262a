//! One run, end to end: profile → system → seed → load and faults → convergence →
//! reconciliation → results folder → verdict.
//!
//! - `options`: the command line's overrides applied to the profile.
//! - `sampler`: the money sampled while the load runs.
//! - `converge`: waiting for every saga to be final after the load.
//! - `settle`: the books read again once nothing may move money (services stopped, or quiet).
//! - `resolve`: what became of the answers that promised nothing yet.
//! - `summarize`: `summary.json` from what the run measured.
//! - `measure`: the measured part, on a system that is up: settings, seeding, the load under
//!   faults, convergence, evidence, reconciliation, summary.
//! - `folder`: the run's folder and the files written into it.
//! - `error`: why a run could not happen.
//! - `merge`: `harness merge`, one run from the folders of its shards.

mod converge;
mod error;
pub mod folder;
mod follow;
mod measure;
mod merge;
pub mod options;
mod resolve;
mod sampler;
mod settle;
pub mod summarize;
mod whole;

pub use error::RunError;
pub use options::{FaultsOverride, RunOptions};

use crate::faults::commands::UserCommands;
use crate::faults::process::ProcessControl;
use crate::faults::proxies::ProxyControl;
use crate::faults::FaultControl;
use crate::profile::plan::RunPlan;
use crate::progress::Display;
use crate::reconcile::{self, Evidence, RECONCILIATION_FILE};
use crate::report;
use crate::summary::{Summary, SUMMARY_FILE};
use crate::system::attach::{self, AttachedSystem};
use crate::system::hops;
use crate::system::launch::SERVICE_DATA_DIR;
use crate::system::target_file::TargetFile;
use crate::system::{self, LaunchedSystem};
use folder::{results_folder, write_json, write_services};
use measure::{drive, Context};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// The system a run drives, with the proxies on its hops.
enum SystemUnderTest {
    /// The reference system, started by the harness.
    Launched(Box<LaunchedSystem>),
    /// A system already running, described by its target file.
    Attached(Box<(AttachedSystem, TargetFile)>),
}

/// The exit code of a run asked to end early (SIGTERM or Ctrl-C), which healed its faults
/// and wrote its partial folder.
pub const INTERRUPTED_EXIT: i32 = 3;

/// Runs the profile and returns the process exit code (0 pass, 1 fail or unknown, 2 unusable).
pub async fn run(options: RunOptions) -> Result<i32, RunError> {
    let (profile, plan) = options::plan(&options)?;
    if let Some(problem) = options.shard_problem(&plan) {
        return Err(RunError::Shard(problem));
    }
    let target = options.target_system()?;
    if let Some(target) = &target {
        let missing = attach::missing_for_faults(&plan.faults, target);
        if !missing.is_empty() {
            return Err(RunError::TargetLacks {
                file: target_name(&options),
                missing: missing.join("\n  "),
            });
        }
    }
    let headers = match &target {
        Some(target) => target
            .admin_headers(|name| std::env::var(name).ok())
            .map_err(RunError::AdminToken)?,
        None => reqwest::header::HeaderMap::new(),
    };
    let started_at = SystemTime::now();
    let out = results_folder(&options, &profile, &plan, started_at)?;
    let system = system_under_test(&options, &plan, target, &out).await?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .default_headers(headers)
        .build()?;
    let (endpoints, hops) = match &system {
        SystemUnderTest::Launched(s) => (s.endpoints(), &s.hops),
        SystemUnderTest::Attached(attached) => (attached.0.endpoints.clone(), &attached.0.hops),
    };
    let pids = match &system {
        SystemUnderTest::Launched(s) => Some(s.launched.pids()),
        SystemUnderTest::Attached(..) => None,
    };
    // The harness started the system, and owns its data files.
    let started_here = pids.is_some();
    write_services(&out, &endpoints, hops, pids)?;
    let proxies = Some(ProxyControl::new(&hops.api, http.clone()));
    let (processes, launched, embedded, target) = match system {
        SystemUnderTest::Launched(system) => {
            let LaunchedSystem {
                launched, embedded, ..
            } = *system;
            let launched = Arc::new(Mutex::new(launched));
            let control = ProcessControl::Launched(launched.clone());
            (Some(control), Some(launched), embedded, None)
        }
        SystemUnderTest::Attached(attached) => {
            let (attached, target) = *attached;
            let commands = UserCommands::new(
                target.commands.clone(),
                endpoints.clone(),
                target.command_timeout(),
                &out,
                http.clone(),
            );
            let control = ProcessControl::Commands(Arc::new(commands));
            (Some(control), None, attached.embedded, Some(target))
        }
    };
    let connections = embedded.as_ref().map(|e| e.connection_counter());
    let control = FaultControl {
        proxies,
        processes,
        http,
        endpoints: endpoints.clone(),
    };
    let settle = match (&launched, &target) {
        (Some(launched), _) => settle::Settle::Stop(launched.clone()),
        (None, Some(target)) => settle::Settle::Quiet(target.settle()),
        (None, None) => settle::Settle::Quiet(std::time::Duration::ZERO),
    };
    let cx = Context {
        settle: &settle,
        options: &options,
        plan: &plan,
        target: target.as_ref(),
        endpoints: &endpoints,
        out: &out,
        started_at,
        connections,
    };
    let result = drive(&cx, control).await;
    if let Some(processes) = launched {
        let stop = tokio::task::spawn_blocking(move || match processes.lock() {
            Ok(mut l) => l.stop(),
            Err(poisoned) => poisoned.into_inner().stop(),
        });
        let _ = stop.await;
    }
    drop(embedded);
    remove_hops_from_user_server(&options).await;
    let (summary, violations) = result?;
    write_json(&out.join(SUMMARY_FILE), &summary)?;
    report::write(&out, &summary, &violations)?;
    if options.display() != Display::Off {
        print_outcome(&summary, &out);
    }
    if started_here && summary.verdict.exit_code() == 0 && !options.keep_service_data {
        let data = out.join(SERVICE_DATA_DIR);
        if let Err(err) = std::fs::remove_dir_all(&data) {
            tracing::warn!(%err, "could not remove {}", data.display());
        }
    }
    if summary.interrupted_at_s.is_some() {
        return Ok(INTERRUPTED_EXIT);
    }
    if !plan.shard.is_whole() {
        // A shard's own verdict is no verdict: `harness merge` judges the run.
        return Ok(0);
    }
    Ok(summary.verdict.exit_code())
}

/// How the target was given, for messages.
fn target_name(options: &RunOptions) -> String {
    match (&options.target_file, &options.target) {
        (Some(file), _) => file.display().to_string(),
        (None, Some(url)) => format!("--target {url}"),
        (None, None) => "(no target)".to_owned(),
    }
}

/// The system the run drives: the reference system, brought up with a proxy on every hop,
/// or the target, with the hops its file names and the gateway hop in front of it.
async fn system_under_test(
    options: &RunOptions,
    plan: &RunPlan,
    target: Option<TargetFile>,
    out: &Path,
) -> Result<SystemUnderTest, RunError> {
    let toxiproxy = options.toxiproxy.as_deref();
    let brought = match target {
        Some(target) => attach::attach(&target, plan.seed, toxiproxy, plan.shard)
            .await
            .map(|attached| SystemUnderTest::Attached(Box::new((attached, target)))),
        None => system::bring_up(plan, out, toxiproxy)
            .await
            .map(|launched| SystemUnderTest::Launched(Box::new(launched))),
    };
    match brought {
        Ok(system) => Ok(system),
        Err(err) => {
            remove_hops_from_user_server(options).await;
            Err(err.into())
        }
    }
}

/// `harness reconcile DIR`: checks a finished run again from what its folder holds (the
/// evidence it saved), so a verdict can be audited, or a better checker applied to old runs,
/// without running them again. Rewrites `reconciliation.json`, `summary.json` and
/// both reports; the latency, the SLO and the generator's figures stay as measured.
pub fn reconcile_again(dir: &Path) -> Result<i32, RunError> {
    let evidence = Evidence::load(dir)?;
    let path = dir.join(SUMMARY_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| RunError::Input {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    let summary: Summary = serde_json::from_str(&text).map_err(|e| RunError::Input {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    let reconciliation = reconcile::reconcile(&evidence);
    write_json(&dir.join(RECONCILIATION_FILE), &reconciliation)?;
    let violations = reconciliation.violations.clone();
    let summary = summarize::rejudge(summary, reconciliation);
    write_json(&path, &summary)?;
    report::write(dir, &summary, &violations)?;
    print_outcome(&summary, dir);
    Ok(summary.verdict.exit_code())
}

/// `harness merge DIR…`: the shards' folders merged into `out` (by default
/// `results/<UTC time>-<profile>-merged/`), reconciled and judged as one run.
pub fn merge_shards(dirs: &[PathBuf], out: Option<PathBuf>) -> Result<i32, RunError> {
    let out = match out {
        Some(out) => out,
        None => {
            let first = dirs
                .first()
                .ok_or_else(|| RunError::Shard("harness merge: no folder given".into()))?;
            let summary: Summary = reconcile::evidence::read_json(first, SUMMARY_FILE)?;
            PathBuf::from("results").join(format!(
                "{}-{}-merged",
                crate::provenance::compact(SystemTime::now()),
                summary.profile
            ))
        }
    };
    let summary = merge::merge(dirs, &out)?;
    print_outcome(&summary, &out);
    Ok(summary.verdict.exit_code())
}

/// A run cleans up after itself on a Toxiproxy server it does not own.
async fn remove_hops_from_user_server(options: &RunOptions) {
    if let Some(api) = &options.toxiproxy {
        let api = api.trim_start_matches("http://").trim_end_matches('/');
        hops::remove(api, hops::proxies_of(options.shard)).await;
    }
}

fn print_outcome(s: &Summary, out: &Path) {
    print!("{}", report::table::end_of_run(s, out));
}
