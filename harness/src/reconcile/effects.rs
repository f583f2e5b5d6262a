//! What the books show the run did, per transfer id: the entries both institutions appended
//! after the dump taken before the run, summed into net effects, with the order of the
//! external side's debits and reversals kept for the checks that need it.

use super::Books;
use rustc_hash::FxHashMap;
use service::contract::{Dump, EntryKind, TransferStatus};

/// One transfer id's effects in the run.
#[derive(Debug, Default, Clone)]
pub struct Effects<'a> {
    /// Debits minus reversals at the external side, in cents.
    pub external_net: i128,
    /// Credits in the ledger, in cents.
    pub ledger_net: i128,
    pub id: &'a str,
    pub debits: u32,
    pub reversals: u32,
    pub credits: u32,
    /// The first debit's and the first credit's (account, amount), and whether a later one
    /// named another account or amount.
    pub debit: Option<(&'a str, u64)>,
    pub credit: Option<(&'a str, u64)>,
    pub entries_differ: bool,
    /// Entry numbers at the external side of the first debit and of the first reversal.
    pub first_debit_seq: Option<i64>,
    pub first_reversal_seq: Option<i64>,
    /// Entry number of the external side's last entry for the id, and whether it is a debit.
    pub last_external: Option<(i64, EntryKind)>,
    /// The external side's record for the id says tombstone (a reversal came first).
    pub tombstoned: bool,
}

/// Every transfer id the run's entries name, with its effects: a small map from the id to
/// its slot, and the effects side by side in slot order (at a million transfers a map of
/// the effects themselves is hundreds of megabytes of random access).
#[derive(Debug, Default)]
pub struct EffectsById<'a> {
    slot: FxHashMap<&'a str, u32>,
    effects: Vec<Effects<'a>>,
}

impl<'a> EffectsById<'a> {
    pub fn get(&self, id: &str) -> Option<&Effects<'a>> {
        self.slot.get(id).map(|&i| &self.effects[i as usize])
    }

    /// Every id with its effects.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &Effects<'a>)> + '_ {
        self.effects.iter().map(|fx| (fx.id, fx))
    }

    pub fn len(&self) -> usize {
        self.effects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.effects.is_empty()
    }

    fn entry(&mut self, id: &'a str) -> &mut Effects<'a> {
        let next = self.effects.len() as u32;
        let i = *self.slot.entry(id).or_insert(next);
        if i == next {
            self.effects.push(Effects {
                id,
                ..Effects::default()
            });
        }
        &mut self.effects[i as usize]
    }
}

/// The last entry number of a dump taken before the run: later entries are the run's.
pub fn last_seq(dump: &Dump) -> i64 {
    dump.entries.iter().map(|e| e.seq).max().unwrap_or(0)
}

/// Every transfer id the run's entries name, with its effects.
pub fn effects_of(books: &Books) -> EffectsById<'_> {
    let first_new_external = last_seq(&books.external_before);
    let first_new_ledger = last_seq(&books.ledger_before);
    let mut by_id = EffectsById::default();
    by_id.slot.reserve(books.external_after.entries.len());
    by_id.effects.reserve(books.external_after.entries.len());
    for e in books
        .external_after
        .entries
        .iter()
        .filter(|e| e.seq > first_new_external)
    {
        let fx = by_id.entry(e.transfer_id.as_str());
        let amount = e.amount_cents.get();
        match e.kind {
            EntryKind::Debit => {
                fx.external_net += i128::from(amount);
                fx.debits += 1;
                note(&mut fx.debit, &mut fx.entries_differ, &e.account_id, amount);
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
        let fx = by_id.entry(e.transfer_id.as_str());
        let amount = e.amount_cents.get();
        match e.kind {
            EntryKind::Credit => {
                fx.ledger_net += i128::from(amount);
                fx.credits += 1;
                note(
                    &mut fx.credit,
                    &mut fx.entries_differ,
                    &e.account_id,
                    amount,
                );
            }
            EntryKind::Debit | EntryKind::Reversal => fx.ledger_net -= i128::from(amount),
        }
    }
    for record in &books.external_after.transfers {
        if record.status == TransferStatus::Tombstone {
            if let Some(&i) = by_id.slot.get(record.transfer_id.as_str()) {
                by_id.effects[i as usize].tombstoned = true;
            }
        }
    }
    by_id
}

/// Keeps the first (account, amount) of a kind, and notes a later one that differs.
fn note<'a>(first: &mut Option<(&'a str, u64)>, differ: &mut bool, account: &'a str, amount: u64) {
    match first {
        None => *first = Some((account, amount)),
        Some(seen) => *differ |= *seen != (account, amount),
    }
}

/// Σ balances of a dump.
pub fn total(dump: &Dump) -> u64 {
    dump.accounts.iter().map(|a| a.balance_cents.get()).sum()
}
