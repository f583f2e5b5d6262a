//! `foreign-bank`: a payment system for the tests that does not speak `docs/contract.md`, in
//! the shape teams write them, so the tests can point the harness at it through a target
//! file's `api:` and `books:` sections alone.
//!
//! - `issuer`: the customer's bank. `POST /accounts`, `POST /charges` (idempotent by `ref`),
//!   its books in SQL: `accounts` and signed `postings` (a charge is negative), also served
//!   as a statement export (`GET /export`).
//! - `psp`: the payment service. `POST /v1/customers`, `POST /v1/payments` (amounts as
//!   decimal strings in major units, the idempotency key in the body as `reference`, the id
//!   nested at `/payment/id`, answers 201, 202, 409 and 422), `GET /v1/payments?customer=&reference=`.
//!   Its ledger is double-entry rows in SQL: the customer's line is positive, the clearing
//!   account's negative, written in the transaction that settles the payment. A payment
//!   the bank did not answer stays `processing` and a worker charges it again (the bank
//!   replays a charge by its `ref`) until it settles or is declined.
//!
//! Both run on SQLite (`sqlite:///path?mode=rwc`) or PostgreSQL (`postgres://…`), through
//! sqlx's `any` driver. Two flags break the psp on purpose: `--ignore-key` makes every
//! request a new payment, `--ledger-write-fails` settles (and answers 201) without writing
//! the ledger lines.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::{Parser, Subcommand};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use sqlx::Row;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand)]
enum Role {
    Issuer {
        #[arg(long)]
        db: String,
        /// A file holding the database's password, put into `--db`'s URL.
        #[arg(long)]
        db_password_file: Option<std::path::PathBuf>,
        #[arg(long)]
        listen: String,
    },
    Psp {
        #[arg(long)]
        db: String,
        #[arg(long)]
        db_password_file: Option<std::path::PathBuf>,
        #[arg(long)]
        listen: String,
        /// The bank's URL (through the harness's hop, for faults).
        #[arg(long)]
        issuer: String,
        /// How long a charge may take before the payment is answered `processing`.
        #[arg(long, default_value_t = 100)]
        issuer_timeout_ms: u64,
        #[arg(long)]
        ignore_key: bool,
        #[arg(long)]
        ledger_write_fails: bool,
    },
}

/// `dsn` with the password `file` holds, when one is given.
fn with_password(dsn: &str, file: Option<&std::path::Path>) -> anyhow::Result<String> {
    let Some(file) = file else {
        return Ok(dsn.to_owned());
    };
    let password = std::fs::read_to_string(file)?;
    let mut url = url::Url::parse(dsn)?;
    url.set_password(Some(password.trim()))
        .map_err(|()| anyhow::anyhow!("{dsn} cannot carry a password"))?;
    Ok(url.into())
}

fn postgres(dsn: &str) -> bool {
    dsn.starts_with("postgres")
}

async fn open(dsn: &str, tables: &[&str]) -> anyhow::Result<AnyPool> {
    sqlx::any::install_default_drivers();
    let sqlite = !postgres(dsn);
    let pool = AnyPoolOptions::new()
        .max_connections(if sqlite { 4 } else { 16 })
        .after_connect(move |connection, _| {
            Box::pin(async move {
                if sqlite {
                    sqlx::raw_sql("PRAGMA busy_timeout = 10000; PRAGMA synchronous = FULL")
                        .execute(connection)
                        .await?;
                }
                Ok(())
            })
        })
        .connect(dsn)
        .await?;
    if sqlite {
        sqlx::raw_sql("PRAGMA journal_mode = WAL")
            .execute(&pool)
            .await?;
    }
    let serial = if sqlite {
        "INTEGER PRIMARY KEY AUTOINCREMENT"
    } else {
        "BIGSERIAL PRIMARY KEY"
    };
    for table in tables {
        sqlx::raw_sql(sqlx::AssertSqlSafe(table.replace("SERIAL_KEY", serial)))
            .execute(&pool)
            .await?;
    }
    Ok(pool)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

fn error(status: StatusCode, kind: &str) -> Response {
    answer(status, json!({"error": {"type": kind}}))
}

fn internal(e: impl std::fmt::Display) -> Response {
    eprintln!("internal error: {e}");
    error(StatusCode::INTERNAL_SERVER_ERROR, "internal")
}

// ---------------------------------------------------------------- issuer

const ISSUER_TABLES: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS accounts (id TEXT PRIMARY KEY, \
     balance_cents BIGINT NOT NULL CHECK (balance_cents >= 0))",
    "CREATE TABLE IF NOT EXISTS charges (ref TEXT PRIMARY KEY, account TEXT NOT NULL, \
     amount_cents BIGINT NOT NULL, state TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS postings (n SERIAL_KEY, ref TEXT NOT NULL, \
     account TEXT NOT NULL, amount_cents BIGINT NOT NULL)",
];

