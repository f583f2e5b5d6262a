//! The books read a second time, once nothing may move money any more: after the services
//! stopped (a system the harness started) or after a quiet period (a target). The verdict
//! rests on the final read; what changed after it (`BooksChange`, saved in `books.json`) is
//! money that moved when every saga was already final — a reversal queue still working, a
//! retry that woke late — and each transfer it touched is a `moved_after_final_read`.

use super::names::{InvariantName, ViolationClass};
use super::{judged, unknown, Context, Invariant, Violation};
use rustc_hash::FxHashMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use service::contract::{Dump, Entry, EntryKind};
use std::collections::BTreeMap;

/// The second read, as `books.json` keeps it: what it found changed since the final read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ReadAgain {
    /// When it was read: after the services stopped, or after a quiet period.
    pub when: String,
    /// Why the books could not be read again (the check is then unknown).
    pub error: Option<String>,
    pub external: BooksChange,
    pub ledger: BooksChange,
}

impl ReadAgain {
    /// The second read found `external` and `ledger`, against the final read in `books`.
    pub fn of(when: String, books: &super::Books, external: &Dump, ledger: &Dump) -> ReadAgain {
        ReadAgain {
            when,
            error: None,
            external: BooksChange::between(&books.external_after, external),
            ledger: BooksChange::between(&books.ledger_after, ledger),
        }
    }

    /// The books could not be read again, for `why`.
    pub fn failed(when: String, why: String) -> ReadAgain {
        ReadAgain {
            when,
            error: Some(why),
            external: BooksChange::default(),
            ledger: BooksChange::default(),
        }
    }
}

/// What one institution's books hold differently at the second read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct BooksChange {
    /// Entries the second read holds that the final read did not (or held otherwise).
    pub entries_added: Vec<Entry>,
    /// Entries of the final read the second read no longer holds (or holds otherwise).
    pub entries_gone: Vec<Entry>,
    /// Accounts whose balance differs.
    pub balances_changed: Vec<BalanceChange>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct BalanceChange {
    pub account_id: String,
    /// None: the account was not there.
    pub final_cents: Option<u64>,
    pub again_cents: Option<u64>,
}

impl BooksChange {
    /// What `again` holds differently from `last`, entry by entry (by sequence number) and
    /// balance by balance.
    pub fn between(last: &Dump, again: &Dump) -> BooksChange {
        let by_seq = |dump: &Dump| -> FxHashMap<i64, usize> {
            (0..).zip(&dump.entries).map(|(i, e)| (e.seq, i)).collect()
        };
        let (last_seq, again_seq) = (by_seq(last), by_seq(again));
        let differs = |entry: &Entry, other: &Dump, index: &FxHashMap<i64, usize>| {
            index
                .get(&entry.seq)
                .is_none_or(|&i| other.entries[i] != *entry)
        };
        let (last_balances, again_balances) = (balances(last), balances(again));
        let mut names: Vec<&str> = last_balances.keys().copied().collect();
        names.extend(
            again_balances
                .keys()
                .filter(|a| !last_balances.contains_key(*a)),
        );
        BooksChange {
            entries_added: again
                .entries
                .iter()
                .filter(|e| differs(e, last, &last_seq))
                .cloned()
                .collect(),
            entries_gone: last
                .entries
                .iter()
                .filter(|e| differs(e, again, &again_seq))
                .cloned()
                .collect(),
            balances_changed: names
                .into_iter()
                .filter(|a| last_balances.get(a) != again_balances.get(a))
                .map(|a| BalanceChange {
                    account_id: a.to_owned(),
                    final_cents: last_balances.get(a).copied(),
                    again_cents: again_balances.get(a).copied(),
                })
                .collect(),
        }
    }

    /// Whether the second read found nothing changed.
    pub fn is_empty(&self) -> bool {
        self.entries_added.is_empty()
            && self.entries_gone.is_empty()
            && self.balances_changed.is_empty()
    }
}

/// Each account's balance.
fn balances(dump: &Dump) -> BTreeMap<&str, u64> {
    dump.accounts
        .iter()
        .map(|a| (a.account_id.as_str(), a.balance_cents.get()))
        .collect()
}

