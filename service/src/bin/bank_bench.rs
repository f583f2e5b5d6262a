//! `bank-bench`: sustained `saga` transfers per second with p50/p99, all three services and
//! their fsyncs included.
//!
//! Starts the three services as child processes (this binary re-executes itself as
//! `bank-bench serve <role>`), seeds accounts, then sends transfers open-loop at `--rate`:
//! each request has a scheduled send time and its latency is measured from that time, so a
//! slow service cannot hide behind a slowed-down client. Prints throughput, outcomes and
//! latency percentiles of the measured window, then checks that no money was created or lost.

use anyhow::{bail, Context};
use clap::Parser;
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use service::contract::{
    routes, Dump, SeedAccount, SeedAccounts, TransferRequest, UserLink, UserLinks,
};
use service::coordinator::CoordinatorSettings;
use service::launch::ServiceProcess;
use service::money::AmountCents;
use service::settings::Settings;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};

#[derive(Parser, Debug)]
#[command(
    name = "bank-bench",
    about = "Open-loop benchmark of the reference system"
)]
struct BenchArgs {
    /// Transfers per second to schedule.
    #[arg(long, default_value_t = 2000)]
    rate: u32,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 10)]
    duration_s: u32,
    /// Seconds of load before measuring starts.
    #[arg(long, default_value_t = 2)]
    warmup_s: u32,
    /// Users (and external accounts) the transfers spread over.
    #[arg(long, default_value_t = 1000)]
    users: u32,
    #[command(flatten)]
    coordinator: CoordinatorSettings,
    /// Requests in flight at most; a scheduled send past it is counted as overflow.
    #[arg(long, default_value_t = 4096)]
    client_max_in_flight: usize,
    /// Seed of the users and amounts.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// p99 target in ms; the last line says whether it held.
    #[arg(long, default_value_t = 50)]
    p99_target_ms: u64,
}

#[derive(Parser)]
struct ServeCli {
    #[command(subcommand)]
    role: service::cli::Role,
}

const OPENING_BALANCE: u64 = 1_000_000_000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Completed,
    Failed,
    Pending,
    Shed,
    Error,
}

struct Sample {
    scheduled: Instant,
    latency: Duration,
    outcome: Outcome,
}

fn main() -> anyhow::Result<()> {
    let argv: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if argv.get(1).map(String::as_str) == Some("serve") {
        service::server::init_logging();
        let serve = ServeCli::parse_from(argv.iter().skip(1));
        return runtime.block_on(service::cli::run(serve.role));
    }
    let args = BenchArgs::parse();
    runtime.block_on(bench(args))
}

