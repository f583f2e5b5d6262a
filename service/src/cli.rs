//! The command line of one service (`external`, `ledger` or `coordinator`), shared by every
//! binary that can run a service: `bank-service <role>`, and the benchmark and the harness,
//! which re-execute themselves as `<binary> serve <role>` so one binary is enough.

use crate::coordinator::recovery::RecoveryConfig;
use crate::coordinator::{self, remote::Remote, CoordinatorConfig, Design};
use crate::external::{self, External, ExternalPolicy};
use crate::institution::Institution;
use crate::knobs::{FaultKnobs, LostAnswer};
use crate::ledger::{self, Ledger, LedgerPolicy};
use crate::money::AmountCents;
use crate::server::{self, AdminGuard};
use crate::store::Store;
use anyhow::Context;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Subcommand)]
pub enum Role {
    /// The simulated external institution (debits, reversals).
    External {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        knobs: KnobArgs,
        /// MUTANT: do not leave tombstones for reversals of unknown ids.
        #[arg(long, hide = true)]
        no_tombstone: bool,
    },
    /// The internal ledger (credits, antifraud, rate limit).
    Ledger {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        knobs: KnobArgs,
        /// Antifraud refuses credits above this amount.
        #[arg(long)]
        antifraud_max_amount_cents: Option<u64>,
        /// Antifraud refuses this fraction of credits at random (0..=1).
        #[arg(long, default_value_t = 0.0)]
        antifraud_refusal_rate: f64,
        /// At most this many new credits per user per second (429 past it).
        #[arg(long)]
        rate_limit_per_user_per_s: Option<u32>,
    },
    /// A stub that answers every `POST /transfers` `completed` at once, doing nothing: a
    /// trivial endpoint for measuring load generators.
    #[command(hide = true)]
    Stub {
        /// Address to listen on; port 0 picks a free port (printed on stdout).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
    },
    /// The coordinator (API gateway).
    Coordinator {
        #[command(flatten)]
        common: CommonArgs,
        /// Base URL of the external institution (or of a proxy in front of it).
        #[arg(long)]
        external_url: String,
        /// Base URL of the ledger (or of a proxy in front of it).
        #[arg(long)]
        ledger_url: String,
        #[arg(long, value_enum, default_value_t = Design::Saga)]
        design: Design,
        /// Budget of the synchronous answer in ms; past it the answer is `pending`.
        #[arg(long, default_value_t = 150)]
        deadline_ms: u64,
        /// Requests handled at once; more are shed with 503.
        #[arg(long, default_value_t = 512)]
        max_in_flight: usize,
        /// Timeout of each remote call the recovery worker makes, in ms.
        #[arg(long, default_value_t = 1000)]
        recovery_call_timeout_ms: u64,
    },
}

