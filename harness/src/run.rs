//! One run, end to end: profile → system → seed → load → convergence → reconciliation →
//! results folder → verdict.

use crate::client::TransferClient;
use crate::faults::proxies::ProxyControl;
use crate::faults::{FaultControl, Timeline};
use crate::history::{self, HistoryWriter, Outcome};
use crate::profile::{self, plan::RunPlan, Profile};
use crate::progress::Progress;
use crate::reconcile::{self, Books, Convergence};
use crate::schedule::Schedule;
use crate::stats::{self, quantile_ms, LiveStats};
use crate::summary::{Latency, PercentileResult, Requests, SloResult, Summary};
use crate::system::{self, Endpoints, Launched};
use crate::{hops, loadgen, provenance, report, verdict};
use anyhow::Context;
use service::coordinator::Design;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// What the command line says about a run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub profile: PathBuf,
    pub out: Option<PathBuf>,
    pub seed: Option<u64>,
    pub duration_s: Option<u32>,
    pub rate: Option<u32>,
    pub design: Option<Design>,
    pub target: Option<String>,
    pub external_url: Option<String>,
    pub ledger_url: Option<String>,
    /// An existing Toxiproxy server's API (`host:port` or URL) instead of the embedded one.
    pub toxiproxy: Option<String>,
    pub quiet: bool,
}

/// A run that could not happen (exit code 2), with a one-line reason.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CannotRun(pub String);

fn cannot(e: impl std::fmt::Display) -> CannotRun {
    CannotRun(e.to_string())
}

/// Applies command-line overrides to the profile and validates the result.
fn plan_with_overrides(options: &RunOptions) -> Result<(Profile, RunPlan), CannotRun> {
    let (mut profile, _) = profile::load(&options.profile).map_err(cannot)?;
    if let Some(seed) = options.seed {
        profile.seed = seed;
    }
    if let Some(duration) = options.duration_s {
        profile.duration_s = duration;
    }
    if let Some(rate) = options.rate {
        profile.arrival = profile::Arrival {
            rate_per_s: Some(rate),
            stages: None,
        };
    }
    if let Some(design) = options.design {
        profile.service.design = design;
    }
    let plan = profile::plan::validate(&profile).map_err(|(field, message)| {
        CannotRun(format!(
            "{} (with command-line overrides): {field}: {message}",
            options.profile.display()
        ))
    })?;
    Ok((profile, plan))
}

fn design_name(design: Design) -> &'static str {
    match design {
        Design::Saga => "saga",
        Design::Naive => "naive",
    }
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

