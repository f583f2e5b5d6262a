//! The reasons a `failed` transfer or a refused record may give that other parts rely on.

/// The ledger's antifraud refused the credit.
pub const ANTIFRAUD: &str = "antifraud";
/// The ledger's per-user rate limit refused the credit (429).
pub const RATE_LIMITED: &str = "rate_limited";
/// The external account did not hold the amount.
pub const INSUFFICIENT_FUNDS: &str = "insufficient_funds";
/// The debit's fate was unknown, so the coordinator aborted it: a reversal that leaves a
/// tombstone if the debit never arrived.
pub const ABORTED: &str = "aborted";
/// A tombstone's reason: the reversal came before any debit.
pub const REVERSED_BEFORE_DEBIT: &str = "reversed_before_debit";

pub const ALL: [&str; 5] = [
    ANTIFRAUD,
    RATE_LIMITED,
    INSUFFICIENT_FUNDS,
    ABORTED,
    REVERSED_BEFORE_DEBIT,
];
