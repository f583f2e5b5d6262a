//! The coordinator's bodies: `POST /transfers` and its answer (also `GET /transfers/{id}`),
//! the saga log dump (`GET /admin/sagas`) and the user links (`POST /admin/users`).

use super::wire_amount::WireAmount;
use crate::ids::{AccountId, IdempotencyKey, TransferId, UserId};
use crate::money::AmountCents;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `POST /transfers`, with the `Idempotency-Key` header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    pub user_id: String,
    pub external_account_id: String,
    pub amount_cents: WireAmount,
}

crate::named_enum! {
    /// What the client is told, and the promise behind it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
    pub enum ClientStatus {
        /// The debit and the credit are both applied.
        Completed = "completed",
        /// Neither side holds any net effect, now or after a durably owed reversal.
        Failed = "failed",
        /// Not known within the deadline; becomes `completed` or `failed` in the background.
        Pending = "pending",
    }
}

impl ClientStatus {
    /// The HTTP status a transfer answer with this status carries.
    pub const fn http_status(self) -> u16 {
        match self {
            ClientStatus::Completed => 200,
            ClientStatus::Failed => 422,
            ClientStatus::Pending => 202,
        }
    }
}

crate::named_enum! {
    /// A saga's state. `completed`, `failed` and `reversed` are final.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
    pub enum SagaState {
        /// Intent recorded; the debit may or may not have been sent or applied.
        Started = "started",
        /// The debit is applied; the credit is not known to be.
        Debited = "debited",
        /// Both sides applied.
        Completed = "completed",
        /// The debit was refused, or aborted (reversal or tombstone at the external side).
        Failed = "failed",
        /// The credit was refused: the reversal of the debit is owed (the row is the outbox).
        Reversing = "reversing",
        /// The debit was reversed.
        Reversed = "reversed",
    }
}

impl SagaState {
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            SagaState::Completed | SagaState::Failed | SagaState::Reversed
        )
    }

    /// What the client is told. A saga in `reversing` is already `failed` for the client:
    /// its reversal is durably owed and will happen.
    pub const fn client_status(self) -> ClientStatus {
        match self {
            SagaState::Completed => ClientStatus::Completed,
            SagaState::Failed | SagaState::Reversing | SagaState::Reversed => ClientStatus::Failed,
            SagaState::Started | SagaState::Debited => ClientStatus::Pending,
        }
    }
}

/// The answer to `POST /transfers` and `GET /transfers/{transfer_id}`, with the HTTP status
/// [`ClientStatus::http_status`] gives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TransferView {
    pub transfer_id: TransferId,
    pub status: ClientStatus,
    /// The saga state behind `status` (null for a design that keeps no saga).
    pub state: Option<SagaState>,
    pub user_id: UserId,
    pub external_account_id: AccountId,
    pub amount_cents: AmountCents,
    /// Why a transfer failed (`insufficient_funds`, `antifraud`, `aborted`, ...).
    pub reason: Option<String>,
}

/// One row of the saga log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Saga {
    pub transfer_id: TransferId,
    pub user_id: UserId,
    pub idempotency_key: IdempotencyKey,
    pub external_account_id: AccountId,
    pub amount_cents: AmountCents,
    pub state: SagaState,
    pub reason: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// `GET /admin/sagas`: the whole saga log, for the reconciler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SagaDump {
    /// The coordinator design that wrote the log, as the system names it.
    pub design: String,
    pub sagas: Vec<Saga>,
}

/// The query of `GET /admin/sagas?after_change=M&limit=L`: a page of the sagas written after
/// change `M`. Without a query the route answers the whole `SagaDump`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SagaQuery {
    /// The number of the last write to the saga log already seen (0 when absent): each insert
    /// and each change of state is numbered in order.
    pub after_change: Option<i64>,
    /// At most this many sagas (1 to `DUMP_PAGE_MAX`; that by default).
    pub limit: Option<u32>,
}

impl SagaQuery {
    /// Whether the query asks for a page (any parameter given), not the whole log.
    pub fn asks_for_page(&self) -> bool {
        self.after_change.is_some() || self.limit.is_some()
    }

    /// The page's size, or why it is refused.
    pub fn page_limit(&self) -> Result<u32, String> {
        super::books::page_limit(self.limit)
    }
}

/// `GET /admin/sagas?after_change=…`: the sagas written after the cursor, in the order of
/// their last write, as they are now. A saga written twice since appears once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SagaPage {
    pub design: String,
    pub sagas: Vec<Saga>,
    /// The `after_change` to ask from next.
    pub next_change: i64,
    /// The list was cut at the limit: ask again from `next_change` for the rest.
    pub more: bool,
}

/// `POST /admin/users`: links our users to their external accounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserLinks {
    pub users: Vec<UserLink>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserLink {
    pub user_id: String,
    pub external_account_id: String,
}
