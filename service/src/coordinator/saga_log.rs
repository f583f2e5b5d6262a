//! The coordinator's durable saga log: one row per transfer, written before any remote
//! call; every state change is a compare-and-set on that row. Also the links between our
//! users and their external accounts, used to validate requests before anything is written.

pub use crate::contract::{InFlight, Saga, SagaState};
use crate::ids::{AccountId, IdempotencyKey, TransferId, UserId};
use crate::money::AmountCents;
use crate::store::StoreError;
use rusqlite::{params, Connection, OptionalExtension};

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sagas (
    transfer_id     TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    account_id      TEXT NOT NULL,
    amount_cents    INTEGER NOT NULL CHECK (amount_cents > 0),
    state           TEXT NOT NULL,
    reason          TEXT,
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL,
    change_seq      INTEGER NOT NULL,
    UNIQUE (user_id, idempotency_key)
);
CREATE INDEX IF NOT EXISTS sagas_by_change ON sagas (change_seq);
DROP INDEX IF EXISTS sagas_open;
CREATE TABLE IF NOT EXISTS links (
    user_id    TEXT NOT NULL,
    account_id TEXT NOT NULL,
    PRIMARY KEY (user_id, account_id)
) WITHOUT ROWID;
";

impl SagaState {
    /// The transitions the saga rules allow.
    pub fn may_become(self, next: SagaState) -> bool {
        use SagaState::*;
        matches!(
            (self, next),
            (Started, Debited)
                | (Started, Failed)
                | (Debited, Completed)
                | (Debited, Reversing)
                | (Reversing, Reversed)
        )
    }
}

/// A validated transfer request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    pub user_id: UserId,
    pub idempotency_key: IdempotencyKey,
    pub external_account_id: AccountId,
    pub amount_cents: AmountCents,
}

