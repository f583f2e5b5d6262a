//! What the harness samples while the load runs, to check the money during the run and not
//! only after it: each institution's totals (`GET /admin/totals`) and the coordinator's
//! money in flight (`GET /admin/in-flight`). Both are cheap reads of one snapshot.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `GET /admin/totals` at either institution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Totals {
    pub accounts: u64,
    /// Σ balances.
    pub total_cents: u64,
    /// The lowest balance (0 when there is no account). Signed: a system that lets a balance
    /// go below zero must be able to say so.
    pub lowest_balance_cents: i64,
}

/// `GET /admin/in-flight` at a coordinator that keeps a saga log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InFlight {
    /// Sagas not final.
    pub sagas: u64,
    /// Σ amounts of the sagas not final: the most money they can hold between the two sides.
    pub amount_cents: u64,
    /// Every saga ever begun, and Σ their amounts: counters that only grow, so a sampler can
    /// tell what began between two of its reads.
    pub begun_sagas: u64,
    pub begun_amount_cents: u64,
}
