//! An HTTP/2 client for one server over a few shared connections (h2c with prior knowledge:
//! cleartext, no upgrade), built straight on hyper's connections.
//!
//! Calls are spread over the connections in turn, so many calls share each connection's
//! reads and writes: a few thousand calls a second cost far fewer system calls and wake-ups,
//! here and in every proxy on the way, than the same calls on one HTTP/1.1 connection each.
//!
//! What a fault does changes with it. A connection carries several calls at once, so a
//! fault on one connection (a reset, a data limit, a black hole) hits every call on it, and
//! a toxic's toxicity is drawn per connection, that is, for a share of the calls
//! (`docs/contract.md`, "Calls between the services"). A call the caller gave up on, or
//! whose connection broke, retires its connection: later calls go out on a new one, and the
//! calls still on the old one finish there (or time out by their own deadline). A retired
//! connection is closed once its last call is done, and cut off after [`RETIRE_GRACE`] at
//! the latest, so a black-holed connection does not outlive its calls.
//!
//! Like [`KeepAliveClient`](crate::keep_alive::KeepAliveClient), nothing happens behind the
//! caller's back: one call is one request, never resent.

use crate::keep_alive::{build_request, read_body, Failure, Origin, Reply};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http_body_util::Full;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::TokioExecutor;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::task::AbortHandle;

type Sender = SendRequest<Full<Bytes>>;

/// How long a retired connection may keep the calls it still carries before it is cut off.
pub const RETIRE_GRACE: Duration = Duration::from_secs(10);

/// The most connections one client keeps to its server.
pub const MAX_CONNECTIONS: usize = 64;

/// One open connection: a handle to send on, the task that drives it, and a number that
/// tells it apart from the connections the same slot had before.
#[derive(Clone)]
struct Connection {
    sender: Sender,
    driver: AbortHandle,
    number: u64,
}

#[derive(Default)]
struct Slot {
    live: Mutex<Option<Connection>>,
    /// Held while a new connection is made, so the calls that find the slot empty wait for
    /// one connection instead of each making its own.
    connecting: tokio::sync::Mutex<()>,
}

impl Slot {
    fn live(&self) -> MutexGuard<'_, Option<Connection>> {
        match self.live.lock() {
            Ok(live) => live,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The slot's connection, if it is still open.
    fn open(&self) -> Option<Connection> {
        self.live()
            .as_ref()
            .filter(|connection| !connection.sender.is_closed())
            .cloned()
    }

    /// Takes connection `number` out of use, if it is still the slot's, and cuts it off
    /// after [`RETIRE_GRACE`].
    fn retire(&self, number: u64) {
        let retired = {
            let mut live = self.live();
            match live.as_ref() {
                Some(connection) if connection.number == number => live.take(),
                _ => None,
            }
        };
        if let Some(connection) = retired {
            // Dropping the last handle lets hyper close the connection once its calls are
            // done; the abort is for a connection whose calls never end.
            let driver = connection.driver;
            drop(connection.sender);
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    tokio::time::sleep(RETIRE_GRACE).await;
                    driver.abort();
                });
            } else {
                driver.abort();
            }
        }
    }
}

struct Inner {
    origin: Origin,
    slots: Vec<Slot>,
    /// The slot the next call goes out on (modulo the number of slots).
    next_slot: AtomicUsize,
    next_number: AtomicU64,
}

#[derive(Clone)]
pub struct MultiplexClient {
    inner: Arc<Inner>,
}

impl MultiplexClient {
    /// A client for the server at `base_url` (`http://HOST:PORT[/PATH]`) over `connections`
    /// connections (1..=[`MAX_CONNECTIONS`]; made when first needed).
    pub fn new(base_url: &str, connections: usize) -> anyhow::Result<MultiplexClient> {
        let origin = Origin::parse(base_url)?;
        if !(1..=MAX_CONNECTIONS).contains(&connections) {
            anyhow::bail!("connections must be 1..={MAX_CONNECTIONS}, got {connections}");
        }
        Ok(MultiplexClient {
            inner: Arc::new(Inner {
                origin,
                slots: (0..connections).map(|_| Slot::default()).collect(),
                next_slot: AtomicUsize::new(0),
                next_number: AtomicU64::new(0),
            }),
        })
    }

    /// `path` under the base URL's path.
    pub fn path(&self, path: &str) -> String {
        self.inner.origin.path(path)
    }

