//! The seed's PlusCal spec (`transfer_bank_balance`), as written: the same variables, the
//! same labels as atomic steps, the same invariants.
//!
//! ```text
//! variables queue = <<>>, reversal_in_progress = FALSE, transfer_amount = 5,
//!           button_mash_attempts = 0, external_balance = 10, internal_balance = 0;
//! NeverOverdraft == external_balance >= 0
//! EventuallyConsistentTransfer == <>[](external_balance + internal_balance = 10)
//! ```
//!
//! `EventuallyConsistentTransfer` is checked where `<>[]` is decided for this spec: in every
//! quiescent state (the transfer process is done and the queue is empty, so nothing can
//! change any more), the sum must be 10.

use stateright::{Model, Property};
use std::fmt;

/// Labels of `BankTransferAction`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pc {
    ExternalTransfer,
    InternalTransfer,
    UserButtonMash,
    Done,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SeedState {
    pub queue: Vec<i64>,
    pub reversal_in_progress: bool,
    pub button_mash_attempts: u32,
    pub external_balance: i64,
    pub internal_balance: i64,
    pub pc: Pc,
}

impl fmt::Display for SeedState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "external_balance={:>3} internal_balance={:>2} queue={:?} reversal_in_progress={} button_mash_attempts={} pc={:?}",
            self.external_balance,
            self.internal_balance,
            self.queue,
            self.reversal_in_progress,
            self.button_mash_attempts,
            self.pc
        )
    }
}

/// One atomic step: a label of one of the two processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SeedAction {
    /// `ExternalTransfer: external_balance := external_balance - transfer_amount`
    ExternalTransfer,
    /// `InternalTransfer: either internal_balance := internal_balance + transfer_amount`
    InternalTransferSucceeds,
    /// `or queue := Append(queue, transfer_amount); reversal_in_progress := TRUE`
    InternalTransferFailsEnqueueReversal,
    /// `UserButtonMash: if button_mash_attempts < 3 then ... goto ExternalTransfer`
    UserButtonMash,
    /// `DoReversal: await queue /= <<>>; ... external_balance += Head(queue)`
    DoReversal,
}

/// The spec; `await_reversal` switches on the line the spec has commented out:
/// `await reversal_in_progress = FALSE` before a button mash.
pub struct SeedSpec {
    pub await_reversal: bool,
}

pub const TRANSFER_AMOUNT: i64 = 5;
pub const TOTAL: i64 = 10;

impl Model for SeedSpec {
    type State = SeedState;
    type Action = SeedAction;

    fn init_states(&self) -> Vec<SeedState> {
        vec![SeedState {
            queue: Vec::new(),
            reversal_in_progress: false,
            button_mash_attempts: 0,
            external_balance: TOTAL,
            internal_balance: 0,
            pc: Pc::ExternalTransfer,
        }]
    }

    fn actions(&self, s: &SeedState, actions: &mut Vec<SeedAction>) {
        match s.pc {
            Pc::ExternalTransfer => actions.push(SeedAction::ExternalTransfer),
            Pc::InternalTransfer => {
                actions.push(SeedAction::InternalTransferSucceeds);
                actions.push(SeedAction::InternalTransferFailsEnqueueReversal);
            }
            Pc::UserButtonMash if !self.await_reversal || !s.reversal_in_progress => {
                actions.push(SeedAction::UserButtonMash)
            }
            Pc::UserButtonMash | Pc::Done => {}
        }
        if !s.queue.is_empty() {
            actions.push(SeedAction::DoReversal);
        }
    }

    fn next_state(&self, s: &SeedState, action: SeedAction) -> Option<SeedState> {
        let mut n = s.clone();
        match action {
            SeedAction::ExternalTransfer => {
                n.external_balance -= TRANSFER_AMOUNT;
                n.pc = Pc::InternalTransfer;
            }
            SeedAction::InternalTransferSucceeds => {
                n.internal_balance += TRANSFER_AMOUNT;
                n.pc = Pc::Done;
            }
            SeedAction::InternalTransferFailsEnqueueReversal => {
                n.queue.push(TRANSFER_AMOUNT);
                n.reversal_in_progress = true;
                n.pc = Pc::UserButtonMash;
            }
            SeedAction::UserButtonMash => {
                if n.button_mash_attempts < 3 {
                    n.button_mash_attempts += 1;
                    n.pc = Pc::ExternalTransfer;
                } else {
                    n.pc = Pc::Done;
                }
            }
            SeedAction::DoReversal => {
                let balance_to_restore = n.queue.remove(0);
                n.external_balance += balance_to_restore;
                n.reversal_in_progress = false;
            }
        }
        Some(n)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("NeverOverdraft", |_, s: &SeedState| s.external_balance >= 0),
            Property::always("EventuallyConsistentTransfer", |_, s: &SeedState| {
                let quiescent = s.pc == Pc::Done && s.queue.is_empty();
                !quiescent || s.external_balance + s.internal_balance == TOTAL
            }),
            Property::sometimes("transfer completes", |_, s: &SeedState| {
                s.pc == Pc::Done && s.internal_balance == TRANSFER_AMOUNT
            }),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stateright::Checker;

    #[test]
    fn the_seed_spec_overdraws_when_the_user_mashes_the_button() {
        let checker = SeedSpec {
            await_reversal: false,
        }
        .checker()
        .spawn_bfs()
        .join();
        let trace = checker
            .discovery("NeverOverdraft")
            .expect("the seed spec's NeverOverdraft is violated");
        let (text, actions) =
            super::super::render_until(trace, |s: &SeedState| s.external_balance < 0);
        eprintln!(
            "Counterexample to NeverOverdraft in the seed spec ({} steps):\n{text}",
            actions.len()
        );
        assert_eq!(
            actions
                .iter()
                .filter(|a| **a == SeedAction::ExternalTransfer)
                .count(),
            3,
            "three debits of 5 against a balance of 10: two of them button mashes"
        );
        assert!(
            !actions.contains(&SeedAction::DoReversal),
            "the overdraft happens before any reversal lands"
        );
        // Without overdraft protection every reversal still lands: the sum is right at rest.
        checker.assert_no_discovery("EventuallyConsistentTransfer");
    }

    #[test]
    fn the_commented_out_await_removes_the_overdraft() {
        let checker = SeedSpec {
            await_reversal: true,
        }
        .checker()
        .spawn_bfs()
        .join();
        checker.assert_properties();
        assert!(
            checker.unique_state_count() > 5,
            "the model explored something"
        );
    }
}
