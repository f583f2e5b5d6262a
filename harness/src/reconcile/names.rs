//! The names the reconciler reports under: a closed set of invariants and of violation
//! classes, each with the sentence a report explains it with. `summary.json`,
//! `reconciliation.json` and their schemas carry these names and no others.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

service::named_enum! {
    /// An invariant the reconciler checks.
    #[derive(
        Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
    )]
    pub enum InvariantName {
        /// Σ external + Σ ledger after the run equals the total before it, once every saga is
        /// final (money still held by sagas that are not final is reported apart).
        Conservation = "conservation",
        /// Per transfer id, the external side's net debit equals the ledger's net credit.
        Atomicity = "atomicity",
        /// Each effect is on the request's accounts, for the requested amount.
        AccountsAndAmounts = "accounts_and_amounts",
        /// No external balance ever goes below zero (the entries replayed in commit order).
        NoOverdraft = "no_overdraft",
        /// At most one debit, one reversal and one credit per transfer id.
        NoDuplicateEffect = "no_duplicate_effect",
        /// Per user and idempotency key, one transfer at most, and money moved once.
        Idempotency = "idempotency",
        /// Every effect belongs to a transfer a request produced, in an order that makes sense.
        NoOrphanEffect = "no_orphan_effect",
        /// Every answer kept its promise.
        ClientContract = "client_contract",
        /// Every indeterminate answer (pending, timeout, transport error) resolved, after the
        /// run, to a final status the books agree with.
        IndeterminateOutcomes = "indeterminate_outcomes",
        /// Every saga final within the window after the faults healed.
        Convergence = "convergence",
        /// Sampled during the run: the totals never above the initial total, never below it by
        /// more than the amounts in flight, and no balance below zero.
        SampledBounds = "sampled_bounds",
        /// The books read again once nothing may move money (after the services stopped, or
        /// after a quiet period on a target) equal the final books the verdict rests on.
        BooksSettled = "books_settled",
        /// The latency bounds of the SLO.
        SloLatency = "slo_latency",
    }
}

service::named_enum! {
    /// What kind of violation a transfer (or a sample) shows.
    #[derive(
        Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
    )]
    pub enum ViolationClass {
        LostDebit = "lost_debit",
        CreditWithoutDebit = "credit_without_debit",
        ReversalAfterCredit = "reversal_after_credit",
        UnequalEffects = "unequal_effects",
        WrongAccount = "wrong_account",
        AmountMismatch = "amount_mismatch",
        Overdraft = "overdraft",
        DoubleDebit = "double_debit",
        DoubleReversal = "double_reversal",
        DoubleCredit = "double_credit",
        DoubleCharge = "double_charge",
        SplitKey = "split_key",
        OrphanEntry = "orphan_entry",
        ReversalWithoutDebit = "reversal_without_debit",
        LateOriginal = "late_original",
        ContractBroken = "contract_broken",
        ShedWithEffect = "shed_with_effect",
        WrongFinalStatus = "wrong_final_status",
        LostTransfer = "lost_transfer",
        Stuck = "stuck",
        CreatedDuringRun = "created_during_run",
        LostDuringRun = "lost_during_run",
        NegativeBalance = "negative_balance",
        MovedAfterFinalRead = "moved_after_final_read",
    }
}

impl ViolationClass {
    /// The invariant a violation of this class breaks.
    pub const fn invariant(self) -> InvariantName {
        use ViolationClass::*;
        match self {
            LostDebit | CreditWithoutDebit | ReversalAfterCredit | UnequalEffects => {
                InvariantName::Atomicity
            }
            WrongAccount | AmountMismatch => InvariantName::AccountsAndAmounts,
            Overdraft => InvariantName::NoOverdraft,
            DoubleDebit | DoubleReversal | DoubleCredit => InvariantName::NoDuplicateEffect,
            DoubleCharge | SplitKey => InvariantName::Idempotency,
            OrphanEntry | ReversalWithoutDebit | LateOriginal => InvariantName::NoOrphanEffect,
            ContractBroken | ShedWithEffect | LostTransfer => InvariantName::ClientContract,
            WrongFinalStatus => InvariantName::IndeterminateOutcomes,
            Stuck => InvariantName::Convergence,
            CreatedDuringRun | LostDuringRun | NegativeBalance => InvariantName::SampledBounds,
            MovedAfterFinalRead => InvariantName::BooksSettled,
        }
    }

    /// What the class means, for a person reading the report.
    pub const fn explanation(self) -> &'static str {
        use ViolationClass::*;
        match self {
            LostDebit => "Money left the user's external account and never arrived in their ledger account, and no reversal gave it back: the user lost it.",
            CreditWithoutDebit => "The ledger credited the user although nothing was debited at the external institution: money was created.",
            ReversalAfterCredit => "The debit was reversed although the credit had been applied: the user kept the credit and got the debit back, so money was created. This is what treating a timed-out credit as a failure does.",
            UnequalEffects => "Both sides moved money for the transfer, but not the same amount.",
            WrongAccount => "Money moved on an account the request did not name: another user's external account, or another user's ledger account.",
            AmountMismatch => "An entry moved a different amount than the request asked for.",
            Overdraft => "Replaying the external institution's entries in commit order takes a balance below zero.",
            DoubleDebit => "One transfer id was debited more than once.",
            DoubleReversal => "One transfer id was reversed more than once.",
            DoubleCredit => "One transfer id was credited more than once.",
            DoubleCharge => "One request (a user's idempotency key, retries included) became more than one transfer, and more than one of them moved money: the user was charged twice.",
            SplitKey => "One request (a user's idempotency key) was named as more than one transfer, by the answers or the saga log, though money moved at most once.",
            OrphanEntry => "An institution holds an entry for a transfer id that no request of the run produced.",
            ReversalWithoutDebit => "A reversal gave money back for a transfer id that was never debited before it: money was created.",
            LateOriginal => "A debit was applied after its transfer had been aborted (a reversal or a tombstone came first): nobody will give that money back.",
            ContractBroken => "An answer did not keep its promise: `completed` without both sides applied, `failed` with a net effect left, or `pending` that never became final.",
            ShedWithEffect => "Every answer to a request (a user's idempotency key, retries included) was 503, the promise that nothing was written, yet the coordinator wrote a transfer for it or money moved: a shed decided after the work began.",
            WrongFinalStatus => "After the run, the coordinator's final status for a transfer whose answer was indeterminate disagrees with the books.",
            LostTransfer => "The client was given a transfer id that the coordinator no longer knows after the run: an answer that was not durable.",
            Stuck => "A saga was still not final when the convergence window closed.",
            CreatedDuringRun => "A sample taken during the run (ledger read before the external side) found more money than there was at the start.",
            LostDuringRun => "A sample taken during the run found less money than the start minus everything in flight.",
            NegativeBalance => "A sample taken during the run found a balance below zero.",
            MovedAfterFinalRead => "Money moved for this transfer after the final read of the books, when every saga was already final: the books read again after the services stopped (or after a quiet period, on a target) differ. A reversal queue still working or a retry that woke late moves money the verdict never saw.",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_serialized_names() {
        for class in ViolationClass::ALL {
            assert_eq!(
                serde_json::to_value(class).expect("serializes"),
                class.as_str()
            );
            assert!(!class.explanation().is_empty());
        }
        let invariant = InvariantName::NoOrphanEffect;
        assert_eq!(
            serde_json::to_value(invariant).expect("serializes"),
            invariant.as_str()
        );
    }
}
