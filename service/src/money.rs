//! Money in minor units. Amounts are never floats: a JSON amount is parsed from its exact
//! textual number and every sum is checked.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// An amount of money in minor units (cents). Always non-negative.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(transparent)]
pub struct AmountCents(u64);

/// Why a JSON number is not a valid transfer amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount_cents must be greater than zero")]
    Zero,
    #[error("amount_cents must not be negative")]
    Negative,
    #[error("amount_cents must be a whole number of cents")]
    NotInteger,
    #[error("amount_cents must not exceed {max}", max = AmountCents::MAX_TRANSFER.0)]
    TooLarge,
}

impl AmountCents {
    /// The largest amount one transfer may move: 10^11 cents. It keeps every balance sum far
    /// from `u64::MAX` while still allowing any realistic transfer.
    pub const MAX_TRANSFER: AmountCents = AmountCents(100_000_000_000);
    pub const ZERO: AmountCents = AmountCents(0);

    pub const fn new(cents: u64) -> Self {
        AmountCents(cents)
    }

    pub const fn get(self) -> u64 {
        self.0
    }

    /// A positive transfer amount from a JSON number, refusing zero, negatives, fractions
    /// and anything over [`AmountCents::MAX_TRANSFER`].
    pub fn transfer_from_json(number: &serde_json::Number) -> Result<Self, AmountError> {
        if let Some(cents) = number.as_u64() {
            return match cents {
                0 => Err(AmountError::Zero),
                c if c > Self::MAX_TRANSFER.0 => Err(AmountError::TooLarge),
                c => Ok(AmountCents(c)),
            };
        }
        if number.as_i64().is_some() {
            return Err(AmountError::Negative);
        }
        // Neither u64 nor i64: a fraction, an exponent form or an integer beyond 64 bits.
        match number.as_f64() {
            Some(f) if f < 0.0 => Err(AmountError::Negative),
            Some(f) if f.fract() == 0.0 => Err(AmountError::TooLarge),
            _ => Err(AmountError::NotInteger),
        }
    }

    /// A balance from a JSON number: zero allowed, no negatives or fractions.
    pub fn balance_from_json(number: &serde_json::Number) -> Result<Self, AmountError> {
        match number.as_u64() {
            Some(0) => Ok(AmountCents(0)),
            Some(c) if c <= i64::MAX as u64 => Ok(AmountCents(c)),
            Some(_) => Err(AmountError::TooLarge),
            None => Self::transfer_from_json(number),
        }
    }

    pub fn checked_add(self, other: AmountCents) -> Option<AmountCents> {
        self.0.checked_add(other.0).map(AmountCents)
    }

    pub fn checked_sub(self, other: AmountCents) -> Option<AmountCents> {
        self.0.checked_sub(other.0).map(AmountCents)
    }

    /// The amount as SQLite stores it (a signed 64-bit integer).
    pub fn to_sql(self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }

    /// An amount read back from SQLite; a negative stored value is a corrupt store.
    pub fn from_sql(value: i64) -> Result<Self, AmountError> {
        u64::try_from(value)
            .map(AmountCents)
            .map_err(|_| AmountError::Negative)
    }
}

/// An amount written as a whole number of cents (a command-line flag, say).
impl std::str::FromStr for AmountCents {
    type Err = std::num::ParseIntError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.parse().map(AmountCents)
    }
}

impl fmt::Display for AmountCents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AmountCents, AmountError> {
        let number: serde_json::Number = serde_json::from_str(text).expect("a JSON number");
        AmountCents::transfer_from_json(&number)
    }

    #[test]
    fn transfer_amounts_are_positive_bounded_integers() {
        assert_eq!(parse("1"), Ok(AmountCents(1)));
        assert_eq!(parse("100000000000"), Ok(AmountCents::MAX_TRANSFER));
        assert_eq!(parse("0"), Err(AmountError::Zero));
        assert_eq!(parse("-5"), Err(AmountError::Negative));
        assert_eq!(parse("-5.5"), Err(AmountError::Negative));
        assert_eq!(parse("5.5"), Err(AmountError::NotInteger));
        assert_eq!(parse("100000000001"), Err(AmountError::TooLarge));
        assert_eq!(parse("18446744073709551616"), Err(AmountError::TooLarge));
        assert_eq!(parse("1e30"), Err(AmountError::TooLarge));
    }

    #[test]
    fn sums_are_checked() {
        assert_eq!(AmountCents(u64::MAX).checked_add(AmountCents(1)), None);
        assert_eq!(AmountCents(1).checked_sub(AmountCents(2)), None);
    }
}