fn start(dir: &std::path::Path, role: &str, extra: &[String]) -> anyhow::Result<ServiceProcess> {
    let exe = std::env::current_exe()?;
    let mut command = Command::new(exe);
    command
        .args(["serve", role, "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.join(format!("{role}.db")))
        .args(extra)
        .env("RUST_LOG", "warn");
    Ok(ServiceProcess::spawn(
        command,
        role,
        &dir.join(format!("{role}.log")),
        Duration::from_secs(20),
    )?)
}

async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    if args.rate == 0 || args.duration_s == 0 || args.users == 0 {
        bail!("--rate, --duration-s and --users must be positive");
    }
    let dir = tempfile_dir()?;
    let external = start(&dir, "external", &[])?;
    let ledger = start(&dir, "ledger", &[])?;
    let mut coordinator_args = vec![
        format!("--external-url={}", external.url),
        format!("--ledger-url={}", ledger.url),
    ];
    coordinator_args.extend(args.coordinator.to_flags());
    let coordinator = start(&dir, "coordinator", &coordinator_args)?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(args.client_max_in_flight)
        .timeout(Duration::from_secs(5))
        .build()?;
    seed(&http, &args, &external.url, &ledger.url, &coordinator.url).await?;

    println!(
        "bank-bench: design={} rate={}/s duration={}s (warm-up {}s) users={} seed={}",
        args.coordinator.design.as_str(),
        args.rate,
        args.duration_s,
        args.warmup_s,
        args.users,
        args.seed
    );
    let total = u64::from(args.rate) * u64::from(args.duration_s + args.warmup_s);
    let interval = Duration::from_secs(1) / args.rate;
    let begin = Instant::now() + Duration::from_millis(50);
    let measure_from = begin + Duration::from_secs(u64::from(args.warmup_s));
    let (samples_tx, mut samples_rx) = mpsc::unbounded_channel::<Sample>();
    let in_flight = Arc::new(Semaphore::new(args.client_max_in_flight));
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut overflow = 0u64;
    let transfers_url = format!("{}{}", coordinator.url, routes::TRANSFERS);
    for i in 0..total {
        let scheduled = begin + interval * u32::try_from(i)?;
        tokio::time::sleep_until(scheduled.into()).await;
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            overflow += 1;
            continue;
        };
        let user = rng.gen_range(0..args.users);
        let amount = rng.gen_range(1..=10_000u64);
        let request = http
            .post(&transfers_url)
            .header(routes::IDEMPOTENCY_KEY_HEADER, format!("bench-{i}"))
            .json(&TransferRequest {
                user_id: format!("u-{user}"),
                external_account_id: format!("a-{user}"),
                amount_cents: AmountCents::new(amount).into(),
            });
        let tx = samples_tx.clone();
        tokio::spawn(async move {
            let outcome = match request.send().await {
                Ok(r) => match r.status().as_u16() {
                    200 => Outcome::Completed,
                    202 => Outcome::Pending,
                    422 => Outcome::Failed,
                    503 => Outcome::Shed,
                    _ => Outcome::Error,
                },
                Err(_) => Outcome::Error,
            };
            let _ = tx.send(Sample {
                scheduled,
                latency: scheduled.elapsed(),
                outcome,
            });
            drop(permit);
        });
    }
    drop(samples_tx);
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut counts = [0u64; 5];
    let mut last_completion = measure_from;
    while let Some(sample) = samples_rx.recv().await {
        if sample.scheduled < measure_from {
            continue;
        }
        counts[sample.outcome as usize] += 1;
        let micros = u64::try_from(sample.latency.as_micros()).unwrap_or(u64::MAX);
        histogram.saturating_record(micros.max(1));
        last_completion = last_completion.max(sample.scheduled + sample.latency);
    }
    let window = last_completion.duration_since(measure_from).as_secs_f64();
    let [completed, failed, pending, shed, errors] = counts;
    let throughput = completed as f64 / window.max(f64::EPSILON);
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "measured: {} scheduled, completed {completed}, failed {failed}, pending {pending}, shed {shed}, errors {errors}, overflow {overflow}",
        histogram.len() + overflow
    );
    println!("throughput: {throughput:.0} completed transfers/s over {window:.2}s");
    println!(
        "latency ms from scheduled send: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        histogram.max() as f64 / 1000.0
    );
    for service in [&coordinator, &external, &ledger] {
        let text = http
            .get(format!("{}{}", service.url, routes::METRICS))
            .send()
            .await?
            .text()
            .await?;
        let value = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let (batches, writes) = (
            value("bank_store_batches_total"),
            value("bank_store_writes_total"),
        );
        println!(
            "store {}: {writes:.0} writes in {batches:.0} commits ({:.1} writes per fsync)",
            service.name,
            writes / batches.max(1.0)
        );
    }
    let money_ok = conserved(&http, &args, &external.url, &ledger.url).await?;
    let p99_ms = ms(0.99);
    let pass = money_ok
        && throughput >= f64::from(args.rate) * 0.98
        && p99_ms < args.p99_target_ms as f64
        && errors == 0
        && overflow == 0;
    println!(
        "verdict: {} (target {} transfers/s with p99 < {} ms; money conserved: {money_ok})",
        if pass { "PASS" } else { "FAIL" },
        args.rate,
        args.p99_target_ms
    );
    let _ = std::fs::remove_dir_all(&dir);
    if !pass {
        std::process::exit(1);
    }
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("bank-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

async fn seed(
    http: &reqwest::Client,
    args: &BenchArgs,
    external: &str,
    ledger: &str,
    coordinator: &str,
) -> anyhow::Result<()> {
    let accounts = |prefix: &str, balance: u64| SeedAccounts {
        accounts: (0..args.users)
            .map(|i| SeedAccount {
                account_id: format!("{prefix}-{i}"),
                balance_cents: AmountCents::new(balance).into(),
            })
            .collect(),
    };
    let links = UserLinks {
        users: (0..args.users)
            .map(|i| UserLink {
                user_id: format!("u-{i}"),
                external_account_id: format!("a-{i}"),
            })
            .collect(),
    };
    let posts = [
        (
            format!("{external}{}", routes::ADMIN_ACCOUNTS),
            serde_json::to_value(accounts("a", OPENING_BALANCE))?,
        ),
        (
            format!("{ledger}{}", routes::ADMIN_ACCOUNTS),
            serde_json::to_value(accounts("u", 0))?,
        ),
        (
            format!("{coordinator}{}", routes::ADMIN_USERS),
            serde_json::to_value(links)?,
        ),
    ];
    for (url, body) in posts {
        let response = http.post(&url).json(&body).send().await?;
        if !response.status().is_success() {
            bail!("seeding {url} answered {}", response.status());
        }
    }
    Ok(())
}

/// Waits briefly for pending sagas, then checks Σ external + Σ ledger = opening total.
async fn conserved(
    http: &reqwest::Client,
    args: &BenchArgs,
    external: &str,
    ledger: &str,
) -> anyhow::Result<bool> {
    let initial = OPENING_BALANCE * u64::from(args.users);
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let mut total = 0u64;
        for url in [ledger, external] {
            let dump: Dump = http
                .get(format!("{url}{}", routes::ADMIN_DUMP))
                .send()
                .await?
                .json()
                .await?;
            total += dump
                .accounts
                .iter()
                .map(|a| a.balance_cents.get())
                .sum::<u64>();
        }
        if total == initial || Instant::now() > until {
            return Ok(total == initial);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