#[derive(Args)]
pub struct CommonArgs {
    /// Address to listen on; port 0 picks a free port (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// The SQLite file; created if missing, reused (recovered) if present.
    #[arg(long)]
    db: PathBuf,
    /// Bearer token that admits non-loopback peers to /admin routes.
    #[arg(long, env = "BANK_ADMIN_TOKEN")]
    admin_token: Option<String>,
    /// Seed of every random decision this process makes (fault knobs, antifraud).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Args)]
pub struct KnobArgs {
    /// Probability that an operation fails with 500 before doing anything.
    #[arg(long, default_value_t = 0.0)]
    error_before_rate: f64,
    /// Probability that an operation is applied but its answer is lost.
    #[arg(long, default_value_t = 0.0)]
    error_after_rate: f64,
    #[arg(long, value_enum, default_value_t = LostAnswer::Status500)]
    error_after_mode: LostAnswer,
    /// Fixed service time added to every operation, in ms.
    #[arg(long, default_value_t = 0)]
    service_time_ms: u64,
    /// Uniform extra service time, 0..=this, in ms.
    #[arg(long, default_value_t = 0)]
    service_jitter_ms: u64,
}

impl KnobArgs {
    fn knobs(&self) -> anyhow::Result<FaultKnobs> {
        FaultKnobs {
            error_before_rate: self.error_before_rate,
            error_after_rate: self.error_after_rate,
            error_after_mode: self.error_after_mode,
            service_time_ms: self.service_time_ms,
            service_jitter_ms: self.service_jitter_ms,
        }
        .validate()
        .map_err(|e| anyhow::anyhow!(e.message))
    }
}

fn open(common: &CommonArgs, schema: &str) -> anyhow::Result<Store> {
    Store::open(&common.db, schema).with_context(|| format!("opening {}", common.db.display()))
}

/// Runs one service until SIGTERM or Ctrl-C.
pub async fn run(role: Role) -> anyhow::Result<()> {
    match role {
        Role::Stub { listen } => server::serve(&listen, stub_app()).await,
        Role::External {
            common,
            knobs,
            no_tombstone,
        } => {
            let store = open(&common, crate::book::SCHEMA)?;
            let inst = Arc::new(Institution::new(
                "external",
                store,
                knobs.knobs()?,
                common.seed,
            ));
            let policy = ExternalPolicy {
                tombstones: !no_tombstone,
            };
            let app = external::app(
                Arc::new(External { inst, policy }),
                AdminGuard {
                    token: common.admin_token.clone(),
                },
            );
            server::serve(&common.listen, app).await
        }
        Role::Ledger {
            common,
            knobs,
            antifraud_max_amount_cents,
            antifraud_refusal_rate,
            rate_limit_per_user_per_s,
        } => {
            let store = open(&common, crate::book::SCHEMA)?;
            let inst = Arc::new(Institution::new(
                "ledger",
                store,
                knobs.knobs()?,
                common.seed,
            ));
            let policy = LedgerPolicy {
                antifraud_max_amount_cents: antifraud_max_amount_cents.map(AmountCents::new),
                antifraud_refusal_rate,
                rate_limit_per_user_per_s,
            }
            .validate()
            .map_err(|e| anyhow::anyhow!(e.message))?;
            let app = ledger::app(
                Arc::new(Ledger::new(inst, policy)),
                AdminGuard {
                    token: common.admin_token.clone(),
                },
            );
            server::serve(&common.listen, app).await
        }
        Role::Coordinator {
            common,
            external_url,
            ledger_url,
            design,
            deadline_ms,
            max_in_flight,
            recovery_call_timeout_ms,
        } => {
            anyhow::ensure!(
                (1..=10_000).contains(&deadline_ms),
                "--deadline-ms must be between 1 and 10000"
            );
            anyhow::ensure!(max_in_flight >= 1, "--max-in-flight must be at least 1");
            let store = open(&common, coordinator::SCHEMA)?;
            let remote = Remote::new(&external_url, &ledger_url)?;
            let config = CoordinatorConfig {
                design,
                deadline: Duration::from_millis(deadline_ms),
                max_in_flight,
                recovery: RecoveryConfig {
                    call_timeout: Duration::from_millis(recovery_call_timeout_ms),
                    ..RecoveryConfig::default()
                },
            };
            tracing::info!(?design, deadline_ms, "coordinator starting");
            let coord = coordinator::start(config, store, remote);
            let app = coordinator::app(
                coord,
                AdminGuard {
                    token: common.admin_token.clone(),
                },
            );
            server::serve(&common.listen, app).await
        }
    }
}

/// The stub's router: a fixed `completed` answer, and `/healthz`.
fn stub_app() -> axum::Router {
    const ANSWER: &str = r#"{"transfer_id":"t-stub","status":"completed","state":"completed"}"#;
    axum::Router::new()
        .route(
            "/transfers",
            axum::routing::post(|| async {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    ANSWER,
                )
            }),
        )
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route("/", axum::routing::get(|| async { "ok" }))
}