#[derive(Deserialize)]
struct NewAccount {
    id: String,
    balance_cents: i64,
}

async fn open_account(State(db): State<AnyPool>, Json(account): Json<NewAccount>) -> Response {
    if account.balance_cents < 0 {
        return error(StatusCode::BAD_REQUEST, "negative_balance");
    }
    let inserted = sqlx::query(
        "INSERT INTO accounts (id, balance_cents) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(&account.id)
    .bind(account.balance_cents)
    .execute(&db)
    .await;
    match inserted {
        Ok(done) if done.rows_affected() == 1 => {
            answer(StatusCode::CREATED, json!({"id": account.id}))
        }
        Ok(_) => error(StatusCode::CONFLICT, "account_exists"),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
struct Charge {
    #[serde(rename = "ref")]
    reference: String,
    account: String,
    amount_cents: i64,
}

/// A charge, once per `ref`: a replay answers what the first one did.
async fn charge(State(db): State<AnyPool>, Json(charge): Json<Charge>) -> Response {
    match apply_charge(&db, &charge).await {
        Ok(state) => {
            let status = match state.as_str() {
                "debited" => StatusCode::OK,
                _ => StatusCode::PAYMENT_REQUIRED,
            };
            answer(status, json!({"ref": charge.reference, "state": state}))
        }
        Err(e) => internal(e),
    }
}

async fn apply_charge(db: &AnyPool, charge: &Charge) -> Result<String, sqlx::Error> {
    let mut tx = db.begin().await?;
    let claimed = sqlx::query(
        "INSERT INTO charges (ref, account, amount_cents, state) VALUES ($1, $2, $3, 'new') \
         ON CONFLICT DO NOTHING",
    )
    .bind(&charge.reference)
    .bind(&charge.account)
    .bind(charge.amount_cents)
    .execute(&mut *tx)
    .await?;
    if claimed.rows_affected() == 0 {
        tx.rollback().await?;
        let row = sqlx::query("SELECT state FROM charges WHERE ref = $1")
            .bind(&charge.reference)
            .fetch_one(db)
            .await?;
        return row.try_get::<String, _>(0);
    }
    let debited = sqlx::query(
        "UPDATE accounts SET balance_cents = balance_cents - $1 WHERE id = $2 AND balance_cents >= $1",
    )
    .bind(charge.amount_cents)
    .bind(&charge.account)
    .execute(&mut *tx)
    .await?;
    let state = if debited.rows_affected() == 1 && charge.amount_cents > 0 {
        sqlx::query("INSERT INTO postings (ref, account, amount_cents) VALUES ($1, $2, $3)")
            .bind(&charge.reference)
            .bind(&charge.account)
            .bind(-charge.amount_cents)
            .execute(&mut *tx)
            .await?;
        "debited"
    } else {
        "declined"
    };
    sqlx::query("UPDATE charges SET state = $1 WHERE ref = $2")
        .bind(state)
        .bind(&charge.reference)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(state.to_owned())
}

/// `GET /export`: the bank's statement export, every account and posting read in one
/// transaction (amounts in minor units, a charge negative).
async fn export(State(db): State<AnyPool>) -> Response {
    let read = async {
        let mut tx = db.begin().await?;
        let accounts = sqlx::query("SELECT id, balance_cents FROM accounts ORDER BY id")
            .fetch_all(&mut *tx)
            .await?;
        let postings = sqlx::query("SELECT ref, account, amount_cents FROM postings ORDER BY n")
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let accounts: Vec<Value> = accounts
            .iter()
            .map(|r| {
                json!({"id": r.try_get::<String, _>(0).unwrap_or_default(),
                       "balance_minor": r.try_get::<i64, _>(1).unwrap_or_default()})
            })
            .collect();
        let postings: Vec<Value> = postings
            .iter()
            .map(|r| {
                json!({"payment_ref": r.try_get::<String, _>(0).unwrap_or_default(),
                       "account": r.try_get::<String, _>(1).unwrap_or_default(),
                       "amount_minor": r.try_get::<i64, _>(2).unwrap_or_default()})
            })
            .collect();
        Ok::<_, sqlx::Error>(json!({"statement": {"accounts": accounts, "postings": postings}}))
    };
    match read.await {
        Ok(body) => answer(StatusCode::OK, body),
        Err(e) => internal(e),
    }
}

// ---------------------------------------------------------------- psp

const PSP_TABLES: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS customers (id TEXT PRIMARY KEY, bank_account TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS payments (id TEXT PRIMARY KEY, customer TEXT NOT NULL, \
     reference TEXT NOT NULL, account TEXT NOT NULL, amount_cents BIGINT NOT NULL, \
     state TEXT NOT NULL, created_ms BIGINT NOT NULL, UNIQUE (customer, reference))",
    "CREATE TABLE IF NOT EXISTS ledger_lines (n SERIAL_KEY, payment_id TEXT NOT NULL, \
     account TEXT NOT NULL, amount_cents BIGINT NOT NULL)",
];

/// The contra account of every customer line.
const CLEARING: &str = "clearing";

struct Psp {
    db: AnyPool,
    issuer: String,
    http: reqwest::Client,
    issuer_timeout: Duration,
    ignore_key: bool,
    ledger_write_fails: bool,
}

/// What the bank said of a charge.
enum Charged {
    Debited,
    Declined,
    Unknown,
}

impl Psp {
    async fn charge(
        &self,
        id: &str,
        account: &str,
        amount_cents: i64,
        timeout: Duration,
    ) -> Charged {
        let sent = self
            .http
            .post(format!("{}/charges", self.issuer))
            .json(&json!({"ref": id, "account": account, "amount_cents": amount_cents}))
            .timeout(timeout)
            .send()
            .await;
        match sent.map(|r| r.status()) {
            Ok(StatusCode::OK) => Charged::Debited,
            Ok(StatusCode::PAYMENT_REQUIRED) => Charged::Declined,
            _ => Charged::Unknown,
        }
    }

    /// Settles a processing payment: its state and its two ledger lines in one transaction.
    async fn settle(&self, id: &str, customer: &str, amount_cents: i64) -> Result<(), sqlx::Error> {
        let mut tx = self.db.begin().await?;
        let moved = sqlx::query(
            "UPDATE payments SET state = 'settled' WHERE id = $1 AND state = 'processing'",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 1 && !self.ledger_write_fails {
            for (account, amount) in [(customer, amount_cents), (CLEARING, -amount_cents)] {
                sqlx::query("INSERT INTO ledger_lines (payment_id, account, amount_cents) VALUES ($1, $2, $3)")
                    .bind(id)
                    .bind(account)
                    .bind(amount)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await
    }

    async fn decline(&self, id: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE payments SET state = 'declined' WHERE id = $1 AND state = 'processing'")
            .bind(id)
            .execute(&self.db)
            .await
            .map(|_| ())
    }

    /// Charges a processing payment and records what the bank said.
    async fn drive(
        &self,
        id: &str,
        customer: &str,
        account: &str,
        amount_cents: i64,
        timeout: Duration,
    ) -> Result<(), sqlx::Error> {
        match self.charge(id, account, amount_cents, timeout).await {
            Charged::Debited => self.settle(id, customer, amount_cents).await,
            Charged::Declined => self.decline(id).await,
            Charged::Unknown => Ok(()),
        }
    }

    async fn state_of(&self, id: &str) -> Result<String, sqlx::Error> {
        sqlx::query("SELECT state FROM payments WHERE id = $1")
            .bind(id)
            .fetch_one(&self.db)
            .await?
            .try_get(0)
    }
}

fn payment_answer(id: &str, state: &str) -> Response {
    let status = match state {
        "settled" => StatusCode::CREATED,
        "declined" => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::ACCEPTED,
    };
    let mut body = json!({"payment": {"id": id, "state": state}});
    if state == "declined" {
        body["error"] = json!({"type": "insufficient_funds"});
    }
    answer(status, body)
}

#[derive(Deserialize)]
struct NewCustomer {
    customer_id: String,
    bank_account: String,
    opening_balance: String,
}

/// Cents from a decimal string with at most two places (`12.05`).
fn cents(amount: &str) -> Option<i64> {
    let (major, minor) = amount.split_once('.').unwrap_or((amount, ""));
    if major.is_empty()
        || minor.len() > 2
        || !major
            .bytes()
            .chain(minor.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let minor: i64 = format!("{minor:0<2}").parse().ok()?;
    major
        .parse::<i64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(minor)
}

async fn create_customer(
    State(psp): State<Arc<Psp>>,
    Json(customer): Json<NewCustomer>,
) -> Response {
    let Some(balance_cents) = cents(&customer.opening_balance) else {
        return error(StatusCode::BAD_REQUEST, "bad_amount");
    };
    let opened = psp
        .http
        .post(format!("{}/accounts", psp.issuer))
        .json(&json!({"id": customer.bank_account, "balance_cents": balance_cents}))
        .send()
        .await;
    match opened.map(|r| r.status()) {
        Ok(StatusCode::CREATED | StatusCode::CONFLICT) => {}
        Ok(status) => {
            return error(
                StatusCode::BAD_GATEWAY,
                &format!("bank_answered_{}", status.as_u16()),
            )
        }
        Err(e) => return internal(e),
    }
    let inserted = sqlx::query(
        "INSERT INTO customers (id, bank_account) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(&customer.customer_id)
    .bind(&customer.bank_account)
    .execute(&psp.db)
    .await;
    match inserted {
        Ok(done) if done.rows_affected() == 1 => answer(
            StatusCode::CREATED,
            json!({"customer": {"id": customer.customer_id}}),
        ),
        Ok(_) => error(StatusCode::CONFLICT, "customer_exists"),
        Err(e) => internal(e),
    }
}

async fn find_customer(
    State(psp): State<Arc<Psp>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let row = sqlx::query("SELECT bank_account FROM customers WHERE id = $1")
        .bind(&id)
        .fetch_optional(&psp.db)
        .await;
    match row {
        Ok(Some(_)) => answer(StatusCode::OK, json!({"customer": {"id": id}})),
        Ok(None) => error(StatusCode::NOT_FOUND, "no_such_customer"),
        Err(e) => internal(e),
    }
}

async fn create_payment(State(psp): State<Arc<Psp>>, Json(body): Json<Value>) -> Response {
    let text = |pointer: &str| {
        body.pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let (Some(customer), Some(account), Some(amount), Some(currency), Some(reference)) = (
        text("/payment/customer"),
        text("/payment/source/account"),
        text("/payment/amount/value"),
        text("/payment/amount/currency"),
        text("/payment/reference"),
    ) else {
        return error(StatusCode::BAD_REQUEST, "malformed");
    };
    let Some(amount_cents) = cents(&amount).filter(|c| *c > 0) else {
        return error(StatusCode::BAD_REQUEST, "bad_amount");
    };
    if currency != "USD" {
        return error(StatusCode::BAD_REQUEST, "currency");
    }
    let known = sqlx::query("SELECT bank_account FROM customers WHERE id = $1")
        .bind(&customer)
        .fetch_optional(&psp.db)
        .await;
    match known {
        Ok(Some(row)) if row.try_get::<String, _>(0).is_ok_and(|a| a == account) => {}
        Ok(_) => return error(StatusCode::BAD_REQUEST, "unknown_customer"),
        Err(e) => return internal(e),
    }
    let id = format!("pay_{:032x}", rand::random::<u128>());
    let stored_reference = match psp.ignore_key {
        true => format!("{reference}/{id}"),
        false => reference,
    };
    let inserted = sqlx::query(
        "INSERT INTO payments (id, customer, reference, account, amount_cents, state, created_ms) \
         VALUES ($1, $2, $3, $4, $5, 'processing', $6) ON CONFLICT DO NOTHING",
    )
    .bind(&id)
    .bind(&customer)
    .bind(&stored_reference)
    .bind(&account)
    .bind(amount_cents)
    .bind(now_ms())
    .execute(&psp.db)
    .await;
    match inserted {
        Ok(done) if done.rows_affected() == 1 => {}
        Ok(_) => {
            let row = sqlx::query("SELECT id, account, amount_cents, state FROM payments WHERE customer = $1 AND reference = $2")
                .bind(&customer)
                .bind(&stored_reference)
                .fetch_one(&psp.db)
                .await;
            return match row {
                Ok(row) => {
                    let (first, first_account, first_amount, state) = (
                        row.try_get::<String, _>(0).unwrap_or_default(),
                        row.try_get::<String, _>(1).unwrap_or_default(),
                        row.try_get::<i64, _>(2).unwrap_or_default(),
                        row.try_get::<String, _>(3).unwrap_or_default(),
                    );
                    if (first_account.as_str(), first_amount) != (account.as_str(), amount_cents) {
                        error(StatusCode::CONFLICT, "idempotency_conflict")
                    } else {
                        payment_answer(&first, &state)
                    }
                }
                Err(e) => internal(e),
            };
        }
        Err(e) => return internal(e),
    }
    if let Err(e) = psp
        .drive(&id, &customer, &account, amount_cents, psp.issuer_timeout)
        .await
    {
        return internal(e);
    }
    match psp.state_of(&id).await {
        Ok(state) => payment_answer(&id, &state),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
struct Lookup {
    customer: String,
    reference: String,
}

async fn find_payment(State(psp): State<Arc<Psp>>, Query(lookup): Query<Lookup>) -> Response {
    let row = sqlx::query("SELECT id, state FROM payments WHERE customer = $1 AND (reference = $2 OR reference LIKE $3) ORDER BY id LIMIT 1")
        .bind(&lookup.customer)
        .bind(&lookup.reference)
        .bind(format!("{}/%", lookup.reference))
        .fetch_optional(&psp.db)
        .await;
    match row {
        Ok(Some(row)) => {
            let id: String = row.try_get(0).unwrap_or_default();
            let state: String = row.try_get(1).unwrap_or_default();
            answer(
                StatusCode::OK,
                json!({"payment": {"id": id, "state": state}}),
            )
        }
        Ok(None) => error(StatusCode::NOT_FOUND, "no_such_payment"),
        Err(e) => internal(e),
    }
}

/// Charges every payment left `processing` again, until each settles or is declined.
async fn recover(psp: Arc<Psp>) {
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let rows = sqlx::query("SELECT id, customer, account, amount_cents FROM payments WHERE state = 'processing' AND created_ms < $1 ORDER BY created_ms LIMIT 200")
            .bind(now_ms() - 300)
            .fetch_all(&psp.db)
            .await;
        let Ok(rows) = rows else { continue };
        let work = rows.iter().map(|row| {
            let psp = psp.clone();
            let (id, customer, account, amount) = (
                row.try_get::<String, _>(0).unwrap_or_default(),
                row.try_get::<String, _>(1).unwrap_or_default(),
                row.try_get::<String, _>(2).unwrap_or_default(),
                row.try_get::<i64, _>(3).unwrap_or_default(),
            );
            async move {
                if let Err(e) = psp
                    .drive(&id, &customer, &account, amount, Duration::from_secs(1))
                    .await
                {
                    eprintln!("recovery of {id}: {e}");
                }
            }
        });
        futures_util::future::join_all(work).await;
    }
}

async fn serve(listen: &str, app: Router) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

async fn healthz() -> &'static str {
    "ok"
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().role {
        Role::Issuer {
            db,
            db_password_file,
            listen,
        } => {
            let db = with_password(&db, db_password_file.as_deref())?;
            let db = open(&db, &ISSUER_TABLES).await?;
            let app = Router::new()
                .route("/healthz", get(healthz))
                .route("/accounts", post(open_account))
                .route("/charges", post(charge))
                .route("/export", get(export))
                .with_state(db);
            serve(&listen, app).await
        }
        Role::Psp {
            db,
            db_password_file,
            listen,
            issuer,
            issuer_timeout_ms,
            ignore_key,
            ledger_write_fails,
        } => {
            let db = with_password(&db, db_password_file.as_deref())?;
            let psp = Arc::new(Psp {
                db: open(&db, &PSP_TABLES).await?,
                issuer: issuer.trim_end_matches('/').to_owned(),
                http: reqwest::Client::builder().no_proxy().build()?,
                issuer_timeout: Duration::from_millis(issuer_timeout_ms),
                ignore_key,
                ledger_write_fails,
            });
            tokio::spawn(recover(psp.clone()));
            let app = Router::new()
                .route("/healthz", get(healthz))
                .route("/v1/customers", post(create_customer))
                .route("/v1/customers/{id}", get(find_customer))
                .route("/v1/payments", post(create_payment).get(find_payment))
                .with_state(psp);
            serve(&listen, app).await
        }
    }
}