/// Runs the profile and returns the process exit code (0 pass, 1 fail or unknown, 2 unusable).
pub async fn run(options: RunOptions) -> Result<i32, CannotRun> {
    let (profile, plan) = plan_with_overrides(&options)?;
    let started_at = SystemTime::now();
    let out = options.out.clone().unwrap_or_else(|| {
        PathBuf::from("results").join(format!("{}-{}", provenance::compact(started_at), plan.name))
    });
    std::fs::create_dir_all(&out)
        .map_err(|e| CannotRun(format!("cannot create {}: {e}", out.display())))?;
    let as_run = format!(
        "# The profile as run: {} with overrides applied.\n{}",
        options.profile.display(),
        serde_yaml::to_string(&profile).map_err(cannot)?
    );
    std::fs::write(out.join("profile.yaml"), as_run).map_err(cannot)?;

    if options.target.is_some() && !plan.faults.is_empty() {
        return Err(CannotRun(format!(
            "{}: faults need the system the harness starts; drop --target or use a profile without faults",
            options.profile.display()
        )));
    }
    // The embedded proxy lives as long as the run; a --toxiproxy server is the user's.
    let mut embedded = None;
    let mut hops = std::collections::BTreeMap::new();
    let launched: Option<Launched> = match &options.target {
        Some(_) => None,
        None => {
            let api_addr = match &options.toxiproxy {
                Some(url) => url
                    .trim_start_matches("http://")
                    .trim_end_matches('/')
                    .to_owned(),
                None => {
                    let server = hops::start_embedded(plan.seed).await.map_err(cannot)?;
                    let addr = server.api_addr.clone();
                    embedded = Some(server);
                    addr
                }
            };
            let institutions = system::launch_institutions(&plan, &out).map_err(cannot)?;
            let host = |url: &str| url.trim_start_matches("http://").to_owned();
            let external_hop =
                hops::create(&api_addr, "external", &host(&institutions.external.url))
                    .await
                    .map_err(cannot)?;
            let ledger_hop = hops::create(&api_addr, "ledger", &host(&institutions.ledger.url))
                .await
                .map_err(cannot)?;
            let launched = system::launch_coordinator(
                &plan,
                &out,
                institutions,
                &format!("http://{external_hop}"),
                &format!("http://{ledger_hop}"),
            )
            .map_err(cannot)?;
            let gateway_hop = hops::create(&api_addr, "gateway", &host(&launched.coordinator.url))
                .await
                .map_err(cannot)?;
            hops.insert("toxiproxy_api", api_addr);
            hops.insert("gateway", gateway_hop);
            hops.insert("external", external_hop);
            hops.insert("ledger", ledger_hop);
            Some(launched)
        }
    };
    let endpoints = match (&launched, &options.target) {
        (Some(l), _) => Endpoints {
            gateway: hops
                .get("gateway")
                .map_or_else(|| l.coordinator.url.clone(), |g| format!("http://{g}")),
            ..l.endpoints()
        },
        (None, Some(target)) => Endpoints {
            coordinator: target.trim_end_matches('/').to_owned(),
            gateway: target.trim_end_matches('/').to_owned(),
            external: options.external_url.clone(),
            ledger: options.ledger_url.clone(),
        },
        (None, None) => return Err(CannotRun("no system to drive".into())),
    };
    let services: serde_json::Value = serde_json::json!({
        "endpoints": endpoints,
        "pids": launched.as_ref().map(|l| l.pids().into_iter().collect::<std::collections::BTreeMap<_, _>>()),
        "proxies": hops,
    });
    write_json(&out.join("services.json"), &services).map_err(cannot)?;

    let launched = launched.map(|l| Arc::new(std::sync::Mutex::new(l)));
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(cannot)?;
    let control = FaultControl {
        proxies: hops
            .get("toxiproxy_api")
            .map(|api| ProxyControl::new(api, http.clone())),
        system: launched.clone(),
        http,
        external_url: endpoints.external.clone(),
        ledger_url: endpoints.ledger.clone(),
    };
    let result = drive(&options, &plan, &endpoints, &out, started_at, control).await;
    if let Some(launched) = launched {
        let stop = tokio::task::spawn_blocking(move || match launched.lock() {
            Ok(mut l) => l.stop(),
            Err(poisoned) => poisoned.into_inner().stop(),
        });
        let _ = stop.await;
    }
    drop(embedded);
    if let (Some(api), true) = (hops.get("toxiproxy_api"), options.toxiproxy.is_some()) {
        hops::remove(api, &["gateway", "external", "ledger"]).await;
    }
    let (summary, violations) = result?;
    let report = report::render(&summary, &violations);
    std::fs::write(out.join("report.md"), report).map_err(cannot)?;
    write_json(&out.join("summary.json"), &summary).map_err(cannot)?;
    print_outcome(&summary, &out);
    Ok(summary.verdict.exit_code())
}

fn print_outcome(s: &Summary, out: &Path) {
    let p99 = s
        .latency_ms
        .p99
        .map_or_else(|| "unknown".to_owned(), |p| format!("{p:.1} ms"));
    println!(
        "verdict: {} | {} design | {:.0} req/s completed | p99 {p99} (SLO {} ms) | created {} lost {} cents | convergence {}",
        s.verdict.as_str(),
        s.design,
        s.throughput_rps,
        s.slo.p99_ms,
        s.money.created_cents.map_or_else(|| "?".into(), |c| c.to_string()),
        s.money.lost_cents.map_or_else(|| "?".into(), |c| c.to_string()),
        s.convergence_ms.map_or_else(|| "not reached".into(), |ms| format!("{ms} ms")),
    );
    for reason in &s.verdict_reasons {
        println!("  - {reason}");
    }
    println!("results: {}", out.display());
}

async fn read_books(
    http: &reqwest::Client,
    e: &Endpoints,
) -> Result<Option<(service::book::Dump, service::book::Dump)>, CannotRun> {
    match (&e.external, &e.ledger) {
        (Some(external), Some(ledger)) => {
            // The ledger first: every credit seen then has its debit already applied.
            let ledger = system::dump(http, ledger).await.map_err(cannot)?;
            let external = system::dump(http, external).await.map_err(cannot)?;
            Ok(Some((external, ledger)))
        }
        _ => Ok(None),
    }
}

