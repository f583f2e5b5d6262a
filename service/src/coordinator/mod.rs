//! The coordinator (the API gateway): serves `POST /transfers` synchronously within a
//! deadline, debiting the external institution and crediting the ledger.
//!
//! - `settings`: the coordinator's settings (design, deadline, shedding bounds), defined once.
//! - `admission`: the limit on transfers in flight, lowered when answers stand late on a
//!   saturated host.
//! - `saga_log`: the durable saga rows and user-account links (SQLite).
//! - `remote`: calls to the external side and the ledger, answers sorted applied/refused/unknown.
//! - `saga`: the step-by-step saga driver.
//! - `ownership`: which sagas a live task is driving.
//! - `recovery`: the worker that finishes unfinished sagas, also after restarts.
//! - `naive`: the seed's design, the known-bad baseline.
//! - `mutant`: the single-bug mutants of the saga design, kept to prove the checks.

pub mod admission;
pub mod in_flight;
pub mod mutant;
pub mod naive;
pub mod ownership;
pub mod recovery;
pub mod remote;
pub mod saga;
pub mod saga_log;
pub mod settings;

use crate::api_error::ApiError;
use crate::contract::{
    routes, ClientStatus, Created, ErrorCode, SagaDump, SagaPage, SagaQuery, TransferRequest,
    TransferView, UserLinks,
};
use crate::fault_injection::FaultInjector;
use crate::ids::{AccountId, IdempotencyKey, TransferId, UserId};
use crate::json_body::{JsonBody, MAX_ADMIN_BODY_BYTES, MAX_BODY_BYTES};
use crate::metrics::Counters;
use crate::server::{require_admin, AdminGuard};
use crate::store::Store;
use admission::Admission;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use in_flight::InFlightTally;
use naive::{Naive, NaiveOutcome};
use ownership::Ownership;
use recovery::{Recovery, RecoveryConfig};
use remote::Remote;
use saga::{Driver, StartedMode, Step};
use saga_log::{Begin, BeginError, Intent, Saga};
pub use settings::{CoordinatorSettings, Design};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    pub design: Design,
    /// Budget of the synchronous answer; past it the answer is `pending` (202).
    pub deadline: Duration,
    /// Requests handled at once; more are shed with 503 before anything is written.
    pub max_in_flight: usize,
    /// Answer time above which, on a saturated host, the limit on transfers in flight falls
    /// (zero: the limit stays at `max_in_flight`).
    pub admission_target: Duration,
    pub recovery: RecoveryConfig,
}

impl CoordinatorConfig {
    /// The runtime configuration `settings` describe.
    pub fn from_settings(settings: &CoordinatorSettings) -> Self {
        CoordinatorConfig {
            design: settings.design,
            deadline: Duration::from_millis(settings.deadline_ms),
            max_in_flight: settings.max_in_flight as usize,
            admission_target: Duration::from_millis(settings.admission_target_ms),
            recovery: RecoveryConfig::with_call_timeout(Duration::from_millis(
                settings.recovery_call_timeout_ms,
            )),
        }
    }
}

pub struct Coordinator {
    config: CoordinatorConfig,
    store: Store,
    driver: Arc<Driver>,
    ownership: Ownership,
    admission: Arc<Admission>,
    counters: Arc<Counters>,
    /// The recovery worker (None for the naive design, which has none).
    recovery: Option<Arc<Recovery>>,
    /// Present only for the naive design.
    naive: Option<Naive>,
    /// The fault knobs applied to each admitted transfer (`PUT /admin/knobs`).
    faults: FaultInjector,
}

/// Builds the coordinator and starts its background work (the recovery worker for `saga`,
/// the in-memory reversal worker for `naive`), once the money in flight is read off the
/// log. Must run inside a tokio runtime.
pub async fn start(
    config: CoordinatorConfig,
    store: Store,
    remote: Remote,
    faults: FaultInjector,
) -> Result<Arc<Coordinator>, crate::store::StoreError> {
    let counters = Arc::new(Counters::default());
    let in_flight = store.read(saga_log::in_flight).await?;
    let driver = Arc::new(Driver {
        log: store.clone(),
        remote: remote.clone(),
        counters: counters.clone(),
        in_flight: InFlightTally::new(in_flight),
        mutations: mutant::Mutations::of(config.design, &remote),
    });
    let ownership = Ownership::default();
    let (naive, recovery) = match config.design {
        Design::Naive => (Some(Naive::start(remote)), None),
        // The saga design and its mutants.
        _ => {
            let recovery =
                Recovery::new(driver.clone(), ownership.clone(), config.recovery.clone());
            tokio::spawn(recovery.clone().run());
            (None, Some(recovery))
        }
    };
    let admission = Arc::new(Admission::new(
        config.admission_target,
        config.max_in_flight,
    ));
    if !config.admission_target.is_zero() {
        tokio::spawn(read_host_load(admission.clone()));
    }
    Ok(Arc::new(Coordinator {
        admission,
        config,
        store,
        driver,
        ownership,
        counters,
        recovery,
        naive,
        faults,
    }))
}

