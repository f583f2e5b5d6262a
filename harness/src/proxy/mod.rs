//! A Toxiproxy-compatible TCP proxy, embedded in the harness (and standalone as
//! `harness toxiproxy`): the 2.x REST API, every toxic, toxicity per connection, both streams.
//!
//! - `toxic`: toxics, their JSON and defaults.
//! - `link`: one proxied connection through the toxics of each direction.
//! - `listen`: binding a listen address, failing in Toxiproxy's words.
//! - `threads`: the threads that carry the connections, one current-thread runtime each.
//! - `api`: the REST API (`/proxies`, `/populate`, `/reset`, `/version`, toxics).

pub mod api;
mod link;
mod listen;
pub(crate) mod threads;
pub mod toxic;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle};
use toxic::Toxic;

/// The most connections one proxy holds open at once (`harness toxiproxy
/// --max-connections`). One more is accepted and closed at once, and counted: a client
/// that opens connections without end runs into this, not into the harness's file
/// descriptors. Toxiproxy itself has no such bound; no load a run makes comes near it (the
/// reference coordinator's ceiling on transfers in flight is 512 by default).
pub const MAX_LINKS_PER_PROXY: usize = 4096;

/// How long the listener waits after a failed accept (out of file descriptors, say) before
/// it tries again, instead of spinning.
const ACCEPT_RETRY: std::time::Duration = std::time::Duration::from_millis(10);

/// A proxy's configuration as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    pub name: String,
    pub listen: String,
    pub upstream: String,
    pub enabled: bool,
}

/// One open connection: aborted (closed) when its proxy stops, woken when its toxics change.
struct Link {
    task: AbortHandle,
    signal: Arc<link::LinkSignal>,
}

struct Running {
    bound: SocketAddr,
    accept: JoinHandle<()>,
    /// Connections of this proxy.
    connections: Arc<Mutex<Vec<Link>>>,
}

impl Running {
    /// Aborts the listener and every connection, and waits until the listener is closed:
    /// once this returns, new connections are refused (the API answers only then).
    async fn stop(self) {
        self.accept.abort();
        {
            let connections = lock(&self.connections);
            for c in connections.iter() {
                c.task.abort();
            }
        }
        let _ = self.accept.await;
    }

    /// For drop paths that cannot wait.
    fn abort(self) {
        self.accept.abort();
        for c in lock(&self.connections).iter() {
            c.task.abort();
        }
    }
}

pub struct Proxy {
    config: Mutex<ProxyConfig>,
    /// The current toxics; every link watches them.
    toxics: watch::Sender<Arc<Vec<Toxic>>>,
    running: Mutex<Option<Running>>,
    /// Numbers connections, for seeded toxicity decisions.
    accepted: Arc<AtomicU64>,
    /// Connections closed at once because `link_limit` were open.
    turned_away: Arc<AtomicU64>,
    link_limit: usize,
    seed: u64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Proxy {
    fn new(config: ProxyConfig, seed: u64, link_limit: usize) -> Proxy {
        Proxy {
            config: Mutex::new(config),
            toxics: watch::channel(Arc::new(Vec::new())).0,
            running: Mutex::new(None),
            accepted: Arc::new(AtomicU64::new(0)),
            turned_away: Arc::new(AtomicU64::new(0)),
            link_limit,
            seed,
        }
    }

    pub fn config(&self) -> ProxyConfig {
        let mut config = lock(&self.config).clone();
        if let Some(running) = lock(&self.running).as_ref() {
            config.listen = running.bound.to_string();
        }
        config
    }

    /// The connections this proxy has accepted since it was created.
    pub fn connections_accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// The connections closed at once because the proxy held its limit open.
    pub fn connections_turned_away(&self) -> u64 {
        self.turned_away.load(Ordering::Relaxed)
    }

    pub fn toxics(&self) -> Arc<Vec<Toxic>> {
        self.toxics.borrow().clone()
    }

    pub fn set_toxics(&self, toxics: Vec<Toxic>) {
        self.toxics.send_replace(Arc::new(toxics));
        if let Some(running) = lock(&self.running).as_ref() {
            for c in lock(&running.connections).iter() {
                c.signal.wake();
            }
        }
    }

    /// Binds the listen address and starts accepting. An error is the OS's bind error.
    async fn start(&self) -> std::io::Result<()> {
        if lock(&self.running).is_some() {
            return Ok(());
        }
        let (listen, upstream) = {
            let config = lock(&self.config);
            (config.listen.clone(), config.upstream.clone())
        };
        // Toxiproxy's words for a listen address it cannot bind (its API answers 500).
        let listener = listen::bind(&listen).await?;
        let bound = listener.local_addr()?;
        // As Toxiproxy does: the proxy keeps the address it got, so port 0 is resolved once
        // and a disabled proxy comes back on the same port.
        lock(&self.config).listen = bound.to_string();
        let connections: Arc<Mutex<Vec<Link>>> = Arc::default();
        let tracked = connections.clone();
        let toxics = self.toxics.subscribe();
        let accepted = self.accepted.clone();
        let turned_away = self.turned_away.clone();
        let link_limit = self.link_limit;
        let seed = self.seed;
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                };
                let mut list = lock(&tracked);
                list.retain(|c| !c.task.is_finished());
                if list.len() >= link_limit {
                    turned_away.fetch_add(1, Ordering::Relaxed);
                    drop(client);
                    continue;
                }
                let n = accepted.fetch_add(1, Ordering::Relaxed);
                let link_seed = seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                // Off this runtime: the link thread registers the socket with its own driver.
                let Ok(client) = client.into_std() else {
                    continue;
                };
                let signal = Arc::new(link::LinkSignal::default());
                let task = threads::spawn_link(link::serve(
                    client,
                    upstream.clone(),
                    toxics.clone(),
                    link_seed,
                    signal.clone(),
                ));
                list.push(Link { task, signal });
            }
        });
        *lock(&self.running) = Some(Running {
            bound,
            accept,
            connections,
        });
        Ok(())
    }

    /// Closes the listener and every connection; returns once the listener is closed.
    async fn stop(&self) {
        let running = lock(&self.running).take();
        if let Some(running) = running {
            running.stop().await;
        }
    }

    fn abort(&self) {
        if let Some(running) = lock(&self.running).take() {
            running.abort();
        }
    }
}

