//! An HTTP/1.1 client for one server, built straight on hyper's connections with a pool of
//! its own: a request goes out on an idle keep-alive connection, or on a new one; a
//! connection that breaks, or that the server closes, is dropped, and so is one whose request
//! the caller gave up on (it may still carry the answer), and one left idle longer than
//! [`IDLE_TIMEOUT`].
//!
//! Nothing happens behind the caller's back: no retry, no redirect, no proxy. One call is one
//! request on the wire, which both money-moving callers need (the coordinator decides itself
//! whether a call goes again; the load generator counts every attempt). It also spares the
//! per-request work a general client does for those features (a URL parsed again per
//! request, a copy kept for a resend), which is most of what a call costs in user space at a
//! few thousand calls a second.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_TYPE, HOST};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

type Sender = SendRequest<Full<Bytes>>;

/// How long a connection may stay idle and still be reused. Servers and proxies close idle
/// connections after a while of their own; a request sent just as the server closes is lost
/// with the connection, and for a debit that makes the outcome unknown. Closing ours first
/// avoids that race against any server that keeps connections at least this long.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a call got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No connection could be made: the request never left.
    Connect,
    /// The connection broke while the request or its answer was under way.
    Transport,
}

impl Failure {
    /// A short name for logs and saga reasons.
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Connect => "connect",
            Failure::Transport => "transport",
        }
    }
}

/// An answer: its HTTP status and its whole body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
}

/// A server's base URL (`http://HOST:PORT[/PATH]`) taken apart once: what both clients need
/// to reach it and to name paths under it.
#[derive(Clone)]
pub(crate) struct Origin {
    /// `host:port` of the server, for connecting.
    pub(crate) authority: String,
    /// The same, as the `Host` header (built once: a header value is checked when made).
    pub(crate) host: HeaderValue,
    /// The base URL's path without its trailing slash (empty for a bare `http://host:port`).
    base_path: String,
}

