//! The harness command line, in one place that every command reads its flags from:
//! `harness --profile FILE` (same as `harness run --profile FILE`), each subcommand's
//! arguments, and the hidden `harness serve <role>` the harness uses to start the services.
//! Plain data: a flag's default is defined here, and nothing of a run is imported
//! (`main.rs` hands each command its arguments).

use clap::{Parser, Subcommand};
use service::coordinator::Design;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "harness",
    version,
    about = "Drive a money-moving system under load and faults, then check that no money was created or lost",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run a chaos profile (the default command).
    Run(RunArgs),
    /// Measure the embedded proxy: wrk through one hop and direct.
    BenchProxy(ProxyBenchArgs),
    /// Measure the load generator alone against a stub endpoint, and oha beside it.
    BenchGenerator(GeneratorBenchArgs),
    /// Check a finished run again from its results folder (its saved books, saga log,
    /// history and samples), rewriting its reconciliation, summary and report.
    Reconcile(RunDirArgs),
    /// Rebuild `report.md` and `report.html` from a finished run's folder.
    Report(RunDirArgs),
    /// Run profiles against `saga` and every known-bad design, and print what caught each.
    Mutants(MutantsArgs),
    /// Judge a run against a baseline: every metric with its change, against tolerances.
    /// Exit 0 no regression, 1 a regression, 2 the runs cannot tell.
    Compare(CompareArgs),
    /// Run a profile and keep it as the profile's baseline for `harness compare`
    /// (results/baselines/<profile>/: summary, latency log, the machine that recorded it).
    Baseline(BaselineArgs),
    /// Walk the contract (docs/contract.md) against a running system without load: every
    /// client error, idempotent replay, a reused key, GET /transfers/{id}, the admin routes.
    /// Exit 0 conforms, 1 a rule violated.
    CheckTarget(CheckTargetArgs),
    /// Find change points in a history of runs (every summary.json under the folders
    /// given), per profile and figure, by E-Divisive means; writes trend.json and trend.md.
    Trend(TrendArgs),
    /// Run two builds (folders of release binaries, or git revisions built into
    /// target/ab/) interleaved, A B B A …, on one profile, and judge every figure with a
    /// paired test: CPU per transfer of each process, throughput, p50, p99, the verdicts.
    /// Writes ab.json and ab.md. Exit 1 a regression, 2 the rounds cannot tell (saying how
    /// many would), 0 none.
    Ab(AbArgs),
    /// Find the highest arrival rate that meets the profile's SLO and error budget (the
    /// knee), show it is stable, and drive the system past it; writes capacity.md and
    /// capacity.html. Exit 0 with a knee, 1 when even the first step missed.
    Capacity(CapacityArgs),
    /// Reconcile one million synthetic transfers (a few of every violation class) and print
    /// how long it took.
    BenchReconcile(ReconcileBenchArgs),
    /// Run the embedded Toxiproxy-compatible proxy as a standalone server.
    Toxiproxy(ToxiproxyArgs),
    /// Merge the folders of a sharded run's shards (`--shard I/N`) into one run folder,
    /// reconciled and judged as one run. Exit codes as a run's.
    Merge(MergeArgs),
    /// Run again exactly what a run's folder describes (the profile as run, its seed and
    /// faults, the same system) into a new folder, and say whether the same anomaly classes
    /// appear. Exit 0 the same classes, 1 not, 2 the folder cannot be replayed.
    Replay(ReplayArgs),
    /// From a failed run, find the smallest run that still fails the same way: cut its
    /// faults, windows, duration, rate, users and retries one at a time, each a fresh run
    /// of the same seed. Writes shrunk/profile.yaml, shrunk/run/ and shrink.md. Exit 0 a
    /// smaller failing run, 1 none found, 2 nothing to shrink.
    Shrink(ShrinkArgs),
    /// Run one service of the reference system (used by the harness to start them).
    #[command(hide = true)]
    Serve {
        #[command(subcommand)]
        role: service::cli::Role,
    },
}

