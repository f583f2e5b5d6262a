//! HTTP calls from the coordinator to the external institution and the ledger, each answer
//! sorted into what the saga may rely on: applied, refused (definite, recorded by the callee)
//! or unknown (timeout, reset, 5xx, anything unexpected: "maybe applied").

use crate::contract::{
    routes, CreditRequest, DebitRequest, ErrorCode, TransferRecord, TransferStatus,
};
use crate::http_client::HttpClient;
use crate::ids::TransferId;
use crate::money::AmountCents;
use http::StatusCode;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    /// The operation is in effect (for a reversal: the id holds no debit any more).
    Applied,
    /// A definite refusal: nothing applied, and the callee will not apply it later.
    Refused(String),
    /// No definite answer: the operation may or may not have been applied.
    Unknown(String),
}

#[derive(Clone)]
pub struct Remote {
    /// One call is one request: whether a money-moving call goes again is the saga's
    /// decision (an unknown debit is aborted, never resent).
    /// Each over HTTP/1.1 or HTTP/2, as the `institution_h2_connections` setting says.
    external: HttpClient,
    ledger: HttpClient,
    /// Paths built once, under each institution's base path.
    debits_path: String,
    credits_path: String,
}

impl Remote {
    /// Calls to the institutions at `external_url` and `ledger_url`: over `h2_connections`
    /// HTTP/2 connections to each, or with 0, over HTTP/1.1 keeping up to `max_idle` idle
    /// connections to each (the coordinator's bound on transfers in flight, each of which has
    /// at most one call under way).
    pub fn new(
        external_url: &str,
        ledger_url: &str,
        h2_connections: usize,
        max_idle: usize,
    ) -> anyhow::Result<Remote> {
        let external = HttpClient::new(external_url, h2_connections, max_idle)?;
        let ledger = HttpClient::new(ledger_url, h2_connections, max_idle)?;
        Ok(Remote {
            debits_path: external.path(routes::DEBITS),
            credits_path: ledger.path(routes::CREDITS),
            external,
            ledger,
        })
    }

    pub async fn debit(
        &self,
        id: &TransferId,
        account: &str,
        amount: AmountCents,
        timeout: Duration,
    ) -> CallOutcome {
        let body = DebitRequest {
            transfer_id: id.to_string(),
            external_account_id: account.to_owned(),
            amount_cents: amount.into(),
        };
        let answer = call(&self.external, &self.debits_path, Some(&body), timeout).await;
        classify(answer, TransferStatus::Debited, ErrorCode::UnknownAccount)
    }

    pub async fn credit(
        &self,
        id: &TransferId,
        user: &str,
        amount: AmountCents,
        timeout: Duration,
    ) -> CallOutcome {
        let body = CreditRequest {
            transfer_id: id.to_string(),
            user_id: user.to_owned(),
            amount_cents: amount.into(),
        };
        let answer = call(&self.ledger, &self.credits_path, Some(&body), timeout).await;
        classify(answer, TransferStatus::Credited, ErrorCode::UnknownUser)
    }

    /// Reverses (or aborts, leaving a tombstone) a debit. `Applied` means the id now holds
    /// no debit at the external side: reversed, tombstoned, or it was refused in the first place.
    pub async fn reverse(&self, id: &TransferId, timeout: Duration) -> CallOutcome {
        match call(&self.external, &self.reverse_path(id), None::<&()>, timeout).await {
            Ok((StatusCode::OK, Some(record))) => match record.status {
                TransferStatus::Reversed | TransferStatus::Tombstone | TransferStatus::Refused => {
                    CallOutcome::Applied
                }
                other => CallOutcome::Unknown(format!("reversal answered {other:?}")),
            },
            Ok((status, _)) => CallOutcome::Unknown(format!("reversal answered {status}")),
            Err(why) => CallOutcome::Unknown(why),
        }
    }

    fn reverse_path(&self, id: &TransferId) -> String {
        self.external
            .path(&routes::with_transfer_id(routes::REVERSE, id.as_str()))
    }
}

