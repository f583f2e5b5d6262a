//! What the external institution and the ledger share over HTTP: their store, fault knobs,
//! counters, the admin routes (seeding, dump, knobs), `/healthz`, `/metrics`, and the wrapper
//! that applies fault knobs around a money-moving operation.

use crate::api_error::ApiError;
use crate::book::{self, BookError};
use crate::contract::{
    routes, Created, Dump, DumpPage, DumpQuery, ErrorCode, SeedAccounts, Totals, TransferRecord,
};
use crate::fault_injection::FaultInjector;
use crate::json_body::{JsonBody, MAX_ADMIN_BODY_BYTES};
use crate::knobs::FaultKnobs;
use crate::metrics::Counters;
use crate::server::{require_admin, AdminGuard};
use crate::settings::{Live, Patch, Settings};
use crate::store::Store;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::{Json, Router};
use std::sync::Arc;

/// The parts of an institution that are not specific to debits or credits.
pub struct Institution {
    /// `external` or `ledger`: labels metrics and logs.
    pub name: &'static str,
    pub store: Store,
    /// The fault knobs and the seeded source of every random decision of this process.
    pub faults: FaultInjector,
    pub counters: Counters,
}

impl Institution {
    pub fn new(name: &'static str, store: Store, knobs: FaultKnobs, seed: u64) -> Self {
        Institution {
            name,
            store,
            faults: FaultInjector::new(knobs, seed),
            counters: Counters::default(),
        }
    }

    /// Runs a money-moving operation under the fault knobs (`FaultInjector::run`).
    pub async fn with_faults<Fut>(&self, operation: &'static str, work: Fut) -> Response
    where
        Fut: std::future::Future<Output = Result<Response, ApiError>>,
    {
        self.faults.run(&self.counters, operation, work).await
    }
}

/// Middleware for the money-moving routes: the request, body extraction included, runs in a
/// task of its own, so a caller that hangs up (a coordinator that timed out, whose
/// connection a proxy then closed after delivering the request) does not cancel it. A bank
/// does not undo a debit because the line dropped: this is what makes a timed-out call
/// "maybe applied" for real. The server notices a hang-up only once it has handed the whole
/// body over, so a complete request is always carried out.
pub async fn carried_out_even_if_caller_hangs_up(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match tokio::spawn(next.run(request)).await {
        Ok(response) => response,
        Err(err) => ApiError::internal(err).into_response(),
    }
}

impl From<BookError> for ApiError {
    fn from(err: BookError) -> Self {
        match err {
            BookError::UnknownAccount(account) => ApiError::new(
                ErrorCode::UnknownAccount,
                format!("unknown account {account}"),
            ),
            BookError::Conflict { .. } => {
                ApiError::new(ErrorCode::TransferIdReused, err.to_string())
            }
            BookError::AccountExists(_) => ApiError::new(ErrorCode::AccountExists, err.to_string()),
            BookError::Overflow(_) => ApiError::new(ErrorCode::BalanceOverflow, err.to_string()),
            BookError::Store(store) => store.into(),
            BookError::Overdraft(_) => ApiError::internal(err),
        }
    }
}

/// Most accounts one seeding call may create.
pub const MAX_SEED_ACCOUNTS: usize = 100_000;

async fn seed(
    State(inst): State<Arc<Institution>>,
    JsonBody(request): JsonBody<SeedAccounts>,
) -> Result<Response, ApiError> {
    if request.accounts.len() > MAX_SEED_ACCOUNTS {
        return Err(ApiError::new(
            ErrorCode::TooManyAccounts,
            format!("at most {MAX_SEED_ACCOUNTS} accounts per call"),
        ));
    }
    let mut accounts = Vec::with_capacity(request.accounts.len());
    for account in request.accounts {
        let id = crate::ids::AccountId::parse(&account.account_id)
            .map_err(|e| ApiError::new(ErrorCode::InvalidId, format!("account_id: {e}")))?;
        let opening = account
            .balance_cents
            .balance()
            .map_err(|e| ApiError::new(ErrorCode::InvalidAmount, format!("balance_cents: {e}")))?;
        accounts.push((id.as_str().to_owned(), opening));
    }
    let created = inst
        .store
        .write(move |conn| book::seed_accounts(conn, &accounts))
        .await?;
    Ok((StatusCode::CREATED, Json(Created { created })).into_response())
}

/// `GET /admin/dump`: the whole books, or with a query a page of what changed after a
/// cursor.
async fn dump(
    State(inst): State<Arc<Institution>>,
    query: Result<Query<DumpQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.body_text()))?;
    let sqlite = |e: BookError| crate::store::StoreError::Sqlite(e.to_string());
    if !query.asks_for_page() {
        let dump = inst
            .store
            .read(move |conn| book::dump(conn).map_err(sqlite))
            .await?;
        return Ok(Json::<Dump>(dump).into_response());
    }
    let limit = query
        .page_limit()
        .map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e))?;
    let cursor = query.cursor();
    let page = inst
        .store
        .read(move |conn| book::dump_page(conn, cursor, limit).map_err(sqlite))
        .await?;
    Ok(Json::<DumpPage>(page).into_response())
}

