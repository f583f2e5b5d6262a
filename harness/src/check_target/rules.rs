//! The contract's rules, in the order the probe walks them: seeding, every client error of
//! `POST /transfers`, a transfer with its replay and its reused key, `GET /transfers/{id}`,
//! and the admin routes a run reads. Each rule is one `Finding`.

use super::probe::{conforms, violates, CheckedUrls, Conformance, Finding, Probe};
use service::contract::{
    routes, ClientStatus, Dump, ErrorCode, SagaDump, SeedAccount, SeedAccounts, Totals, UserLink,
    UserLinks,
};
use service::money::AmountCents;
use std::time::Duration;

/// A body over the contract's limit of 16 KiB for `POST /transfers`.
const OVERSIZED_BODY_BYTES: usize = 64 * 1024;
/// The balance of the probe's external account, in cents.
const OPENING_CENTS: u64 = 1_000_000;

impl Probe {
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
