//! HTTP calls from the coordinator to the external institution and the ledger, each answer
//! sorted into what the saga may rely on: applied, refused (definite, recorded by the callee)
//! or unknown (timeout, reset, 5xx, anything unexpected: "maybe applied").

use crate::contract::{
    routes, CreditRequest, DebitRequest, ErrorCode, TransferRecord, TransferStatus,
};
use crate::ids::TransferId;
use crate::money::AmountCents;
use reqwest::StatusCode;
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
    http: reqwest::Client,
    /// Parsed once: a URL given as text is parsed again (host name checks included) by every
    /// call, a measurable share of the coordinator's CPU at a few thousand calls a second.
    debits_url: reqwest::Url,
    credits_url: reqwest::Url,
    external_url: reqwest::Url,
}

impl Remote {
    pub fn new(external_url: &str, ledger_url: &str) -> anyhow::Result<Remote> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(512)
            .pool_idle_timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(1))
            // Never resent by the client on its own: whether a money-moving call may go
            // again is the saga's decision (an unknown debit is aborted, never resent). Also
            // spares the copy of every request the client keeps for a resend.
            .retry(reqwest::retry::never().max_retries_per_request(0))
            .build()?;
        let under = |base: &str, path: &str| -> anyhow::Result<reqwest::Url> {
            let url = format!("{}{path}", base.trim_end_matches('/'));
            reqwest::Url::parse(&url).map_err(|e| anyhow::anyhow!("bad URL {url}: {e}"))
        };
        Ok(Remote {
            http,
            debits_url: under(external_url, routes::DEBITS)?,
            credits_url: under(ledger_url, routes::CREDITS)?,
            external_url: under(external_url, "")?,
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
        let answer = self
            .call(self.debits_url.clone(), Some(&body), timeout)
            .await;
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
        let answer = self
            .call(self.credits_url.clone(), Some(&body), timeout)
            .await;
        classify(answer, TransferStatus::Credited, ErrorCode::UnknownUser)
    }

    /// Reverses (or aborts, leaving a tombstone) a debit. `Applied` means the id now holds
    /// no debit at the external side: reversed, tombstoned, or it was refused in the first place.
    pub async fn reverse(&self, id: &TransferId, timeout: Duration) -> CallOutcome {
        match self.call(self.reverse_url(id), None::<&()>, timeout).await {
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

    fn reverse_url(&self, id: &TransferId) -> reqwest::Url {
        let path = routes::with_transfer_id(routes::REVERSE, id.as_str());
        let mut url = self.external_url.clone();
        url.set_path(&format!("{}{path}", url.path().trim_end_matches('/')));
        url
    }

    async fn call(
        &self,
        url: reqwest::Url,
        body: Option<&impl serde::Serialize>,
        timeout: Duration,
    ) -> Result<(StatusCode, Option<TransferRecord>), String> {
        let mut request = self.http.post(url).timeout(timeout);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(describe)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(describe)?;
        Ok((status, serde_json::from_slice(&bytes).ok()))
    }
}

fn describe(err: reqwest::Error) -> String {
    if err.is_timeout() {
        "timeout".into()
    } else if err.is_connect() {
        "connect".into()
    } else {
        format!("transport: {err}")
    }
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
    fn urls_keep_the_base_path_of_each_institution() {
        let remote = Remote::new("http://127.0.0.1:9/ext/", "http://127.0.0.1:8").expect("urls");
        assert_eq!(remote.debits_url.as_str(), "http://127.0.0.1:9/ext/debits");
        assert_eq!(remote.credits_url.as_str(), "http://127.0.0.1:8/credits");
        let id = TransferId::generate();
        assert_eq!(
            remote.reverse_url(&id).as_str(),
            format!("http://127.0.0.1:9/ext/debits/{id}/reverse")
        );
        assert!(Remote::new("not a url", "http://127.0.0.1:8").is_err());
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
