//! The proxies the harness puts on each hop: `gateway` (harness → coordinator), `external`
//! (coordinator → external institution) and `ledger` (coordinator → ledger). They live in
//! the embedded Toxiproxy-compatible server, or in an existing Toxiproxy given with
//! `--toxiproxy URL`; either way they are created with `toxiproxy_rust` (a blocking client
//! that panics on transport errors, so it runs off the async runtime) and read back.
//! Seeding, dumps and the saga log bypass the proxies: faults never touch the evidence.

use crate::proxy::{api, Registry};
use std::sync::Arc;
use toxiproxy_rust::client::Client;
use toxiproxy_rust::proxy::ProxyPack;

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
}

/// The embedded server: its API address, stopped (with every proxy) when dropped.
pub struct Embedded {
    pub api_addr: String,
    registry: Arc<Registry>,
    task: tokio::task::JoinHandle<()>,
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
        let _ = api::serve(listener, served, std::future::pending()).await;
    });
    Ok(Embedded {
        api_addr,
        registry,
        task,
    })
}

/// Creates (or replaces) proxy `name` → `upstream` (`host:port`) on the server at
/// `api_addr`, reads it back, and returns the address it listens on.
pub async fn create(api_addr: &str, name: &str, upstream: &str) -> Result<String, HopError> {
    let (api_addr, name, upstream) = (api_addr.to_owned(), name.to_owned(), upstream.to_owned());
    let task = tokio::task::spawn_blocking(move || {
        let client = Client::new(api_addr.as_str());
        if !client.is_running() {
            return Err(HopError::NotRunning(api_addr));
        }
        let created = client
            .populate(vec![ProxyPack::new(
                name.clone(),
                "127.0.0.1:0".into(),
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
        {
            return Err(HopError::ReadBack {
                name,
                detail: format!("{pack:?}"),
            });
        }
        Ok(listen)
    });
    task.await.map_err(|e| HopError::Create {
        name: "(client)".into(),
        detail: format!("the Toxiproxy client failed: {e}"),
    })?
}

/// Deletes the named proxies from the server at `api_addr` (a run cleans up after itself
/// on a server it does not own). Failures are logged, not fatal: the run is over.
pub async fn remove(api_addr: &str, names: &[&str]) {
    let api_addr = api_addr.to_owned();
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let task = tokio::task::spawn_blocking(move || {
        let client = Client::new(api_addr.as_str());
        for name in names {
            if let Ok(proxy) = client.find_proxy(&name) {
                if let Err(err) = proxy.delete() {
                    tracing::warn!(%err, name, "could not delete proxy");
                }
            }
        }
    });
    let _ = task.await;
}
