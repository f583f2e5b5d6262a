//! The load generator's HTTP client for `POST /transfers`, sorting each answer into an
//! [`Outcome`] the way `docs/contract.md` defines them: a request is the contract's
//! [`TransferRequest`], an answer counts only as the contract's [`TransferView`] with the
//! HTTP status its `status` carries, and an error answer's code is kept when it is the
//! contract's [`ErrorBody`].
//!
//! Sent over `service::http_client` (HTTP/1.1, or HTTP/2 when the profile says so): one
//! attempt in the history is one request on the wire, and nothing is retried behind the
//! generator's back.

use crate::history::Outcome;
use crate::mapping::first_answers::FirstAnswers;
use crate::mapping::outcome::{MappedOutcome, Sorted};
use crate::mapping::template::{decimal, var, Vars};
use crate::mapping::CompiledApi;
use service::contract::{routes, ErrorBody, TransferRequest, TransferView};
use service::http_client::HttpClient;
use service::keep_alive::Failure;
use std::sync::Arc;
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
    /// An answer of a mapped API that no `api.outcome` rule matches.
    pub const UNMAPPED: &str = "unmapped";

    /// Whether an error of this kind leaves the request's fate unknown.
    pub fn indeterminate(kind: &str) -> bool {
        matches!(
            kind,
            TRANSPORT | TIMEOUT | HTTP_5XX | UNEXPECTED_ANSWER | UNMAPPED
        )
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

#[derive(Clone)]
pub struct TransferClient {
    http: HttpClient,
    /// `/transfers` under the coordinator's base path.
    path: String,
    /// The `Idempotency-Key` header's name (checked once).
    key_header: http::HeaderName,
    /// The system's own API, when it does not speak the contract.
    api: Option<Arc<CompiledApi>>,
    /// The watch over the first answers of the mapped API, which judges its rules.
    first_answers: Option<Arc<FirstAnswers>>,
}

/// How much of an unmapped answer's body its record keeps, as an example.
pub const UNMAPPED_EXAMPLE_BYTES: usize = 160;

impl TransferClient {
    /// A client for the coordinator at `coordinator`: over `http2_connections` HTTP/2
    /// connections, or with 0, over HTTP/1.1 keeping up to `max_connections` idle.
    pub fn new(
        coordinator: &str,
        http2_connections: usize,
        max_connections: usize,
    ) -> anyhow::Result<TransferClient> {
        let http = HttpClient::new(coordinator, http2_connections, max_connections)
            .map_err(|e| anyhow::anyhow!("the coordinator URL: {e:#}"))?;
        Ok(TransferClient {
            path: http.path(routes::TRANSFERS),
            http,
            key_header: http::HeaderName::from_bytes(routes::IDEMPOTENCY_KEY_HEADER.as_bytes())?,
            api: None,
            first_answers: None,
        })
    }

    /// The same client speaking the system's own API instead of the contract.
    pub fn through(mut self, api: Option<Arc<CompiledApi>>) -> TransferClient {
        self.first_answers = api
            .as_ref()
            .map(|api| Arc::new(FirstAnswers::new(api.submit_rules.transfer_id_pointer())));
        self.api = api;
        self
    }

    /// The watch over the mapped API's first answers (None on the contract).
    pub fn first_answers(&self) -> Option<Arc<FirstAnswers>> {
        self.first_answers.clone()
    }

    /// Asks for the transfer `request` under idempotency key `key`, the `request_n`-th of the
    /// schedule: `POST /transfers`, or the mapped API's `submit`.
    pub async fn send(
        &self,
        key: &str,
        request: &TransferRequest,
        request_n: u64,
        timeout: Duration,
    ) -> Answer {
        if let Some(api) = &self.api {
            return self
                .send_mapped(api, key, request, request_n, timeout)
                .await;
        }
        let body = match serde_json::to_vec(request) {
            Ok(body) => body,
            Err(_) => return Answer::failed(kind::UNSERIALIZABLE_REQUEST),
        };
        let Ok(key) = http::HeaderValue::from_str(key) else {
            return Answer::failed(kind::TRANSPORT);
        };
        let headers = [(self.key_header.clone(), key)];
        // A timed-out exchange gives its connection up with it: it may still carry the answer.
        let exchange = self.http.post(&self.path, &headers, body.into());
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(reply)) => classify(reply.status, &reply.body),
            Ok(Err(Failure::Connect)) => Answer::failed(kind::CONNECT),
            Ok(Err(Failure::Transport)) => Answer::failed(kind::TRANSPORT),
            Err(_) => Answer::failed(kind::TIMEOUT),
        }
    }
}

impl TransferClient {
    async fn send_mapped(
        &self,
        api: &CompiledApi,
        key: &str,
        request: &TransferRequest,
        request_n: u64,
        timeout: Duration,
    ) -> Answer {
        let vars = submission_vars(api, key, request, request_n);
        let Ok(rendered) = api.submit.render(&vars) else {
            return Answer::failed(kind::UNSERIALIZABLE_REQUEST);
        };
        let path = self.http.path(&rendered.path);
        let body = rendered.body.unwrap_or_default();
        let exchange = self
            .http
            .send(&rendered.method, &path, &rendered.headers, body.into());
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(reply)) => {
                let sorted = api.submit_rules.sort(reply.status, &reply.body);
                if let Some(watch) = &self.first_answers {
                    watch.see(reply.status, &sorted, &reply.body);
                }
                answer_of(sorted, reply.status, &reply.body)
            }
            Ok(Err(Failure::Connect)) => Answer::failed(kind::CONNECT),
            Ok(Err(Failure::Transport)) => Answer::failed(kind::TRANSPORT),
            Err(_) => Answer::failed(kind::TIMEOUT),
        }
    }
}