/// Every proxy of one server, by name.
pub struct Registry {
    proxies: Mutex<BTreeMap<String, Arc<Proxy>>>,
    seed: u64,
    /// The most connections each proxy holds open at once.
    link_limit: usize,
}

#[derive(Debug)]
pub enum ProxyError {
    NotFound,
    Exists,
    Io(std::io::Error),
}

impl Registry {
    pub fn new(seed: u64) -> Arc<Registry> {
        Self::with_link_limit(seed, MAX_LINKS_PER_PROXY)
    }

    /// A registry whose proxies each hold at most `link_limit` connections open.
    pub fn with_link_limit(seed: u64, link_limit: usize) -> Arc<Registry> {
        Arc::new(Registry {
            proxies: Mutex::new(BTreeMap::new()),
            seed,
            link_limit,
        })
    }

    pub fn get(&self, name: &str) -> Option<Arc<Proxy>> {
        lock(&self.proxies).get(name).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Proxy>> {
        lock(&self.proxies).values().cloned().collect()
    }

    fn seed_of(&self, name: &str) -> u64 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(name, &mut hasher);
        self.seed ^ std::hash::Hasher::finish(&hasher)
    }

    /// Creates (and, if enabled, starts) a proxy. Duplicate names are refused before binding.
    pub async fn create(&self, config: ProxyConfig) -> Result<Arc<Proxy>, ProxyError> {
        if lock(&self.proxies).contains_key(&config.name) {
            return Err(ProxyError::Exists);
        }
        let enabled = config.enabled;
        let proxy = Arc::new(Proxy::new(
            config.clone(),
            self.seed_of(&config.name),
            self.link_limit,
        ));
        if enabled {
            proxy.start().await.map_err(ProxyError::Io)?;
        }
        let raced = {
            let mut proxies = lock(&self.proxies);
            let raced = proxies.contains_key(&config.name);
            if !raced {
                proxies.insert(config.name, proxy.clone());
            }
            raced
        };
        if raced {
            proxy.stop().await;
            return Err(ProxyError::Exists);
        }
        Ok(proxy)
    }

    /// Changes listen, upstream or enabled. A new listen or upstream restarts the proxy
    /// (dropping its connections); enabled=false closes the listener and every connection.
    pub async fn update(
        &self,
        name: &str,
        listen: Option<String>,
        upstream: Option<String>,
        enabled: Option<bool>,
    ) -> Result<Arc<Proxy>, ProxyError> {
        let proxy = self.get(name).ok_or(ProxyError::NotFound)?;
        let (restart, enable) = {
            let mut config = lock(&proxy.config);
            let mut restart = false;
            if let Some(listen) = listen {
                restart |= listen != config.listen;
                config.listen = listen;
            }
            if let Some(upstream) = upstream {
                restart |= upstream != config.upstream;
                config.upstream = upstream;
            }
            if let Some(enabled) = enabled {
                config.enabled = enabled;
            }
            (restart, config.enabled)
        };
        if restart || !enable {
            proxy.stop().await;
        }
        if enable {
            proxy.start().await.map_err(ProxyError::Io)?;
        }
        Ok(proxy)
    }

    pub async fn delete(&self, name: &str) -> Result<(), ProxyError> {
        let proxy = lock(&self.proxies)
            .remove(name)
            .ok_or(ProxyError::NotFound)?;
        proxy.stop().await;
        Ok(())
    }

    /// `/reset`: every proxy enabled, every toxic removed.
    pub async fn reset(&self) -> Result<(), ProxyError> {
        for proxy in self.all() {
            proxy.set_toxics(Vec::new());
            lock(&proxy.config).enabled = true;
            proxy.start().await.map_err(ProxyError::Io)?;
        }
        Ok(())
    }

    /// Stops every proxy (on shutdown and drop paths, without waiting).
    pub fn stop_all(&self) {
        for proxy in self.all() {
            proxy.abort();
        }
    }
}