impl Origin {
    pub(crate) fn parse(base_url: &str) -> anyhow::Result<Origin> {
        let uri: http::Uri = base_url
            .trim_end_matches('/')
            .parse()
            .map_err(|e| anyhow::anyhow!("bad URL {base_url}: {e}"))?;
        if uri.scheme_str() != Some("http") {
            anyhow::bail!("the URL must be http://HOST:PORT, got {base_url}");
        }
        let authority = uri
            .authority()
            .ok_or_else(|| anyhow::anyhow!("no host in {base_url}"))?
            .to_string();
        Ok(Origin {
            host: HeaderValue::from_str(&authority)?,
            authority,
            base_path: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    /// `path` under the base URL's path.
    pub(crate) fn path(&self, path: &str) -> String {
        format!("{}{path}", self.base_path)
    }

    /// A new TCP connection to the server, with Nagle's delay off.
    pub(crate) async fn connect(&self) -> Result<TokioIo<TcpStream>, Failure> {
        let stream = TcpStream::connect(&self.authority)
            .await
            .map_err(|_| Failure::Connect)?;
        let _ = stream.set_nodelay(true);
        Ok(TokioIo::new(stream))
    }
}

/// `POST uri` with `body` as JSON (no body and no content type when `body` is empty) and
/// `headers` besides.
pub(crate) fn build_request<U>(
    method: &http::Method,
    uri: U,
    headers: &[(HeaderName, HeaderValue)],
    body: Bytes,
) -> Result<http::Request<Full<Bytes>>, Failure>
where
    http::Uri: TryFrom<U>,
    <http::Uri as TryFrom<U>>::Error: Into<http::Error>,
{
    let with_body = !body.is_empty();
    let mut request = http::Request::builder()
        .method(method.clone())
        .uri(uri)
        .body(Full::new(body))
        .map_err(|_| Failure::Transport)?;
    let request_headers = request.headers_mut();
    if with_body {
        request_headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    for (name, value) in headers {
        request_headers.insert(name.clone(), value.clone());
    }
    Ok(request)
}

/// The whole body of `response`.
pub(crate) async fn read_body(
    response: http::Response<hyper::body::Incoming>,
) -> Result<Bytes, Failure> {
    Ok(response
        .into_body()
        .collect()
        .await
        .map_err(|_| Failure::Transport)?
        .to_bytes())
}

#[derive(Clone)]
pub struct KeepAliveClient {
    origin: Origin,
    /// Idle keep-alive connections with the time each came back, most recently used last.
    idle: Arc<Mutex<Vec<(Sender, Instant)>>>,
    /// Idle connections kept at most; more are closed when they come back.
    max_idle: usize,
    /// An idle connection older than this is closed instead of reused.
    idle_timeout: Duration,
}

impl KeepAliveClient {
    /// A client for the server at `base_url` (`http://HOST:PORT[/PATH]`).
    pub fn new(base_url: &str, max_idle: usize) -> anyhow::Result<KeepAliveClient> {
        Ok(KeepAliveClient {
            origin: Origin::parse(base_url)?,
            idle: Arc::new(Mutex::new(Vec::new())),
            max_idle: max_idle.max(1),
            idle_timeout: IDLE_TIMEOUT,
        })
    }

    /// The same client with idle connections closed after `idle_timeout` instead of
    /// [`IDLE_TIMEOUT`].
    pub fn with_idle_timeout(mut self, idle_timeout: Duration) -> KeepAliveClient {
        self.idle_timeout = idle_timeout;
        self
    }

    /// `path` under the base URL's path.
    pub fn path(&self, path: &str) -> String {
        self.origin.path(path)
    }

    fn idle(&self) -> MutexGuard<'_, Vec<(Sender, Instant)>> {
        match self.idle.lock() {
            Ok(idle) => idle,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    async fn connection(&self) -> Result<Sender, Failure> {
        loop {
            let Some((mut sender, idle_since)) = self.idle().pop() else {
                break;
            };
            if sender.is_closed() || idle_since.elapsed() > self.idle_timeout {
                continue;
            }
            if sender.ready().await.is_ok() {
                return Ok(sender);
            }
        }
        let (sender, connection) =
            hyper::client::conn::http1::handshake(self.origin.connect().await?)
                .await
                .map_err(|_| Failure::Connect)?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }

    fn give_back(&self, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle();
        if idle.len() < self.max_idle {
            idle.push((sender, Instant::now()));
        }
    }

    /// `POST path`: see [`KeepAliveClient::send`].
    pub async fn post(
        &self,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<Reply, Failure> {
        self.send(&http::Method::POST, path, headers, body).await
    }

    /// `method path` (a full path: see [`KeepAliveClient::path`]) with `body` as JSON (no
    /// body and no content type when `body` is empty) and `headers` besides. Dropping the
    /// future drops its connection.
    pub async fn send(
        &self,
        method: &http::Method,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<Reply, Failure> {
        let mut sender = self.connection().await?;
        let mut request = build_request(method, path, headers, body)?;
        request.headers_mut().insert(HOST, self.origin.host.clone());
        let response = sender
            .send_request(request)
            .await
            .map_err(|_| Failure::Transport)?;
        let status = response.status().as_u16();
        let keep_alive = !response
            .headers()
            .get(CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        let body = read_body(response).await?;
        if keep_alive {
            self.give_back(sender);
        }
        Ok(Reply { status, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_keep_the_base_path() {
        let bare = KeepAliveClient::new("http://127.0.0.1:8", 1).expect("url");
        assert_eq!(bare.path("/credits"), "/credits");
        let under = KeepAliveClient::new("http://127.0.0.1:9/ext/", 1).expect("url");
        assert_eq!(under.path("/debits"), "/ext/debits");
        assert!(KeepAliveClient::new("not a url", 1).is_err());
        assert!(KeepAliveClient::new("https://127.0.0.1:9", 1).is_err());
    }

    /// Answers every request on a connection with 200 and the request's path, and closes the
    /// connection after `close_after` requests.
    async fn echo_server(close_after: usize) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    for served in 1..=close_after {
                        let mut got = Vec::new();
                        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                            let Ok(n) = stream.read(&mut buf).await else {
                                return;
                            };
                            if n == 0 {
                                return;
                            }
                            got.extend_from_slice(&buf[..n]);
                        }
                        let text = String::from_utf8_lossy(&got).to_string();
                        let path = text.split(' ').nth(1).unwrap_or("").to_owned();
                        let close = if served == close_after {
                            "Connection: close\r\n"
                        } else {
                            ""
                        };
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n{close}\r\n{path}",
                            path.len()
                        );
                        if stream.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (url, accepted)
    }

    #[tokio::test]
    async fn connections_are_reused_until_the_server_closes_them() {
        let (url, accepted) = echo_server(2).await;
        let client = KeepAliveClient::new(&url, 4).expect("url");
        for n in 0..4 {
            let reply = client
                .post(&client.path(&format!("/r{n}")), &[], Bytes::new())
                .await
                .expect("answer");
            assert_eq!(reply.status, 200);
            assert_eq!(&reply.body[..], format!("/r{n}").as_bytes());
        }
        // Two requests per connection, then the server's `Connection: close`.
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_connection_idle_past_the_timeout_is_not_reused() {
        let (url, accepted) = echo_server(usize::MAX).await;
        let client = KeepAliveClient::new(&url, 4)
            .expect("url")
            .with_idle_timeout(Duration::from_secs(2));
        let accepted = || accepted.load(std::sync::atomic::Ordering::SeqCst);
        for _ in 0..2 {
            client
                .post("/fresh", &[], Bytes::new())
                .await
                .expect("answer");
        }
        assert_eq!(accepted(), 1, "reused while fresh");
        tokio::time::sleep(Duration::from_secs(3)).await;
        client
            .post("/stale", &[], Bytes::new())
            .await
            .expect("answer");
        assert_eq!(accepted(), 2, "a new connection after the idle timeout");
    }

    /// Both clients connect through `Origin::connect`.
    #[tokio::test]
    async fn a_refused_connection_is_a_connect_failure() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        drop(listener);
        let client = KeepAliveClient::new(&url, 1).expect("url");
        let failure = client
            .post("/x", &[], Bytes::new())
            .await
            .expect_err("nobody listens");
        assert_eq!(failure, Failure::Connect);
    }
}
