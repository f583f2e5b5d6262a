//! Identifier newtypes. Every id that crosses HTTP is validated once, here.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a textual id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
    #[error("{field} must be at most {max} characters")]
    TooLong { field: &'static str, max: usize },
    #[error("{field} may only hold letters, digits and - _ . :")]
    BadCharacter { field: &'static str },
}

fn check(field: &'static str, value: &str, max: usize) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty { field });
    }
    if value.len() > max {
        return Err(IdError::TooLong { field, max });
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':');
    if !value.chars().all(allowed) {
        return Err(IdError::BadCharacter { field });
    }
    Ok(())
}

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
        )]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const FIELD: &'static str = $field;
            pub const MAX_LEN: usize = $max;

            pub fn parse(value: &str) -> Result<Self, IdError> {
                check($field, value, $max)?;
                Ok(Self(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_id!(
    /// A transfer's id, shared by the coordinator, the external institution and the ledger.
    TransferId,
    "transfer_id",
    64
);
text_id!(
    /// A user of our bank: an account in the internal ledger.
    UserId,
    "user_id",
    64
);
text_id!(
    /// An account at the external institution.
    AccountId,
    "external_account_id",
    64
);
text_id!(
    /// The client's idempotency key, scoped to the user.
    IdempotencyKey,
    "Idempotency-Key",
    128
);

impl TransferId {
    /// A fresh, globally unique transfer id. Time-ordered (UUIDv7): ids made one after the
    /// other sort together, so every book keyed by transfer id (the saga log, both
    /// institutions' transfers) appends to its index's last pages instead of dirtying a
    /// random page per write, and a group commit writes and syncs fewer pages.
    pub fn generate() -> Self {
        Self(format!("t-{}", uuid::Uuid::now_v7().simple()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_validated() {
        assert!(UserId::parse("u-1").is_ok());
        assert_eq!(UserId::parse(""), Err(IdError::Empty { field: "user_id" }));
        assert!(matches!(
            UserId::parse(&"x".repeat(65)),
            Err(IdError::TooLong { .. })
        ));
        assert!(matches!(
            AccountId::parse("a b"),
            Err(IdError::BadCharacter { .. })
        ));
        assert!(TransferId::parse(TransferId::generate().as_str()).is_ok());
    }

    #[test]
    fn transfer_ids_sort_in_the_order_they_were_made() {
        let ids: Vec<TransferId> = (0..1000).map(|_| TransferId::generate()).collect();
        let mut sorted = ids.clone();
        sorted.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        assert_eq!(sorted, ids, "append-mostly indexes need time-ordered ids");
        let distinct: std::collections::HashSet<&str> = ids.iter().map(|i| i.as_str()).collect();
        assert_eq!(distinct.len(), ids.len());
    }
}
