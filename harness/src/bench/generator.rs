//! `harness bench-generator`: how fast the load generator alone keeps to its schedule.
//!
//! The generator runs pinned to one core against a stub endpoint (`serve stub`, which answers
//! `completed` at once) pinned to the other, at `--rate` with at most `--connections`
//! requests in flight, writing its history as in a real run. Then `oha` runs at the same
//! rate and connections against the same endpoint, pinned to the same core, and both
//! figures are printed with their ratio. `oha` is installed with `cargo install oha --locked`
//! when it is not found.

use super::{spawn_stub, tempdir};
use crate::cli::GeneratorBenchArgs;
use crate::client::TransferClient;
use crate::history::{HistoryWriter, Outcome};
use crate::loadgen;
use crate::mapping::CompiledApi;
use crate::profile;
use crate::schedule::Schedule;
use crate::stats::{self, LiveStats};
use anyhow::{bail, Context};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

struct Figures {
    rate_per_s: f64,
    detail: String,
}

pub async fn run(args: GeneratorBenchArgs) -> anyhow::Result<i32> {
    let dir = tempdir()?;
    let stub = spawn_stub(&dir, Some(args.endpoint_core))?;
    println!(
        "bench-generator: {} req/s for {} s, {} connections; generator on core {}, stub on core {}",
        args.rate, args.duration, args.connections, args.generator_core, args.endpoint_core
    );
    if args.mapping_rounds > 0 {
        through_mapping(&args, &stub.url, &dir).await?;
    }
    let ours = generator(&args, &stub.url, &dir, None).await?;
    println!(
        "harness generator: {:.0} req/s on schedule ({})",
        ours.rate_per_s, ours.detail
    );
    if args.no_oha {
        return Ok(0);
    }
    let oha = oha(&args, &stub.url)?;
    println!(
        "oha:               {:.0} req/s ({})",
        oha.rate_per_s, oha.detail
    );
    println!(
        "ratio harness/oha: {:.2}",
        ours.rate_per_s / oha.rate_per_s.max(f64::EPSILON)
    );
    drop(stub);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(0)
}

/// The contract described as a mapping, compiled: what the mapped rounds send through.
fn contract_as_mapping() -> anyhow::Result<Arc<CompiledApi>> {
    let text = include_str!("../../../docs/target-contract-as-api.yaml");
    let target = crate::system::target_file::parse(
        std::path::Path::new("docs/target-contract-as-api.yaml"),
        text,
    )?;
    target
        .compiled_api()
        .map(Arc::new)
        .context("docs/target-contract-as-api.yaml has no api: section")
}