    async fn connection(&self, slot: &Slot) -> Result<Connection, Failure> {
        if let Some(connection) = slot.open() {
            return Ok(connection);
        }
        let _connecting = slot.connecting.lock().await;
        if let Some(connection) = slot.open() {
            return Ok(connection);
        }
        let (sender, driver) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .handshake(self.inner.origin.connect().await?)
            .await
            .map_err(|_| Failure::Connect)?;
        let driver = tokio::spawn(async move {
            let _ = driver.await;
        })
        .abort_handle();
        let connection = Connection {
            sender,
            driver,
            number: self.inner.next_number.fetch_add(1, Ordering::Relaxed),
        };
        *slot.live() = Some(connection.clone());
        Ok(connection)
    }

    /// `POST path`: see [`MultiplexClient::send`].
    pub async fn post(
        &self,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<Reply, Failure> {
        self.send(&http::Method::POST, path, headers, body).await
    }

    /// `method path` (a full path: see [`MultiplexClient::path`]) with `body` as JSON (no
    /// body and no content type when `body` is empty) and `headers` besides. Dropping the
    /// future cancels the call and retires its connection.
    pub async fn send(
        &self,
        method: &http::Method,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<Reply, Failure> {
        let index = self.inner.next_slot.fetch_add(1, Ordering::Relaxed) % self.inner.slots.len();
        let slot = &self.inner.slots[index];
        let connection = self.connection(slot).await?;
        let mut in_use = InUse {
            slot,
            number: connection.number,
            done: false,
        };
        let mut sender = connection.sender;
        // HTTP/2 names the server in the request's URI (`:authority`), not in a Host header.
        let uri = http::Uri::builder()
            .scheme("http")
            .authority(self.inner.origin.authority.as_str())
            .path_and_query(path)
            .build()
            .map_err(|_| Failure::Transport)?;
        let response = sender
            .send_request(build_request(method, uri, headers, body)?)
            .await
            .map_err(|_| Failure::Transport)?;
        let status = response.status().as_u16();
        let body = read_body(response).await?;
        in_use.done = true;
        Ok(Reply { status, body })
    }
}

/// A call under way on connection `number` of `slot`: unless the call ends with an answer,
/// its connection is retired.
struct InUse<'a> {
    slot: &'a Slot,
    number: u64,
    done: bool,
}

impl Drop for InUse<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.slot.retire(self.number);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper_util::rt::TokioIo;

    /// URLs are checked by `Origin::parse`, tested with the HTTP/1.1 client.
    #[test]
    fn connection_counts_are_checked() {
        assert!(MultiplexClient::new("http://127.0.0.1:9", 1).is_ok());
        assert!(MultiplexClient::new("http://127.0.0.1:9", 0).is_err());
        assert!(MultiplexClient::new("http://127.0.0.1:9", MAX_CONNECTIONS + 1).is_err());
    }

    /// An h2c server that answers every call with its path after `delay`, counting the
    /// connections it accepted.
    async fn server(delay: Duration) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let service = hyper::service::service_fn(move |request: http::Request<_>| {
                    let path = request.uri().path().to_owned();
                    async move {
                        tokio::time::sleep(delay).await;
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                            Bytes::from(path),
                        )))
                    }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (url, accepted)
    }

    #[tokio::test]
    async fn calls_share_the_connections_in_turn() {
        let (url, accepted) = server(Duration::from_millis(50)).await;
        let client = MultiplexClient::new(&url, 2).expect("url");
        let calls = (0..20).map(|n| {
            let client = client.clone();
            async move { client.post(&format!("/c{n}"), &[], Bytes::new()).await }
        });
        for (n, reply) in futures_util::future::join_all(calls)
            .await
            .into_iter()
            .enumerate()
        {
            let reply = reply.expect("answer");
            assert_eq!(reply.status, 200);
            assert_eq!(&reply.body[..], format!("/c{n}").as_bytes());
        }
        // Twenty calls at once on two connections, made once each.
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_call_given_up_on_retires_its_connection() {
        let (url, accepted) = server(Duration::from_secs(5)).await;
        let client = MultiplexClient::new(&url, 1).expect("url");
        let call = client.post("/slow", &[], Bytes::new());
        assert!(tokio::time::timeout(Duration::from_millis(200), call)
            .await
            .is_err());
        let call = client.post("/again", &[], Bytes::new());
        assert!(tokio::time::timeout(Duration::from_millis(200), call)
            .await
            .is_err());
        // The server counts a connection when its accept loop gets to it: wait for that.
        let waited = tokio::time::timeout(Duration::from_secs(10), async {
            while accepted.load(Ordering::SeqCst) < 2 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        assert!(
            waited.await.is_ok(),
            "the next call goes out on a new connection"
        );
    }
}