async fn totals(State(inst): State<Arc<Institution>>) -> Result<Json<Totals>, ApiError> {
    let totals = inst
        .store
        .read(|conn| {
            book::totals(conn).map_err(|e| crate::store::StoreError::Sqlite(e.to_string()))
        })
        .await?;
    Ok(Json(totals))
}

/// `GET` and `PUT` of live settings: `PUT` takes a patch of any of their fields and answers
/// the whole value; a patch that names an unknown field, has a wrong type or leaves a range
/// (answered with `out_of_range`) changes nothing.
pub fn settings_route<T>(live: Arc<Live<T>>, out_of_range: ErrorCode) -> MethodRouter
where
    T: Settings + std::fmt::Debug + Send + Sync + 'static,
{
    let reader = live.clone();
    get(move || async move { Json(reader.get()) }).put(
        move |JsonBody(patch): JsonBody<Patch<T>>| async move {
            let next = live
                .apply(&patch)
                .map_err(|e| ApiError::from_setting(e, out_of_range))?;
            tracing::info!(settings = ?next, "settings changed");
            Ok::<_, ApiError>(Json(next))
        },
    )
}

/// `GET|PUT /admin/disk`: the disk fault `store`'s commits are under.
pub fn disk_route(store: &Store) -> MethodRouter {
    settings_route(store.disk_fault(), ErrorCode::InvalidField)
}

async fn metrics(State(inst): State<Arc<Institution>>) -> String {
    inst.counters.render(inst.name, inst.store.stats())
}

/// `GET /debits/{id}` and `GET /credits/{id}`: the record of one transfer id, or 404.
pub async fn get_transfer(
    State(inst): State<Arc<Institution>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<TransferRecord>, ApiError> {
    let id = crate::ids::TransferId::parse(&id)?;
    let found = inst
        .store
        .read(move |conn| {
            book::transfer(conn, &id).map_err(|e| crate::store::StoreError::Sqlite(e.to_string()))
        })
        .await?;
    found
        .map(Json)
        .ok_or_else(|| ApiError::new(ErrorCode::UnknownTransfer, "no such transfer id"))
}

pub async fn healthz() -> &'static str {
    "ok"
}

/// `/healthz`, `/metrics` and the guarded `/admin/{accounts,dump,knobs}` routes.
pub fn common_routes(inst: Arc<Institution>, guard: AdminGuard) -> Router {
    let knobs = settings_route(inst.faults.knobs.clone(), ErrorCode::InvalidKnob);
    let admin = Router::new()
        .route(routes::ADMIN_ACCOUNTS, axum::routing::post(seed))
        .route(routes::ADMIN_DUMP, get(dump))
        .route(routes::ADMIN_TOTALS, get(totals))
        .with_state(inst.clone())
        .route(routes::ADMIN_KNOBS, knobs)
        .route(routes::ADMIN_DISK, disk_route(&inst.store))
        .layer(DefaultBodyLimit::max(MAX_ADMIN_BODY_BYTES))
        .route_layer(axum::middleware::from_fn_with_state(guard, require_admin));
    Router::new()
        .route(routes::HEALTHZ, get(healthz))
        .route(routes::METRICS, get(metrics))
        .with_state(inst)
        .merge(admin)
}