#[derive(Debug)]
pub enum Begin {
    /// A new saga row, in state `started`.
    New(Saga),
    /// The same user and key with the same payload: the existing saga.
    Existing(Saga),
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum BeginError {
    #[error("idempotency key already used for another transfer payload")]
    KeyReused,
    #[error("unknown user {0}")]
    UnknownUser(String),
    #[error("external account {account} is not linked to user {user}")]
    UnknownAccount { user: String, account: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for BeginError {
    fn from(err: rusqlite::Error) -> Self {
        BeginError::Store(err.into())
    }
}

const SAGA_COLUMNS: &str = "transfer_id, user_id, idempotency_key, account_id, amount_cents, \
                            state, reason, created_ms, updated_ms";

fn saga_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Saga, StoreError>> {
    let transfer_id: String = row.get(0)?;
    let user_id: String = row.get(1)?;
    let key: String = row.get(2)?;
    let account: String = row.get(3)?;
    let amount: i64 = row.get(4)?;
    let state: String = row.get(5)?;
    let reason: Option<String> = row.get(6)?;
    let created_ms: i64 = row.get(7)?;
    let updated_ms: i64 = row.get(8)?;
    let corrupt = |what: &str| StoreError::Corrupt(format!("saga {transfer_id}: bad {what}"));
    Ok((|| {
        Ok(Saga {
            transfer_id: TransferId::parse(&transfer_id).map_err(|_| corrupt("transfer_id"))?,
            user_id: UserId::parse(&user_id).map_err(|_| corrupt("user_id"))?,
            idempotency_key: IdempotencyKey::parse(&key).map_err(|_| corrupt("key"))?,
            external_account_id: AccountId::parse(&account).map_err(|_| corrupt("account"))?,
            amount_cents: AmountCents::from_sql(amount).map_err(|_| corrupt("amount"))?,
            state: SagaState::from_name(&state)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown saga state {state:?}")))?,
            reason,
            created_ms,
            updated_ms,
        })
    })())
}

/// The schema of the saga log. The `no-idempotency` mutant's lets one key hold many rows.
pub fn schema(honour_keys: bool) -> String {
    if honour_keys {
        SCHEMA.to_owned()
    } else {
        SCHEMA.replace(",\n    UNIQUE (user_id, idempotency_key)", "")
    }
}

/// Writes the intent (state `started`) for a new key, or returns the saga the key already
/// names. Refuses an unknown user or unlinked account, and a reused key with another payload.
/// With `honour_keys` false (the `no-idempotency` mutant) every request is a new transfer.
pub fn begin(
    conn: &Connection,
    intent: &Intent,
    new_id: &TransferId,
    honour_keys: bool,
) -> Result<Begin, BeginError> {
    if !honour_keys {
        return insert_intent(conn, intent, new_id);
    }
    let existing = conn
        .prepare_cached(&format!(
            "SELECT {SAGA_COLUMNS} FROM sagas WHERE user_id = ?1 AND idempotency_key = ?2"
        ))?
        .query_row(
            params![intent.user_id.as_str(), intent.idempotency_key.as_str()],
            saga_from_row,
        )
        .optional()?
        .transpose()?;
    if let Some(saga) = existing {
        let same = saga.external_account_id == intent.external_account_id
            && saga.amount_cents == intent.amount_cents;
        return if same {
            Ok(Begin::Existing(saga))
        } else {
            Err(BeginError::KeyReused)
        };
    }
    insert_intent(conn, intent, new_id)
}

fn insert_intent(
    conn: &Connection,
    intent: &Intent,
    new_id: &TransferId,
) -> Result<Begin, BeginError> {
    check_link(conn, &intent.user_id, &intent.external_account_id)?;
    let now = crate::server::now_ms();
    let saga = Saga {
        transfer_id: new_id.clone(),
        user_id: intent.user_id.clone(),
        idempotency_key: intent.idempotency_key.clone(),
        external_account_id: intent.external_account_id.clone(),
        amount_cents: intent.amount_cents,
        state: SagaState::Started,
        reason: None,
        created_ms: now,
        updated_ms: now,
    };
    conn.prepare_cached(&format!(
        "INSERT INTO sagas ({SAGA_COLUMNS}, change_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7, ?7, {NEXT_CHANGE})"
    ))?
    .execute(params![
        saga.transfer_id.as_str(),
        saga.user_id.as_str(),
        saga.idempotency_key.as_str(),
        saga.external_account_id.as_str(),
        saga.amount_cents.to_sql(),
        saga.state.as_str(),
        now
    ])?;
    Ok(Begin::New(saga))
}

/// Refuses a user we do not know, or an external account not linked to that user.
pub fn check_link(conn: &Connection, user: &UserId, account: &AccountId) -> Result<(), BeginError> {
    let linked: Option<String> = conn
        .prepare_cached("SELECT account_id FROM links WHERE user_id = ?1 AND account_id = ?2")?
        .query_row(params![user.as_str(), account.as_str()], |r| r.get(0))
        .optional()?;
    if linked.is_some() {
        return Ok(());
    }
    let known_user: Option<String> = conn
        .prepare_cached("SELECT user_id FROM links WHERE user_id = ?1 LIMIT 1")?
        .query_row([user.as_str()], |r| r.get(0))
        .optional()?;
    match known_user {
        None => Err(BeginError::UnknownUser(user.to_string())),
        Some(_) => Err(BeginError::UnknownAccount {
            user: user.to_string(),
            account: account.to_string(),
        }),
    }
}

/// Moves a saga from `from` to `to` only if it is still in `from`. False when it was not
/// (another actor moved it first); the caller must re-read instead of acting.
pub fn compare_and_set(
    conn: &Connection,
    id: &TransferId,
    from: SagaState,
    to: SagaState,
    reason: Option<&str>,
) -> Result<bool, StoreError> {
    assert!(
        from.may_become(to),
        "saga transition {from:?} -> {to:?} is not allowed"
    );
    let changed = conn
        .prepare_cached(&format!(
            "UPDATE sagas SET state = ?3, reason = COALESCE(?4, reason), updated_ms = ?5,
                     change_seq = {NEXT_CHANGE}
                 WHERE transfer_id = ?1 AND state = ?2"
        ))?
        .execute(params![
            id.as_str(),
            from.as_str(),
            to.as_str(),
            reason,
            crate::server::now_ms()
        ])?;
    Ok(changed == 1)
}

/// MUTANT (volatile-queue): `debited` to `failed`, a transition the saga rules forbid (the
/// debit still stands; only a reversal held in memory will give it back).
pub fn mutant_fail_debited(
    conn: &Connection,
    id: &TransferId,
    reason: &str,
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(&format!(
            "UPDATE sagas SET state = ?3, reason = ?4, updated_ms = ?5,
                     change_seq = {NEXT_CHANGE}
                 WHERE transfer_id = ?1 AND state = ?2"
        ))?
        .execute(params![
            id.as_str(),
            SagaState::Debited.as_str(),
            SagaState::Failed.as_str(),
            reason,
            crate::server::now_ms()
        ])?;
    Ok(changed == 1)
}

pub fn get(conn: &Connection, id: &TransferId) -> Result<Option<Saga>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {SAGA_COLUMNS} FROM sagas WHERE transfer_id = ?1"
    ))?
    .query_row([id.as_str()], saga_from_row)
    .optional()?
    .transpose()
}

