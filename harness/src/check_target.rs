//! `harness check-target`: a conformance probe that walks `docs/contract.md` against a
//! running system, without load, in a few seconds: every client error the contract names
//! (with its status and its JSON error body), a transfer and its replay under the same key,
//! the key reused with another payload, `GET /transfers/{id}`, and the admin routes a run
//! needs (seeding, the institutions' dumps; the saga log and totals, which are optional). It
//! seeds a user and two accounts of its own, named apart from any run's.

use service::contract::{
    routes, ClientStatus, Dump, ErrorBody, ErrorCode, SagaDump, SeedAccount, SeedAccounts, Totals,
    TransferView, UserLink, UserLinks,
};
use service::money::AmountCents;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, clap::Args)]
pub struct CheckTargetArgs {
    /// The coordinator's URL.
    #[arg(long, required_unless_present = "target_file", requires_all = ["external_url", "ledger_url"])]
    pub target: Option<String>,
    /// The external institution's URL (seeding, dump).
    #[arg(long, requires = "target")]
    pub external_url: Option<String>,
    /// The ledger's URL (seeding, dump).
    #[arg(long, requires = "target")]
    pub ledger_url: Option<String>,
    /// The three URLs from a target file (docs/your-own-system.md) instead.
    #[arg(long, conflicts_with = "target")]
    pub target_file: Option<std::path::PathBuf>,
}

/// The three services' URLs the probe walks.
pub struct CheckedUrls {
    pub coordinator: String,
    pub external: String,
    pub ledger: String,
}

impl CheckTargetArgs {
    /// The system from the flags or the target file.
    fn target(&self) -> Result<crate::system::target_file::TargetFile, String> {
        Ok(match (&self.target_file, &self.target) {
            (Some(file), _) => crate::system::target_file::load(file).map_err(|e| e.to_string())?,
            (None, Some(url)) => crate::system::target_file::TargetFile::from_urls(
                url,
                self.external_url.as_deref(),
                self.ledger_url.as_deref(),
            ),
            (None, None) => return Err("--target URL or --target-file FILE is required".into()),
        })
    }
}

