//! The measured part of a run, on a system that is up: the profile's service settings on a
//! target (put back afterwards), the users seeded, the load under the fault timeline with the
//! money sampled beside it, convergence, what became of every indeterminate answer, the
//! evidence saved, the reconciliation, and the summary.

use super::error::RunError;
use super::folder::write_json;
use super::options::RunOptions;
use super::settle::Settle;
use super::whole::{whole_at_end, AtEnd, Judged};
use super::{follow, sampler, summarize};
use crate::client::TransferClient;
use crate::cpu::{self, CpuReading};
use crate::faults::{FaultControl, FaultRecord, Timeline};
use crate::history::{self, HistoryWriter};
use crate::loadgen::{self, LoadReport};
use crate::profile::plan::RunPlan;
use crate::progress::Progress;
use crate::reconcile::{self, Sample, RECONCILIATION_FILE};
use crate::schedule::Schedule;
use crate::stats::{self, LiveStats};
use crate::summary::Summary;
use crate::system::admin::AdminClient;
use crate::system::hops::ConnectionCounter;
use crate::system::target_file::{SeedMode, TargetFile};
use crate::system::target_settings::SettingsOnTarget;
use crate::system::Endpoints;
use crate::{phases, population, provenance, usage};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How long an interrupted run waits for the sagas to be final.
const INTERRUPTED_CONVERGENCE: Duration = Duration::from_secs(5);

/// How long before an agreed start (`--start-at`) a shard reads the CPU counters.
const CPU_READING_AHEAD: Duration = Duration::from_millis(500);

/// How long the coordinator may take to answer `/healthz` before the load.
const HEALTHY_WITHIN: Duration = Duration::from_secs(10);

/// What every step of a run reads.
pub(super) struct Context<'a> {
    pub(super) options: &'a RunOptions,
    pub(super) plan: &'a RunPlan,
    /// The target file, when the harness did not start the system.
    pub(super) target: Option<&'a TargetFile>,
    pub(super) endpoints: &'a Endpoints,
    pub(super) out: &'a Path,
    pub(super) started_at: SystemTime,
    /// The embedded proxies' connection counts; None through a user's Toxiproxy.
    pub(super) connections: Option<ConnectionCounter>,
    /// How the books come to rest before they are read again.
    pub(super) settle: &'a Settle,
}

