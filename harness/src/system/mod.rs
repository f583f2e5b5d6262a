//! The system under test: the reference system, started by the harness with a proxy on
//! every hop, or an existing one given by URL. Every read the reconciler needs goes through
//! `docs/contract.md`.
//!
//! - `launch`: the services as child processes, started again after a process fault.
//! - `admin`: the admin client (health, seeding, dumps, the saga log, metrics).

pub mod admin;
pub mod attach;
pub mod books;
pub mod hops;
pub mod knobs;
pub mod launch;
pub mod lookup;
pub mod sql;
pub mod target_file;
pub mod target_settings;

use crate::profile::plan::RunPlan;
use crate::topology::{Hop, ServiceRole};
use hops::{Embedded, HopError, Hops};
use launch::{Launched, SystemError};
use serde::Serialize;
use std::path::Path;

/// Where the three services answer (`http://host:port`). The institutions are optional for a
/// system given by URL; without them the money checks are unknown.
#[derive(Debug, Clone, Serialize)]
pub struct Endpoints {
    /// The coordinator itself: admin routes (saga log, seeding) go here directly.
    pub coordinator: String,
    /// Where the load goes: the gateway hop's proxy, or the coordinator when there is none.
    pub gateway: String,
    pub external: Option<String>,
    pub ledger: Option<String>,
    /// Where each institution's books are read when not from its `/admin/dump`.
    #[serde(skip)]
    pub books: books::BookSources,
    /// The coordinator's own API, for a system that does not speak the contract.
    #[serde(skip)]
    pub api: Option<std::sync::Arc<crate::mapping::CompiledApi>>,
}

impl Endpoints {
    /// The service's own address (not its hop's).
    /// Whether both institutions' books can be read (from a dump or a `books:` source).
    pub fn books_readable(&self) -> bool {
        [ServiceRole::External, ServiceRole::Ledger]
            .into_iter()
            .all(|role| self.of(role).is_some() || self.books.of(role).is_some())
    }

    pub fn of(&self, role: ServiceRole) -> Option<&str> {
        match role {
            ServiceRole::Coordinator => Some(&self.coordinator),
            ServiceRole::External => self.external.as_deref(),
            ServiceRole::Ledger => self.ledger.as_deref(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BringUpError {
    #[error(transparent)]
    Launch(#[from] SystemError),
    #[error(transparent)]
    Hop(#[from] HopError),
    #[error("the task that starts services failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The reference system as the harness started it, with a proxy on every hop. Dropping it
/// kills the services (and stops the embedded proxy server).
pub struct LaunchedSystem {
    pub launched: Launched,
    pub hops: Hops,
    /// The embedded proxy server, when the run uses it; a `--toxiproxy` server is the user's.
    pub embedded: Option<Embedded>,
}

impl LaunchedSystem {
    pub fn endpoints(&self) -> Endpoints {
        Endpoints {
            coordinator: self.launched.coordinator.url.clone(),
            gateway: self.hops.gateway_url(),
            external: Some(self.launched.external.url.clone()),
            ledger: Some(self.launched.ledger.url.clone()),
            books: books::BookSources::default(),
            api: None,
        }
    }
}

/// The Toxiproxy API the run's hops live in: the user's server at `toxiproxy` (`host:port`
/// or a URL), or the embedded one started now.
pub async fn proxy_server(
    seed: u64,
    toxiproxy: Option<&str>,
) -> Result<(String, Option<Embedded>), HopError> {
    Ok(match toxiproxy {
        Some(url) => {
            let api = url.trim_start_matches("http://").trim_end_matches('/');
            (api.to_owned(), None)
        }
        None => {
            let server = hops::start_embedded(seed).await?;
            (server.api_addr.clone(), Some(server))
        }
    })
}

/// Starts the reference system with a proxy on each hop: the institutions first, their
/// hops, the coordinator told to reach them through those hops, then the gateway hop in
/// front of it. The proxies live in the embedded server, or in the Toxiproxy server at
/// `toxiproxy` (`host:port` or a URL).
pub async fn bring_up(
    plan: &RunPlan,
    out: &Path,
    toxiproxy: Option<&str>,
) -> Result<LaunchedSystem, BringUpError> {
    let (api, embedded) = proxy_server(plan.seed, toxiproxy).await?;
    let (start_plan, dir) = (plan.clone(), out.to_owned());
    let institutions =
        tokio::task::spawn_blocking(move || launch::launch_institutions(&start_plan, &dir))
            .await??;
    let any = hops::ANY_LOOPBACK_PORT;
    let external = hops::create(
        &api,
        Hop::External.as_str(),
        any,
        &institutions.external.url,
    )
    .await?;
    let ledger = hops::create(&api, Hop::Ledger.as_str(), any, &institutions.ledger.url).await?;
    let (start_plan, dir) = (plan.clone(), out.to_owned());
    let (external_url, ledger_url) = (format!("http://{external}"), format!("http://{ledger}"));
    let launched = tokio::task::spawn_blocking(move || {
        launch::launch_coordinator(&start_plan, &dir, institutions, &external_url, &ledger_url)
    })
    .await??;
    let gateway = hops::create(&api, Hop::Gateway.as_str(), any, &launched.coordinator.url).await?;
    Ok(LaunchedSystem {
        launched,
        hops: Hops {
            api,
            gateway,
            external: Some(external),
            ledger: Some(ledger),
        },
        embedded,
    })
}
