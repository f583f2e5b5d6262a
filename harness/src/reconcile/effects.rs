//! What the books show the run did, per transfer id: the entries both institutions appended
//! after the dump taken before the run, summed into net effects, with the order of the
//! external side's debits and reversals kept for the checks that need it.

use super::Books;
use service::contract::{Dump, EntryKind, TransferStatus};
use std::collections::HashMap;

/// One transfer id's effects in the run.
#[derive(Debug, Default, Clone)]
pub struct Effects<'a> {
    /// Debits minus reversals at the external side, in cents.
    pub external_net: i128,
    /// Credits in the ledger, in cents.
    pub ledger_net: i128,
    pub debits: u32,
    pub reversals: u32,
    pub credits: u32,
    /// The accounts and amounts of the entries: (account, amount) per kind.
    pub debit_entries: Vec<(&'a str, u64)>,
    pub credit_entries: Vec<(&'a str, u64)>,
    /// Entry numbers at the external side of the first debit and of the first reversal.
    pub first_debit_seq: Option<i64>,
    pub first_reversal_seq: Option<i64>,
    /// Entry number of the external side's last entry for the id, and whether it is a debit.
    pub last_external: Option<(i64, EntryKind)>,
    /// The external side's record for the id says tombstone (a reversal came first).
    pub tombstoned: bool,
}

/// The last entry number of a dump taken before the run: later entries are the run's.
pub fn last_seq(dump: &Dump) -> i64 {
    dump.entries.iter().map(|e| e.seq).max().unwrap_or(0)
}

/// Every transfer id the run's entries name, with its effects.
pub fn effects_of(books: &Books) -> HashMap<&str, Effects<'_>> {
    let first_new_external = last_seq(&books.external_before);
    let first_new_ledger = last_seq(&books.ledger_before);
    let mut by_id: HashMap<&str, Effects<'_>> =
        HashMap::with_capacity(books.external_after.transfers.len());
    for e in books
        .external_after
        .entries
        .iter()
        .filter(|e| e.seq > first_new_external)
    {
        let fx = by_id.entry(e.transfer_id.as_str()).or_default();
        let amount = e.amount_cents.get();
        match e.kind {
            EntryKind::Debit => {
                fx.external_net += i128::from(amount);
                fx.debits += 1;
                fx.debit_entries.push((e.account_id.as_str(), amount));
                fx.first_debit_seq.get_or_insert(e.seq);
            }
            EntryKind::Reversal => {
                fx.external_net -= i128::from(amount);
                fx.reversals += 1;
                fx.first_reversal_seq.get_or_insert(e.seq);
            }
            // A credit at the external side is not a move this system makes; count it as
            // the other direction of a debit so the books still balance in the checks.
            EntryKind::Credit => fx.external_net -= i128::from(amount),
        }
        fx.last_external = Some((e.seq, e.kind));
    }
    for e in books
        .ledger_after
        .entries
        .iter()
        .filter(|e| e.seq > first_new_ledger)
    {
        let fx = by_id.entry(e.transfer_id.as_str()).or_default();
        let amount = e.amount_cents.get();
        match e.kind {
            EntryKind::Credit => {
                fx.ledger_net += i128::from(amount);
                fx.credits += 1;
                fx.credit_entries.push((e.account_id.as_str(), amount));
            }
            EntryKind::Debit | EntryKind::Reversal => fx.ledger_net -= i128::from(amount),
        }
    }
    for record in &books.external_after.transfers {
        if record.status == TransferStatus::Tombstone {
            if let Some(fx) = by_id.get_mut(record.transfer_id.as_str()) {
                fx.tombstoned = true;
            }
        }
    }
    by_id
}

/// Σ balances of a dump.
pub fn total(dump: &Dump) -> u64 {
    dump.accounts.iter().map(|a| a.balance_cents.get()).sum()
}
