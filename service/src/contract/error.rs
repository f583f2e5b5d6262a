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

crate::named_enum! {
    /// A stable, machine-readable error code.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
    pub enum ErrorCode {
        /// The body is not JSON, or is empty.
        MalformedJson = "malformed_json",
        /// The body could not be read off the connection.
        UnreadableBody = "unreadable_body",
        /// A required field is absent.
        MissingField = "missing_field",
        /// A field the route does not know (typos are not ignored).
        UnknownField = "unknown_field",
        /// A field has the wrong JSON type.
        InvalidField = "invalid_field",
        /// Zero, negative, fractional, or above 100,000,000,000 cents.
        InvalidAmount = "invalid_amount",
        /// An id is empty, too long, or has other characters.
        InvalidId = "invalid_id",
        MissingIdempotencyKey = "missing_idempotency_key",
        InvalidIdempotencyKey = "invalid_idempotency_key",
        /// A knob out of range (`PUT /admin/knobs`).
        InvalidKnob = "invalid_knob",
        /// A ledger rule out of range (`PUT /admin/policy`).
        InvalidPolicy = "invalid_policy",
        /// A query parameter the route does not know, not a number, or out of range.
        InvalidQuery = "invalid_query",
        /// More accounts in one seeding call than a service takes.
        TooManyAccounts = "too_many_accounts",
        /// A body over the route's size limit.
        BodyTooLarge = "body_too_large",
        UnknownUser = "unknown_user",
        UnknownAccount = "unknown_account",
        UnknownTransfer = "unknown_transfer",
        /// A path the service does not serve.
        UnknownRoute = "unknown_route",
        /// A path the service serves, with a method it does not take there.
        MethodNotAllowed = "method_not_allowed",
        /// The same user and key with another payload.
        IdempotencyKeyReused = "idempotency_key_reused",
        /// The same transfer id with another account or amount.
        TransferIdReused = "transfer_id_reused",
        /// Seeding an existing account with another balance.
        AccountExists = "account_exists",
        /// A credit would take a balance past what the store holds.
        BalanceOverflow = "balance_overflow",
        /// An `/admin` route from a non-loopback peer without the bearer token.
        Forbidden = "forbidden",
        /// Shed before anything was written: safe to retry.
        Overloaded = "overloaded",
        /// The store's disk refused the write (full or read-only): nothing was written, safe
        /// to retry.
        StorageUnavailable = "storage_unavailable",
        /// A fault knob fired.
        InjectedFault = "injected_fault",
        /// The operation may or may not have been applied.
        Internal = "internal",
    }
}

impl ErrorCode {
    /// The `Retry-After` (whole seconds) an answer with this code carries: an `overloaded`
    /// refusal tells a well-behaved client when to come back, instead of at once.
    pub const fn retry_after_seconds(self) -> Option<u32> {
        match self {
            ErrorCode::Overloaded => Some(1),
            _ => None,
        }
    }

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
            | InvalidQuery
            | TooManyAccounts => 400,
            Forbidden => 403,
            UnknownUser | UnknownAccount | UnknownTransfer | UnknownRoute => 404,
            MethodNotAllowed => 405,
            IdempotencyKeyReused | TransferIdReused | AccountExists => 409,
            BodyTooLarge => 413,
            BalanceOverflow => 422,
            InjectedFault | Internal => 500,
            Overloaded | StorageUnavailable => 503,
        }
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
