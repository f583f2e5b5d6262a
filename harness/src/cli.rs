//! The harness command line: `harness --profile FILE` (same as `harness run --profile FILE`),
//! and the hidden `harness serve <role>` the harness uses to start the services.

use crate::run::RunOptions;
use clap::{Args, Parser, Subcommand};
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
    BenchProxy(crate::bench::ProxyBenchArgs),
    /// Measure the load generator alone against a stub endpoint, and oha beside it.
    BenchGenerator(crate::bench::BenchArgs),
    /// Check a finished run again from its results folder (its saved books, saga log,
    /// history and samples), rewriting its reconciliation, summary and report.
    Reconcile {
        /// The run's results folder.
        dir: PathBuf,
    },
    /// Rebuild `report.md` and `report.html` from a finished run's folder.
    Report {
        /// The run's results folder.
        dir: PathBuf,
    },
    /// Run profiles against `saga` and every known-bad design, and print what caught each.
    Mutants(crate::mutants::MutantsArgs),
    /// Judge a run against a baseline: every metric with its change, against tolerances.
    /// Exit 0 no regression, 1 a regression, 2 the runs cannot tell.
    Compare(crate::compare::CompareArgs),
    /// Run a profile and keep it as the profile's baseline for `harness compare`
    /// (results/baselines/<profile>/: summary, latency log, the machine that recorded it).
    Baseline(crate::baseline::BaselineArgs),
    /// Walk the contract (docs/contract.md) against a running system without load: every
    /// client error, idempotent replay, a reused key, GET /transfers/{id}, the admin routes.
    /// Exit 0 conforms, 1 a rule violated.
    CheckTarget(crate::check_target::CheckTargetArgs),
    /// Find the highest arrival rate that meets the profile's SLO and error budget (the
    /// knee), show it is stable, and drive the system past it; writes capacity.md and
    /// capacity.html. Exit 0 with a knee, 1 when even the first step missed.
    Capacity(crate::capacity::CapacityArgs),
    /// Reconcile one million synthetic transfers (a few of every violation class) and print
    /// how long it took.
    BenchReconcile(crate::bench::reconcile::BenchArgs),
    /// Run the embedded Toxiproxy-compatible proxy as a standalone server.
    Toxiproxy {
        /// Address the REST API listens on.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        #[arg(long, default_value_t = 8474)]
        port: u16,
        /// Seed of the toxicity decisions (which connections a toxic with toxicity < 1 hits).
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Run one service of the reference system (used by the harness to start them).
    #[command(hide = true)]
    Serve {
        #[command(subcommand)]
        role: service::cli::Role,
    },
}

#[derive(Args, Debug, Clone, Default)]
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
    /// Use this Toxiproxy server (Shopify's, or `harness toxiproxy`) for the hops' proxies
    /// instead of the embedded one.
    #[arg(long)]
    pub toxiproxy: Option<String>,
    /// Plain progress lines instead of a live line, even on a terminal.
    #[arg(long)]
    pub quiet: bool,
}

impl RunArgs {
    pub fn into_options(self) -> Result<RunOptions, String> {
        let profile = self
            .profile
            .ok_or_else(|| "--profile FILE is required (see chaos-profiles/)".to_owned())?;
        Ok(RunOptions {
            profile,
            out: self.out,
            seed: self.seed,
            duration_s: self.duration,
            rate: self.rate,
            design: self.design,
            client_http2_connections: self.client_http2_connections,
            target: self.target,
            external_url: self.external_url,
            ledger_url: self.ledger_url,
            target_file: self.target_file,
            ignore_service_settings: self.ignore_service_settings,
            toxiproxy: self.toxiproxy,
            quiet: self.quiet,
            ..RunOptions::default()
        })
    }
}
