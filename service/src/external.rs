//! The simulated external institution: accounts that never overdraw, debits and reversals by
//! transfer id, both idempotent. A reversal of an id never seen leaves a tombstone, so a late
//! original debit is refused instead of taking money nobody will give back.

use crate::book::{self, BookError};
use crate::contract::{reasons, routes, DebitRequest, EntryKind, TransferRecord, TransferStatus};
use crate::ids::{AccountId, TransferId};
use crate::institution::{common_routes, Institution};
use crate::json_body::{JsonBody, MAX_BODY_BYTES};
use crate::money::AmountCents;
use crate::server::AdminGuard;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rusqlite::Connection;
use std::sync::Arc;

/// Behaviour switches of the external side. `tombstones: false` is a deliberately broken
/// variant (mutant) used to show that the checker catches a reversal overtaking its debit.
#[derive(Debug, Clone, Copy)]
pub struct ExternalPolicy {
    pub tombstones: bool,
}

impl Default for ExternalPolicy {
    fn default() -> Self {
        ExternalPolicy { tombstones: true }
    }
}

pub struct External {
    pub inst: Arc<Institution>,
    pub policy: ExternalPolicy,
}

#[derive(Debug, Clone)]
pub struct Debit {
    pub transfer_id: TransferId,
    pub account_id: AccountId,
    pub amount_cents: AmountCents,
}

/// Applies a debit, or replays the outcome first recorded for its id.
pub fn debit(conn: &Connection, request: &Debit) -> Result<TransferRecord, BookError> {
    if let Some(existing) = book::transfer(conn, &request.transfer_id)? {
        if existing.status == TransferStatus::Tombstone {
            return Ok(existing);
        }
        let same = existing.account_id.as_deref() == Some(request.account_id.as_str())
            && existing.amount_cents == Some(request.amount_cents);
        if !same {
            return Err(BookError::Conflict {
                transfer_id: request.transfer_id.to_string(),
            });
        }
        return Ok(existing);
    }
    let account = request.account_id.as_str();
    let balance =
        book::balance(conn, account)?.ok_or_else(|| BookError::UnknownAccount(account.into()))?;
    let mut record = TransferRecord {
        transfer_id: request.transfer_id.to_string(),
        account_id: Some(account.to_owned()),
        amount_cents: Some(request.amount_cents),
        status: TransferStatus::Debited,
        reason: None,
    };
    if balance < request.amount_cents {
        record.status = TransferStatus::Refused;
        record.reason = Some(reasons::INSUFFICIENT_FUNDS.into());
    } else {
        book::post_entry(
            conn,
            &request.transfer_id,
            account,
            EntryKind::Debit,
            request.amount_cents,
        )?;
    }
    book::insert_transfer(conn, &record)?;
    Ok(record)
}

/// Reverses a debit (idempotent). An unknown id gets a tombstone, unless the policy is the
/// broken no-tombstone variant, which records nothing.
pub fn reverse(
    conn: &Connection,
    id: &TransferId,
    policy: ExternalPolicy,
) -> Result<TransferRecord, BookError> {
    match book::transfer(conn, id)? {
        Some(record) if record.status == TransferStatus::Debited => {
            let (Some(account), Some(amount)) = (record.account_id.clone(), record.amount_cents)
            else {
                return Err(BookError::Store(crate::store::StoreError::Corrupt(
                    format!("debited transfer {id} without account or amount"),
                )));
            };
            book::post_entry(conn, id, &account, EntryKind::Reversal, amount)?;
            book::set_status(conn, id, TransferStatus::Reversed)?;
            Ok(TransferRecord {
                status: TransferStatus::Reversed,
                ..record
            })
        }
        // Reversed, refused or tombstoned already: nothing (more) to undo.
        Some(record) => Ok(record),
        None => {
            let tombstone = TransferRecord {
                transfer_id: id.to_string(),
                account_id: None,
                amount_cents: None,
                status: TransferStatus::Tombstone,
                reason: Some(reasons::REVERSED_BEFORE_DEBIT.into()),
            };
            if policy.tombstones {
                book::insert_transfer(conn, &tombstone)?;
            }
            Ok(tombstone)
        }
    }
}

