//! The proxies the harness puts on each hop: `gateway` (harness → coordinator), `external`
//! (coordinator → external institution) and `ledger` (coordinator → ledger). They live in
//! the embedded Toxiproxy-compatible server, or in an existing Toxiproxy given with
//! `--toxiproxy URL`; either way they are created with `toxiproxy_rust` (a blocking client
//! that panics on transport errors, so it runs off the async runtime) and read back.
//! Seeding, dumps and the saga log bypass the proxies: faults never touch the evidence.

use crate::profile::plan::Shard;
use crate::proxy::{api, Registry};
use crate::topology::Hop;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use toxiproxy_rust::client::Client;
use toxiproxy_rust::proxy::ProxyPack;

/// The proxies of one run: the Toxiproxy API that holds them and where each listens
/// (`host:port`). Written to `services.json` as it is. A system the harness did not start
/// may have no proxy on an upstream hop.
#[derive(Debug, Clone, Serialize)]
pub struct Hops {
    #[serde(rename = "toxiproxy_api")]
    pub api: String,
    pub gateway: String,
    pub external: Option<String>,
    pub ledger: Option<String>,
}

impl Hops {
    /// `http://` and the address the gateway hop's proxy listens on: where the load goes.
    pub fn gateway_url(&self) -> String {
        format!("http://{}", self.gateway)
    }
}

/// Where a new hop's proxy listens: a free port, or the address a system's own coordinator
/// was configured with.
pub const ANY_LOOPBACK_PORT: &str = "127.0.0.1:0";

#[derive(Debug, thiserror::Error)]
pub enum HopError {
    #[error("cannot start the embedded proxy: {0}")]
    Embedded(std::io::Error),
    #[error("the Toxiproxy server at {0} does not answer")]
    NotRunning(String),
    #[error("creating proxy {name}: {detail}")]
    Create { name: String, detail: String },
    #[error("proxy {name} did not read back as created: {detail}")]
    ReadBack { name: String, detail: String },
    #[error("the Toxiproxy client failed: {0}")]
    Client(#[from] tokio::task::JoinError),
}

/// The embedded server: its API address, stopped (with every proxy) when dropped.
pub struct Embedded {
    pub api_addr: String,
    registry: Arc<Registry>,
    task: tokio::task::JoinHandle<()>,
}

impl Embedded {
    /// Reads how many connections each hop's proxy has accepted, for as long as the
    /// server runs.
    pub fn connection_counter(&self) -> ConnectionCounter {
        ConnectionCounter(self.registry.clone())
    }
}

/// The connections each hop's proxy in the embedded server has accepted. A user's Toxiproxy
/// does not say (its API has no such figure), so runs through one have no counter.
#[derive(Clone)]
pub struct ConnectionCounter(Arc<Registry>);

impl ConnectionCounter {
    /// By hop name, since each proxy was created.
    pub fn read(&self) -> BTreeMap<String, u64> {
        self.0
            .all()
            .iter()
            .filter_map(|proxy| {
                let hop = hop_of(&proxy.config().name)?;
                Some((hop.as_str().to_owned(), proxy.connections_accepted()))
            })
            .collect()
    }

    /// What each hop accepted between `before` (an earlier `read`) and now.
    pub fn since(&self, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
        self.read()
            .into_iter()
            .map(|(hop, now)| {
                let earlier = before.get(&hop).copied().unwrap_or(0);
                (hop, now.saturating_sub(earlier))
            })
            .collect()
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        self.registry.stop_all();
        self.task.abort();
    }
}

/// Starts the embedded Toxiproxy-compatible server on a free loopback port.
pub async fn start_embedded(seed: u64) -> Result<Embedded, HopError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(HopError::Embedded)?;
    let api_addr = listener
        .local_addr()
        .map_err(HopError::Embedded)?
        .to_string();
    let registry = Registry::new(seed);
    let served = registry.clone();
    let task = tokio::spawn(async move {
        let _ = api::serve(
            listener,
            served,
            api::Access::default(),
            std::future::pending(),
        )
        .await;
    });
    Ok(Embedded {
        api_addr,
        registry,
        task,
    })
}

/// The name of `hop`'s proxy for `shard`: the hop's own, but for the gateway of a sharded
/// run, which each shard has one of (`gateway-I`).
pub fn proxy_name(hop: Hop, shard: Shard) -> String {
    match hop {
        Hop::Gateway if !shard.is_whole() => format!("{}-{}", hop.as_str(), shard.index),
        _ => hop.as_str().to_owned(),
    }
}

/// The hop a proxy's name is of (`gateway-I` is a shard's gateway).
fn hop_of(name: &str) -> Option<Hop> {
    Hop::from_name(name).or_else(|| {
        let (hop, index) = name.rsplit_once('-')?;
        index.parse::<u32>().ok()?;
        Hop::from_name(hop).filter(|h| *h == Hop::Gateway)
    })
}

/// The proxies a run of `shard` creates: its gateway, and the upstream hops when it owns
/// the faults.
pub fn proxies_of(shard: Shard) -> Vec<String> {
    Hop::ALL
        .into_iter()
        .filter(|hop| *hop == Hop::Gateway || shard.owns_faults())
        .map(|hop| proxy_name(hop, shard))
        .collect()
}

/// Creates (or replaces) the proxy `name` listening on `listen` → `upstream`
/// (`http://host:port` or `host:port`) on the server at `api_addr`, reads it back, and
/// returns the address it listens on.
pub async fn create(
    api_addr: &str,
    name: &str,
    listen: &str,
    upstream: &str,
) -> Result<String, HopError> {
    let upstream = upstream.trim_start_matches("http://").trim_end_matches('/');
    let (api_addr, name, upstream, wanted_listen) = (
        api_addr.to_owned(),
        name.to_owned(),
        upstream.to_owned(),
        listen.to_owned(),
    );
    let task = tokio::task::spawn_blocking(move || {
        let client = Client::new(api_addr.as_str());
        if !client.is_running() {
            return Err(HopError::NotRunning(api_addr));
        }
        let created = client
            .populate(vec![ProxyPack::new(
                name.clone(),
                wanted_listen.clone(),
                upstream.clone(),
            )])
            .map_err(|detail| HopError::Create {
                name: name.clone(),
                detail,
            })?;
        let listen = created
            .first()
            .map(|p| p.proxy_pack.listen.clone())
            .ok_or_else(|| HopError::Create {
                name: name.clone(),
                detail: "empty answer".into(),
            })?;
        let back = client
            .find_proxy(&name)
            .map_err(|detail| HopError::ReadBack {
                name: name.clone(),
                detail,
            })?;
        let pack = &back.proxy_pack;
        if pack.upstream != upstream
            || pack.listen != listen
            || !pack.enabled
            || listen.ends_with(":0")
            || (wanted_listen != ANY_LOOPBACK_PORT && listen != wanted_listen)
        {
            return Err(HopError::ReadBack {
                name,
                detail: format!("{pack:?}"),
            });
        }
        Ok(listen)
    });
    task.await?
}

/// Deletes the proxies `names` from the server at `api_addr` (a run cleans up after itself
/// on a server it does not own). Failures are logged, not fatal: the run is over.
pub async fn remove(api_addr: &str, names: Vec<String>) {
    let api_addr = api_addr.to_owned();
    let task = tokio::task::spawn_blocking(move || {
        let client = Client::new(api_addr.as_str());
        for name in &names {
            if let Ok(proxy) = client.find_proxy(name) {
                if let Err(err) = proxy.delete() {
                    tracing::warn!(%err, name, "could not delete proxy");
                }
            }
        }
    });
    let _ = task.await;
}
