//! One run, end to end: profile → system → seed → load and faults → convergence →
//! reconciliation → results folder → verdict.
//!
//! - `options`: the command line's overrides applied to the profile.
//! - `sampler`: the money sampled while the load runs.
//! - `converge`: waiting for every saga to be final after the load.
//! - `resolve`: what became of the answers that promised nothing yet.
//! - `summarize`: `summary.json` from what the run measured.

mod converge;
pub mod options;
mod resolve;
mod sampler;
pub mod summarize;

pub use options::{FaultsOverride, RunOptions};

use crate::client::TransferClient;
use crate::cpu::{self, CpuReading};
use crate::faults::commands::UserCommands;
use crate::faults::knobs::KnobsError;
use crate::faults::process::ProcessControl;
use crate::faults::proxies::ProxyControl;
use crate::faults::{FaultControl, FaultFailed, FaultRecord, Timeline};
use crate::history::{self, HistoryWriter};
use crate::hops::ConnectionCounter;
use crate::loadgen::{self, LoadReport};
use crate::profile::{plan::RunPlan, Profile, ProfileError};
use crate::progress::{Display, Progress};
use crate::reconcile::RECONCILIATION_FILE;
use crate::reconcile::{self, Books, Evidence, Sample};
use crate::schedule::Schedule;
use crate::stats::{self, LiveStats};
use crate::summary::{Summary, SUMMARY_FILE};
use crate::system::admin::{AdminClient, AdminError};
use crate::system::attach::{self, AttachedSystem};
use crate::system::target_file::{SeedMode, TargetFile};
use crate::system::target_settings::SettingsOnTarget;
use crate::system::{self, BringUpError, Endpoints, LaunchedSystem};
use crate::{hops, phases, population, provenance, report};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Why a run could not happen (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error("{file} lacks what the profile's faults need:\n  {missing}")]
    TargetLacks { file: String, missing: String },
    #[error("some of the profile's service settings cannot be applied to the target (run with --ignore-service-settings to run without them):\n  {0}")]
    SettingsNotApplied(String),
    #[error("the target's settings: {0}")]
    Settings(#[from] KnobsError),
    #[error("seed: reuse, but {0}; run once with seed: create, or seed the users by the names docs/contract.md gives")]
    NothingToReuse(String),
    #[error("cannot write {path}: {source}")]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the system: {0}")]
    BringUp(#[from] BringUpError),
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error("the coordinator's address: {0}")]
    Gateway(#[source] anyhow::Error),
    #[error(transparent)]
    Fault(#[from] Box<FaultFailed>),
    #[error("reading the history back: {0}")]
    History(std::io::Error),
    #[error("the run's files: {0}")]
    Evidence(#[from] reconcile::evidence::EvidenceError),
    #[error("cannot read {path}: {detail}")]
    Input { path: PathBuf, detail: String },
    #[error("a task of the run failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

fn write_file(path: &Path, text: String) -> Result<(), RunError> {
    std::fs::write(path, text).map_err(|source| RunError::Output {
        path: path.to_owned(),
        source,
    })
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), RunError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| RunError::Output {
        path: path.to_owned(),
        source: e.into(),
    })?;
    write_file(path, text + "\n")
}

/// The system a run drives, with the proxies on its hops.
enum SystemUnderTest {
    /// The reference system, started by the harness.
    Launched(Box<LaunchedSystem>),
    /// A system already running, described by its target file.
    Attached(Box<(AttachedSystem, TargetFile)>),
}

/// Runs the profile and returns the process exit code (0 pass, 1 fail or unknown, 2 unusable).
pub async fn run(options: RunOptions) -> Result<i32, RunError> {
    let (profile, plan) = options::plan(&options)?;
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
    let started_at = SystemTime::now();
    let out = results_folder(&options, &profile, &plan, started_at)?;
    let system = system_under_test(&options, &plan, target, &out).await?;
    let http = reqwest::Client::builder().no_proxy().build()?;
    let (endpoints, hops) = match &system {
        SystemUnderTest::Launched(s) => (s.endpoints(), &s.hops),
        SystemUnderTest::Attached(attached) => (attached.0.endpoints.clone(), &attached.0.hops),
    };
    write_services(&out, &endpoints, hops, &system)?;
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
    let cx = Context {
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

/// Creates the run's folder and writes the profile as run into it.
fn results_folder(
    options: &RunOptions,
    profile: &Profile,
    plan: &RunPlan,
    started_at: SystemTime,
) -> Result<PathBuf, RunError> {
    let out = options.out.clone().unwrap_or_else(|| {
        PathBuf::from("results").join(format!("{}-{}", provenance::compact(started_at), plan.name))
    });
    std::fs::create_dir_all(&out).map_err(|source| RunError::Output {
        path: out.clone(),
        source,
    })?;
    let as_run = serde_yaml::to_string(profile).map_err(|e| RunError::Output {
        path: out.join("profile.yaml"),
        source: std::io::Error::other(e),
    })?;
    write_file(
        &out.join("profile.yaml"),
        format!(
            "# The profile as run: {} with overrides applied and every service setting written out.\n{as_run}",
            options.profile.display()
        ),
    )?;
    Ok(out)
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
        Some(target) => attach::attach(&target, plan.seed, toxiproxy)
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

/// A run cleans up after itself on a Toxiproxy server it does not own.
async fn remove_hops_from_user_server(options: &RunOptions) {
    if let Some(api) = &options.toxiproxy {
        hops::remove_all(api.trim_start_matches("http://").trim_end_matches('/')).await;
    }
}

/// `services.json`: where the services answer, their first process ids and the hops.
fn write_services(
    out: &Path,
    endpoints: &Endpoints,
    hops: &hops::Hops,
    system: &SystemUnderTest,
) -> Result<(), RunError> {
    let launched = match system {
        SystemUnderTest::Launched(s) => Some(s),
        SystemUnderTest::Attached(..) => None,
    };
    #[derive(serde::Serialize)]
    struct Services<'a> {
        endpoints: &'a Endpoints,
        pids: Option<std::collections::BTreeMap<&'static str, u32>>,
        proxies: Option<&'a hops::Hops>,
    }
    write_json(
        &out.join("services.json"),
        &Services {
            endpoints,
            pids: launched.map(|s| s.launched.pids()),
            proxies: Some(hops),
        },
    )
}

fn print_outcome(s: &Summary, out: &Path) {
    print!("{}", report::table::end_of_run(s, out));
}

/// How long the coordinator may take to answer `/healthz` before the load.
const HEALTHY_WITHIN: Duration = Duration::from_secs(10);

/// What every step of a run reads.
struct Context<'a> {
    options: &'a RunOptions,
    plan: &'a RunPlan,
    /// The target file, when the harness did not start the system.
    target: Option<&'a TargetFile>,
    endpoints: &'a Endpoints,
    out: &'a Path,
    started_at: SystemTime,
    /// The embedded proxies' connection counts; None through a user's Toxiproxy.
    connections: Option<ConnectionCounter>,
}

/// The profile's service settings on a target (put back afterwards), then the run.
async fn drive(
    cx: &Context<'_>,
    control: FaultControl,
) -> Result<(Summary, Vec<reconcile::Violation>), RunError> {
    let admin = AdminClient::new(control.http.clone());
    admin
        .wait_healthy(&cx.endpoints.coordinator, HEALTHY_WITHIN)
        .await?;
    let http = control.http.clone();
    let mut settings = match cx.target {
        Some(target) => SettingsOnTarget::apply(&http, &cx.plan.service_section, target).await?,
        None => SettingsOnTarget::default(),
    };
    if !settings.not_applied.is_empty() && !cx.options.ignore_service_settings {
        settings.restore(&http).await;
        return Err(RunError::SettingsNotApplied(
            settings.not_applied.join("\n  "),
        ));
    }
    let result = seed_load_and_check(cx, control, &admin, settings.not_applied.clone()).await;
    settings.restore(&http).await;
    result
}

/// The users created (or found, with `seed: reuse`), the load under faults, convergence,
/// reconciliation and the summary.
async fn seed_load_and_check(
    cx: &Context<'_>,
    control: FaultControl,
    admin: &AdminClient,
    settings_not_applied: Vec<String>,
) -> Result<(Summary, Vec<reconcile::Violation>), RunError> {
    let Context {
        options,
        plan,
        target,
        endpoints,
        out,
        started_at,
        ref connections,
    } = *cx;
    let seed_mode = target.map_or(SeedMode::Create, |t| t.seed);
    let dumps_readable = endpoints.external.is_some() && endpoints.ledger.is_some();
    if seed_mode == SeedMode::Create && (target.is_none() || dumps_readable) {
        admin.seed(endpoints, plan).await?;
    }
    let before = admin.books(endpoints).await?;
    if let (SeedMode::Reuse, Some((external, ledger))) = (seed_mode, &before) {
        if let Some(missing) = population::missing_accounts(plan, external, ledger) {
            return Err(RunError::NothingToReuse(missing));
        }
    }

    flush_pending_writes().await;
    let load_started_wall = SystemTime::now();
    let cpu_before = CpuReading::take(admin, endpoints).await;
    let connections_before = connections.as_ref().map(|c| c.read());
    let (load, faults, samples) =
        load_under_faults(plan, endpoints, out, started_at, control, options.display()).await?;
    let cpu_after = CpuReading::take(admin, endpoints).await;
    let connections_by_hop = connections
        .as_ref()
        .zip(connections_before.as_ref())
        .map(|(counter, before)| counter.since(before));

    let history = history::read(&out.join("history.jsonl")).map_err(RunError::History)?;
    let cpu = cpu::per_operation(
        &cpu_before,
        &cpu_after,
        history.len() as u64,
        &cpu::restarted_by(&plan.faults),
    );
    let convergence = converge::converge(
        admin,
        &endpoints.coordinator,
        plan.convergence_window,
        &history,
    )
    .await;
    let after = admin.books(endpoints).await?;
    admin.save_metrics(endpoints, out).await;
    let books = match (before, after) {
        (Some((external_before, ledger_before)), Some((external_after, ledger_after))) => {
            Some(Books {
                external_before,
                ledger_before,
                external_after,
                ledger_after,
            })
        }
        _ => None,
    };
    let resolutions = resolve::resolve(
        admin,
        &endpoints.coordinator,
        &history,
        convergence.sagas.as_ref(),
    )
    .await;
    let evidence = Evidence {
        books,
        history,
        convergence,
        resolutions,
        samples,
    };
    evidence.save(out)?;
    let reconciliation = reconcile::reconcile(&evidence);
    write_json(&out.join(RECONCILIATION_FILE), &reconciliation)?;

    let merged = stats::merge(&load.workers);
    let hlog = out.join("latency.hlog");
    stats::write_interval_log(&hlog, &merged.intervals, load_started_wall).map_err(|e| {
        RunError::Output {
            path: hlog,
            source: std::io::Error::other(e.to_string()),
        }
    })?;
    let violations = reconciliation.violations.clone();
    let phases = phases::phases(&evidence.history, &faults, plan.total().as_secs_f64());
    let summary = summarize::summarize(summarize::Measured {
        options,
        plan,
        load: &load,
        merged: &merged,
        phases,
        reconciliation,
        convergence_ms: evidence.convergence.convergence_ms,
        system_design: evidence
            .convergence
            .sagas
            .as_ref()
            .map(|dump| dump.design.clone()),
        target: target.map(|t| t.coordinator.as_str()),
        settings_not_applied,
        faults,
        cpu,
        connections_by_hop,
        started_at,
    });
    Ok((summary, violations))
}

/// Has the kernel write out every pending write on the machine (sync(2)) before the load
/// starts. The kernel writes dirty pages back about 30 s after they were written: a previous
/// run's results or a build's output would otherwise go to disk in the middle of this run's
/// measurement, tens of megabytes at once, and every fsync of the services would wait behind
/// them (a 40-60 ms stall that failed one back-to-back run in three at 1,000/s).
async fn flush_pending_writes() {
    if let Err(err) = tokio::task::spawn_blocking(nix::unistd::sync).await {
        tracing::warn!(%err, "could not flush pending writes before the load");
    }
}

/// The load, the fault timeline and the sampler, side by side from one start: a fault that
/// does not apply stops the load at once; otherwise all run to their end (the timeline heals
/// everything when the load's time is up). The history is closed when this returns.
async fn load_under_faults(
    plan: &RunPlan,
    endpoints: &Endpoints,
    out: &Path,
    started_at: SystemTime,
    control: FaultControl,
    display: Display,
) -> Result<(LoadReport, Vec<FaultRecord>, Vec<Sample>), RunError> {
    let writer =
        HistoryWriter::create(&out.join("history.jsonl")).map_err(|source| RunError::Output {
            path: out.join("history.jsonl"),
            source,
        })?;
    let live = Arc::new(LiveStats::new());
    let progress = Progress::start(live.clone(), plan.total(), display);
    let start = tokio::time::Instant::now() + Duration::from_millis(100);
    let config = loadgen::LoadConfig {
        client: TransferClient::new(
            &endpoints.gateway,
            plan.client_http2_connections as usize,
            plan.client_max_in_flight as usize,
        )
        .map_err(RunError::Gateway)?,
        start,
        warmup: plan.warmup,
        timeout: plan.client_timeout,
        retries: plan.retries.clone(),
        max_in_flight: plan.client_max_in_flight as usize,
        workers: 2,
        key_prefix: format!("{}-{}", plan.name, provenance::compact(started_at)),
    };
    let sampler = tokio::spawn(sampler::sample(
        AdminClient::new(control.http.clone()),
        endpoints.clone(),
        live.clone(),
        start,
        start + plan.total(),
    ));
    let mut timeline =
        tokio::spawn(Timeline::new(plan.faults.clone(), control, live.clone(), start).run());
    // On a runtime thread beside the workers, not on the thread blocked in `block_on`.
    let mut load = tokio::spawn(loadgen::run(
        Schedule::new(plan),
        config,
        writer.sender(),
        live,
    ));
    let outcome = tokio::select! {
        report = &mut load => match report {
            Ok(report) => timeline.await.map(|faults| faults.map(|records| (report, records))),
            Err(e) => Err(e),
        },
        faults = &mut timeline => match faults {
            Ok(Ok(records)) => load.await.map(|report| Ok((report, records))),
            Ok(Err(failed)) => {
                load.abort();
                Ok(Err(failed))
            }
            Err(e) => Err(e),
        },
    };
    progress.finish().await;
    // On a fault that failed, the history is left to close as the aborted load drops it.
    let (report, faults) = match outcome? {
        Ok(done) => done,
        Err(failed) => {
            sampler.abort();
            return Err(failed.into());
        }
    };
    writer.finish().map_err(RunError::History)?;
    Ok((report, faults, sampler.await?))
}
