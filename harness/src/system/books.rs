//! The books of a system that keeps no `/admin/dump`, read as the target file's `books:`
//! says and made into the contract's [`Dump`], so every check reads them alike:
//! - `sql`: the `balances` and `entries` queries in one snapshot (`REPEATABLE READ` on
//!   PostgreSQL and MySQL, one read transaction on SQLite), the way Jepsen's bank test reads
//!   every balance in one transaction; through sqlx's `any` driver, which picks the engine
//!   from the DSN;
//! - `http`: one answer, read through JSON Pointers.
//!
//! An entry's signed amount becomes the contract's kind: at the external institution a
//! negative amount is a debit and a positive one a reversal; at the ledger a positive
//! amount is a credit and a negative one takes it back. Entries are numbered in the order
//! read (the queries order them), and each one's balance after it is worked back from the
//! account's balance.

use super::sql::connect;
use crate::mapping::books::{BookRead, BookSource, BooksSpec, HttpBooks, SqlBooks};
use crate::topology::ServiceRole;
use serde_json::Value;
use service::contract::{AccountBalance, Dump, Entry, EntryKind, Totals};
use service::money::AmountCents;
use sqlx::{AssertSqlSafe, Connection, Row};
use std::collections::HashMap;
use std::time::Duration;

/// How long one read of the books may take.
pub const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// The books of both institutions, each read as the target says: from its `/admin/dump`
/// (the contract), or from its `books:` source.
#[derive(Debug, Clone, Default)]
pub struct BookSources {
    pub external: Option<BookSource>,
    pub ledger: Option<BookSource>,
}

impl From<&BooksSpec> for BookSources {
    fn from(spec: &BooksSpec) -> BookSources {
        BookSources {
            external: spec.external.clone(),
            ledger: spec.ledger.clone(),
        }
    }
}

impl BookSources {
    /// Whether the target gives any institution's books a source of its own.
    pub fn given(&self) -> bool {
        self.external.is_some() || self.ledger.is_some()
    }

    pub fn of(&self, role: ServiceRole) -> Option<&BookSource> {
        match role {
            ServiceRole::External => self.external.as_ref(),
            ServiceRole::Ledger => self.ledger.as_ref(),
            ServiceRole::Coordinator => None,
        }
    }
}

/// Reads one institution's books from `source`.
pub async fn read(
    source: &BookSource,
    role: ServiceRole,
    http: &reqwest::Client,
) -> Result<Dump, String> {
    let read = async {
        match source.read() {
            Some(BookRead::Sql(sql)) => read_sql(sql, role).await,
            Some(BookRead::Http(spec)) => read_http(spec, role, http).await,
            None => Err("give exactly one of http: and sql:".to_owned()),
        }
    };
    tokio::time::timeout(READ_TIMEOUT, read)
        .await
        .map_err(|_| {
            format!(
                "the {} books were not read within {READ_TIMEOUT:?}",
                role.as_str()
            )
        })?
}

/// One institution's totals from `source`, for sampling during the load: the balances
/// alone (`balances` is one query, so one snapshot), within `limit`.
pub async fn totals(
    source: &BookSource,
    role: ServiceRole,
    http: &reqwest::Client,
    limit: Duration,
) -> Result<Totals, String> {
    let read = async {
        let balances = match source.read() {
            Some(BookRead::Sql(sql)) => {
                let mut connection = connect(sql.database()).await?;
                let rows = sqlx::query(AssertSqlSafe(sql.balances.clone()))
                    .fetch_all(&mut connection)
                    .await
                    .map_err(|e| format!("the balances query failed: {e}"))?;
                let _ = connection.close().await;
                rows.iter()
                    .map(|row| integer(row, 1, "balances"))
                    .collect::<Result<Vec<i64>, String>>()?
            }
            Some(BookRead::Http(spec)) => {
                let dump = read_http(spec, role, http).await?;
                dump.accounts
                    .iter()
                    .map(|a| i64::try_from(a.balance_cents.get()).unwrap_or(i64::MAX))
                    .collect()
            }
            None => return Err("give exactly one of http: and sql:".to_owned()),
        };
        let total: i128 = balances.iter().map(|b| i128::from(*b)).sum();
        Ok(Totals {
            accounts: balances.len() as u64,
            total_cents: u64::try_from(total.max(0)).unwrap_or(u64::MAX),
            lowest_balance_cents: balances.iter().copied().min().unwrap_or(0),
        })
    };
    tokio::time::timeout(limit, read).await.map_err(|_| {
        format!(
            "the {} totals were not read within {limit:?}",
            role.as_str()
        )
    })?
}

