//! The command line of one service (`external`, `ledger` or `coordinator`), shared by every
//! binary that can run a service: `bank-service <role>`, and the benchmark and the harness,
//! which re-execute themselves as `<binary> serve <role>` so one binary is enough. Each
//! role's settings are flattened from their one definition (`knobs`, `ledger_policy`,
//! `coordinator::settings`), so a flag, its default and its help are written once.

use crate::coordinator::{self, remote::Remote, CoordinatorConfig, CoordinatorSettings};
use crate::external::{self, External, ExternalPolicy};
use crate::institution::Institution;
use crate::knobs::FaultKnobs;
use crate::ledger::{self, Ledger};
use crate::ledger_policy::LedgerPolicy;
use crate::server::{self, AdminGuard};
use crate::settings::{SettingError, Settings};
use crate::store::{Durability, Store};
use anyhow::Context;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Subcommand)]
pub enum Role {
    /// The simulated external institution (debits, reversals).
    External {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        knobs: FaultKnobs,
        /// MUTANT: do not leave tombstones for reversals of unknown ids.
        #[arg(long, hide = true)]
        no_tombstone: bool,
    },
    /// The internal ledger (credits, antifraud, rate limit).
    Ledger {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        knobs: FaultKnobs,
        #[command(flatten)]
        policy: LedgerPolicy,
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
        #[command(flatten)]
        settings: CoordinatorSettings,
        #[command(flatten)]
        knobs: FaultKnobs,
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

impl CommonArgs {
    fn open(&self, schema: &str) -> anyhow::Result<Store> {
        Store::open(&self.db, schema).with_context(|| format!("opening {}", self.db.display()))
    }

    fn guard(&self) -> AdminGuard {
        AdminGuard {
            token: self.admin_token.clone(),
        }
    }
}

/// Settings from the command line, checked with their one set of rules; the error names
/// the flag.
fn checked<T: Settings>(settings: T) -> anyhow::Result<T> {
    settings.validate().map_err(|e: SettingError| {
        anyhow::anyhow!("--{}: {}", e.field().replace('_', "-"), e.message())
    })?;
    Ok(settings)
}

/// Runs one service until SIGTERM or Ctrl-C.
pub async fn run(role: Role) -> anyhow::Result<()> {
    match role {
        Role::Stub { listen } => server::serve(&listen, stub_app()?).await,
        Role::External {
            common,
            knobs,
            no_tombstone,
        } => {
            if no_tombstone {
                tracing::warn!("MUTANT: reversals of unknown ids leave no tombstone");
            }
            let store = common.open(crate::book::SCHEMA)?;
            let inst = Arc::new(Institution::new(
                "external",
                store,
                checked(knobs)?,
                common.seed,
            ));
            let policy = ExternalPolicy {
                tombstones: !no_tombstone,
            };
            let app = external::app(Arc::new(External { inst, policy }), common.guard());
            server::serve(&common.listen, app).await
        }
        Role::Ledger {
            common,
            knobs,
            policy,
        } => {
            let store = common.open(crate::book::SCHEMA)?;
            let inst = Arc::new(Institution::new(
                "ledger",
                store,
                checked(knobs)?,
                common.seed,
            ));
            let app = ledger::app(
                Arc::new(Ledger::new(inst, checked(policy)?)),
                common.guard(),
            );
            server::serve(&common.listen, app).await
        }
        Role::Coordinator {
            common,
            external_url,
            ledger_url,
            settings,
            knobs,
        } => {
            let settings = checked(settings)?;
            let faults = crate::fault_injection::FaultInjector::new(checked(knobs)?, common.seed);
            let durability = match settings.design {
                coordinator::Design::AckBeforeDurable => Durability::AckBeforeCommit {
                    commit_every: std::time::Duration::from_millis(200),
                },
                _ => Durability::AfterCommit,
            };
            let schema = coordinator::schema(settings.design);
            let store = Store::open_with(&common.db, &schema, durability)
                .with_context(|| format!("opening {}", common.db.display()))?;
            let remote = Remote::new(
                &external_url,
                &ledger_url,
                settings.institution_h2_connections as usize,
                settings.max_in_flight as usize,
            )?;
            tracing::info!(?settings, "coordinator starting");
            let config = CoordinatorConfig::from_settings(&settings);
            let coord = coordinator::start(config, store, remote, faults)
                .await
                .context("reading the saga log")?;
            let app = coordinator::app(coord, common.guard());
            server::serve(&common.listen, app).await
        }
    }
}

/// The stub's router: one fixed `completed` answer (a whole transfer answer of the
/// contract, serialized once), `/healthz`, and `/` for tools that probe the root.
fn stub_app() -> anyhow::Result<axum::Router> {
    use crate::contract::{routes, ClientStatus, SagaState, TransferView};
    use crate::ids::{AccountId, TransferId, UserId};
    let view = TransferView {
        transfer_id: TransferId::generate(),
        status: ClientStatus::Completed,
        state: Some(SagaState::Completed),
        user_id: UserId::parse("u-stub")?,
        external_account_id: AccountId::parse("a-stub")?,
        amount_cents: crate::money::AmountCents::new(1),
        reason: None,
    };
    let answer = axum::body::Bytes::from(serde_json::to_vec(&view)?);
    Ok(axum::Router::new()
        .route(
            routes::TRANSFERS,
            axum::routing::post(move || async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    answer,
                )
            }),
        )
        .route(routes::HEALTHZ, axum::routing::get(|| async { "ok" }))
        .route("/", axum::routing::get(|| async { "ok" })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags<T: Args> {
        #[command(flatten)]
        settings: T,
    }

    /// The flags a launcher builds from settings start a service with exactly those settings.
    fn round_trip<T: Settings + Args + std::fmt::Debug>(value: T) {
        let mut argv = vec!["service".to_owned()];
        argv.extend(value.to_flags());
        let parsed = Flags::<T>::try_parse_from(&argv)
            .unwrap_or_else(|e| panic!("{argv:?} does not parse: {e}"));
        assert_eq!(parsed.settings, value, "{argv:?}");
    }

    #[test]
    fn settings_survive_the_trip_through_flags() {
        round_trip(FaultKnobs::default());
        round_trip(FaultKnobs {
            error_before_rate: 0.05,
            error_after_rate: 0.125,
            error_after_mode: crate::knobs::LostAnswer::Drop,
            service_time_ms: 20,
            service_jitter_ms: 7,
            cpu_burn_us: 150,
            stall_us: 300,
        });
        round_trip(LedgerPolicy::default());
        round_trip(LedgerPolicy {
            antifraud_max_amount_cents: Some(crate::money::AmountCents::new(1_000)),
            antifraud_refusal_rate: 0.25,
            rate_limit_per_user_per_s: Some(3),
        });
        round_trip(CoordinatorSettings::default());
        round_trip(CoordinatorSettings {
            design: coordinator::Design::Naive,
            deadline_ms: 90,
            max_in_flight: 64,
            recovery_call_timeout_ms: 250,
            admission_target_ms: 0,
            institution_h2_connections: 0,
        });
    }

    #[test]
    fn defaults_are_the_same_on_the_command_line_and_in_the_struct() {
        assert_eq!(
            Flags::<FaultKnobs>::parse_from(["s"]).settings,
            FaultKnobs::default()
        );
        assert_eq!(
            Flags::<LedgerPolicy>::parse_from(["s"]).settings,
            LedgerPolicy::default()
        );
        assert_eq!(
            Flags::<CoordinatorSettings>::parse_from(["s"]).settings,
            CoordinatorSettings::default()
        );
    }
}