/// One transfer's change after the final read.
#[derive(Default)]
struct Moved {
    external_net_debit: i128,
    ledger_net_credit: i128,
    what: Vec<String>,
}

/// An entry's effect on its account's balance, in cents.
fn signed(entry: &Entry) -> i128 {
    let amount = i128::from(entry.amount_cents.get());
    match entry.kind {
        EntryKind::Debit => -amount,
        EntryKind::Reversal | EntryKind::Credit => amount,
    }
}

/// The books read again equal the final books: no money moved after the verdict's read.
pub fn books_settled(cx: &Context<'_>) -> (Invariant, Vec<Violation>) {
    let name = InvariantName::BooksSettled;
    let Some(books) = cx.books else {
        return (
            unknown(name, "the institutions' dumps are not reachable"),
            Vec::new(),
        );
    };
    let Some(again) = &books.read_again else {
        let why = "the books were not read again after the final read (a run folder written before this check)";
        return (unknown(name, why), Vec::new());
    };
    if let Some(error) = &again.error {
        let why = format!("the books could not be read again {}: {error}", again.when);
        return (unknown(name, &why), Vec::new());
    }
    let mut moved: BTreeMap<&str, Moved> = BTreeMap::new();
    // Per account, what the changed entries explain of its balance's change.
    let mut explained: FxHashMap<&str, i128> = FxHashMap::default();
    let sides = [
        ("external", &again.external, true),
        ("ledger", &again.ledger, false),
    ];
    for (side, change, external) in sides {
        let entries = change
            .entries_added
            .iter()
            .map(|e| (e, 1, "appeared"))
            .chain(change.entries_gone.iter().map(|e| (e, -1, "vanished")));
        for (entry, sign, how) in entries {
            let effect = sign * signed(entry);
            *explained.entry(entry.account_id.as_str()).or_default() += effect;
            let m = moved.entry(entry.transfer_id.as_str()).or_default();
            if external {
                m.external_net_debit -= effect;
            } else {
                m.ledger_net_credit += effect;
            }
            m.what.push(format!(
                "{side} {} of {} on {} {how} (entry {})",
                entry.kind.as_str(),
                entry.amount_cents.get(),
                entry.account_id,
                entry.seq
            ));
        }
    }
    let mut found: Vec<Violation> = moved
        .into_iter()
        .map(|(id, m)| Violation {
            invariant: name,
            class: ViolationClass::MovedAfterFinalRead,
            transfer_id: Some(id.to_owned()),
            key: None,
            related: Vec::new(),
            external_net_debit_cents: m.external_net_debit,
            ledger_net_credit_cents: m.ledger_net_credit,
            detail: format!("{}: {}", again.when, m.what.join("; ")),
        })
        .collect();
    // A balance that moved with no entry to show for it names no transfer.
    let unexplained: Vec<String> = [&again.external, &again.ledger]
        .into_iter()
        .flat_map(|c| c.balances_changed.iter())
        .filter(|b| {
            let change =
                i128::from(b.again_cents.unwrap_or(0)) - i128::from(b.final_cents.unwrap_or(0));
            explained.get(b.account_id.as_str()).copied().unwrap_or(0) != change
        })
        .map(|b| {
            let cents = |c: Option<u64>| c.map_or("absent".to_owned(), |c| c.to_string());
            format!(
                "{}: {} → {}",
                b.account_id,
                cents(b.final_cents),
                cents(b.again_cents)
            )
        })
        .collect();
    if !unexplained.is_empty() {
        found.push(Violation::of_run(
            ViolationClass::MovedAfterFinalRead,
            format!(
                "{}: balances changed with no entry to show for it: {}",
                again.when,
                unexplained.join(", ")
            ),
        ));
    }
    let detail = if again.external.is_empty() && again.ledger.is_empty() {
        format!("the books read again {} equal the final read", again.when)
    } else {
        format!(
            "read again {}: {} entries appeared, {} vanished, {} balances changed",
            again.when,
            again.external.entries_added.len() + again.ledger.entries_added.len(),
            again.external.entries_gone.len() + again.ledger.entries_gone.len(),
            again.external.balances_changed.len() + again.ledger.balances_changed.len()
        )
    };
    (judged(name, &found, detail), found)
}
