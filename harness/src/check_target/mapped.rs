//! `check-target` on a system described by a mapping (`api:`, `books:`): the contract's
//! rules restated in the mapping's terms, walked in order with a user of the probe's own:
//! the books readable (both queries, their columns), the user created, a transfer that
//! succeeds with the id where `transfer_id` points, its idempotent replay, the key reused
//! with another amount, the status lookup, and the books holding exactly the amount on both
//! sides. A fault of the mapping itself (books that cannot be read, a pointer that matches
//! nothing in the first answers) is an error: exit 2, naming it.

use super::probe::{conforms, violates, Finding};
use crate::client::submission_vars;
use crate::history::{HistoryRecord, Outcome};
use crate::mapping::outcome::MappedOutcome;
use crate::mapping::users::{user_vars, UserSource};
use crate::mapping::CompiledApi;
use crate::system::admin::AdminClient;
use crate::system::lookup::TransferLookup;
use crate::system::sql;
use crate::system::Endpoints;
use service::contract::{ClientStatus, Dump, TransferRequest};
use service::money::AmountCents;
use std::time::{SystemTime, UNIX_EPOCH};

/// The probe's transfer, in minor units, and its balance.
const AMOUNT_CENTS: u64 = 1_234;
const OPENING_CENTS: u64 = 1_000_000;

struct MappedProbe<'a> {
    admin: &'a AdminClient,
    endpoints: &'a Endpoints,
    api: &'a CompiledApi,
    user: String,
    account: String,
    key: String,
}

/// One answer of the mapped API, sorted.
struct Sorted {
    status: u16,
    outcome: Option<MappedOutcome>,
    transfer_id: Option<String>,
    body: String,
}

impl MappedProbe<'_> {
    async fn submit(&self, key: &str, amount_cents: u64) -> Result<Sorted, String> {
        let request = TransferRequest {
            user_id: self.user.clone(),
            external_account_id: self.account.clone(),
            amount_cents: AmountCents::new(amount_cents).into(),
        };
        let vars = submission_vars(self.api, key, &request, 0);
        let rendered = self.api.submit.render(&vars)?;
        let (status, body) = self
            .admin
            .exchange(&self.endpoints.coordinator, rendered)
            .await
            .map_err(|e| format!("api.submit: {e}"))?;
        let sorted = self.api.submit_rules.sort(status, &body);
        Ok(Sorted {
            status,
            outcome: sorted.outcome,
            transfer_id: sorted.transfer_id,
            body: String::from_utf8_lossy(&body).chars().take(200).collect(),
        })
    }

    fn record(&self, key: &str, amount_cents: u64) -> HistoryRecord {
        HistoryRecord {
            op: 0,
            attempt: 0,
            key: key.to_owned(),
            user_id: self.user.clone(),
            external_account_id: self.account.clone(),
            amount_cents,
            scheduled_us: 0,
            sent_us: None,
            answered_us: None,
            latency_us: None,
            outcome: Outcome::Pending,
            jepsen_type: Outcome::Pending.jepsen().into(),
            http_status: None,
            error_kind: None,
            transfer_id: None,
            reason: None,
            measured: false,
        }
    }
}

fn described(sorted: &Sorted) -> String {
    let outcome = sorted.outcome.map_or("unmapped", |o| o.as_str());
    format!("{} → {outcome}: {}", sorted.status, sorted.body)
}

/// The entries of `dump` for transfer `id`: (account, signed amount as the account sees it).
fn entries_of(dump: &Dump, id: &str, external: bool) -> Vec<(String, i128)> {
    use service::contract::EntryKind;
    dump.entries
        .iter()
        .filter(|e| e.transfer_id == id)
        .map(|e| {
            let amount = i128::from(e.amount_cents.get());
            let signed = match (external, e.kind) {
                (true, EntryKind::Debit) | (false, EntryKind::Reversal | EntryKind::Debit) => {
                    -amount
                }
                _ => amount,
            };
            (e.account_id.clone(), signed)
        })
        .collect()
}