/// The variables of a submission.
pub fn submission_vars<'a>(
    api: &'a CompiledApi,
    key: &'a str,
    request: &'a TransferRequest,
    request_n: u64,
) -> Vars<'a> {
    let cents = request.amount_cents.balance().map_or(0, |a| a.get());
    Vars::default()
        .with(var::USER_ID, request.user_id.as_str())
        .with(
            var::EXTERNAL_ACCOUNT_ID,
            request.external_account_id.as_str(),
        )
        .with(var::AMOUNT_CENTS, cents)
        .with(var::AMOUNT, decimal(cents, api.currency_exponent))
        .with(var::CURRENCY, api.currency.as_str())
        .with(var::IDEMPOTENCY_KEY, key)
        .with(var::REQUEST_N, request_n)
}

/// An answer of the mapped API as its rules sorted it. An answer no rule matches is an error
/// of kind `unmapped`, with the start of its body kept as an example; it is never a success.
fn answer_of(sorted: Sorted, status: u16, body: &[u8]) -> Answer {
    let (outcome, error_kind, reason) = match sorted.outcome {
        Some(MappedOutcome::Succeeded) => (Outcome::Completed, None, None),
        Some(MappedOutcome::Failed) => (Outcome::Failed, None, None),
        Some(MappedOutcome::Pending) => (Outcome::Pending, None, None),
        Some(MappedOutcome::Shed) => (Outcome::Shed, None, None),
        Some(MappedOutcome::Rejected | MappedOutcome::NotFound) => {
            (Outcome::Error, Some(format!("http_{status}")), None)
        }
        None => {
            let end = body.len().min(UNMAPPED_EXAMPLE_BYTES);
            let example = String::from_utf8_lossy(&body[..end]).into_owned();
            (
                Outcome::Error,
                Some(kind::UNMAPPED.to_owned()),
                Some(format!("{status} {example}")),
            )
        }
    };
    Answer {
        outcome,
        http_status: Some(status),
        error_kind,
        transfer_id: sorted.transfer_id,
        reason,
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

    fn sort_mapped(api: &CompiledApi, status: u16, body: &[u8]) -> Answer {
        answer_of(api.submit_rules.sort(status, body), status, body)
    }
    use bytes::Bytes;
    use http_body_util::Full;
    use hyper::service::service_fn;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use service::contract::{ClientStatus, ErrorCode, ErrorDetail, SagaState};
    use service::ids::{AccountId, TransferId, UserId};
    use service::money::AmountCents;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

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

    /// A server that speaks only HTTP/2 (h2c, prior knowledge) and answers every request with
    /// a completed transfer; it counts the connections it accepts.
    async fn h2_only_server() -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let answer = service_fn(|_request| async {
                    let body = Full::new(Bytes::from(view(ClientStatus::Completed)));
                    Ok::<_, std::convert::Infallible>(http::Response::new(body))
                });
                tokio::spawn(
                    hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), answer),
                );
            }
        });
        (url, accepted)
    }

    #[tokio::test]
    async fn with_http2_connections_requests_go_over_http2_and_share_them() {
        let (url, accepted) = h2_only_server().await;
        let request = crate::population::Names::default().transfer_request(1, AmountCents::new(5));
        let timeout = Duration::from_secs(30);
        let client = TransferClient::new(&url, 2, 100).expect("client");
        let sends = (0..20).map(|n| {
            let (client, request) = (client.clone(), request.clone());
            async move { client.send(&format!("k-{n}"), &request, n, timeout).await }
        });
        for answer in futures_util::future::join_all(sends).await {
            assert_eq!(answer.outcome, Outcome::Completed, "{answer:?}");
        }
        assert!(
            accepted.load(Ordering::SeqCst) <= 2,
            "20 requests on 2 connections"
        );
        // Over HTTP/1.1 the same server gives no answer the contract knows.
        let http1 = TransferClient::new(&url, 0, 100).expect("client");
        let answer = http1.send("k-1", &request, 1, timeout).await;
        assert_eq!(answer.outcome, Outcome::Error, "{answer:?}");
    }

    #[test]
    fn an_answer_no_rule_matches_is_unmapped_with_its_body_as_an_example() {
        let text = "coordinator: http://127.0.0.1:1\napi:\n  submit:\n    path: /p\n    headers: {K: '{{ idempotency_key }}'}\n  outcome:\n    - {status: 201, outcome: succeeded}\n  transfer_id: /id\n";
        let target = crate::system::target_file::parse(std::path::Path::new("t.yaml"), text)
            .expect("a mapping");
        let api = target.compiled_api().expect("compiles");
        let created = sort_mapped(&api, 201, br#"{"id": "p-1"}"#);
        assert_eq!(created.outcome, Outcome::Completed);
        assert_eq!(created.transfer_id.as_deref(), Some("p-1"));
        let long = vec![b'x'; UNMAPPED_EXAMPLE_BYTES + 1];
        let unmapped = sort_mapped(&api, 200, &long);
        assert_eq!(unmapped.outcome, Outcome::Error);
        assert_eq!(unmapped.error_kind.as_deref(), Some(kind::UNMAPPED));
        assert!(
            kind::indeterminate(kind::UNMAPPED),
            "never taken as success or failure"
        );
        let example = unmapped.reason.expect("an example");
        assert_eq!(
            example,
            format!("200 {}", "x".repeat(UNMAPPED_EXAMPLE_BYTES))
        );
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
