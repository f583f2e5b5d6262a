//! The load generator's HTTP client for `POST /transfers`, sorting each answer into an
//! [`Outcome`] the way `docs/contract.md` defines them.
//!
//! Built on hyper's HTTP/1 connections with a pool of its own: a request goes out on an
//! idle keep-alive connection, or on a new one; a connection that breaks, times out or is
//! closed by the server is dropped. Nothing is retried behind the generator's back: one
//! attempt in the history is one request on the wire.

use crate::history::Outcome;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What one attempt got back.
#[derive(Debug, Clone)]
pub struct Answer {
    pub outcome: Outcome,
    pub http_status: Option<u16>,
    pub error_kind: Option<String>,
    pub transfer_id: Option<String>,
    /// The answer's `reason` (why a transfer failed), when it gave one.
    pub reason: Option<String>,
}

type Sender = SendRequest<Full<Bytes>>;

#[derive(Clone)]
pub struct TransferClient {
    /// `host:port` of the coordinator, for connecting.
    authority: String,
    /// The same, as the `Host` header (built once: a header value is checked when made).
    host: http::HeaderValue,
    /// `/transfers` under the coordinator's base path.
    path: String,
    /// Idle keep-alive connections, most recently used last.
    idle: Arc<Mutex<Vec<Sender>>>,
    /// Idle connections kept at most; more are closed when they come back.
    max_idle: usize,
}

#[derive(serde::Deserialize)]
struct TransferAnswer {
    transfer_id: Option<String>,
    status: Option<String>,
    reason: Option<String>,
}

enum Failure {
    Connect,
    Transport,
    Timeout,
}

impl TransferClient {
    pub fn new(coordinator: &str, max_connections: usize) -> anyhow::Result<TransferClient> {
        let uri: http::Uri = coordinator.trim_end_matches('/').parse()?;
        if uri.scheme_str() != Some("http") {
            anyhow::bail!("the coordinator URL must be http://HOST:PORT, got {coordinator}");
        }
        let authority = uri
            .authority()
            .ok_or_else(|| anyhow::anyhow!("no host in {coordinator}"))?
            .to_string();
        let base = uri.path().trim_end_matches('/');
        Ok(TransferClient {
            host: http::HeaderValue::from_str(&authority)?,
            authority,
            path: format!("{base}/transfers"),
            idle: Arc::new(Mutex::new(Vec::new())),
            max_idle: max_connections.max(1),
        })
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Sender>> {
        match self.idle.lock() {
            Ok(idle) => idle,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    async fn connection(&self) -> Result<Sender, Failure> {
        loop {
            let Some(mut sender) = self.idle().pop() else {
                break;
            };
            if sender.is_closed() {
                continue;
            }
            if sender.ready().await.is_ok() {
                return Ok(sender);
            }
        }
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(|_| Failure::Connect)?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
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
            idle.push(sender);
        }
    }

    async fn exchange(&self, key: &str, body: String) -> Result<(u16, Bytes), Failure> {
        let mut sender = self.connection().await?;
        let mut request = http::Request::post(self.path.as_str())
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| Failure::Transport)?;
        let headers = request.headers_mut();
        headers.insert(http::header::HOST, self.host.clone());
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        headers.insert(
            http::HeaderName::from_static("idempotency-key"),
            http::HeaderValue::from_str(key).map_err(|_| Failure::Transport)?,
        );
        let response = sender
            .send_request(request)
            .await
            .map_err(|_| Failure::Transport)?;
        let status = response.status().as_u16();
        let keep_alive = !response
            .headers()
            .get(http::header::CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|_| Failure::Transport)?
            .to_bytes();
        if keep_alive {
            self.give_back(sender);
        }
        Ok((status, bytes))
    }

    /// Sends `POST /transfers` with `body` (a transfer request's JSON, see
    /// [`transfer_body`]) under idempotency key `key`.
    pub async fn send(&self, key: &str, body: String, timeout: Duration) -> Answer {
        // A timed-out exchange drops its connection with it: it may still carry the answer.
        let exchanged = match tokio::time::timeout(timeout, self.exchange(key, body)).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Timeout),
        };
        let (status, bytes) = match exchanged {
            Ok(answer) => answer,
            Err(failure) => {
                let kind = match failure {
                    Failure::Connect => "connect",
                    Failure::Transport => "transport",
                    Failure::Timeout => "timeout",
                };
                return Answer {
                    outcome: Outcome::Error,
                    http_status: None,
                    error_kind: Some(kind.to_owned()),
                    transfer_id: None,
                    reason: None,
                };
            }
        };
        let parsed: Option<TransferAnswer> = serde_json::from_slice(&bytes).ok();
        let transfer_id = parsed.as_ref().and_then(|a| a.transfer_id.clone());
        let reason = parsed.as_ref().and_then(|a| a.reason.clone());
        let said = parsed.as_ref().and_then(|a| a.status.as_deref());
        let (outcome, error_kind) = match (status, said) {
            (200, Some("completed")) => (Outcome::Completed, None),
            (202, Some("pending")) => (Outcome::Pending, None),
            (422, Some("failed")) => (Outcome::Failed, None),
            (503, _) => (Outcome::Shed, None),
            (s, _) if (500..600).contains(&s) => (Outcome::Error, Some("http_5xx".to_owned())),
            (s, _) if (400..500).contains(&s) => (Outcome::Error, Some(format!("http_{s}"))),
            _ => (Outcome::Error, Some("unexpected_answer".to_owned())),
        };
        Answer {
            outcome,
            http_status: Some(status),
            error_kind,
            transfer_id,
            reason,
        }
    }
}

/// The JSON of a transfer request, built in one pass (the generator makes one per request).
pub fn transfer_body(user_id: &str, account_id: &str, amount_cents: u64) -> String {
    format!(
        r#"{{"user_id":"{user_id}","external_account_id":"{account_id}","amount_cents":{amount_cents}}}"#
    )
}