/// Reads the host's idle CPU for admission, once a window, for as long as the process lives.
async fn read_host_load(admission: Arc<Admission>) {
    let mut meter = crate::host_load::IdleMeter::new();
    let mut tick = tokio::time::interval(admission::WINDOW);
    loop {
        tick.tick().await;
        if let Some(idle_share) = meter.sample() {
            admission.record_host_idle(idle_share);
        }
    }
}

/// The answer for a saga, with the HTTP status its client status carries.
fn answer(view: TransferView) -> Response {
    let code = StatusCode::from_u16(view.status.http_status()).unwrap_or(StatusCode::OK);
    (code, Json(view)).into_response()
}

fn view_of(saga: &Saga) -> TransferView {
    TransferView {
        transfer_id: saga.transfer_id.clone(),
        status: saga.state.client_status(),
        state: Some(saga.state),
        user_id: saga.user_id.clone(),
        external_account_id: saga.external_account_id.clone(),
        amount_cents: saga.amount_cents,
        reason: saga.reason.clone(),
    }
}

fn parse_intent(headers: &HeaderMap, body: TransferRequest) -> Result<Intent, ApiError> {
    let key = match headers.get(routes::IDEMPOTENCY_KEY_HEADER) {
        None => {
            return Err(ApiError::new(
                ErrorCode::MissingIdempotencyKey,
                "the Idempotency-Key header is required",
            ))
        }
        Some(value) => value.to_str().map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidIdempotencyKey,
                "Idempotency-Key must be visible ASCII",
            )
        })?,
    };
    let idempotency_key = IdempotencyKey::parse(key)
        .map_err(|e| ApiError::new(ErrorCode::InvalidIdempotencyKey, e.to_string()))?;
    Ok(Intent {
        user_id: UserId::parse(&body.user_id)?,
        idempotency_key,
        external_account_id: AccountId::parse(&body.external_account_id)?,
        amount_cents: body.amount_cents.transfer_amount()?,
    })
}

impl From<BeginError> for ApiError {
    fn from(err: BeginError) -> Self {
        match err {
            BeginError::KeyReused => ApiError::new(
                ErrorCode::IdempotencyKeyReused,
                "this Idempotency-Key was already used by this user for a different transfer",
            ),
            BeginError::UnknownUser(_) => ApiError::new(ErrorCode::UnknownUser, err.to_string()),
            BeginError::UnknownAccount { .. } => {
                ApiError::new(ErrorCode::UnknownAccount, err.to_string())
            }
            BeginError::Store(store) => store.into(),
        }
    }
}

async fn post_transfer(
    State(coord): State<Arc<Coordinator>>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    let deadline = Instant::now() + coord.config.deadline;
    // Shed at the door: before the body is read or parsed, and before anything is written.
    // A shed request changed nothing and is safe to retry; its connection stays open (a
    // body that came with the headers is skipped by the HTTP server, not parsed).
    let permit = coord.admission.admit();
    let refusal = match &permit {
        None => Some("too many transfers in flight; retry later"),
        Some(_) if coord.store.saturated() => Some("saga log is saturated; retry later"),
        Some(_) => None,
    };
    let late_shed = mutant::sheds_late(coord.config.design, refusal);
    if let (Some(why), None) = (refusal, late_shed) {
        coord.counters.inc("transfer", "shed");
        return Err(ApiError::new(ErrorCode::Overloaded, why));
    }
    // The headers are taken out, not copied; the body limit travels in the extensions.
    let (mut parts, body) = request.into_parts();
    let headers = std::mem::take(&mut parts.headers);
    let request = axum::extract::Request::from_parts(parts, body);
    let JsonBody(body) = JsonBody::<TransferRequest>::from_request(request, &()).await?;
    let intent = parse_intent(&headers, body)?;
    let work = async {
        match &coord.naive {
            Some(naive) => naive_transfer(&coord, naive, intent, deadline).await,
            None => saga_transfer(coord.clone(), intent, deadline).await,
        }
    };
    let response = coord.faults.run(&coord.counters, "transfer", work).await;
    if let Some(arrived) = deadline.checked_sub(coord.config.deadline) {
        coord.admission.record(arrived.elapsed());
    }
    drop(permit);
    if let Some(why) = late_shed {
        coord.counters.inc("transfer", "shed");
        return Err(ApiError::new(ErrorCode::Overloaded, why));
    }
    Ok(response)
}