/// 200 when the debit is in effect; 422 when it is not (refused, reversed, tombstoned).
fn debit_answer(record: TransferRecord) -> Response {
    let status = match record.status {
        TransferStatus::Debited => StatusCode::OK,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    (status, Json(record)).into_response()
}

async fn post_debit(
    State(ext): State<Arc<External>>,
    JsonBody(body): JsonBody<DebitRequest>,
) -> Response {
    let inst = ext.inst.clone();
    let work = async move {
        let request = Debit {
            transfer_id: TransferId::parse(&body.transfer_id)?,
            account_id: AccountId::parse(&body.external_account_id)?,
            amount_cents: body.amount_cents.transfer_amount()?,
        };
        let record = ext
            .inst
            .store
            .write(move |conn| debit(conn, &request))
            .await?;
        ext.inst.counters.inc("debit", record.status.as_str());
        Ok(debit_answer(record))
    };
    inst.with_faults("debit", work).await
}

async fn post_reverse(State(ext): State<Arc<External>>, Path(id): Path<String>) -> Response {
    let inst = ext.inst.clone();
    let work = async move {
        let id = TransferId::parse(&id)?;
        let policy = ext.policy;
        let record = ext
            .inst
            .store
            .write(move |conn| reverse(conn, &id, policy))
            .await?;
        ext.inst.counters.inc("reverse", record.status.as_str());
        Ok(Json(record).into_response())
    };
    inst.with_faults("reverse", work).await
}

pub fn app(ext: Arc<External>, guard: AdminGuard) -> Router {
    let common = common_routes(ext.inst.clone(), guard);
    let lookup = Router::new()
        .route(routes::DEBIT, get(crate::institution::get_transfer))
        .with_state(ext.inst.clone());
    Router::new()
        .route(routes::DEBITS, post(post_debit))
        .route(routes::REVERSE, post(post_reverse))
        .route_layer(axum::middleware::from_fn(
            crate::institution::carried_out_even_if_caller_hangs_up,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(ext)
        .merge(lookup)
        .merge(common)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Debit {
            id: u8,
            account: u8,
            amount: u64,
        },
        Reverse {
            id: u8,
        },
        /// Sends again the first debit ever sent for this id (a network duplicate).
        Replay {
            id: u8,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..6, 0u8..2, 1u64..60).prop_map(|(id, account, amount)| Op::Debit {
                id,
                account,
                amount
            }),
            (0u8..6).prop_map(|id| Op::Reverse { id }),
            (0u8..6).prop_map(|id| Op::Replay { id }),
        ]
    }

    const OPENING: u64 = 100;

    fn books() -> Connection {
        let conn = Connection::open_in_memory().expect("in-memory sqlite");
        conn.execute_batch(book::SCHEMA).expect("schema");
        let accounts = vec![
            ("a0".to_owned(), AmountCents::new(OPENING)),
            ("a1".to_owned(), AmountCents::new(OPENING)),
        ];
        book::seed_accounts(&conn, &accounts).expect("seed");
        conn
    }

    fn debit_of(id: u8, account: u8, amount: u64) -> Debit {
        Debit {
            transfer_id: TransferId::parse(&format!("t-{id}")).expect("id"),
            account_id: AccountId::parse(&format!("a{account}")).expect("account"),
            amount_cents: AmountCents::new(amount),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever the order of debits, reversals and duplicates: no balance below zero,
        /// money conserved (balances plus what is held as debited equals the opening total),
        /// at most one debit and one reversal per id, and a reversal that came first
        /// (tombstone) keeps the id from ever being debited.
        #[test]
        fn debits_reversals_and_replays_conserve_money(ops in proptest::collection::vec(op(), 1..40)) {
            let conn = books();
            let mut first_debit: std::collections::HashMap<u8, Debit> = Default::default();
            let mut tombstoned_first: std::collections::HashSet<u8> = Default::default();
            for op in &ops {
                match op {
                    Op::Debit { id, account, amount } => {
                        let request = debit_of(*id, *account, *amount);
                        let known = first_debit.entry(*id).or_insert_with(|| request.clone()).clone();
                        match debit(&conn, &request) {
                            Ok(record) if tombstoned_first.contains(id) => {
                                prop_assert_eq!(record.status, TransferStatus::Tombstone);
                            }
                            Ok(_) => {}
                            Err(BookError::Conflict { .. }) => {
                                prop_assert!(known.amount_cents != request.amount_cents
                                    || known.account_id != request.account_id);
                            }
                            Err(other) => prop_assert!(false, "debit failed: {other}"),
                        }
                    }
                    Op::Reverse { id } => {
                        let tid = TransferId::parse(&format!("t-{id}")).expect("id");
                        if book::transfer(&conn, &tid).expect("read").is_none() {
                            tombstoned_first.insert(*id);
                        }
                        reverse(&conn, &tid, ExternalPolicy::default()).expect("reverse");
                    }
                    Op::Replay { id } => {
                        if let Some(first) = first_debit.get(id) {
                            let before = book::transfer(&conn, &first.transfer_id).expect("read");
                            let replayed = debit(&conn, first);
                            if let (Some(before), Ok(after)) = (before, replayed) {
                                prop_assert_eq!(before, after, "a replay returns the recorded outcome");
                            }
                        }
                    }
                }
                let dump = book::dump(&conn).expect("dump");
                let balances: u64 = dump.accounts.iter().map(|a| a.balance_cents.get()).sum();
                let held: u64 = dump
                    .transfers
                    .iter()
                    .filter(|t| t.status == TransferStatus::Debited)
                    .filter_map(|t| t.amount_cents)
                    .map(AmountCents::get)
                    .sum();
                prop_assert_eq!(balances + held, 2 * OPENING, "money conserved");
                for transfer in &dump.transfers {
                    let count = |kind| dump.entries.iter()
                        .filter(|e| e.transfer_id == transfer.transfer_id && e.kind == kind)
                        .count();
                    prop_assert!(count(EntryKind::Debit) <= 1);
                    prop_assert!(count(EntryKind::Reversal) <= count(EntryKind::Debit));
                }
            }
        }
    }

    #[test]
    fn without_tombstones_a_late_debit_goes_through() {
        // The no-tombstone mutant: a reversal that overtakes its debit is forgotten, and
        // the late debit then takes money that nobody will give back.
        let conn = books();
        let id = TransferId::parse("t-late").expect("id");
        reverse(&conn, &id, ExternalPolicy { tombstones: false }).expect("reverse");
        let record = debit(&conn, &debit_of(0, 0, 30)).expect("debit");
        assert_eq!(record.status, TransferStatus::Debited);
        let late = Debit {
            transfer_id: id,
            ..debit_of(0, 0, 30)
        };
        assert_eq!(
            debit(&conn, &late).expect("late debit").status,
            TransferStatus::Debited
        );
    }
}