/// The profile's service settings on a target (put back afterwards), then the run.
pub(super) async fn drive(
    cx: &Context<'_>,
    control: FaultControl,
) -> Result<(Summary, Vec<reconcile::Violation>), RunError> {
    let admin = AdminClient::new(control.http.clone());
    admin
        .wait_healthy(&cx.endpoints.coordinator, HEALTHY_WITHIN)
        .await?;
    let http = control.http.clone();
    // On a sharded run the shard that owns the faults owns the system's settings too.
    let mut settings = match cx.target {
        Some(target) if cx.plan.shard.owns_faults() => {
            SettingsOnTarget::apply(&http, &cx.plan.service_section, target).await?
        }
        _ => SettingsOnTarget::default(),
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
        settle,
    } = *cx;
    let seed_mode = target.map_or(SeedMode::Create, |t| t.seed);
    let names = population::Names::of(plan, endpoints.api.as_deref()).map_err(|detail| {
        RunError::Input {
            path: "api.users.reuse".into(),
            detail,
        }
    })?;
    let dumps_readable = endpoints.books_readable();
    // Books read from a `books:` source are read once before anything is written: a query
    // that fails or returns the wrong columns stops the run here, before any user exists.
    if endpoints.books.given() {
        admin.books(endpoints).await?;
    }
    if seed_mode == SeedMode::Create && (target.is_none() || dumps_readable) {
        let existing = match options.take_existing_accounts {
            true => admin.books(endpoints).await?,
            false => None,
        };
        admin
            .seed(endpoints, plan, &names, existing.as_ref())
            .await?;
    }
    let before = admin.books(endpoints).await?;
    let reused = seed_mode == SeedMode::Reuse || names.is_listed();
    if let (true, Some((external, ledger))) = (reused, &before) {
        if let Some(missing) = population::missing_accounts(plan, &names, external, ledger) {
            return Err(RunError::NothingToReuse(missing));
        }
    }

    let live = Arc::new(LiveStats::new());
    let start = load_start(options)?;
    // A whole run on a system whose books and saga log read by pages is reconciled as it
    // goes; any other is read whole at the end.
    let follower = match (&before, plan.shard.is_whole()) {
        (Some(before), true) => {
            follow::Follower::start(follow::Start {
                admin,
                endpoints,
                before,
                quiet: follow::quiet_for(plan),
                retries: plan.retries.clone(),
                out,
                start,
                stats: live.clone(),
            })
            .await?
        }
        _ => None,
    };

    flush_pending_writes().await;
    if let Some(wait) = options
        .start_at
        .and_then(|at| at.duration_since(SystemTime::now()).ok())
    {
        // A shard waits for the agreed start here, so that its CPU window (read next) is
        // the load's, not the wait's.
        tokio::time::sleep(wait.saturating_sub(CPU_READING_AHEAD)).await;
    }
    let load_started_wall = options.start_at.unwrap_or_else(SystemTime::now);
    let cpu_before = CpuReading::take(admin, endpoints).await;
    let connections_before = connections.as_ref().map(|c| c.read());
    // Memory and CPU per process, from the load's start until the evidence is reconciled
    // (dropping `stop_usage` on an early return ends it too).
    let (stop_usage, stopped) = tokio::sync::oneshot::channel();
    let usage = tokio::spawn(usage::sample(
        admin.clone(),
        endpoints.clone(),
        start,
        usage::every(plan.total()),
        stopped,
    ));
    let loaded = load_under_faults(
        plan,
        endpoints,
        &names,
        out,
        (started_at, start),
        control,
        options,
        (live, follower),
    )
    .await?;
    let Loaded {
        load,
        faults,
        samples,
        operations,
        follower,
    } = loaded;
    let cpu_after = CpuReading::take(admin, endpoints).await;
    let connections_by_hop = connections
        .as_ref()
        .zip(connections_before.as_ref())
        .map(|(counter, before)| counter.since(before));

    let cpu = cpu::per_operation(
        &cpu_before,
        &cpu_after,
        operations,
        &cpu::restarted_by(&plan.faults),
    );
    // An interrupted run gives the sagas a short while only: it is being asked to stop.
    let window = if options.interrupt.requested() {
        plan.convergence_window.min(INTERRUPTED_CONVERGENCE)
    } else {
        plan.convergence_window
    };
    let judged = match (follower, before) {
        (Some(mut follower), Some(before)) => {
            let convergence = follower.converge(window).await;
            admin.save_metrics(endpoints, out).await;
            let interrupted = options.interrupt.requested();
            let followed = follower
                .finish(before, convergence, samples, settle, interrupted, out)
                .await?;
            write_json(&out.join(RECONCILIATION_FILE), &followed.reconciliation)?;
            let mut tally = phases::PhaseTally::new(&faults, plan.total().as_secs_f64());
            history::each_in(out, |record| {
                tally.add(&record);
                Ok(())
            })
            .map_err(RunError::History)?;
            Judged {
                reconciliation: followed.reconciliation,
                convergence_ms: followed.convergence_ms,
                system_design: followed.design,
                phases: tally.phases(),
            }
        }
        (_, before) => {
            let at = AtEnd {
                options,
                plan,
                endpoints,
                out,
                settle,
                admin,
                window,
            };
            whole_at_end(at, before, samples, &faults).await?
        }
    };
    let _ = stop_usage.send(());
    let usage = usage.await?;
    write_json(&out.join(usage::USAGE_FILE), &usage)?;

    let merged = stats::merge(&load.workers);
    let hlog = out.join("latency.hlog");
    stats::write_interval_log(&hlog, &merged.intervals, load_started_wall).map_err(|e| {
        RunError::Output {
            path: hlog,
            source: std::io::Error::other(e.to_string()),
        }
    })?;
    let Judged {
        reconciliation,
        convergence_ms,
        system_design,
        phases,
    } = judged;
    let violations = reconciliation.violations.clone();
    let summary = summarize::summarize(summarize::Measured {
        options,
        plan,
        load: &load,
        merged: &merged,
        phases,
        reconciliation,
        convergence_ms,
        system_design,
        target: target.map(|t| t.coordinator.as_str()),
        settings_not_applied,
        faults,
        cpu,
        connections_by_hop,
        started_at,
        interrupted_at_s: options.interrupt.requested_at().map(|at| {
            at.duration_since(load_started_wall)
                .map_or(0.0, |d| d.as_secs_f64())
        }),
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

/// When the load starts: the agreed start (`--start-at`), or in a tenth of a second.
fn load_start(options: &RunOptions) -> Result<tokio::time::Instant, RunError> {
    match options.start_at {
        Some(at) => match at.duration_since(SystemTime::now()) {
            Ok(wait) => Ok(tokio::time::Instant::now() + wait),
            Err(late) => Err(RunError::LateStart(late.duration().as_secs_f64())),
        },
        None => Ok(tokio::time::Instant::now() + Duration::from_millis(100)),
    }
}

/// What the load left: its report, the faults, the samples, how many operations the
/// history holds, and the follower handed back.
struct Loaded {
    load: LoadReport,
    faults: Vec<FaultRecord>,
    samples: Vec<Sample>,
    operations: u64,
    follower: Option<follow::Follower>,
}

type Following = (
    Arc<LiveStats>,
    Option<(
        follow::Follower,
        tokio::sync::mpsc::UnboundedSender<history::HistoryRecord>,
    )>,
);

/// The load, the fault timeline and the sampler, side by side from one start, and the
/// follower beside them: a fault that does not apply stops the load at once; otherwise all
/// run to their end (the timeline heals everything when the load's time is up). The history
/// is closed when this returns.
#[allow(clippy::too_many_arguments)]
async fn load_under_faults(
    plan: &RunPlan,
    endpoints: &Endpoints,
    names: &population::Names,
    out: &Path,
    (started_at, start): (SystemTime, tokio::time::Instant),
    control: FaultControl,
    options: &RunOptions,
    (live, follower): Following,
) -> Result<Loaded, RunError> {
    let (follower, tap) = match follower {
        Some((follower, tap)) => (Some(follower), Some(tap)),
        None => (None, None),
    };
    let writer = HistoryWriter::create_with(out, tap).map_err(|source| RunError::Output {
        path: out.join(history::HISTORY_FILE),
        source,
    })?;
    let (stop_following, following) = tokio::sync::oneshot::channel();
    // The follower runs beside the load in this task, until the history is closed.
    let follow = async move {
        match follower {
            Some(follower) => Some(follower.follow(following).await),
            None => None,
        }
    };
    let load = load_faults_and_samples(
        plan,
        endpoints,
        names,
        (started_at, start),
        control,
        options,
        (live, writer, stop_following),
    );
    let (loaded, follower) = tokio::join!(load, follow);
    let (load, faults, samples, operations) = loaded?;
    Ok(Loaded {
        load,
        faults,
        samples,
        operations,
        follower,
    })
}

/// The load, the fault timeline and the sampler; the history closed at the end, and the
/// follower told to stop then.
#[allow(clippy::too_many_arguments)]
async fn load_faults_and_samples(
    plan: &RunPlan,
    endpoints: &Endpoints,
    names: &population::Names,
    (started_at, start): (SystemTime, tokio::time::Instant),
    control: FaultControl,
    options: &RunOptions,
    (live, writer, stop_following): (
        Arc<LiveStats>,
        HistoryWriter,
        tokio::sync::oneshot::Sender<()>,
    ),
) -> Result<(LoadReport, Vec<FaultRecord>, Vec<Sample>, u64), RunError> {
    let progress = Progress::start(live.clone(), plan.total(), options.display());
    let client = TransferClient::new(
        &endpoints.gateway,
        plan.client_http2_connections as usize,
        plan.client_max_in_flight as usize,
    )
    .map_err(RunError::Gateway)?
    .through(endpoints.api.clone());
    // A mapping its first answers show wrong stops the load as an interrupt would (healing
    // every fault), and the run ends with exit 2.
    let first_answers = client.first_answers();
    let mapping_watch = first_answers.clone().map(|watch| {
        let interrupt = options.interrupt.clone();
        tokio::spawn(async move {
            watch.faulted().await;
            interrupt.request();
        })
    });
    let config = loadgen::LoadConfig {
        client,
        start,
        warmup: plan.warmup,
        timeout: plan.client_timeout,
        retries: plan.retries.clone(),
        max_in_flight: plan.client_max_in_flight as usize,
        workers: 2,
        key_prefix: format!("{}-{}", plan.name, provenance::compact(started_at)),
        names: names.clone(),
    };
    let sampler = tokio::spawn(sampler::sample(
        AdminClient::new(control.http.clone()),
        endpoints.clone(),
        live.clone(),
        start,
        start + plan.total(),
        options.interrupt.clone(),
    ));
    let mut timeline = Timeline::new(plan.faults.clone(), control, live.clone(), start)
        .until(options.interrupt.clone());
    if !plan.shard.owns_faults() {
        timeline = timeline.recording_only();
    }
    let mut timeline = tokio::spawn(timeline.run());
    // On a runtime thread beside the workers, not on the thread blocked in `block_on`.
    let mut load = tokio::spawn(loadgen::run(
        Schedule::new(plan).until(options.interrupt.clone()),
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
    let operations = writer.finish().map_err(RunError::History)?;
    let _ = stop_following.send(());
    if let Some(watch) = mapping_watch {
        watch.abort();
    }
    if let Some(fault) = first_answers.as_ref().and_then(|w| w.fault()) {
        sampler.abort();
        return Err(RunError::Mapping(fault.to_owned()));
    }
    Ok((report, faults, sampler.await?, operations))
}
