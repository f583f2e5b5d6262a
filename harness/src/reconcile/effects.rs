//! What the books show the run did, per transfer id: the entries both institutions appended
//! after the dump taken before the run, summed into net effects, with the order of the
//! external side's debits and reversals kept for the checks that need it.

use super::ids::{Numbering, Slot};
use super::Books;
use service::contract::{Dump, Entry, EntryKind, TransferStatus};

/// No entry: the position fields' value when there is none.
const NO_ENTRY: u32 = u32::MAX;

/// One transfer id's effects in the run. Kept small (a million of them are written at
/// once): the entries it needs are named by their position in the books.
#[derive(Debug, Clone, Copy)]
pub struct Effects {
    /// Debits minus reversals at the external side, in cents.
    pub external_net: i128,
    /// Credits in the ledger, in cents.
    pub ledger_net: i128,
    pub debits: u32,
    pub reversals: u32,
    pub credits: u32,
    /// Positions among the external side's entries of the first debit, of the first
    /// reversal and of the last entry for the id.
    first_debit: u32,
    first_reversal: u32,
    last_external: u32,
    /// Position among the ledger's entries of the first credit.
    first_credit: u32,
    /// A later debit or credit named another account or amount than the first of its kind.
    pub entries_differ: bool,
    /// The external side's record for the id says tombstone (a reversal came first).
    pub tombstoned: bool,
}

impl Effects {
    /// No effect at all.
    pub const NONE: Effects = Effects {
        external_net: 0,
        ledger_net: 0,
        debits: 0,
        reversals: 0,
        credits: 0,
        first_debit: NO_ENTRY,
        first_reversal: NO_ENTRY,
        last_external: NO_ENTRY,
        first_credit: NO_ENTRY,
        entries_differ: false,
        tombstoned: false,
    };
}

impl Default for Effects {
    fn default() -> Self {
        Effects::NONE
    }
}

/// Every transfer id the run's entries name, with its effects, by slot: the ids with an
/// entry are numbered first, so slots below `len()` are exactly they.
#[derive(Debug, Default)]
pub struct EffectsById<'a> {
    effects: Vec<Effects>,
    external: &'a [Entry],
    ledger: &'a [Entry],
}

impl<'a> EffectsById<'a> {
    pub fn get(&self, slot: Slot) -> Option<&Effects> {
        self.effects.get(slot as usize)
    }

    /// The effects of `slot`, or none.
    pub fn of(&self, slot: Option<Slot>) -> &Effects {
        static NONE: Effects = Effects::NONE;
        slot.and_then(|s| self.get(s)).unwrap_or(&NONE)
    }

    /// Every id with an effect, by slot.
    pub fn iter(&self) -> impl Iterator<Item = (Slot, &Effects)> + '_ {
        (0..).zip(self.effects.iter())
    }

    pub fn len(&self) -> usize {
        self.effects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.effects.is_empty()
    }

    fn entry(entries: &'a [Entry], position: u32) -> Option<&'a Entry> {
        entries.get(position as usize)
    }

    /// The account and amount of the first debit.
    pub fn debit(&self, fx: &Effects) -> Option<(&'a str, u64)> {
        Self::entry(self.external, fx.first_debit)
            .map(|e| (e.account_id.as_str(), e.amount_cents.get()))
    }

    /// The account and amount of the first credit.
    pub fn credit(&self, fx: &Effects) -> Option<(&'a str, u64)> {
        Self::entry(self.ledger, fx.first_credit)
            .map(|e| (e.account_id.as_str(), e.amount_cents.get()))
    }

    /// Entry numbers at the external side of the first debit and of the first reversal.
    pub fn first_debit_seq(&self, fx: &Effects) -> Option<i64> {
        Self::entry(self.external, fx.first_debit).map(|e| e.seq)
    }

    pub fn first_reversal_seq(&self, fx: &Effects) -> Option<i64> {
        Self::entry(self.external, fx.first_reversal).map(|e| e.seq)
    }

    /// The external side's last entry for the id: its number and kind.
    pub fn last_external(&self, fx: &Effects) -> Option<(i64, EntryKind)> {
        Self::entry(self.external, fx.last_external).map(|e| (e.seq, e.kind))
    }

    fn slot_mut(&mut self, slot: Slot) -> &mut Effects {
        if slot as usize == self.effects.len() {
            self.effects.push(Effects::NONE);
        }
        &mut self.effects[slot as usize]
    }
}