async fn naive_transfer(
    coord: &Coordinator,
    naive: &Naive,
    intent: Intent,
    deadline: Instant,
) -> Result<Response, ApiError> {
    let (user, account) = (intent.user_id.clone(), intent.external_account_id.clone());
    let linked = coord
        .store
        .read(move |conn| Ok(saga_log::check_link(conn, &user, &account)))
        .await?;
    linked?;
    let (transfer_id, status, reason) = match naive.transfer(&intent, deadline).await {
        NaiveOutcome::Completed(id) => (id, ClientStatus::Completed, None),
        NaiveOutcome::Failed(id, why) => (id, ClientStatus::Failed, Some(why)),
    };
    coord.counters.inc("transfer", status.as_str());
    Ok(answer(TransferView {
        transfer_id,
        status,
        state: None,
        user_id: intent.user_id,
        external_account_id: intent.external_account_id,
        amount_cents: intent.amount_cents,
        reason,
    }))
}

/// The shortest remote-call timeout worth trying; below it the answer is `pending`.
const MIN_CALL_BUDGET: Duration = Duration::from_millis(2);

async fn saga_transfer(
    coord: Arc<Coordinator>,
    intent: Intent,
    deadline: Instant,
) -> Result<Response, ApiError> {
    let new_id = TransferId::generate();
    // Claimed before the intent is written, so the recovery worker never sees this saga
    // unowned while its handler may still send the debit.
    let guard = coord
        .ownership
        .try_claim(&new_id)
        .ok_or_else(|| ApiError::internal("fresh transfer id already owned"))?;
    let begin_id = new_id.clone();
    let honour_keys = !coord.driver.mutations.no_idempotency;
    let begun = coord
        .store
        .write(move |conn| saga_log::begin(conn, &intent, &begin_id, honour_keys))
        .await?;
    let saga = match begun {
        Begin::Existing(saga) => {
            coord.counters.inc("transfer", "replay");
            return Ok(answer(view_of(&saga)));
        }
        Begin::New(saga) => {
            coord.driver.in_flight.begun(saga.amount_cents);
            saga
        }
    };
    // Driven in its own task: if the client hangs up, the handler future is dropped but the
    // saga keeps going until the deadline, then the recovery worker takes over.
    let task_coord = coord.clone();
    let driven = tokio::spawn(async move {
        let saga = drive_until(&task_coord.driver, saga, deadline).await;
        drop(guard);
        if !saga.state.is_final() {
            if let Some(recovery) = &task_coord.recovery {
                recovery.hand_over(saga.transfer_id.clone());
            }
        }
        saga
    })
    .await
    .map_err(ApiError::internal)?;
    coord
        .counters
        .inc("transfer", driven.state.client_status().as_str());
    Ok(answer(view_of(&driven)))
}

/// Drives a new saga until it is final or the deadline leaves no time for another call.
async fn drive_until(driver: &Driver, mut saga: Saga, deadline: Instant) -> Saga {
    let mut mode = StartedMode::SendDebit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left < MIN_CALL_BUDGET {
            return saga;
        }
        match driver.step(&mut saga, &mut mode, left).await {
            Ok(Step::Progressed) => {}
            Ok(Step::Done) => return saga,
            Ok(Step::Blocked(_)) => {
                // A fast failure (say, a 500 before any work): pause briefly, then retry
                // within the budget rather than spin.
                tokio::time::sleep(MIN_CALL_BUDGET.min(left)).await;
            }
            Err(err) => {
                tracing::error!(%err, transfer_id = %saga.transfer_id, "saga step failed");
                return saga;
            }
        }
    }
}

