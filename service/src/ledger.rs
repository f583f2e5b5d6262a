//! The internal ledger, our source of truth: credits by transfer id, idempotent. Antifraud
//! and the per-user rate limit refuse a credit by *recording* the refusal under its id, so a
//! late duplicate of the same credit replays the refusal instead of applying: only a recorded
//! refusal is definite enough for the coordinator to reverse the debit.

use crate::api_error::ApiError;
use crate::book::{self, BookError};
use crate::contract::{
    routes, CreditRequest, EntryKind, ErrorCode, TransferRecord, TransferStatus,
};
use crate::ids::{TransferId, UserId};
use crate::institution::{common_routes, settings_route, Institution};
use crate::json_body::{JsonBody, MAX_BODY_BYTES};
use crate::ledger_policy::LedgerPolicy;
use crate::money::AmountCents;
use crate::server::{require_admin, AdminGuard};
use crate::settings::Live;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rusqlite::Connection;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Fixed one-second windows of new credits per user.
#[derive(Default)]
struct RateWindows {
    by_user: HashMap<String, (u64, u32)>,
}

impl RateWindows {
    /// Counts one credit for `user` in the current second; false when over `limit`.
    fn admit(&mut self, user: &str, limit: u32, now_s: u64) -> bool {
        if self.by_user.len() > 100_000 {
            self.by_user.retain(|_, (second, _)| *second == now_s);
        }
        let window = self.by_user.entry(user.to_owned()).or_insert((now_s, 0));
        if window.0 != now_s {
            *window = (now_s, 0);
        }
        if window.1 >= limit {
            return false;
        }
        window.1 += 1;
        true
    }
}

pub struct Ledger {
    pub inst: Arc<Institution>,
    /// The rules, read for every new credit, patched by `PUT /admin/policy`.
    policy: Arc<Live<LedgerPolicy>>,
    rate_windows: Mutex<RateWindows>,
}

#[derive(Debug, Clone)]
pub struct Credit {
    pub transfer_id: TransferId,
    pub user_id: UserId,
    pub amount_cents: AmountCents,
}

use crate::contract::reasons::{
    ANTIFRAUD as REASON_ANTIFRAUD, RATE_LIMITED as REASON_RATE_LIMITED,
};

/// Applies a credit, or replays the outcome first recorded for its id. `admit` is asked only
/// for a new id and may name a refusal reason.
pub fn credit(
    conn: &Connection,
    request: &Credit,
    admit: impl FnOnce() -> Option<&'static str>,
) -> Result<TransferRecord, BookError> {
    if let Some(existing) = book::transfer(conn, &request.transfer_id)? {
        let same = existing.account_id.as_deref() == Some(request.user_id.as_str())
            && existing.amount_cents == Some(request.amount_cents);
        if !same {
            return Err(BookError::Conflict {
                transfer_id: request.transfer_id.to_string(),
            });
        }
        return Ok(existing);
    }
    let user = request.user_id.as_str();
    if book::balance(conn, user)?.is_none() {
        return Err(BookError::UnknownAccount(user.into()));
    }
    let mut record = TransferRecord {
        transfer_id: request.transfer_id.to_string(),
        account_id: Some(user.to_owned()),
        amount_cents: Some(request.amount_cents),
        status: TransferStatus::Credited,
        reason: None,
    };
    match admit() {
        Some(reason) => {
            record.status = TransferStatus::Refused;
            record.reason = Some(reason.to_owned());
        }
        None => {
            book::post_entry(
                conn,
                &request.transfer_id,
                user,
                EntryKind::Credit,
                request.amount_cents,
            )?;
        }
    }
    book::insert_transfer(conn, &record)?;
    Ok(record)
}

impl Ledger {
    pub fn new(inst: Arc<Institution>, policy: LedgerPolicy) -> Self {
        Ledger {
            inst,
            policy: Arc::new(Live::new(policy)),
            rate_windows: Mutex::new(RateWindows::default()),
        }
    }

    /// The refusal, if any, of a new credit under the current rules.
    fn admission(&self, request: &Credit) -> Option<&'static str> {
        let policy = self.policy.get();
        if let Some(max) = policy.antifraud_max_amount_cents {
            if request.amount_cents > max {
                return Some(REASON_ANTIFRAUD);
            }
        }
        if self.inst.faults.rng.chance(policy.antifraud_refusal_rate) {
            return Some(REASON_ANTIFRAUD);
        }
        if let Some(limit) = policy.rate_limit_per_user_per_s {
            let now_s = u64::try_from(crate::server::now_ms() / 1000).unwrap_or(0);
            let mut windows = match self.rate_windows.lock() {
                Ok(w) => w,
                Err(poisoned) => poisoned.into_inner(),
            };
            if !windows.admit(request.user_id.as_str(), limit, now_s) {
                return Some(REASON_RATE_LIMITED);
            }
        }
        None
    }
}

/// 200 credited; 422 refused by antifraud; 429 refused by the rate limit.
fn credit_answer(record: TransferRecord) -> Response {
    let status = match (record.status, record.reason.as_deref()) {
        (TransferStatus::Credited, _) => StatusCode::OK,
        (_, Some(REASON_RATE_LIMITED)) => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    (status, Json(record)).into_response()
}

async fn post_credit(
    State(ledger): State<Arc<Ledger>>,
    JsonBody(body): JsonBody<CreditRequest>,
) -> Response {
    let inst = ledger.inst.clone();
    let work = async move {
        let request = Credit {
            transfer_id: TransferId::parse(&body.transfer_id)?,
            user_id: UserId::parse(&body.user_id)?,
            amount_cents: body.amount_cents.transfer_amount()?,
        };
        let rules = ledger.clone();
        let record = ledger
            .inst
            .store
            .write(move |conn| credit(conn, &request, || rules.admission(&request)))
            .await
            .map_err(|err| match err {
                BookError::UnknownAccount(user) => {
                    ApiError::new(ErrorCode::UnknownUser, format!("unknown user {user}"))
                }
                other => other.into(),
            })?;
        let label = match record.reason.as_deref() {
            Some(REASON_ANTIFRAUD) => REASON_ANTIFRAUD,
            Some(REASON_RATE_LIMITED) => REASON_RATE_LIMITED,
            _ => record.status.as_str(),
        };
        ledger.inst.counters.inc("credit", label);
        Ok(credit_answer(record))
    };
    inst.with_faults("credit", work).await
}

pub fn app(ledger: Arc<Ledger>, guard: AdminGuard) -> Router {
    let common = common_routes(ledger.inst.clone(), guard.clone());
    let lookup = Router::new()
        .route(routes::CREDIT, get(crate::institution::get_transfer))
        .with_state(ledger.inst.clone());
    let admin = Router::new()
        .route(
            routes::ADMIN_POLICY,
            settings_route(ledger.policy.clone(), ErrorCode::InvalidPolicy),
        )
        .route_layer(axum::middleware::from_fn_with_state(guard, require_admin));
    Router::new()
        .route(routes::CREDITS, post(post_credit))
        .route_layer(axum::middleware::from_fn(
            crate::institution::carried_out_even_if_caller_hangs_up,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(ledger)
        .merge(lookup)
        .merge(common)
        .merge(admin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_windows_reset_each_second() {
        let mut windows = RateWindows::default();
        assert!(windows.admit("u", 2, 10));
        assert!(windows.admit("u", 2, 10));
        assert!(!windows.admit("u", 2, 10));
        assert!(windows.admit("other", 2, 10));
        assert!(windows.admit("u", 2, 11));
    }
}
