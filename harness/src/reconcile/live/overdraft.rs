//! `no_overdraft` as the run goes: the external side's entries replayed in commit order from
//! the opening balances, page by page, as `books_checks::no_overdraft` replays them at the
//! end. A negative balance names its transfer; the transfer's effects are filled in when its
//! part is judged.

use crate::reconcile::names::ViolationClass;
use crate::reconcile::Violation;
use rustc_hash::FxHashMap;
use service::contract::{Dump, Entry, EntryKind};

#[derive(Debug, Default)]
pub struct Overdraft {
    balances: FxHashMap<String, i128>,
    /// The last entry replayed.
    last_seq: i64,
    pub found: Vec<Violation>,
}

impl Overdraft {
    /// From the opening balances of the external side's dump before the run.
    pub fn from(before: &Dump) -> Overdraft {
        Overdraft {
            balances: before
                .accounts
                .iter()
                .map(|a| (a.account_id.clone(), i128::from(a.balance_cents.get())))
                .collect(),
            last_seq: crate::reconcile::effects::last_seq(before),
            found: Vec::new(),
        }
    }

    /// Replays `entries` (in commit order, after those replayed already). Returns how many
    /// balances went below zero.
    pub fn replay(&mut self, entries: &[Entry]) -> usize {
        let found_before = self.found.len();
        for e in entries {
            if e.seq <= self.last_seq {
                continue;
            }
            self.last_seq = e.seq;
            let balance = self.balances.entry(e.account_id.clone()).or_insert(0);
            match e.kind {
                EntryKind::Debit => *balance -= i128::from(e.amount_cents.get()),
                EntryKind::Reversal | EntryKind::Credit => {
                    *balance += i128::from(e.amount_cents.get())
                }
            }
            if *balance < 0 {
                let detail = format!(
                    "account {} at {} after entry {}",
                    e.account_id, balance, e.seq
                );
                let mut violation = Violation::of_run(ViolationClass::Overdraft, detail);
                violation.transfer_id = Some(e.transfer_id.clone());
                self.found.push(violation);
            }
        }
        self.found.len() - found_before
    }
}