async fn get_transfer(
    State(coord): State<Arc<Coordinator>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = TransferId::parse(&id)?;
    let saga = coord
        .store
        .read(move |conn| saga_log::get(conn, &id))
        .await?;
    saga.map(|s| answer(view_of(&s)))
        .ok_or_else(|| ApiError::new(ErrorCode::UnknownTransfer, "no such transfer id"))
}

async fn post_users(
    State(coord): State<Arc<Coordinator>>,
    JsonBody(request): JsonBody<UserLinks>,
) -> Result<Response, ApiError> {
    let links = request
        .users
        .iter()
        .map(|u| {
            Ok((
                UserId::parse(&u.user_id)?,
                AccountId::parse(&u.external_account_id)?,
            ))
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let created = coord
        .store
        .write(move |conn| saga_log::link_users(conn, &links))
        .await?;
    Ok((StatusCode::CREATED, Json(Created { created })).into_response())
}

/// `GET /admin/sagas`: the whole saga log, or with a query a page of what changed after a
/// cursor.
async fn get_sagas(
    State(coord): State<Arc<Coordinator>>,
    query: Result<Query<SagaQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.body_text()))?;
    let design = coord.config.design.as_str().to_owned();
    if !query.asks_for_page() {
        let sagas = coord.store.read(saga_log::all_sagas).await?;
        return Ok(Json(SagaDump { design, sagas }).into_response());
    }
    let limit = query
        .page_limit()
        .map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e))?;
    let after = query.after_change.unwrap_or(0);
    let (sagas, next_change) = coord
        .store
        .read(move |conn| saga_log::sagas_changed_after(conn, after, limit))
        .await?;
    let more = sagas.len() >= limit as usize;
    Ok(Json(SagaPage {
        design,
        sagas,
        next_change,
        more,
    })
    .into_response())
}

async fn get_in_flight(
    State(coord): State<Arc<Coordinator>>,
) -> Result<Json<saga_log::InFlight>, ApiError> {
    Ok(Json(coord.driver.in_flight.read()))
}

async fn metrics(State(coord): State<Arc<Coordinator>>) -> String {
    let mut out = coord.counters.render("coordinator", coord.store.stats());
    let limit = u64::try_from(coord.admission.limit()).unwrap_or(u64::MAX);
    crate::metrics::write_gauge(
        &mut out,
        "bank_admission_limit",
        "Transfers the coordinator admits at once now (admission.rs).",
        "coordinator",
        limit,
    );
    if let Some(recovery) = &coord.recovery {
        let queued = u64::try_from(recovery.queued()).unwrap_or(u64::MAX);
        crate::metrics::write_gauge(
            &mut out,
            "bank_recovery_queue",
            "Sagas waiting for the recovery worker, due or backing off.",
            "coordinator",
            queued,
        );
    }
    out
}

pub fn app(coord: Arc<Coordinator>, guard: AdminGuard) -> Router {
    let mut admin = Router::new()
        .route(routes::ADMIN_USERS, post(post_users))
        .route(routes::ADMIN_SAGAS, get(get_sagas));
    // Money in flight is what the saga log holds; a design without one has nothing to say.
    if coord.naive.is_none() {
        admin = admin.route(routes::ADMIN_IN_FLIGHT, get(get_in_flight));
    }
    let admin = admin
        .with_state(coord.clone())
        .route(
            routes::ADMIN_DISK,
            crate::institution::disk_route(&coord.store),
        )
        .route(
            routes::ADMIN_KNOBS,
            crate::institution::settings_route(coord.faults.knobs.clone(), ErrorCode::InvalidKnob),
        )
        .layer(DefaultBodyLimit::max(MAX_ADMIN_BODY_BYTES))
        .route_layer(axum::middleware::from_fn_with_state(guard, require_admin));
    Router::new()
        .route(routes::TRANSFERS, post(post_transfer))
        .route(routes::TRANSFER, get(get_transfer))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .route(routes::HEALTHZ, get(crate::institution::healthz))
        .route(routes::METRICS, get(metrics))
        .with_state(coord)
        .merge(admin)
}

/// The saga log's schema under `design` (the `no-idempotency` mutant's lets a key repeat).
pub fn schema(design: Design) -> String {
    saga_log::schema(design != Design::NoIdempotency)
}