/// Walks the mapping's rules; Err is a fault of the mapping itself (exit 2).
pub async fn check(
    admin: &AdminClient,
    endpoints: &Endpoints,
    api: &CompiledApi,
) -> Result<Vec<Finding>, String> {
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let probe = MappedProbe {
        admin,
        endpoints,
        api,
        user: format!("check-{stamp}-u"),
        account: format!("check-{stamp}-a"),
        key: format!("check-{stamp}-k"),
    };
    let mut out = Vec::new();
    // The books, before anything is written: a query that fails or has the wrong columns
    // is the mapping's fault.
    let before = admin
        .books(endpoints)
        .await
        .map_err(|e| format!("books: {e}"))?;
    out.push(match &before {
        Some(_) => conforms(
            "books readable",
            "both institutions' books read in one snapshot each",
        ),
        None => violates(
            "books readable",
            "neither books: nor a dump URL for both institutions",
        ),
    });
    // The probe's user: created as the mapping creates users, or the first it reuses.
    match &api.users {
        Some(UserSource::Http(template)) => {
            let vars = user_vars(api, &probe.user, &probe.account, OPENING_CENTS);
            let created = admin
                .create_user(&endpoints.coordinator, template, &vars)
                .await;
            if let Err(why) = created {
                out.push(violates("user created", why));
                return Ok(out);
            }
            out.push(conforms(
                "user created",
                format!("{} over HTTP", probe.user),
            ));
        }
        Some(UserSource::Sql(databases)) => {
            for statements in databases {
                let vars = user_vars(api, &probe.user, &probe.account, OPENING_CENTS);
                let user = [(probe.user.clone(), vars)];
                if let Err((_, why)) = sql::create_users(statements, user).await {
                    out.push(violates("user created", why));
                    return Ok(out);
                }
            }
            out.push(conforms("user created", format!("{} by SQL", probe.user)));
        }
        Some(UserSource::Reuse(_)) | None => {
            return Err(
                "api.users.create or create_sql is needed for the probe to have a user of its own"
                    .into(),
            )
        }
    }
    // A transfer: it must succeed (or be pending and settle), naming its id.
    let first = probe.submit(&probe.key, AMOUNT_CENTS).await?;
    let Some(id) = first.transfer_id.clone() else {
        return Err(format!(
            "api.transfer_id matches nothing in the first answer ({})",
            described(&first)
        ));
    };
    let lookup = TransferLookup::new(admin, endpoints);
    let record = probe.record(&probe.key, AMOUNT_CENTS);
    let settled = match first.outcome {
        Some(MappedOutcome::Succeeded) => true,
        Some(MappedOutcome::Pending) => {
            let mut settled = false;
            for _ in 0..50 {
                if let Ok(Some(looked)) = lookup.look(&record, Some(&id)).await {
                    if looked.status == ClientStatus::Completed {
                        settled = true;
                        break;
                    }
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            settled
        }
        _ => false,
    };
    out.push(match settled {
        true => conforms("transfer", format!("{} (id {id})", described(&first))),
        false => violates("transfer", described(&first)),
    });
    // Its replay under the same key and payload: the same transfer.
    let replay = probe.submit(&probe.key, AMOUNT_CENTS).await?;
    out.push(match (replay.outcome, replay.transfer_id.as_deref()) {
        (Some(MappedOutcome::Succeeded), Some(same)) if same == id => {
            conforms("idempotent replay", format!("the same transfer {id}"))
        }
        _ => violates("idempotent replay", described(&replay)),
    });
    // The key reused with another amount: refused, never a second transfer.
    let reused = probe.submit(&probe.key, AMOUNT_CENTS + 1).await?;
    out.push(match (reused.outcome, reused.transfer_id.as_deref()) {
        (Some(MappedOutcome::Rejected | MappedOutcome::Failed), other)
            if other.is_none_or(|o| o == id) =>
        {
            conforms("key reused with another payload", described(&reused))
        }
        _ => violates(
            "key reused with another payload",
            format!("{} (a second transfer under one key)", described(&reused)),
        ),
    });
    // The status lookup.
    out.push(match lookup.look(&record, Some(&id)).await {
        Ok(Some(looked)) if looked.status == ClientStatus::Completed => conforms(
            "status lookup",
            format!(
                "completed, id {}",
                looked.transfer_id.as_deref().unwrap_or("?")
            ),
        ),
        Ok(Some(looked)) => violates("status lookup", format!("{:?}", looked.status)),
        Ok(None) => violates("status lookup", "the system does not know the transfer"),
        Err(e) => violates("status lookup", e),
    });
    // The books hold exactly the amount, on both sides.
    let after = admin
        .books(endpoints)
        .await
        .map_err(|e| format!("books: {e}"))?;
    if let Some((external, ledger)) = &after {
        let debit = entries_of(external, &id, true);
        let credit = entries_of(ledger, &id, false);
        let amount = i128::from(AMOUNT_CENTS);
        let exact =
            debit == [(probe.account.clone(), -amount)] && credit == [(probe.user.clone(), amount)];
        out.push(match exact {
            true => conforms(
                "exact amounts",
                format!("{AMOUNT_CENTS} debited from {} and credited to {}", probe.account, probe.user),
            ),
            false => violates(
                "exact amounts",
                format!("entries of {id}: external {debit:?}, ledger {credit:?}; expected {AMOUNT_CENTS} on each side"),
            ),
        });
    }
    Ok(out)
}
