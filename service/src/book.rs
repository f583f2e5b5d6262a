//! The bookkeeping both simulated institutions share: accounts with balances, one row per
//! transfer id (its recorded outcome, which every replay returns), and an append-only entry
//! table. Every function runs inside the caller's transaction on the store's writer (or on
//! the read connection for reads), so an operation and its entries commit together. The rows
//! are read into the contract's types (`contract::books`), which the dump answers with.

use crate::contract::{
    AccountBalance, Dump, DumpCursor, DumpPage, Entry, EntryKind, Totals, TransferRecord,
    TransferStatus,
};
use crate::ids::TransferId;
use crate::money::AmountCents;
use crate::store::StoreError;
use rusqlite::{params, Connection, OptionalExtension};

/// Tables keyed by text are `WITHOUT ROWID`: one B-tree each, where a rowid table keeps a
/// second one for its primary key and every write and lookup walks both. `entries.seq` is the
/// rowid: nothing is ever deleted, so it grows with every entry without `AUTOINCREMENT`, which
/// would also write `sqlite_sequence` on every insert. `transfers.change_seq` numbers the
/// writes to a record (its insert and every change of status), so a reader can ask for the
/// records changed after the last it saw (`dump_page`).
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS accounts (
    account_id    TEXT PRIMARY KEY,
    balance_cents INTEGER NOT NULL CHECK (balance_cents >= 0)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS transfers (
    transfer_id  TEXT PRIMARY KEY,
    account_id   TEXT,
    amount_cents INTEGER,
    status       TEXT NOT NULL,
    reason       TEXT,
    change_seq   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS transfers_by_change ON transfers (change_seq);
CREATE TABLE IF NOT EXISTS entries (
    seq                 INTEGER PRIMARY KEY,
    transfer_id         TEXT NOT NULL,
    account_id          TEXT NOT NULL,
    kind                TEXT NOT NULL,
    amount_cents        INTEGER NOT NULL,
    balance_after_cents INTEGER NOT NULL,
    at_ms               INTEGER NOT NULL
);
";

#[derive(Debug, Clone, thiserror::Error)]
pub enum BookError {
    #[error("unknown account {0}")]
    UnknownAccount(String),
    #[error("transfer {transfer_id} already exists with another account or amount")]
    Conflict { transfer_id: String },
    #[error("account {0} already exists with another balance")]
    AccountExists(String),
    #[error("balance of {0} would overflow")]
    Overflow(String),
    #[error("balance of {0} would go negative")]
    Overdraft(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for BookError {
    fn from(err: rusqlite::Error) -> Self {
        BookError::Store(err.into())
    }
}

fn corrupt(what: String) -> BookError {
    BookError::Store(StoreError::Corrupt(what))
}

fn status_named(text: &str) -> Result<TransferStatus, BookError> {
    TransferStatus::from_name(text)
        .ok_or_else(|| corrupt(format!("unknown transfer status {text:?}")))
}

fn kind_named(text: &str) -> Result<EntryKind, BookError> {
    EntryKind::from_name(text).ok_or_else(|| corrupt(format!("unknown entry kind {text:?}")))
}

fn amount(value: i64) -> Result<AmountCents, BookError> {
    AmountCents::from_sql(value).map_err(|_| corrupt(format!("negative amount {value}")))
}

/// Creates accounts with opening balances. Re-seeding an account with the same balance is a
/// no-op; with another balance it is refused, and then nothing of the call is applied.
pub fn seed_accounts(
    conn: &Connection,
    accounts: &[(String, AmountCents)],
) -> Result<u64, BookError> {
    let mut created = 0;
    for (account_id, opening) in accounts {
        match balance(conn, account_id)? {
            Some(existing) if existing == *opening => {}
            Some(_) => return Err(BookError::AccountExists(account_id.clone())),
            None => {
                conn.prepare_cached(
                    "INSERT INTO accounts (account_id, balance_cents) VALUES (?1, ?2)",
                )?
                .execute(params![account_id, opening.to_sql()])?;
                created += 1;
            }
        }
    }
    Ok(created)
}

pub fn balance(conn: &Connection, account_id: &str) -> Result<Option<AmountCents>, BookError> {
    let value: Option<i64> = conn
        .prepare_cached("SELECT balance_cents FROM accounts WHERE account_id = ?1")?
        .query_row([account_id], |row| row.get(0))
        .optional()?;
    value.map(amount).transpose()
}

pub fn transfer(conn: &Connection, id: &TransferId) -> Result<Option<TransferRecord>, BookError> {
    let row: Option<TransferRow> = conn
        .prepare_cached(
            "SELECT transfer_id, account_id, amount_cents, status, reason
             FROM transfers WHERE transfer_id = ?1",
        )?
        .query_row([id.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    row.map(record_from_row).transpose()
}

type TransferRow = (String, Option<String>, Option<i64>, String, Option<String>);

fn record_from_row(row: TransferRow) -> Result<TransferRecord, BookError> {
    let (transfer_id, account_id, amount_cents, status, reason) = row;
    Ok(TransferRecord {
        transfer_id,
        account_id,
        amount_cents: amount_cents.map(amount).transpose()?,
        status: status_named(&status)?,
        reason,
    })
}

pub fn insert_transfer(conn: &Connection, record: &TransferRecord) -> Result<(), BookError> {
    conn.prepare_cached(
        "INSERT INTO transfers (transfer_id, account_id, amount_cents, status, reason, change_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, (SELECT COALESCE(MAX(change_seq), 0) + 1 FROM transfers))",
    )?
    .execute(params![
        record.transfer_id,
        record.account_id,
        record.amount_cents.map(AmountCents::to_sql),
        record.status.as_str(),
        record.reason,
    ])?;
    Ok(())
}

pub fn set_status(
    conn: &Connection,
    id: &TransferId,
    status: TransferStatus,
) -> Result<(), BookError> {
    conn.prepare_cached(
        "UPDATE transfers SET status = ?2,
             change_seq = (SELECT COALESCE(MAX(change_seq), 0) + 1 FROM transfers)
         WHERE transfer_id = ?1",
    )?
    .execute(params![id.as_str(), status.as_str()])?;
    Ok(())
}

/// Moves `amount` on `account_id` (down for a debit, up otherwise) and appends the entry.
/// Returns the balance after.
pub fn post_entry(
    conn: &Connection,
    id: &TransferId,
    account_id: &str,
    kind: EntryKind,
    amount_cents: AmountCents,
) -> Result<AmountCents, BookError> {
    let before =
        balance(conn, account_id)?.ok_or_else(|| BookError::UnknownAccount(account_id.into()))?;
    let after = match kind {
        EntryKind::Debit => before
            .checked_sub(amount_cents)
            .ok_or_else(|| BookError::Overdraft(account_id.into()))?,
        EntryKind::Reversal | EntryKind::Credit => before
            .checked_add(amount_cents)
            .filter(|a| a.get() <= i64::MAX as u64)
            .ok_or_else(|| BookError::Overflow(account_id.into()))?,
    };
    conn.prepare_cached("UPDATE accounts SET balance_cents = ?2 WHERE account_id = ?1")?
        .execute(params![account_id, after.to_sql()])?;
    conn.prepare_cached("INSERT INTO entries (transfer_id, account_id, kind, amount_cents, balance_after_cents, at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
        .execute(params![
            id.as_str(),
            account_id,
            kind.as_str(),
            amount_cents.to_sql(),
            after.to_sql(),
            crate::server::now_ms()
        ],
    )?;
    Ok(after)
}

/// The accounts' count, sum and lowest balance, in one statement (one snapshot).
pub fn totals(conn: &Connection) -> Result<Totals, BookError> {
    let (accounts, total, lowest): (i64, i64, i64) = conn
        .prepare_cached(
            "SELECT COUNT(*), COALESCE(SUM(balance_cents), 0), COALESCE(MIN(balance_cents), 0)
         FROM accounts",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(Totals {
        accounts: u64::try_from(accounts).unwrap_or(0),
        total_cents: amount(total)?.get(),
        lowest_balance_cents: lowest,
    })
}

pub fn dump(conn: &Connection) -> Result<Dump, BookError> {
    // One read transaction, so the three tables are one consistent snapshot.
    conn.execute_batch("BEGIN")?;
    let result = dump_tables(conn);
    let _ = conn.execute_batch("COMMIT");
    result
}

fn dump_tables(conn: &Connection) -> Result<Dump, BookError> {
    let mut stmt =
        conn.prepare("SELECT account_id, balance_cents FROM accounts ORDER BY account_id")?;
    let accounts = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
        .map(|row| {
            let (account_id, cents) = row?;
            Ok(AccountBalance {
                account_id,
                balance_cents: amount(cents)?,
            })
        })
        .collect::<Result<Vec<_>, BookError>>()?;

    let entries = entries_after(conn, 0, i64::MAX)?;
    let mut stmt = conn.prepare(
        "SELECT transfer_id, account_id, amount_cents, status, reason
         FROM transfers ORDER BY transfer_id",
    )?;
    let transfers = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .map(|row| record_from_row(row?))
        .collect::<Result<Vec<_>, BookError>>()?;

    Ok(Dump {
        accounts,
        entries,
        transfers,
    })
}

/// The entries after `after_seq`, in order, at most `limit`.
fn entries_after(conn: &Connection, after_seq: i64, limit: i64) -> Result<Vec<Entry>, BookError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, transfer_id, account_id, kind, amount_cents, balance_after_cents, at_ms
         FROM entries WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let entries = stmt
        .query_map([after_seq, limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, i64>(6)?,
            ))
        })?
        .map(|row| {
            let (seq, transfer_id, account_id, kind, cents, after, at_ms) = row?;
            Ok(Entry {
                seq,
                transfer_id,
                account_id,
                kind: kind_named(&kind)?,
                amount_cents: amount(cents)?,
                balance_after_cents: amount(after)?,
                at_ms,
            })
        })
        .collect::<Result<Vec<_>, BookError>>()?;
    Ok(entries)
}

/// What changed after a cursor (`GET /admin/dump?after_seq=…&after_change=…`): the entries
/// after `after_seq` and the transfer records written after `after_change`, each at most
/// `limit`, in one read transaction (one snapshot).
pub fn dump_page(conn: &Connection, after: DumpCursor, limit: u32) -> Result<DumpPage, BookError> {
    conn.execute_batch("BEGIN")?;
    let result = page_tables(conn, after, limit);
    let _ = conn.execute_batch("COMMIT");
    result
}

fn page_tables(conn: &Connection, after: DumpCursor, limit: u32) -> Result<DumpPage, BookError> {
    let limit = i64::from(limit);
    let entries = entries_after(conn, after.after_seq, limit)?;
    let mut stmt = conn.prepare_cached(
        "SELECT transfer_id, account_id, amount_cents, status, reason, change_seq
         FROM transfers WHERE change_seq > ?1 ORDER BY change_seq LIMIT ?2",
    )?;
    let mut last_change = after.after_change;
    let transfers = stmt
        .query_map([after.after_change, limit], |r| {
            Ok((
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?),
                r.get::<_, i64>(5)?,
            ))
        })?
        .map(|row| {
            let (row, change) = row?;
            last_change = change;
            record_from_row(row)
        })
        .collect::<Result<Vec<_>, BookError>>()?;
    let full = |n: usize| i64::try_from(n).unwrap_or(i64::MAX) >= limit;
    Ok(DumpPage {
        more: full(entries.len()) || full(transfers.len()),
        next: DumpCursor {
            after_seq: entries.last().map_or(after.after_seq, |e| e.seq),
            after_change: last_change,
        },
        entries,
        transfers,
    })
}