/// The statement that opens one snapshot for both queries, on `engine`.
fn snapshot_begin(engine: &str) -> &'static str {
    match engine {
        "postgres" => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        "mysql" => "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
        // SQLite: the first read of a transaction fixes its snapshot for the rest.
        _ => "BEGIN",
    }
}

async fn read_sql(sql: &SqlBooks, role: ServiceRole) -> Result<Dump, String> {
    let mut connection = connect(sql.database()).await?;
    sqlx::raw_sql(snapshot_begin(sql.database().engine()))
        .execute(&mut connection)
        .await
        .map_err(|e| format!("opening a snapshot: {e}"))?;
    // The columns are checked on the prepared statements, so an empty table cannot hide a
    // query of the wrong shape.
    prepared_columns(
        &mut connection,
        &sql.balances,
        2,
        "balances",
        BALANCES_SHAPE,
    )
    .await?;
    prepared_columns(&mut connection, &sql.entries, 3, "entries", ENTRIES_SHAPE).await?;
    let balances = sqlx::query(AssertSqlSafe(sql.balances.clone()))
        .fetch_all(&mut connection)
        .await
        .map_err(|e| format!("the balances query failed: {e}"))?;
    let entries = sqlx::query(AssertSqlSafe(sql.entries.clone()))
        .fetch_all(&mut connection)
        .await
        .map_err(|e| format!("the entries query failed: {e}"))?;
    let _ = sqlx::raw_sql("COMMIT").execute(&mut connection).await;
    let _ = connection.close().await;
    let balances = balances
        .iter()
        .map(|row| {
            columns(row.len(), 2, "balances", BALANCES_SHAPE)?;
            Ok((text(row, 0, "balances")?, integer(row, 1, "balances")?))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let entries = entries
        .iter()
        .map(|row| {
            columns(row.len(), 3, "entries", ENTRIES_SHAPE)?;
            Ok((
                text(row, 0, "entries")?,
                text(row, 1, "entries")?,
                integer(row, 2, "entries")?,
            ))
        })
        .collect::<Result<Vec<_>, String>>()?;
    dump_of(role, balances, entries)
}

/// What each query returns, for its errors.
const BALANCES_SHAPE: &str = "(account, balance in minor units)";
const ENTRIES_SHAPE: &str = "(transfer reference, account, signed amount in minor units)";

fn columns(found: usize, expected: usize, query: &str, shape: &str) -> Result<(), String> {
    match found {
        n if n == expected => Ok(()),
        n => Err(format!(
            "the {query} query returns {n} columns; it must return {expected}: {shape}"
        )),
    }
}

/// Prepares `text` and checks how many columns it returns.
async fn prepared_columns(
    connection: &mut sqlx::AnyConnection,
    text: &str,
    expected: usize,
    query: &str,
    shape: &str,
) -> Result<(), String> {
    use sqlx::{Executor, SqlSafeStr, Statement};
    let statement = connection
        .prepare(AssertSqlSafe(text.to_owned()).into_sql_str())
        .await
        .map_err(|e| format!("the {query} query failed: {e}"))?;
    columns(statement.columns().len(), expected, query, shape)
}

/// Column `i` as text: a text column, or an integer one written out.
fn text(row: &sqlx::any::AnyRow, i: usize, query: &str) -> Result<String, String> {
    row.try_get::<String, _>(i)
        .or_else(|_| row.try_get::<i64, _>(i).map(|n| n.to_string()))
        .map_err(|e| format!("the {query} query's column {} is not text: {e}", i + 1))
}

/// Column `i` as a whole number of minor units.
fn integer(row: &sqlx::any::AnyRow, i: usize, query: &str) -> Result<i64, String> {
    row.try_get::<i64, _>(i).map_err(|e| {
        format!(
            "the {query} query's column {} is not an integer of minor units (cast it, like \
             CAST(x AS BIGINT)): {e}",
            i + 1
        )
    })
}

async fn read_http(
    spec: &HttpBooks,
    role: ServiceRole,
    http: &reqwest::Client,
) -> Result<Dump, String> {
    let response = http
        .get(&spec.url)
        .timeout(READ_TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("GET {}: {e}", spec.url))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("GET {} answered {status}", spec.url));
    }
    let body: Value = response
        .json()
        .await
        .map_err(|e| format!("GET {}: not JSON: {e}", spec.url))?;
    let array = |pointer: &str, what: &str| -> Result<Vec<Value>, String> {
        match body.pointer(pointer) {
            Some(Value::Array(items)) => Ok(items.clone()),
            Some(_) => Err(format!(
                "books.{}.http.{what}: `{pointer}` is not an array",
                role.as_str()
            )),
            None => Err(format!(
                "books.{}.http.{what}: `{pointer}` matches nothing",
                role.as_str()
            )),
        }
    };
    let field = |item: &Value, pointer: &str, what: &str| -> Result<Value, String> {
        item.pointer(pointer).cloned().ok_or_else(|| {
            format!(
                "books.{}.http.{what}: `{pointer}` matches nothing in an item",
                role.as_str()
            )
        })
    };
    let as_text = |v: Value, what: &str| match v {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(format!(
            "books.{}.http.{what}: {other} is not text",
            role.as_str()
        )),
    };
    let as_integer = |v: Value, what: &str| {
        v.as_i64().ok_or_else(|| {
            format!(
                "books.{}.http.{what}: {v} is not an integer of minor units",
                role.as_str()
            )
        })
    };
    let mut balances = Vec::new();
    for item in array(&spec.accounts, "accounts")? {
        balances.push((
            as_text(field(&item, &spec.account_id, "account_id")?, "account_id")?,
            as_integer(
                field(&item, &spec.balance_cents, "balance_cents")?,
                "balance_cents",
            )?,
        ));
    }
    let mut entries = Vec::new();
    for item in array(&spec.entries, "entries")? {
        entries.push((
            as_text(field(&item, &spec.reference, "reference")?, "reference")?,
            as_text(
                field(&item, &spec.entry_account_id, "entry_account_id")?,
                "entry_account_id",
            )?,
            as_integer(
                field(&item, &spec.amount_cents, "amount_cents")?,
                "amount_cents",
            )?,
        ));
    }
    dump_of(role, balances, entries)
}