// `harness [run] --profile FILE`: one run of a chaos profile.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// The chaos profile (YAML) to run.
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Results folder (default: results/<UTC time>-<profile name>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Overrides the profile's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Overrides the profile's measured duration, in seconds.
    #[arg(long)]
    pub duration: Option<u32>,
    /// Overrides the profile's arrival with a constant rate, requests per second.
    #[arg(long)]
    pub rate: Option<u32>,
    /// Overrides the coordinator design (saga or naive).
    #[arg(long, value_enum)]
    pub design: Option<Design>,
    /// Overrides the profile's `client.http2_connections`: 0 for HTTP/1.1 to the coordinator,
    /// 1-64 for that many HTTP/2 connections (the coordinator must speak h2c).
    #[arg(long)]
    pub client_http2_connections: Option<u32>,
    /// Drive a coordinator that is already running at this URL instead of starting one.
    #[arg(long, conflicts_with = "target_file")]
    pub target: Option<String>,
    /// With --target: the external institution's URL, for its dump (docs/contract.md).
    #[arg(long, requires = "target")]
    pub external_url: Option<String>,
    /// With --target: the ledger's URL, for its dump (docs/contract.md).
    #[arg(long, requires = "target")]
    pub ledger_url: Option<String>,
    /// Drive a system that is already running, described by this file: its URLs, the hops
    /// its coordinator reaches its upstreams through, commands for process faults, and
    /// whether to create or reuse the users (docs/your-own-system.md).
    #[arg(long)]
    pub target_file: Option<PathBuf>,
    /// With a target: run even when some of the profile's `service:` settings cannot be
    /// applied to it, listing each in the summary and both reports.
    #[arg(long)]
    pub ignore_service_settings: bool,
    /// Keep the started services' SQLite files (`service-data/` in the run folder) after a
    /// run that passes; a run that does not pass always keeps them.
    #[arg(long)]
    pub keep_service_data: bool,
    /// Use this Toxiproxy server (Shopify's, or `harness toxiproxy`) for the hops' proxies
    /// instead of the embedded one.
    #[arg(long)]
    pub toxiproxy: Option<String>,
    /// Plain progress lines instead of a live line, even on a terminal.
    #[arg(long)]
    pub quiet: bool,
    /// Drive shard I of N (from 0) of the run: the users n with n % N = I and their arrivals
    /// of the one seeded schedule; shard 0 applies the faults. Read from
    /// JOB_COMPLETION_INDEX and HARNESS_SHARD_COUNT when absent and both are set. Merge the
    /// shards' folders with `harness merge` (docs/distributed.md).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// When the load starts, the same for every shard: `2026-12-04T17:30:00Z` or seconds
    /// since the Unix epoch. A shard not ready by then stops (exit 2).
    #[arg(long, value_name = "INSTANT")]
    pub start_at: Option<String>,
}

// `harness baseline`: a run kept as its profile's baseline.
/// Where baselines are kept, one folder a profile.
pub const BASELINES_DIR: &str = "results/baselines";

#[derive(clap::Args, Debug, Clone)]
pub struct BaselineArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Where baselines are kept (one folder a profile).
    #[arg(long, default_value = BASELINES_DIR)]
    pub dir: PathBuf,
}

// `harness compare BASELINE CURRENT`.
#[derive(Debug, Clone, Copy, clap::ValueEnum, Default)]
pub enum Format {
    #[default]
    Text,
    Markdown,
}

