//! The institutions' bodies: the debit and credit requests, the transfer record every
//! money-moving route answers with, the dump (`GET /admin/dump`) and seeding
//! (`POST /admin/accounts`). A reversal (`POST /debits/{id}/reverse`) has no body.

use super::wire_amount::WireAmount;
use crate::money::AmountCents;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `POST /debits` at the external institution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DebitRequest {
    pub transfer_id: String,
    pub external_account_id: String,
    pub amount_cents: WireAmount,
}

/// `POST /credits` at the internal ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditRequest {
    pub transfer_id: String,
    pub user_id: String,
    pub amount_cents: WireAmount,
}

crate::named_enum! {
    /// The recorded state of a transfer id at one institution.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
    pub enum TransferStatus {
        /// External: the debit is applied.
        Debited = "debited",
        /// Either side: refused, nothing applied (see `reason`).
        Refused = "refused",
        /// External: the debit was applied and then reversed; net effect zero.
        Reversed = "reversed",
        /// External: a reversal arrived for an id never debited; a later debit is refused.
        Tombstone = "tombstone",
        /// Ledger: the credit is applied.
        Credited = "credited",
    }
}

/// What an institution recorded for a transfer id; the answer of every money-moving route
/// and of `GET /debits/{id}` and `GET /credits/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TransferRecord {
    pub transfer_id: String,
    /// The external account, or the ledger's user; null for a tombstone.
    pub account_id: Option<String>,
    /// Null for a tombstone, which records only the id.
    pub amount_cents: Option<AmountCents>,
    pub status: TransferStatus,
    /// Why it was refused (`insufficient_funds`, `antifraud`, `rate_limited`), or
    /// `reversed_before_debit` for a tombstone.
    pub reason: Option<String>,
}

crate::named_enum! {
    /// An entry's kind: a debit lowers the balance, a reversal or a credit raises it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
    pub enum EntryKind {
        Debit = "debit",
        Reversal = "reversal",
        Credit = "credit",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AccountBalance {
    pub account_id: String,
    pub balance_cents: AmountCents,
}

/// One line of the append-only entry table, in commit order (`seq`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Entry {
    pub seq: i64,
    pub transfer_id: String,
    pub account_id: String,
    pub kind: EntryKind,
    pub amount_cents: AmountCents,
    pub balance_after_cents: AmountCents,
    pub at_ms: i64,
}

/// `GET /admin/dump`: everything an institution holds, as one consistent snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Dump {
    pub accounts: Vec<AccountBalance>,
    pub entries: Vec<Entry>,
    pub transfers: Vec<TransferRecord>,
}

/// Where a reader of the books stands: the last entry and the last write to a transfer
/// record it has seen. Both start at 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DumpCursor {
    /// The `seq` of the last entry seen.
    pub after_seq: i64,
    /// The number of the last write to a transfer record seen (a record's insert and each
    /// change of its status are numbered in order).
    pub after_change: i64,
}

/// The most entries, and the most transfer records, one page of `GET /admin/dump` holds.
pub const DUMP_PAGE_MAX: u32 = 100_000;

/// The query of `GET /admin/dump?after_seq=N&after_change=M&limit=L`: a page of what
/// changed after the cursor. Without a query the route answers the whole `Dump`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DumpQuery {
    /// `DumpCursor::after_seq` (0 when absent).
    pub after_seq: Option<i64>,
    /// `DumpCursor::after_change` (0 when absent).
    pub after_change: Option<i64>,
    /// At most this many entries and this many records (1 to `DUMP_PAGE_MAX`; that by
    /// default).
    pub limit: Option<u32>,
}

impl DumpQuery {
    /// Whether the query asks for a page (any parameter given), not the whole dump.
    pub fn asks_for_page(&self) -> bool {
        self.after_seq.is_some() || self.after_change.is_some() || self.limit.is_some()
    }

    pub fn cursor(&self) -> DumpCursor {
        DumpCursor {
            after_seq: self.after_seq.unwrap_or(0),
            after_change: self.after_change.unwrap_or(0),
        }
    }

    /// The page's size, or why it is refused.
    pub fn page_limit(&self) -> Result<u32, String> {
        page_limit(self.limit)
    }
}

/// A page's size from its `limit` parameter, or why it is refused.
pub(crate) fn page_limit(limit: Option<u32>) -> Result<u32, String> {
    match limit.unwrap_or(DUMP_PAGE_MAX) {
        limit @ 1..=DUMP_PAGE_MAX => Ok(limit),
        other => Err(format!("limit {other} is not within 1 to {DUMP_PAGE_MAX}")),
    }
}

/// `GET /admin/dump?after_seq=…&after_change=…`: the entries after the cursor's and the
/// transfer records written after its, in order, as one consistent snapshot. A record written
/// twice since appears once, as it is now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DumpPage {
    pub entries: Vec<Entry>,
    pub transfers: Vec<TransferRecord>,
    /// The cursor to ask from next.
    pub next: DumpCursor,
    /// A list was cut at the limit: ask again from `next` for the rest.
    pub more: bool,
}

/// `POST /admin/accounts`: accounts with their opening balances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SeedAccounts {
    pub accounts: Vec<SeedAccount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SeedAccount {
    /// An external account, or (in the ledger) a user id.
    pub account_id: String,
    pub balance_cents: WireAmount,
}

/// The answer to `POST /admin/accounts` and `POST /admin/users` (201): how many were new.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Created {
    pub created: u64,
}
