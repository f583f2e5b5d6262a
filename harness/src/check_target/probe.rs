//! The probe's side of the wire: the three URLs it walks, an HTTP client that never
//! retries, the requests it sends and how an answer is read (a contract error, a transfer
//! view, a body of a given shape), and what it finds of each rule. The rules are `rules`.

use service::contract::{routes, ErrorBody, ErrorCode, TransferView};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The three services' URLs the probe walks.
pub struct CheckedUrls {
    pub coordinator: String,
    pub external: String,
    pub ledger: String,
}

impl CheckedUrls {
    /// The URLs of `target`; an error when an institution's is missing.
    pub(super) fn of(
        target: &crate::system::target_file::TargetFile,
    ) -> Result<CheckedUrls, String> {
        match (target.external.clone(), target.ledger.clone()) {
            (Some(external), Some(ledger)) => Ok(CheckedUrls {
                coordinator: target.coordinator.clone(),
                external,
                ledger,
            }),
            _ => Err("the probe needs both institutions' URLs (external and ledger)".into()),
        }
    }
}

service::named_enum! {
    /// What the probe found of a rule.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    pub enum Conformance {
        Conforms = "conforms",
        Violates = "VIOLATES",
        /// An optional route the system does not offer.
        Absent = "absent",
        /// Not checked: a rule it depends on failed.
        Skipped = "skipped",
    }
}

/// One rule of the contract, as the probe found it.
#[derive(Debug, Clone)]
pub struct Finding {
    pub rule: &'static str,
    pub conformance: Conformance,
    pub detail: String,
}

const TIMEOUT: Duration = Duration::from_secs(5);

pub(super) struct Probe {
    pub(super) http: reqwest::Client,
    pub(super) coordinator: String,
    pub(super) external: String,
    pub(super) ledger: String,
    pub(super) user: String,
    pub(super) account: String,
    /// Prefix of the probe's idempotency keys.
    pub(super) keys: String,
}

/// What came back: status and body.
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) body: String,
}

pub(super) fn conforms(rule: &'static str, detail: impl Into<String>) -> Finding {
    Finding {
        rule,
        conformance: Conformance::Conforms,
        detail: detail.into(),
    }
}

pub(super) fn violates(rule: &'static str, detail: impl Into<String>) -> Finding {
    Finding {
        rule,
        conformance: Conformance::Violates,
        detail: detail.into(),
    }
}

impl Probe {
    pub(super) fn new(urls: &CheckedUrls) -> Result<Probe, reqwest::Error> {
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        let trim = |u: &str| u.trim_end_matches('/').to_owned();
        Ok(Probe {
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(TIMEOUT)
                .build()?,
            coordinator: trim(&urls.coordinator),
            external: trim(&urls.external),
            ledger: trim(&urls.ledger),
            user: format!("check-u-{stamp}"),
            account: format!("check-a-{stamp}"),
            keys: format!("check-{stamp}"),
        })
    }
    pub(super) async fn send(&self, request: reqwest::RequestBuilder) -> Result<Reply, String> {
        let response = request
            .send()
            .await
            .map_err(|e| format!("no answer: {e}"))?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|e| format!("unreadable answer: {e}"))?;
        Ok(Reply { status, body })
    }
    pub(super) fn post_transfer(
        &self,
        body: impl Into<reqwest::Body>,
        key: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .post(format!("{}{}", self.coordinator, routes::TRANSFERS))
            .header("content-type", "application/json")
            .body(body);
        if let Some(key) = key {
            request = request.header(routes::IDEMPOTENCY_KEY_HEADER, key);
        }
        request
    }
    pub(super) fn transfer_body(&self, user: &str, amount: &str) -> String {
        format!(
            r#"{{"user_id":"{user}","external_account_id":"{}","amount_cents":{amount}}}"#,
            self.account
        )
    }
    /// The answer to `request` must be `code` with its status and a JSON error body.
    pub(super) async fn expect_error(
        &self,
        rule: &'static str,
        request: reqwest::RequestBuilder,
        code: ErrorCode,
    ) -> Finding {
        let reply = match self.send(request).await {
            Ok(reply) => reply,
            Err(e) => return violates(rule, e),
        };
        let want = format!("{} {}", code.http_status(), code.as_str());
        match serde_json::from_str::<ErrorBody>(&reply.body) {
            Ok(b) if reply.status == code.http_status() && b.error.code == code => {
                conforms(rule, want)
            }
            Ok(b) => violates(
                rule,
                format!(
                    "{} {} (expected {want})",
                    reply.status,
                    b.error.code.as_str()
                ),
            ),
            Err(_) => violates(
                rule,
                format!(
                    "{} with a body that is not the contract's error body (expected {want}): {}",
                    reply.status,
                    reply.body.chars().take(120).collect::<String>()
                ),
            ),
        }
    }
    /// A transfer view, with a status that matches its HTTP code.
    pub(super) async fn view(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<TransferView, String> {
        let reply = self.send(request).await?;
        let view: TransferView = serde_json::from_str(&reply.body).map_err(|e| {
            format!(
                "{}: not a transfer ({e}): {}",
                reply.status,
                reply.body.chars().take(160).collect::<String>()
            )
        })?;
        if reply.status != view.status.http_status() {
            return Err(format!(
                "status {} with a transfer that is {} ({} expected)",
                reply.status,
                view.status.as_str(),
                view.status.http_status()
            ));
        }
        Ok(view)
    }
    /// `GET url` parses as `T`; a 404 is `absent` where the route is optional.
    pub(super) async fn shape<T: serde::de::DeserializeOwned>(
        &self,
        rule: &'static str,
        url: String,
        required: bool,
    ) -> Finding {
        match self.send(self.http.get(&url)).await {
            Ok(r) if r.status == 404 && !required => Finding {
                rule,
                conformance: Conformance::Absent,
                detail: format!("GET {url}: 404 (optional)"),
            },
            Ok(r) if r.status == 200 => match serde_json::from_str::<T>(&r.body) {
                Ok(_) => conforms(rule, format!("GET {url}")),
                Err(e) => violates(rule, format!("GET {url}: not the contract's shape: {e}")),
            },
            Ok(r) => violates(rule, format!("GET {url}: {}", r.status)),
            Err(e) => violates(rule, format!("GET {url}: {e}")),
        }
    }
}