#[derive(clap::Args, Debug, Clone)]
pub struct CompareArgs {
    /// The baseline: a run folder or its summary.json.
    pub baseline: PathBuf,
    /// The run to judge: a run folder or its summary.json.
    pub current: PathBuf,
    #[command(flatten)]
    pub tolerances: Tolerances,
    /// How to print the comparison.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

// `harness ab --a BUILD --b BUILD --profile FILE`.
#[derive(clap::Args, Debug, Clone)]
pub struct AbArgs {
    /// Build A, the base: a folder holding a `harness` binary, the binary, or a git revision.
    #[arg(long, required_unless_present = "from")]
    pub a: Option<String>,
    /// Build B, the change: as --a.
    #[arg(long, required_unless_present = "from")]
    pub b: Option<String>,
    /// The profile both arms run.
    #[arg(long, required_unless_present = "from")]
    pub profile: Option<PathBuf>,
    /// Judge again the rounds an earlier `harness ab` left in this folder (with these
    /// thresholds), running nothing; writes ab.json and ab.md there unless --out says.
    #[arg(long, conflicts_with_all = ["a", "b", "profile"])]
    pub from: Option<PathBuf>,
    /// Rounds; each runs both arms once.
    #[arg(long, default_value_t = 16)]
    pub rounds: usize,
    /// Seed of round 0 (round i runs this plus i in both arms); default: the profile's in
    /// every round.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Overrides the profile's measured duration, in seconds, in both arms.
    #[arg(long)]
    pub duration: Option<u32>,
    /// Overrides the profile's arrival with a constant rate, in both arms.
    #[arg(long)]
    pub rate: Option<u32>,
    /// Where ab.json, ab.md and the rounds' run folders go (default: ./ab).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Growth of CPU per transfer (any process) that counts as a regression, in percent.
    #[arg(long, default_value_t = 5.0)]
    pub cpu_threshold_pct: f64,
    /// Growth of p50 or p99 that counts as a regression, in percent.
    #[arg(long, default_value_t = 10.0)]
    pub latency_threshold_pct: f64,
    /// Fall of throughput that counts as a regression, in percent (of its reciprocal).
    #[arg(long, default_value_t = 5.0)]
    pub throughput_threshold_pct: f64,
    /// Confidence of each figure's interval.
    #[arg(long, default_value_t = 0.95)]
    pub confidence: f64,
}

// `harness trend DIR…`.
#[derive(clap::Args, Debug, Clone)]
pub struct TrendArgs {
    /// Run folders, or folders holding them (searched a few levels down for summary.json).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where trend.json and trend.md go (default: ./trend).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A change point is kept when its permutation test's p-value is below this.
    #[arg(long, default_value_t = 0.05)]
    pub significance: f64,
    /// The fewest runs on each side of a change point.
    #[arg(long, default_value_t = 3)]
    pub min_segment: usize,
    /// Seeds the permutations: the same runs and seed give the same change points.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// How much worse the current run may be before it is a regression.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Tolerances {
    /// How much p50 may grow, in percent.
    #[arg(long = "p50-growth-pct", default_value_t = 50.0)]
    pub p50_pct: f64,
    /// How much p99 may grow, in percent.
    #[arg(long = "p99-growth-pct", default_value_t = 50.0)]
    pub p99_pct: f64,
    /// How much p99.9 may grow, in percent (judged only when both runs have the samples).
    #[arg(long = "p999-growth-pct", default_value_t = 100.0)]
    pub p999_pct: f64,
    /// How much throughput may fall, in percent.
    #[arg(long = "throughput-drop-pct", default_value_t = 25.0)]
    pub throughput_pct: f64,
    /// How much the error rate (errors per operation) may rise, as a fraction.
    #[arg(long = "error-rate-rise", default_value_t = 0.01)]
    pub error_rate_rise: f64,
    /// How much each process's CPU per operation may grow, in percent (judged when both
    /// runs measured it).
    #[arg(long = "cpu-growth-pct", default_value_t = 50.0)]
    pub cpu_pct: f64,
    /// How much a process's CPU per operation may grow beyond the machine's drift, in
    /// percent: its growth over the median growth of every process both runs measured (at
    /// least three). A machine slower or busier than the baseline's moves every process
    /// alike; a regression in one process's code moves it alone. Not judged when absent.
    #[arg(long = "cpu-share-growth-pct")]
    pub cpu_share_pct: Option<f64>,
}

impl Default for Tolerances {
    fn default() -> Self {
        Tolerances {
            p50_pct: 50.0,
            p99_pct: 50.0,
            p999_pct: 100.0,
            throughput_pct: 25.0,
            error_rate_rise: 0.01,
            cpu_pct: 50.0,
            cpu_share_pct: None,
        }
    }
}

// `harness capacity --profile FILE`.
#[derive(Debug, Clone, clap::Args)]
pub struct CapacityArgs {
    /// The chaos profile whose SLO, error budget, population and service settings each step
    /// uses (its arrival is replaced by each step's constant rate).
    #[arg(long)]
    pub profile: PathBuf,
    /// Hold this fault of the profile active through every step (default: no faults).
    #[arg(long)]
    pub fault: Option<String>,
    /// The first rate tried, requests/s (default: a quarter of the profile's peak rate, at
    /// least 50).
    #[arg(long)]
    pub start: Option<u32>,
    /// The highest rate tried, requests/s.
    #[arg(long, default_value_t = 20_000)]
    pub max: u32,
    /// Measured seconds of each step.
    #[arg(long, default_value_t = 10)]
    pub step_s: u32,
    /// Warm-up seconds of each step.
    #[arg(long, default_value_t = 2)]
    pub warmup_s: u32,
    /// How long each step waits for every saga to be final after its load.
    #[arg(long, default_value_t = 10)]
    pub convergence_window_s: u32,
    /// The search ends when the knee is known within this fraction of it.
    #[arg(long, default_value_t = 0.1)]
    pub resolution: f64,
    /// Results folder (default: results/<UTC time>-capacity-<profile>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Overrides the profile's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Overrides the profile's `client.http2_connections`: 0 for HTTP/1.1 to the coordinator,
    /// 1-64 for that many HTTP/2 connections (the coordinator must speak h2c).
    #[arg(long)]
    pub client_http2_connections: Option<u32>,
    /// Searches a system the harness did not start, described by a target file (its `api:`
    /// and `books:` too), instead of starting the reference system for each step. The
    /// accounts the first step creates are taken as they are by the next ones.
    #[arg(long)]
    pub target_file: Option<PathBuf>,
}

// `harness mutants`.
#[derive(clap::Args, Debug, Clone)]
pub struct MutantsArgs {
    /// Profiles to run (default: the library in chaos-profiles/, but `everything` and the
    /// no-fault load profiles `steady`, `throughput` and `overload`, shortened where a
    /// profile allows).
    #[arg(long, num_args = 1..)]
    pub profiles: Vec<PathBuf>,
    /// Designs to run (default: all of them).
    #[arg(long, value_enum, num_args = 1..)]
    pub designs: Vec<Design>,
    /// Where the runs' folders go (default: results/<UTC time>-mutants/).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

// `harness check-target`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckTargetArgs {
    /// The coordinator's URL.
    #[arg(long, required_unless_present = "target_file", requires_all = ["external_url", "ledger_url"])]
    pub target: Option<String>,
    /// The external institution's URL (seeding, dump).
    #[arg(long, requires = "target")]
    pub external_url: Option<String>,
    /// The ledger's URL (seeding, dump).
    #[arg(long, requires = "target")]
    pub ledger_url: Option<String>,
    /// The three URLs from a target file (docs/your-own-system.md) instead.
    #[arg(long, conflicts_with = "target")]
    pub target_file: Option<PathBuf>,
}

// `harness bench-generator`.
#[derive(clap::Args, Debug, Clone)]
pub struct GeneratorBenchArgs {
    /// Requests per second to schedule.
    #[arg(long, default_value_t = 50_000)]
    pub rate: u32,
    /// Measured seconds (after 1 s of warm-up).
    #[arg(long, default_value_t = 10)]
    pub duration: u32,
    /// Requests in flight at most (oha: connections).
    #[arg(long, default_value_t = 64)]
    pub connections: u32,
    /// The core the generator (and oha) runs on.
    #[arg(long, default_value_t = 0)]
    pub generator_core: usize,
    /// The core the stub endpoint runs on.
    #[arg(long, default_value_t = 1)]
    pub endpoint_core: usize,
    /// The oha binary.
    #[arg(long, default_value = "oha")]
    pub oha: String,
    /// Skip the oha comparison.
    #[arg(long)]
    pub no_oha: bool,
    /// Rounds of the generator speaking the contract and the same generator through a
    /// mapping (`docs/target-contract-as-api.yaml`'s `api:`: requests rendered from templates,
    /// answers sorted by rules), back to back; the ratio is printed per round. 0: none.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=20))]
    pub mapping_rounds: u32,
}

// `harness bench-proxy`.
#[derive(clap::Args, Debug, Clone)]
pub struct ProxyBenchArgs {
    /// Seconds of each wrk run.
    #[arg(long, default_value_t = 4)]
    pub duration: u32,
    /// Rounds of the hop, the relay and HAProxy measured back to back; each ratio is the
    /// median round's.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,
    /// Exit 1 when the median hop/HAProxy ratio is below this (1.0: the proxy's target).
    #[arg(long)]
    pub min_ratio: Option<f64>,
    /// Exit 1 when the median hop/relay ratio is below this (0.95: the proxy's target).
    #[arg(long)]
    pub min_relay_ratio: Option<f64>,
    /// wrk connections.
    #[arg(long, default_value_t = 64)]
    pub connections: u32,
    /// The trivial endpoint: nginx answering `return 200` (the reference setup; installed
    /// from Debian's packages when missing), or the harness's own stub.
    #[arg(long, value_enum, default_value_t = Endpoint::Nginx)]
    pub endpoint: Endpoint,
    /// Skip the HAProxy reference.
    #[arg(long)]
    pub no_haproxy: bool,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Nginx,
    Stub,
}

// `harness bench-reconcile`.
#[derive(clap::Args, Debug, Clone)]
pub struct ReconcileBenchArgs {
    /// Transfers in the synthetic run.
    #[arg(long, default_value_t = 1_000_000)]
    pub transfers: u32,
    /// Users (each with one external and one ledger account).
    #[arg(long, default_value_t = 1_000)]
    pub users: u32,
    /// Reconciliations of the same evidence: the figure is their median (a shared machine
    /// moves single figures by a third).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: u32,
    /// A database to read the books from (`postgres://user@host:port/db`, or MySQL or
    /// SQLite): the synthetic books are written into tables of their own there first
    /// (`bench_books_*`, replaced), then every reconciliation reads them back through a
    /// `books: sql` source, in one snapshot, and the read is timed with it.
    #[arg(long)]
    pub books_dsn: Option<String>,
    /// The environment variable holding `--books-dsn`'s password.
    #[arg(long)]
    pub books_password_env: Option<String>,
}

// `harness reconcile DIR` and `harness report DIR`: a finished run's folder.
#[derive(clap::Args, Debug, Clone)]
pub struct RunDirArgs {
    /// The run's results folder.
    pub dir: PathBuf,
}

// `harness replay DIR`: a run again, from its folder.
#[derive(clap::Args, Debug, Clone)]
pub struct ReplayArgs {
    /// The run's results folder.
    pub dir: PathBuf,
    /// The replay's folder (default: results/<UTC time>-<profile>-replay/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Plain progress lines instead of a live line, even on a terminal.
    #[arg(long)]
    pub quiet: bool,
}

// `harness shrink DIR`: the smallest run that still fails as a failed run did.
#[derive(clap::Args, Debug, Clone)]
pub struct ShrinkArgs {
    /// The failed run's results folder.
    pub dir: PathBuf,
    /// The longest the search may take: 90s, 10m, 1h. The smallest failing run found by
    /// then is kept.
    #[arg(long, default_value = "10m")]
    pub budget: String,
    /// The anomaly class to keep (default: the one the run showed most of).
    #[arg(long)]
    pub class: Option<String>,
    /// Runs of a cut before it counts as passing: a class that shows only now and then is
    /// not lost to one unlucky run.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub tries: u32,
    /// Where to write (default: results/<UTC time>-<profile>-shrink/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Only the closing lines, no line per step.
    #[arg(long)]
    pub quiet: bool,
}

// `harness toxiproxy`: the embedded proxy's REST API, standalone.
#[derive(clap::Args, Debug, Clone)]
pub struct ToxiproxyArgs {
    /// Address the REST API listens on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long, default_value_t = 8474)]
    pub port: u16,
    /// Seed of the toxicity decisions (which connections a toxic with toxicity < 1 hits).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The bearer token requests from other machines must carry (`Authorization: Bearer
    /// TOKEN`); required when --host is not a loopback address. Loopback peers need none.
    #[arg(long, env = "HARNESS_TOXIPROXY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The most connections each proxy holds open at once; one more is closed at once.
    #[arg(long, default_value_t = crate::proxy::MAX_LINKS_PER_PROXY,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub max_connections: usize,
}

// `harness merge DIR…`: a sharded run's folders made one.
#[derive(clap::Args, Debug, Clone)]
pub struct MergeArgs {
    /// Every shard's results folder, once each.
    #[arg(required = true, num_args = 1..)]
    pub dirs: Vec<PathBuf>,
    /// The merged run's folder (default: results/<UTC time>-<profile>-merged/).
    #[arg(long)]
    pub out: Option<PathBuf>,
}