/// The last entry number of a dump taken before the run: later entries are the run's.
pub fn last_seq(dump: &Dump) -> i64 {
    dump.entries.iter().map(|e| e.seq).max().unwrap_or(0)
}

/// A dump's entries after `first_new`, with their positions, each with its transfer id
/// to number.
fn entries_after(
    entries: &[Entry],
    first_new: i64,
) -> impl Iterator<Item = (&str, &str, (u32, &Entry))> {
    (0..)
        .zip(entries)
        .filter(move |(_, e)| e.seq > first_new)
        .map(|(position, e)| {
            (
                e.transfer_id.as_str(),
                e.transfer_id.as_str(),
                (position, e),
            )
        })
}

/// Every transfer id the run's entries name, with its effects. `ids` must be empty: the
/// entries' ids take the first slots.
pub fn effects_of<'a>(books: &'a Books, ids: &mut Numbering<&'a str>) -> EffectsById<'a> {
    debug_assert!(ids.is_empty());
    let mut by_id = EffectsById {
        effects: Vec::with_capacity(books.external_after.entries.len()),
        external: &books.external_after.entries,
        ledger: &books.ledger_after.entries,
    };
    let external = entries_after(by_id.external, last_seq(&books.external_before));
    ids.number_with(external, |slot, (position, e)| {
        by_id.external_entry(slot, position, e);
    });
    let ledger = entries_after(by_id.ledger, last_seq(&books.ledger_before));
    ids.number_with(ledger, |slot, (position, e)| {
        by_id.ledger_entry(slot, position, e);
    });
    for record in &books.external_after.transfers {
        if record.status == TransferStatus::Tombstone {
            if let Some(i) = ids.find(record.transfer_id.as_str()) {
                if let Some(fx) = by_id.effects.get_mut(i as usize) {
                    fx.tombstoned = true;
                }
            }
        }
    }
    by_id
}

impl EffectsById<'_> {
    /// Adds the external side's entry at `position` to the effects of `slot`.
    fn external_entry(&mut self, slot: Slot, position: u32, e: &Entry) {
        let amount = e.amount_cents.get();
        let first_debit = self
            .effects
            .get(slot as usize)
            .map_or(NO_ENTRY, |fx| fx.first_debit);
        let differs = e.kind == EntryKind::Debit && differs(self.external, first_debit, e);
        let fx = self.slot_mut(slot);
        match e.kind {
            EntryKind::Debit => {
                fx.external_net += i128::from(amount);
                fx.debits += 1;
                fx.entries_differ |= differs;
                if fx.first_debit == NO_ENTRY {
                    fx.first_debit = position;
                }
            }
            EntryKind::Reversal => {
                fx.external_net -= i128::from(amount);
                fx.reversals += 1;
                if fx.first_reversal == NO_ENTRY {
                    fx.first_reversal = position;
                }
            }
            // A credit at the external side is not a move this system makes; count it as
            // the other direction of a debit so the books still balance in the checks.
            EntryKind::Credit => fx.external_net -= i128::from(amount),
        }
        fx.last_external = position;
    }

    /// Adds the ledger's entry at `position` to the effects of `slot`.
    fn ledger_entry(&mut self, slot: Slot, position: u32, e: &Entry) {
        let amount = e.amount_cents.get();
        let first_credit = self
            .effects
            .get(slot as usize)
            .map_or(NO_ENTRY, |fx| fx.first_credit);
        let differs = e.kind == EntryKind::Credit && differs(self.ledger, first_credit, e);
        let fx = self.slot_mut(slot);
        match e.kind {
            EntryKind::Credit => {
                fx.ledger_net += i128::from(amount);
                fx.credits += 1;
                fx.entries_differ |= differs;
                if fx.first_credit == NO_ENTRY {
                    fx.first_credit = position;
                }
            }
            EntryKind::Debit | EntryKind::Reversal => fx.ledger_net -= i128::from(amount),
        }
    }
}

/// Whether `e` names another account or amount than the entry at `first` (none: no).
fn differs(entries: &[Entry], first: u32, e: &Entry) -> bool {
    entries.get(first as usize).is_some_and(|f| {
        (f.account_id.as_str(), f.amount_cents) != (e.account_id.as_str(), e.amount_cents)
    })
}

/// Σ balances of a dump.
pub fn total(dump: &Dump) -> u64 {
    dump.accounts.iter().map(|a| a.balance_cents.get()).sum()
}
