//! The error body every service answers a request it will not carry out with, and the codes
//! it may carry. Each code has one HTTP status: a server builds its answer from the code, a
//! client can tell the two apart, and `docs/contract.md` lists both.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// For a person: what was wrong (4xx) or a generic sentence (5xx).
    pub message: String,
}

/// A stable, machine-readable error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not JSON, or is empty.
    MalformedJson,
    /// The body could not be read off the connection.
    UnreadableBody,
    /// A required field is absent.
    MissingField,
    /// A field the route does not know (typos are not ignored).
    UnknownField,
    /// A field has the wrong JSON type.
    InvalidField,
    /// Zero, negative, fractional, or above 100,000,000,000 cents.
    InvalidAmount,
    /// An id is empty, too long, or has other characters.
    InvalidId,
    MissingIdempotencyKey,
    InvalidIdempotencyKey,
    /// A knob out of range (`PUT /admin/knobs`).
    InvalidKnob,
    /// A ledger rule out of range (`PUT /admin/policy`).
    InvalidPolicy,
    /// More accounts in one seeding call than a service takes.
    TooManyAccounts,
    /// A body over the route's size limit.
    BodyTooLarge,
    UnknownUser,
    UnknownAccount,
    UnknownTransfer,
    /// The same user and key with another payload.
    IdempotencyKeyReused,
    /// The same transfer id with another account or amount.
    TransferIdReused,
    /// Seeding an existing account with another balance.
    AccountExists,
    /// A credit would take a balance past what the store holds.
    BalanceOverflow,
    /// An `/admin` route from a non-loopback peer without the bearer token.
    Forbidden,
    /// Shed before anything was written: safe to retry.
    Overloaded,
    /// A fault knob fired.
    InjectedFault,
    /// The operation may or may not have been applied.
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 24] = [
        ErrorCode::MalformedJson,
        ErrorCode::UnreadableBody,
        ErrorCode::MissingField,
        ErrorCode::UnknownField,
        ErrorCode::InvalidField,
        ErrorCode::InvalidAmount,
        ErrorCode::InvalidId,
        ErrorCode::MissingIdempotencyKey,
        ErrorCode::InvalidIdempotencyKey,
        ErrorCode::InvalidKnob,
        ErrorCode::InvalidPolicy,
        ErrorCode::TooManyAccounts,
        ErrorCode::BodyTooLarge,
        ErrorCode::UnknownUser,
        ErrorCode::UnknownAccount,
        ErrorCode::UnknownTransfer,
        ErrorCode::IdempotencyKeyReused,
        ErrorCode::TransferIdReused,
        ErrorCode::AccountExists,
        ErrorCode::BalanceOverflow,
        ErrorCode::Forbidden,
        ErrorCode::Overloaded,
        ErrorCode::InjectedFault,
        ErrorCode::Internal,
    ];

    /// The HTTP status an answer with this code carries.
    pub const fn http_status(self) -> u16 {
        use ErrorCode::*;
        match self {
            MalformedJson
            | UnreadableBody
            | MissingField
            | UnknownField
            | InvalidField
            | InvalidAmount
            | InvalidId
            | MissingIdempotencyKey
            | InvalidIdempotencyKey
            | InvalidKnob
            | InvalidPolicy
            | TooManyAccounts => 400,
            Forbidden => 403,
            UnknownUser | UnknownAccount | UnknownTransfer => 404,
            IdempotencyKeyReused | TransferIdReused | AccountExists => 409,
            BodyTooLarge => 413,
            BalanceOverflow => 422,
            InjectedFault | Internal => 500,
            Overloaded => 503,
        }
    }

    pub const fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            MalformedJson => "malformed_json",
            UnreadableBody => "unreadable_body",
            MissingField => "missing_field",
            UnknownField => "unknown_field",
            InvalidField => "invalid_field",
            InvalidAmount => "invalid_amount",
            InvalidId => "invalid_id",
            MissingIdempotencyKey => "missing_idempotency_key",
            InvalidIdempotencyKey => "invalid_idempotency_key",
            InvalidKnob => "invalid_knob",
            InvalidPolicy => "invalid_policy",
            TooManyAccounts => "too_many_accounts",
            BodyTooLarge => "body_too_large",
            UnknownUser => "unknown_user",
            UnknownAccount => "unknown_account",
            UnknownTransfer => "unknown_transfer",
            IdempotencyKeyReused => "idempotency_key_reused",
            TransferIdReused => "transfer_id_reused",
            AccountExists => "account_exists",
            BalanceOverflow => "balance_overflow",
            Forbidden => "forbidden",
            Overloaded => "overloaded",
            InjectedFault => "injected_fault",
            Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_listed_once_and_named_as_serde_names_it() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code), "{code:?} listed twice");
            let wire = serde_json::to_value(code).expect("serializes");
            assert_eq!(wire, code.as_str(), "{code:?}");
        }
    }
}
