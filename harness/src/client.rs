//! The load generator's HTTP client for `POST /transfers`, sorting each answer into an
//! [`Outcome`] the way `docs/contract.md` defines them.

use crate::history::Outcome;
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

#[derive(Clone)]
pub struct TransferClient {
    http: reqwest::Client,
    url: String,
}

#[derive(serde::Deserialize)]
struct TransferAnswer {
    transfer_id: Option<String>,
    status: Option<String>,
    reason: Option<String>,
}

impl TransferClient {
    pub fn new(coordinator: &str, max_connections: usize) -> anyhow::Result<TransferClient> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(max_connections)
            .build()?;
        Ok(TransferClient {
            http,
            url: format!("{}/transfers", coordinator.trim_end_matches('/')),
        })
    }

    pub async fn send(
        &self,
        key: &str,
        user_id: &str,
        account_id: &str,
        amount_cents: u64,
        timeout: Duration,
    ) -> Answer {
        let body = format!(
            r#"{{"user_id":"{user_id}","external_account_id":"{account_id}","amount_cents":{amount_cents}}}"#
        );
        let sent = self
            .http
            .post(&self.url)
            .header("Idempotency-Key", key)
            .header("content-type", "application/json")
            .body(body)
            .timeout(timeout)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(err) => return transport_error(&err, None),
        };
        let status = response.status().as_u16();
        let bytes = match response.bytes().await {
            Ok(b) => b,
            Err(err) => return transport_error(&err, Some(status)),
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

fn transport_error(err: &reqwest::Error, status: Option<u16>) -> Answer {
    let kind = if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connect"
    } else if err.is_body() || err.is_decode() {
        "broken_answer"
    } else {
        "transport"
    };
    Answer {
        outcome: Outcome::Error,
        http_status: status,
        error_kind: Some(kind.to_owned()),
        transfer_id: None,
        reason: None,
    }
}