/// Rounds of the native generator and the generator through a mapping, back to back: each
/// round's ratio, then their median and range.
async fn through_mapping(
    args: &GeneratorBenchArgs,
    url: &str,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    let api = contract_as_mapping()?;
    let mut ratios = Vec::new();
    for round in 1..=args.mapping_rounds {
        let native = generator(args, url, dir, None).await?;
        let mapped = generator(args, url, dir, Some(api.clone())).await?;
        let ratio = mapped.rate_per_s / native.rate_per_s.max(f64::EPSILON);
        println!(
            "round {round}: native {:.0} req/s, through the mapping {:.0} req/s: ratio {ratio:.3} ({})",
            native.rate_per_s, mapped.rate_per_s, mapped.detail
        );
        ratios.push(ratio);
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    println!(
        "ratio mapping/native: median {median:.3}, range {:.3}–{:.3} over {} rounds",
        ratios[0],
        ratios[ratios.len() - 1],
        ratios.len()
    );
    Ok(())
}

async fn generator(
    args: &GeneratorBenchArgs,
    url: &str,
    dir: &std::path::Path,
    api: Option<Arc<CompiledApi>>,
) -> anyhow::Result<Figures> {
    let text = format!(
        "name: bench-generator\nseed: 1\nwarmup_s: 1\nduration_s: {}\narrival: {{rate_per_s: {}}}\nusers: {{count: 1000, opening_balance_cents: 1000000}}\namounts: {{min_cents: 1, max_cents: 100}}\nclient: {{timeout_ms: 2000, max_in_flight: {}}}\nslo: {{p99_ms: 200}}\n",
        args.duration, args.rate, args.connections
    );
    let (_, plan) = profile::parse(std::path::Path::new("(bench-generator)"), &text)?;
    let writer = HistoryWriter::create(dir)?;
    let config = loadgen::LoadConfig {
        client: TransferClient::new(url, 0, args.connections as usize)?.through(api),
        start: tokio::time::Instant::now() + Duration::from_millis(100),
        warmup: plan.warmup,
        timeout: plan.client_timeout,
        retries: None,
        max_in_flight: args.connections as usize,
        workers: 1,
        key_prefix: "bench".into(),
        names: Default::default(),
    };
    // On a runtime thread, beside the workers: no cross-thread hand-over per request.
    let history = writer.sender();
    let report = tokio::spawn(loadgen::run(
        Schedule::new(&plan),
        config,
        history,
        Arc::new(LiveStats::new()),
    ))
    .await?;
    writer.finish()?;
    let merged = stats::merge(&report.workers);
    let completed = merged
        .outcomes
        .get(&Outcome::Completed)
        .copied()
        .unwrap_or(0);
    let errors = merged.outcomes.get(&Outcome::Error).copied().unwrap_or(0);
    let lag_p99_ms = report.send_lag.value_at_quantile(0.99) as f64 / 1000.0;
    let p99_ms = merged.latency.value_at_quantile(0.99) as f64 / 1000.0;
    Ok(Figures {
        rate_per_s: completed as f64 / f64::from(args.duration),
        detail: format!(
            "{completed} completed of {} scheduled, {} overflow, {errors} errors, send lag p99 {lag_p99_ms:.2} ms, latency p99 {p99_ms:.2} ms",
            report.scheduled_measured, report.overflow_measured
        ),
    })
}

fn oha_available(oha: &str) -> bool {
    Command::new(oha)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn oha(args: &GeneratorBenchArgs, url: &str) -> anyhow::Result<Figures> {
    let mut oha = args.oha.clone();
    if !oha_available(&oha) {
        let installed = std::env::var("CARGO_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|_| std::env::var("HOME").map(|h| std::path::Path::new(&h).join(".cargo")))
            .map(|home| home.join("bin").join("oha"))
            .context("no CARGO_HOME or HOME to find oha in")?;
        if !oha_available(&installed.to_string_lossy()) {
            println!("oha not found: installing it with `cargo install oha --locked` (takes a few minutes)");
            let status = Command::new("cargo")
                .args(["install", "oha", "--locked"])
                .status()?;
            if !status.success() {
                bail!("cargo install oha failed");
            }
        }
        oha = installed.to_string_lossy().into_owned();
    }
    let output = Command::new("taskset")
        .arg("-c")
        .arg(args.generator_core.to_string())
        .arg(&oha)
        .args(["--no-tui", "--output-format", "json"])
        .arg("-z")
        .arg(format!("{}s", args.duration))
        .arg("-q")
        .arg(args.rate.to_string())
        .arg("-c")
        .arg(args.connections.to_string())
        .args([
            "-m",
            "POST",
            "-H",
            "Idempotency-Key: bench",
            "-H",
            "content-type: application/json",
        ])
        .args([
            "-d",
            r#"{"user_id":"u-1","external_account_id":"a-1","amount_cents":5}"#,
        ])
        .arg(format!("{url}/transfers"))
        .output()
        .context("running oha")?;
    if !output.status.success() {
        bail!("oha failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let json: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("oha's JSON output")?;
    let summary = &json["summary"];
    let rate = summary["requestsPerSec"]
        .as_f64()
        .context("oha summary.requestsPerSec")?;
    let p99 = json["latencyPercentiles"]["p99"]
        .as_f64()
        .map(|s| s * 1000.0);
    Ok(Figures {
        rate_per_s: rate,
        detail: format!(
            "success rate {}, latency p99 {} ms",
            summary["successRate"],
            p99.map_or_else(|| "?".into(), |v| format!("{v:.2}"))
        ),
    })
}