impl CheckedUrls {
    /// The URLs of `target`; an error when an institution's is missing.
    fn of(target: &crate::system::target_file::TargetFile) -> Result<CheckedUrls, String> {
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
/// A body over the contract's limit of 16 KiB for `POST /transfers`.
const OVERSIZED_BODY_BYTES: usize = 64 * 1024;
/// The balance of the probe's external account, in cents.
const OPENING_CENTS: u64 = 1_000_000;

struct Probe {
    http: reqwest::Client,
    coordinator: String,
    external: String,
    ledger: String,
    user: String,
    account: String,
    /// Prefix of the probe's idempotency keys.
    keys: String,
}

/// What came back: status and body.
struct Reply {
    status: u16,
    body: String,
}

fn conforms(rule: &'static str, detail: impl Into<String>) -> Finding {
    Finding {
        rule,
        conformance: Conformance::Conforms,
        detail: detail.into(),
    }
}

fn violates(rule: &'static str, detail: impl Into<String>) -> Finding {
    Finding {
        rule,
        conformance: Conformance::Violates,
        detail: detail.into(),
    }
}

impl Probe {
    fn new(urls: &CheckedUrls) -> Result<Probe, reqwest::Error> {
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

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Reply, String> {
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

    fn post_transfer(
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

    fn transfer_body(&self, user: &str, amount: &str) -> String {
        format!(
            r#"{{"user_id":"{user}","external_account_id":"{}","amount_cents":{amount}}}"#,
            self.account
        )
    }

    /// The answer to `request` must be `code` with its status and a JSON error body.
    async fn expect_error(
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

    async fn seed(&self) -> Finding {
        let rule = "seed_accounts_and_link";
        let account = |id: &str, cents: u64| SeedAccounts {
            accounts: vec![SeedAccount {
                account_id: id.to_owned(),
                balance_cents: AmountCents::new(cents).into(),
            }],
        };
        let steps = [
            (
                format!("{}{}", self.external, routes::ADMIN_ACCOUNTS),
                serde_json::to_string(&account(&self.account, OPENING_CENTS)),
            ),
            (
                format!("{}{}", self.ledger, routes::ADMIN_ACCOUNTS),
                serde_json::to_string(&account(&self.user, 0)),
            ),
            (
                format!("{}{}", self.coordinator, routes::ADMIN_USERS),
                serde_json::to_string(&UserLinks {
                    users: vec![UserLink {
                        user_id: self.user.clone(),
                        external_account_id: self.account.clone(),
                    }],
                }),
            ),
        ];
        for (url, body) in steps {
            let Ok(body) = body else {
                return violates(rule, "cannot write a seeding body");
            };
            let request = self
                .http
                .post(&url)
                .header("content-type", "application/json")
                .body(body);
            match self.send(request).await {
                Ok(r) if (200..300).contains(&r.status) => {}
                Ok(r) => return violates(rule, format!("POST {url}: {} {}", r.status, r.body)),
                Err(e) => return violates(rule, format!("POST {url}: {e}")),
            }
        }
        conforms(rule, "external account, ledger account and link created")
    }

    /// The client errors of `POST /transfers`.
    async fn client_errors(&self, out: &mut Vec<Finding>) {
        let key = |n: &str| Some(format!("{}-{n}", self.keys));
        let cases: [(&'static str, String, Option<String>, ErrorCode); 10] = [
            (
                "malformed_json",
                r#"{"user_id":"#.to_owned(),
                key("a"),
                ErrorCode::MalformedJson,
            ),
            (
                "unknown_field",
                self.transfer_body(&self.user, "100")
                    .replace('{', r#"{"note":"x","#),
                key("b"),
                ErrorCode::UnknownField,
            ),
            (
                "missing_field",
                format!(
                    r#"{{"user_id":"{}","external_account_id":"{}"}}"#,
                    self.user, self.account
                ),
                key("c"),
                ErrorCode::MissingField,
            ),
            (
                "zero_amount",
                self.transfer_body(&self.user, "0"),
                key("d"),
                ErrorCode::InvalidAmount,
            ),
            (
                "negative_amount",
                self.transfer_body(&self.user, "-5"),
                key("e"),
                ErrorCode::InvalidAmount,
            ),
            (
                "fractional_amount",
                self.transfer_body(&self.user, "1.5"),
                key("f"),
                ErrorCode::InvalidAmount,
            ),
            (
                "overflowing_amount",
                self.transfer_body(&self.user, "18446744073709551616"),
                key("g"),
                ErrorCode::InvalidAmount,
            ),
            (
                "bad_id",
                self.transfer_body("not an id!", "100"),
                key("h"),
                ErrorCode::InvalidId,
            ),
            (
                "missing_key",
                self.transfer_body(&self.user, "100"),
                None,
                ErrorCode::MissingIdempotencyKey,
            ),
            (
                "unknown_user",
                self.transfer_body("check-nobody", "100"),
                key("i"),
                ErrorCode::UnknownUser,
            ),
        ];
        for (rule, body, key, code) in cases {
            let request = self.post_transfer(body, key.as_deref());
            out.push(self.expect_error(rule, request, code).await);
        }
        // Over the contract's 16 KiB, yet small enough to be sent whole before the answer
        // (which closes the connection) comes back.
        let huge = format!(
            r#"{{"user_id":"{}","pad":"{}"}}"#,
            self.user,
            "x".repeat(OVERSIZED_BODY_BYTES)
        );
        let request = self.post_transfer(huge, key("j").as_deref());
        out.push(
            self.expect_error("oversized_body", request, ErrorCode::BodyTooLarge)
                .await,
        );
    }

    /// A transfer, its replay, the key with another payload, and the transfer read back.
    async fn transfers(&self, out: &mut Vec<Finding>) {
        let key = format!("{}-t", self.keys);
        let body = self.transfer_body(&self.user, "250");
        let first = match self
            .view(self.post_transfer(body.clone(), Some(&key)))
            .await
        {
            Ok(view) => view,
            Err(e) => {
                out.push(violates("transfer", e));
                for rule in [
                    "idempotent_replay",
                    "key_reused_other_payload",
                    "get_transfer",
                ] {
                    out.push(Finding {
                        rule,
                        conformance: Conformance::Skipped,
                        detail: "no transfer to check it on".into(),
                    });
                }
                return;
            }
        };
        let matches = first.user_id.as_str() == self.user
            && first.external_account_id.as_str() == self.account
            && first.amount_cents.get() == 250;
        out.push(if matches {
            conforms(
                "transfer",
                format!("{} {}", first.transfer_id, first.status.as_str()),
            )
        } else {
            violates(
                "transfer",
                format!("the answer is not the request's transfer: {first:?}"),
            )
        });

        // Replay until final or a few seconds: the same transfer id every time.
        let mut replay = self
            .view(self.post_transfer(body.clone(), Some(&key)))
            .await;
        for _ in 0..50 {
            match &replay {
                Ok(v) if v.status == ClientStatus::Pending => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    replay = self
                        .view(self.post_transfer(body.clone(), Some(&key)))
                        .await;
                }
                _ => break,
            }
        }
        out.push(match replay {
            Ok(v) if v.transfer_id == first.transfer_id => conforms(
                "idempotent_replay",
                format!("same transfer, now {}", v.status.as_str()),
            ),
            Ok(v) => violates(
                "idempotent_replay",
                format!(
                    "the same key and payload made another transfer: {} then {}",
                    first.transfer_id, v.transfer_id
                ),
            ),
            Err(e) => violates("idempotent_replay", e),
        });

        let other = self.transfer_body(&self.user, "251");
        out.push(
            self.expect_error(
                "key_reused_other_payload",
                self.post_transfer(other, Some(&key)),
                ErrorCode::IdempotencyKeyReused,
            )
            .await,
        );

        let url = format!(
            "{}{}",
            self.coordinator,
            routes::with_transfer_id(routes::TRANSFER, first.transfer_id.as_str())
        );
        out.push(match self.view(self.http.get(&url)).await {
            Ok(v) if v.transfer_id == first.transfer_id && v.amount_cents.get() == 250 => {
                conforms("get_transfer", v.status.as_str())
            }
            Ok(v) => violates("get_transfer", format!("another transfer: {v:?}")),
            Err(e) => violates("get_transfer", e),
        });
        let unknown = format!(
            "{}{}",
            self.coordinator,
            routes::with_transfer_id(routes::TRANSFER, "t-check-none")
        );
        out.push(
            self.expect_error(
                "unknown_transfer",
                self.http.get(unknown),
                ErrorCode::UnknownTransfer,
            )
            .await,
        );
    }

    /// A transfer view, with a status that matches its HTTP code.
    async fn view(&self, request: reqwest::RequestBuilder) -> Result<TransferView, String> {
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

    /// The admin routes a run reads: dumps (required), saga log and totals (optional).
    async fn admin_routes(&self, out: &mut Vec<Finding>) {
        for (rule, base) in [
            ("external_dump", &self.external),
            ("ledger_dump", &self.ledger),
        ] {
            out.push(
                self.shape::<Dump>(rule, format!("{base}{}", routes::ADMIN_DUMP), true)
                    .await,
            );
        }
        out.push(
            self.shape::<SagaDump>(
                "saga_dump",
                format!("{}{}", self.coordinator, routes::ADMIN_SAGAS),
                false,
            )
            .await,
        );
        for (rule, base) in [
            ("external_totals", &self.external),
            ("ledger_totals", &self.ledger),
        ] {
            out.push(
                self.shape::<Totals>(rule, format!("{base}{}", routes::ADMIN_TOTALS), false)
                    .await,
            );
        }
    }

    /// `GET url` parses as `T`; a 404 is `absent` where the route is optional.
    async fn shape<T: serde::de::DeserializeOwned>(
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

/// Walks the contract against the system and returns every finding.
pub async fn check(urls: &CheckedUrls) -> Result<Vec<Finding>, reqwest::Error> {
    let probe = Probe::new(urls)?;
    let mut out = vec![probe.seed().await];
    probe.client_errors(&mut out).await;
    if out[0].conformance == Conformance::Conforms {
        probe.transfers(&mut out).await;
    } else {
        out.push(Finding {
            rule: "transfer",
            conformance: Conformance::Skipped,
            detail: "seeding failed".into(),
        });
    }
    probe.admin_routes(&mut out).await;
    Ok(out)
}

/// The findings as a table.
pub fn render(findings: &[Finding]) -> String {
    let width = findings.iter().map(|f| f.rule.len()).max().unwrap_or(0);
    let mut out = String::new();
    for f in findings {
        out.push_str(&format!(
            "{:width$}  {:<9} {}\n",
            f.rule,
            f.conformance.as_str(),
            f.detail
        ));
    }
    let violations = findings
        .iter()
        .filter(|f| f.conformance == Conformance::Violates)
        .count();
    out.push_str(&if violations == 0 {
        format!("conforms: {} rules checked, no violation\n", findings.len())
    } else {
        format!("{violations} of {} rules violated\n", findings.len())
    });
    out
}

/// `harness check-target`: exit 0 when nothing is violated, 1 otherwise, 2 when the probe
/// could not start. With a target file, its hops are up while the probe runs (the
/// coordinator reaches its upstreams through them).
pub async fn run(args: CheckTargetArgs) -> i32 {
    let target = match args
        .target()
        .and_then(|t| CheckedUrls::of(&t).map(|u| (t, u)))
    {
        Ok(found) => found,
        Err(e) => {
            eprintln!("harness check-target: error: {e}");
            return 2;
        }
    };
    let (target, urls) = target;
    let _hops = match crate::system::attach::attach(&target, 1, None).await {
        Ok(attached) => attached,
        Err(e) => {
            eprintln!("harness check-target: error: the target's hops: {e}");
            return 2;
        }
    };
    match check(&urls).await {
        Ok(findings) => {
            print!("{}", render(&findings));
            i32::from(
                findings
                    .iter()
                    .any(|f| f.conformance == Conformance::Violates),
            )
        }
        Err(e) => {
            eprintln!("harness check-target: error: {e}");
            2
        }
    }
}