/// The ids of every saga not final.
pub fn open_saga_ids(conn: &Connection) -> Result<Vec<TransferId>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT transfer_id FROM sagas WHERE state IN ('started', 'debited', 'reversing')",
    )?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    rows.map(|r| {
        let id = r?;
        TransferId::parse(&id).map_err(|e| StoreError::Corrupt(format!("saga id {id:?}: {e}")))
    })
    .collect()
}

/// The rows of `ids`, in their order (None where a row is missing), in one read.
pub fn get_many(conn: &Connection, ids: &[TransferId]) -> Result<Vec<Option<Saga>>, StoreError> {
    ids.iter().map(|id| get(conn, id)).collect()
}

/// The sagas not final and their amounts, and every saga ever begun, in one statement.
pub fn in_flight(conn: &Connection) -> Result<InFlight, StoreError> {
    let (sagas, amount, begun, begun_amount): (i64, i64, i64, i64) = conn
        .prepare_cached(
            "SELECT COUNT(CASE WHEN state IN ('started', 'debited', 'reversing') THEN 1 END),
                COALESCE(SUM(CASE WHEN state IN ('started', 'debited', 'reversing')
                                  THEN amount_cents END), 0),
                COUNT(*),
                COALESCE(SUM(amount_cents), 0)
         FROM sagas",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    Ok(InFlight {
        sagas: count(sagas),
        amount_cents: count(amount),
        begun_sagas: count(begun),
        begun_amount_cents: count(begun_amount),
    })
}

/// The number of the next write to the saga log: each insert and each change of state is
/// numbered in order, so a reader can ask for what changed after the last it saw.
const NEXT_CHANGE: &str = "(SELECT COALESCE(MAX(change_seq), 0) + 1 FROM sagas)";

/// The sagas written after change `after_change`, in order, at most `limit`, with the number
/// of the last one (`after_change` when there is none).
pub fn sagas_changed_after(
    conn: &Connection,
    after_change: i64,
    limit: u32,
) -> Result<(Vec<Saga>, i64), StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {SAGA_COLUMNS}, change_seq FROM sagas WHERE change_seq > ?1
         ORDER BY change_seq LIMIT ?2"
    ))?;
    let mut last = after_change;
    let mut sagas = Vec::new();
    let mut rows = stmt.query(params![after_change, i64::from(limit)])?;
    while let Some(row) = rows.next()? {
        sagas.push(saga_from_row(row)??);
        last = row.get(9)?;
    }
    Ok((sagas, last))
}

pub fn all_sagas(conn: &Connection) -> Result<Vec<Saga>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {SAGA_COLUMNS} FROM sagas ORDER BY created_ms, transfer_id"
    ))?;
    let rows = stmt.query_map([], saga_from_row)?;
    rows.map(|r| r?).collect()
}

/// Links users to external accounts; existing links are kept. Returns how many were new.
pub fn link_users(conn: &Connection, links: &[(UserId, AccountId)]) -> Result<u64, StoreError> {
    let mut created = 0;
    for (user, account) in links {
        let inserted = conn
            .prepare_cached("INSERT OR IGNORE INTO links (user_id, account_id) VALUES (?1, ?2)")?
            .execute(params![user.as_str(), account.as_str()])?;
        created += inserted as u64;
    }
    Ok(created)
}
