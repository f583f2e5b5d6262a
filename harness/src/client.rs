//! The load generator's HTTP client for `POST /transfers`, sorting each answer into an
//! [`Outcome`] the way `docs/contract.md` defines them: a request is the contract's
//! [`TransferRequest`], an answer counts only as the contract's [`TransferView`] with the
//! HTTP status its `status` carries, and an error answer's code is kept when it is the
//! contract's [`ErrorBody`].
//!
//! Built on hyper's HTTP/1 connections with a pool of its own: a request goes out on an
//! idle keep-alive connection, or on a new one; a connection that breaks, times out or is
//! closed by the server is dropped. Nothing is retried behind the generator's back: one
//! attempt in the history is one request on the wire.

use crate::history::Outcome;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use service::contract::{routes, ErrorBody, TransferRequest, TransferView};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The `error_kind` of an attempt with no usable answer. A connection refused means the
/// request never left; a timeout, a broken connection, a 5xx or an answer the contract does
/// not know leave it indeterminate: it may still have been applied.
pub mod kind {
    pub const CONNECT: &str = "connect";
    pub const TRANSPORT: &str = "transport";
    pub const TIMEOUT: &str = "timeout";
    pub const HTTP_5XX: &str = "http_5xx";
    pub const UNEXPECTED_ANSWER: &str = "unexpected_answer";
    pub const UNSERIALIZABLE_REQUEST: &str = "unserializable_request";

    /// Whether an error of this kind leaves the request's fate unknown.
    pub fn indeterminate(kind: &str) -> bool {
        matches!(kind, TRANSPORT | TIMEOUT | HTTP_5XX | UNEXPECTED_ANSWER)
    }
}

/// What one attempt got back.
#[derive(Debug, Clone)]
pub struct Answer {
    pub outcome: Outcome,
    pub http_status: Option<u16>,
    pub error_kind: Option<String>,
    pub transfer_id: Option<String>,
    /// The answer's `reason` (why a transfer failed), or an error answer's code.
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
            path: format!("{base}{}", routes::TRANSFERS),
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

    async fn exchange(&self, key: &str, body: Vec<u8>) -> Result<(u16, Bytes), Failure> {
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
            routes::IDEMPOTENCY_KEY_HEADER,
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

    /// Sends `POST /transfers` with `request` under idempotency key `key`.
    pub async fn send(&self, key: &str, request: &TransferRequest, timeout: Duration) -> Answer {
        let body = match serde_json::to_vec(request) {
            Ok(body) => body,
            Err(_) => return Answer::failed(kind::UNSERIALIZABLE_REQUEST),
        };
        // A timed-out exchange drops its connection with it: it may still carry the answer.
        let exchanged = match tokio::time::timeout(timeout, self.exchange(key, body)).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Timeout),
        };
        match exchanged {
            Ok((status, bytes)) => classify(status, &bytes),
            Err(Failure::Connect) => Answer::failed(kind::CONNECT),
            Err(Failure::Transport) => Answer::failed(kind::TRANSPORT),
            Err(Failure::Timeout) => Answer::failed(kind::TIMEOUT),
        }
    }
}

impl Answer {
    /// No usable answer: `kind` says why.
    fn failed(kind: &str) -> Answer {
        Answer {
            outcome: Outcome::Error,
            http_status: None,
            error_kind: Some(kind.to_owned()),
            transfer_id: None,
            reason: None,
        }
    }
}

/// Sorts an answer: a transfer answer whose HTTP status is the one its `status` carries
/// keeps its promise's outcome; 503 is load shed; any other status is an error, with the
/// contract's error code as the reason when the body has one.
fn classify(status: u16, body: &[u8]) -> Answer {
    if let Ok(view) = serde_json::from_slice::<TransferView>(body) {
        if view.status.http_status() == status {
            return Answer {
                outcome: view.status.into(),
                http_status: Some(status),
                error_kind: None,
                transfer_id: Some(view.transfer_id.to_string()),
                reason: view.reason,
            };
        }
    }
    let code = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|e| e.error.code.as_str().to_owned());
    let (outcome, error_kind) = match status {
        503 => (Outcome::Shed, None),
        500..=599 => (Outcome::Error, Some(kind::HTTP_5XX.to_owned())),
        400..=499 => (Outcome::Error, Some(format!("http_{status}"))),
        _ => (Outcome::Error, Some(kind::UNEXPECTED_ANSWER.to_owned())),
    };
    Answer {
        outcome,
        http_status: Some(status),
        error_kind,
        transfer_id: None,
        reason: code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use service::contract::{ClientStatus, ErrorCode, ErrorDetail, SagaState};
    use service::ids::{AccountId, TransferId, UserId};
    use service::money::AmountCents;

    fn view(status: ClientStatus) -> Vec<u8> {
        serde_json::to_vec(&TransferView {
            transfer_id: TransferId::parse("t-1").expect("id"),
            status,
            state: Some(SagaState::Started),
            user_id: UserId::parse("u-1").expect("id"),
            external_account_id: AccountId::parse("a-1").expect("id"),
            amount_cents: AmountCents::new(5),
            reason: None,
        })
        .expect("serializes")
    }

    #[test]
    fn an_answer_keeps_its_promise_only_with_the_status_that_goes_with_it() {
        for status in ClientStatus::ALL {
            let answer = classify(status.http_status(), &view(status));
            assert_eq!(answer.outcome, Outcome::from(status), "{status:?}");
            assert_eq!(answer.transfer_id.as_deref(), Some("t-1"));
        }
        // `completed` under 202 is not a promise the contract knows.
        let mixed = classify(202, &view(ClientStatus::Completed));
        assert_eq!(mixed.outcome, Outcome::Error);
        // A 200 whose body is not a transfer answer is not a completed transfer.
        let bare = classify(200, br#"{"status":"completed"}"#);
        assert_eq!(bare.outcome, Outcome::Error);
        assert_eq!(bare.error_kind.as_deref(), Some(kind::UNEXPECTED_ANSWER));
    }

    #[test]
    fn error_answers_keep_their_code() {
        let body = |code| {
            serde_json::to_vec(&ErrorBody {
                error: ErrorDetail {
                    code,
                    message: "m".into(),
                },
            })
            .expect("serializes")
        };
        let shed = classify(503, &body(ErrorCode::Overloaded));
        assert_eq!(shed.outcome, Outcome::Shed);
        let conflict = classify(409, &body(ErrorCode::IdempotencyKeyReused));
        assert_eq!(conflict.outcome, Outcome::Error);
        assert_eq!(conflict.error_kind.as_deref(), Some("http_409"));
        assert_eq!(conflict.reason.as_deref(), Some("idempotency_key_reused"));
    }
}
