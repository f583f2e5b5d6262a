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