/// `POST path` on `server` with `body` as JSON, given up after `timeout` (its connection
/// dropped with it): the status and the body read as a transfer record, if it is one.
async fn call(
    server: &HttpClient,
    path: &str,
    body: Option<&impl serde::Serialize>,
    timeout: Duration,
) -> Result<(StatusCode, Option<TransferRecord>), String> {
    let body = match body {
        Some(body) => serde_json::to_vec(body).map_err(|e| format!("unserializable: {e}"))?,
        None => Vec::new(),
    };
    let reply = match tokio::time::timeout(timeout, server.post(path, &[], body.into())).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(failure)) => return Err(failure.as_str().to_owned()),
        Err(_) => return Err("timeout".to_owned()),
    };
    let status = StatusCode::from_u16(reply.status)
        .map_err(|_| format!("answered status {}", reply.status))?;
    Ok((status, serde_json::from_slice(&reply.body).ok()))
}

/// Sorts a debit or credit answer. Only answers that carry a recorded outcome, or a 404 for
/// an account that does not exist, are definite.
fn classify(
    answer: Result<(StatusCode, Option<TransferRecord>), String>,
    applied: TransferStatus,
    unknown_account: ErrorCode,
) -> CallOutcome {
    match answer {
        Err(why) => CallOutcome::Unknown(why),
        Ok((StatusCode::OK, Some(record))) if record.status == applied => CallOutcome::Applied,
        Ok((StatusCode::UNPROCESSABLE_ENTITY | StatusCode::TOO_MANY_REQUESTS, Some(record)))
            if record.status != applied =>
        {
            let reason = record
                .reason
                .unwrap_or_else(|| record.status.as_str().to_owned());
            CallOutcome::Refused(reason)
        }
        Ok((StatusCode::NOT_FOUND, _)) => CallOutcome::Refused(unknown_account.as_str().into()),
        Ok((status, _)) => CallOutcome::Unknown(format!("answered {status}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: TransferStatus, reason: Option<&str>) -> Option<TransferRecord> {
        Some(TransferRecord {
            transfer_id: "t-1".into(),
            account_id: Some("a".into()),
            amount_cents: Some(AmountCents::new(5)),
            status,
            reason: reason.map(str::to_owned),
        })
    }

    #[test]
    fn paths_keep_the_base_path_of_each_institution() {
        let remote =
            Remote::new("http://127.0.0.1:9/ext/", "http://127.0.0.1:8", 2, 4).expect("urls");
        assert_eq!(remote.debits_path, "/ext/debits");
        assert_eq!(remote.credits_path, "/credits");
        let id = TransferId::generate();
        assert_eq!(
            remote.reverse_path(&id),
            format!("/ext/debits/{id}/reverse")
        );
        assert!(Remote::new("not a url", "http://127.0.0.1:8", 0, 4).is_err());
    }

    #[test]
    fn only_recorded_answers_are_definite() {
        let applied = TransferStatus::Credited;
        assert_eq!(
            classify(
                Ok((StatusCode::OK, record(applied, None))),
                applied,
                ErrorCode::UnknownUser
            ),
            CallOutcome::Applied
        );
        assert_eq!(
            classify(
                Ok((
                    StatusCode::TOO_MANY_REQUESTS,
                    record(TransferStatus::Refused, Some("rate_limited"))
                )),
                applied,
                ErrorCode::UnknownUser
            ),
            CallOutcome::Refused("rate_limited".into())
        );
        // A 500, a 200 without a body, a timeout: all "maybe applied".
        for answer in [
            Ok((StatusCode::INTERNAL_SERVER_ERROR, None)),
            Ok((StatusCode::OK, None)),
            Err("timeout".to_string()),
        ] {
            assert!(matches!(
                classify(answer, applied, ErrorCode::UnknownUser),
                CallOutcome::Unknown(_)
            ));
        }
    }
}