async fn wait_healthy(http: &reqwest::Client, url: &str) -> Result<(), CannotRun> {
    let until = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ok = http
            .get(format!("{url}/healthz"))
            .timeout(Duration::from_secs(1))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            return Ok(());
        }
        if std::time::Instant::now() > until {
            return Err(CannotRun(format!(
                "{url}/healthz did not answer 200 within 10 s"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls the saga log until every saga is final or the window closes.
async fn converge(http: &reqwest::Client, coordinator: &str, window: Duration) -> Convergence {
    let started = std::time::Instant::now();
    let mut last = None;
    loop {
        match system::sagas(http, coordinator).await {
            Ok(dump) => {
                let open = dump.sagas.iter().filter(|s| !s.state.is_final()).count();
                if open == 0 {
                    let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                    return Convergence {
                        sagas: Some(dump),
                        converged: true,
                        convergence_ms: Some(ms),
                    };
                }
                last = Some(dump);
            }
            // A coordinator started again by a fault may still be recovering: keep asking
            // until the window closes; never read at all means convergence is unknown.
            Err(err) => tracing::debug!(%err, "saga log not readable yet"),
        }
        if started.elapsed() > window {
            if last.is_none() {
                tracing::warn!("saga log not readable within the window; convergence unknown");
            }
            return Convergence {
                sagas: last,
                converged: false,
                convergence_ms: None,
            };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn drive(
    options: &RunOptions,
    plan: &RunPlan,
    endpoints: &Endpoints,
    out: &Path,
    started_at: SystemTime,
    control: FaultControl,
) -> Result<(Summary, Vec<reconcile::Violation>), CannotRun> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(cannot)?;
    wait_healthy(&http, &endpoints.coordinator).await?;
    let seeding =
        options.target.is_none() || (endpoints.external.is_some() && endpoints.ledger.is_some());
    if seeding {
        system::seed(&http, endpoints, plan).await.map_err(cannot)?;
    }
    let before = read_books(&http, endpoints).await?;

    let writer = HistoryWriter::create(&out.join("history.jsonl")).map_err(cannot)?;
    let live = Arc::new(LiveStats::new());
    let progress = Progress::start(live.clone(), plan.total(), options.quiet);
    let load_started_wall = SystemTime::now();
    let start = tokio::time::Instant::now() + Duration::from_millis(100);
    let config = loadgen::LoadConfig {
        client: TransferClient::new(&endpoints.gateway, plan.client_max_in_flight as usize)
            .map_err(cannot)?,
        start,
        warmup: plan.warmup,
        timeout: plan.client_timeout,
        retries: plan.retries.clone(),
        max_in_flight: plan.client_max_in_flight as usize,
        workers: 2,
        key_prefix: format!("{}-{}", plan.name, provenance::compact(started_at)),
    };
    let mut timeline =
        tokio::spawn(Timeline::new(plan.faults.clone(), control, live.clone(), start).run());
    // On a runtime thread beside the workers, not on the thread blocked in `block_on`.
    let mut load = tokio::spawn(loadgen::run(
        Schedule::new(plan),
        config,
        writer.sender(),
        live,
    ));
    // A fault that does not apply stops the load at once; otherwise both run to their end
    // (the timeline heals everything when the load's time is up).
    let (report, faults) = tokio::select! {
        report = &mut load => (report.map_err(cannot)?, timeline.await.map_err(cannot)?),
        faults = &mut timeline => match faults.map_err(cannot)? {
            Ok(records) => (load.await.map_err(cannot)?, Ok(records)),
            Err(failed) => {
                load.abort();
                progress.finish().await;
                return Err(CannotRun(failed.to_string()));
            }
        },
    };
    progress.finish().await;
    writer.finish().map_err(cannot)?;
    let faults = faults.map_err(|failed| CannotRun(failed.to_string()))?;

    let convergence = converge(&http, &endpoints.coordinator, plan.convergence_window).await;
    let after = read_books(&http, endpoints).await?;
    system::save_metrics(&http, endpoints, out).await;
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
    let history = history::read(&out.join("history.jsonl")).map_err(cannot)?;
    let reconciliation = reconcile::reconcile(books.as_ref(), &history, &convergence);
    write_json(&out.join("reconciliation.json"), &reconciliation).map_err(cannot)?;

    let merged = stats::merge(&report.workers);
    stats::write_interval_log(
        &out.join("latency.hlog"),
        &merged.intervals,
        load_started_wall,
    )
    .map_err(cannot)?;
    let summary = summarize(
        options,
        plan,
        &report,
        &merged,
        reconciliation.clone(),
        &convergence,
        started_at,
    );
    let summary = Summary { faults, ..summary };
    Ok((summary, reconciliation.violations))
}

fn summarize(
    options: &RunOptions,
    plan: &RunPlan,
    report: &loadgen::LoadReport,
    merged: &stats::Merged,
    reconciliation: reconcile::Reconciliation,
    convergence: &Convergence,
    started_at: SystemTime,
) -> Summary {
    let count = |o: Outcome| merged.outcomes.get(&o).copied().unwrap_or(0);
    let requests = Requests {
        scheduled: report.scheduled_measured,
        retries: merged.retries,
        completed: count(Outcome::Completed),
        failed: count(Outcome::Failed),
        pending: count(Outcome::Pending),
        shed: count(Outcome::Shed),
        errors: count(Outcome::Error),
        overflow: report.overflow_measured,
    };
    let h = &merged.latency;
    let latency = Latency {
        samples: h.len(),
        p50: quantile_ms(h, 0.5),
        p90: quantile_ms(h, 0.9),
        p99: quantile_ms(h, 0.99),
        p999: quantile_ms(h, 0.999),
        max: (!h.is_empty()).then(|| h.max() as f64 / 1000.0),
    };
    let bound_ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let p99_bound = bound_ms(plan.slo.p99);
    let percentiles: Vec<PercentileResult> = plan
        .slo
        .percentiles
        .iter()
        .map(|(name, q, bound)| {
            let value = quantile_ms(h, *q);
            PercentileResult {
                name: name.clone(),
                bound_ms: bound_ms(*bound),
                value_ms: value,
                met: value.map(|v| v <= bound_ms(*bound) as f64),
            }
        })
        .collect();
    let operations =
        requests.completed + requests.failed + requests.pending + requests.shed + requests.errors;
    let error_rate = if operations == 0 {
        0.0
    } else {
        requests.errors as f64 / operations as f64
    };
    let slo = SloResult {
        p99_ms: p99_bound,
        met: latency.p99.map(|p| p <= p99_bound as f64),
        percentiles,
        error_budget: plan.slo.error_budget,
        error_rate,
        error_budget_met: error_rate <= plan.slo.error_budget,
    };
    let mut invariants = reconciliation.invariants;
    let mut slo_detail = format!(
        "p99 {} ms against {p99_bound} ms",
        latency
            .p99
            .map_or_else(|| "unknown".into(), |p| format!("{p:.2}"))
    );
    for p in &slo.percentiles {
        slo_detail.push_str(&format!(
            "; {} {} against {}",
            p.name,
            p.value_ms
                .map_or_else(|| "unknown".into(), |v| format!("{v:.2}")),
            p.bound_ms
        ));
    }
    let slo_parts: Vec<Option<bool>> = std::iter::once(slo.met)
        .chain(slo.percentiles.iter().map(|p| p.met))
        .collect();
    let slo_holds = if slo_parts.contains(&Some(false)) {
        Some(false)
    } else if slo_parts.contains(&None) {
        None
    } else {
        Some(true)
    };
    invariants.push(reconcile::Invariant {
        name: verdict::LATENCY_INVARIANT,
        holds: slo_holds,
        violations: u64::from(slo_holds == Some(false)),
        detail: slo_detail,
    });
    let error_budget_exceeded = (!slo.error_budget_met).then(|| {
        format!(
            "error rate {:.4} exceeds the budget {}",
            error_rate, plan.slo.error_budget
        )
    });
    let judged = verdict::judge(
        &invariants,
        error_budget_exceeded,
        verdict::GeneratorLoad {
            send_lag_ms_p99: report.send_lag.value_at_quantile(0.99) as f64 / 1000.0,
            send_lag_ms_max: report.send_lag.max() as f64 / 1000.0,
            // A tenth of the p99 bound, and never under 10 ms (the timer's granularity
            // and a loaded machine's scheduling make a few ms of lag ordinary).
            lag_limit_ms: (p99_bound as f64 / 10.0).max(10.0),
            overflow_measured: report.overflow_measured,
        },
    );
    Summary {
        schema_version: 1,
        profile: plan.name.clone(),
        profile_file: options.profile.display().to_string(),
        seed: plan.seed,
        design: design_name(plan.design).to_owned(),
        git_revision: provenance::git_revision(),
        started_at: provenance::rfc3339(started_at),
        target: options
            .target
            .clone()
            .unwrap_or_else(|| "launched".to_owned()),
        verdict: judged.verdict,
        verdict_reasons: judged.reasons,
        duration_s: plan.duration.as_secs_f64(),
        warmup_s: plan.warmup.as_secs_f64(),
        throughput_rps: requests.completed as f64 / plan.duration.as_secs_f64().max(f64::EPSILON),
        requests,
        errors_by_kind: merged.errors_by_kind.clone(),
        latency_ms: latency,
        slo,
        generator: judged.generator,
        money: reconciliation.money,
        invariants,
        anomalies: reconciliation.anomalies,
        convergence_ms: convergence.convergence_ms,
        // Filled in by the caller, from the fault timeline.
        faults: Vec::new(),
    }
}
