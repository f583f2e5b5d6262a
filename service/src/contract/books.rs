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

/// The recorded state of a transfer id at one institution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransferStatus {
    /// External: the debit is applied.
    Debited,
    /// Either side: refused, nothing applied (see `reason`).
    Refused,
    /// External: the debit was applied and then reversed; net effect zero.
    Reversed,
    /// External: a reversal arrived for an id never debited; a later debit is refused.
    Tombstone,
    /// Ledger: the credit is applied.
    Credited,
}

impl TransferStatus {
    pub const ALL: [TransferStatus; 5] = [
        TransferStatus::Debited,
        TransferStatus::Refused,
        TransferStatus::Reversed,
        TransferStatus::Tombstone,
        TransferStatus::Credited,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            TransferStatus::Debited => "debited",
            TransferStatus::Refused => "refused",
            TransferStatus::Reversed => "reversed",
            TransferStatus::Tombstone => "tombstone",
            TransferStatus::Credited => "credited",
        }
    }

    pub fn from_name(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
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

/// An entry's kind: a debit lowers the balance, a reversal or a credit raises it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Debit,
    Reversal,
    Credit,
}

impl EntryKind {
    pub const ALL: [EntryKind; 3] = [EntryKind::Debit, EntryKind::Reversal, EntryKind::Credit];

    pub const fn as_str(self) -> &'static str {
        match self {
            EntryKind::Debit => "debit",
            EntryKind::Reversal => "reversal",
            EntryKind::Credit => "credit",
        }
    }

    pub fn from_name(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
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