/// The contract's dump of `role`'s books from rows: (account, balance) and (reference,
/// account, signed amount) in the order written.
pub fn dump_of(
    role: ServiceRole,
    balances: Vec<(String, i64)>,
    entries: Vec<(String, String, i64)>,
) -> Result<Dump, String> {
    let mut accounts = Vec::with_capacity(balances.len());
    let mut running: HashMap<String, i128> = HashMap::with_capacity(balances.len());
    for (account_id, balance) in balances {
        let cents = u64::try_from(balance).map_err(|_| {
            format!(
                "the {} books hold account {account_id} at {balance}: a balance below zero",
                role.as_str()
            )
        })?;
        running.insert(account_id.clone(), i128::from(balance));
        accounts.push(AccountBalance {
            account_id,
            balance_cents: AmountCents::new(cents),
        });
    }
    // Each entry's balance after it, worked back from the account's balance now.
    let mut after = vec![0u64; entries.len()];
    for (i, (_, account, amount)) in entries.iter().enumerate().rev() {
        let balance = running.entry(account.clone()).or_insert(0);
        after[i] = u64::try_from(*balance).unwrap_or(0);
        *balance -= i128::from(*amount);
    }
    let entries = entries
        .into_iter()
        .zip(after)
        .enumerate()
        .map(|(i, ((transfer_id, account_id, amount), balance_after))| {
            let kind = match (role, amount < 0) {
                (ServiceRole::Ledger, false) => EntryKind::Credit,
                (ServiceRole::Ledger, true) => EntryKind::Reversal,
                (_, true) => EntryKind::Debit,
                (_, false) => EntryKind::Reversal,
            };
            Entry {
                seq: i64::try_from(i).unwrap_or(i64::MAX).saturating_add(1),
                transfer_id,
                account_id,
                kind,
                amount_cents: AmountCents::new(amount.unsigned_abs()),
                balance_after_cents: AmountCents::new(balance_after),
                at_ms: 0,
            }
        })
        .collect();
    Ok(Dump {
        accounts,
        entries,
        transfers: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_rows_become_the_contracts_entries() {
        let external = dump_of(
            ServiceRole::External,
            vec![("a-1".into(), 900), ("a-2".into(), 1000)],
            vec![
                ("t-1".into(), "a-1".into(), -300),
                ("t-2".into(), "a-1".into(), -100),
                ("t-2".into(), "a-1".into(), 300),
            ],
        )
        .expect("reads");
        let kinds: Vec<_> = external
            .entries
            .iter()
            .map(|e| {
                (
                    e.seq,
                    e.kind,
                    e.amount_cents.get(),
                    e.balance_after_cents.get(),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                (1, EntryKind::Debit, 300, 700),
                (2, EntryKind::Debit, 100, 600),
                (3, EntryKind::Reversal, 300, 900)
            ]
        );
        let ledger = dump_of(
            ServiceRole::Ledger,
            vec![("u-1".into(), 300)],
            vec![("t-1".into(), "u-1".into(), 300)],
        )
        .expect("reads");
        assert_eq!(ledger.entries[0].kind, EntryKind::Credit);
        let below =
            dump_of(ServiceRole::Ledger, vec![("u-1".into(), -1)], vec![]).expect_err("negative");
        assert!(below.contains("below zero"), "{below}");
    }
}
