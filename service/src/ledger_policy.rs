//! The ledger's business rules, defined once (see `settings`): the ledger's flags, the body
//! of `GET|PUT /admin/policy`, a profile's `service.ledger` fields and a knobs fault's `set:`.
//! In a patch, `null` turns an optional rule off and a field left out keeps its value.

use crate::money::AmountCents;
use crate::settings::{check_fraction, check_range, SettingError, Settings};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, clap::Args, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LedgerPolicy {
    /// Antifraud refuses any credit above this amount, in cents (at least 1; absent: no rule).
    #[arg(long)]
    pub antifraud_max_amount_cents: Option<AmountCents>,
    /// Antifraud refuses this fraction (0..=1) of credits at random (seeded).
    #[arg(long, default_value_t)]
    pub antifraud_refusal_rate: f64,
    /// At most this many new credits per user per second; more are refused with 429 (at
    /// least 1; absent: no limit).
    #[arg(long)]
    pub rate_limit_per_user_per_s: Option<u32>,
}

impl Settings for LedgerPolicy {
    fn validate(&self) -> Result<(), SettingError> {
        if let Some(max) = self.antifraud_max_amount_cents {
            check_range(
                "antifraud_max_amount_cents",
                max.get(),
                1,
                AmountCents::MAX_TRANSFER.get(),
            )?;
        }
        check_fraction("antifraud_refusal_rate", self.antifraud_refusal_rate)?;
        if let Some(limit) = self.rate_limit_per_user_per_s {
            check_range("rate_limit_per_user_per_s", limit, 1, 1_000_000)?;
        }
        Ok(())
    }
}
