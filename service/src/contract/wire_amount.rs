//! An amount as a request carries it: the exact JSON number the sender wrote, so the receiver
//! can say precisely what is wrong with it (zero, negative, a fraction, too large) instead of
//! a generic type error. A sender builds one from an [`AmountCents`].

use crate::money::{AmountCents, AmountError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WireAmount(serde_json::Number);

impl WireAmount {
    /// A transfer amount: positive, whole, at most [`AmountCents::MAX_TRANSFER`].
    pub fn transfer_amount(&self) -> Result<AmountCents, AmountError> {
        AmountCents::transfer_from_json(&self.0)
    }

    /// A balance: zero allowed, whole, not negative.
    pub fn balance(&self) -> Result<AmountCents, AmountError> {
        AmountCents::balance_from_json(&self.0)
    }
}

impl From<AmountCents> for WireAmount {
    fn from(amount: AmountCents) -> Self {
        WireAmount(amount.get().into())
    }
}

impl JsonSchema for WireAmount {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "WireAmount".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Minor units (cents): a whole number, never a float.",
            "type": "integer",
            "minimum": 0
        })
    }
}
