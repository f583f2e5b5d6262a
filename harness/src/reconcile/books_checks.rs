//! The invariants the books decide: where the money is, and per transfer id whether the
//! effects are whole, on the right accounts, single, and belong to a request.

use super::effects::total;
use super::ids::Slot;
use super::names::{InvariantName, ViolationClass};
use super::{judged, Context, Invariant, Money, Violation};
use rustc_hash::{FxHashMap, FxHashSet};
use service::contract::{reasons, EntryKind, Saga, SagaState};

/// The slots of the sagas not final at the end.
fn open_sagas(cx: &Context<'_>) -> FxHashSet<Slot> {
    let sagas = cx.sagas.iter().flat_map(|d| d.sagas.iter());
    sagas
        .zip(&cx.requests.saga_slots)
        .filter(|(s, _)| !s.state.is_final())
        .map(|(_, &slot)| slot)
        .collect()
}

/// Where the money is: the totals before and after, and what sagas not final still hold,
/// so that `lost` means lost.
pub fn money(cx: &Context<'_>) -> Money {
    let Some(books) = cx.books else {
        return Money::default();
    };
    let initial = total(&books.external_before) + total(&books.ledger_before);
    let fin = total(&books.external_after) + total(&books.ledger_after);
    let in_flight = cx.sagas.map(|_| {
        let open = open_sagas(cx);
        let held: i128 = open
            .iter()
            .filter_map(|&slot| cx.effects.get(slot))
            .map(|fx| (fx.external_net - fx.ledger_net).max(0))
            .sum();
        (u64::try_from(held).unwrap_or(u64::MAX), open.len() as u64)
    });
    let held = in_flight.map_or(0, |(cents, _)| cents);
    Money {
        initial_total_cents: Some(initial),
        final_total_cents: Some(fin),
        created_cents: Some(fin.saturating_sub(initial)),
        lost_cents: Some(initial.saturating_sub(fin).saturating_sub(held)),
        in_flight_cents: in_flight.map(|(cents, _)| cents),
        in_flight_sagas: in_flight.map(|(_, count)| count),
    }
}

pub fn conservation(money: &Money) -> Invariant {
    let (created, lost) = (
        money.created_cents.unwrap_or(0),
        money.lost_cents.unwrap_or(0),
    );
    let in_flight = match (money.in_flight_cents, money.in_flight_sagas) {
        (Some(cents), Some(sagas)) if sagas > 0 => {
            format!("; {cents} held by {sagas} sagas not final (not counted as lost)")
        }
        _ => String::new(),
    };
    Invariant {
        name: InvariantName::Conservation,
        holds: Some(created == 0 && lost == 0),
        violations: u64::from(created != 0 || lost != 0),
        detail: format!(
            "initial {}, final {} (Σ external + Σ ledger): created {created}, lost {lost}{in_flight}",
            money.initial_total_cents.unwrap_or(0),
            money.final_total_cents.unwrap_or(0),
        ),
    }
}

/// Per transfer id, what left the external side arrived in the ledger. Sagas not final are
/// left to `convergence`: their money is in flight, not lost.
pub fn atomicity(cx: &Context<'_>) -> (Invariant, Vec<Violation>) {
    let open = open_sagas(cx);
    let mut found = Vec::new();
    for (slot, fx) in cx.effects.iter() {
        if fx.external_net == fx.ledger_net || open.contains(&slot) {
            continue;
        }
        let class = if fx.ledger_net == 0 {
            ViolationClass::LostDebit
        } else if fx.external_net == 0 && fx.reversals > 0 {
            ViolationClass::ReversalAfterCredit
        } else if fx.external_net == 0 {
            ViolationClass::CreditWithoutDebit
        } else {
            ViolationClass::UnequalEffects
        };
        let detail = format!(
            "external net debit {} ≠ ledger net credit {}",
            fx.external_net, fx.ledger_net
        );
        found.push(Violation::of_transfer(
            class,
            cx.ids.value(slot),
            fx,
            detail,
        ));
    }
    let detail = format!("{} transfer ids with an effect", cx.effects.len());
    (judged(InvariantName::Atomicity, &found, detail), found)
}

/// Each debit from the request's external account and each credit to that user's ledger
/// account, for the requested amount.
pub fn accounts_and_amounts(cx: &Context<'_>) -> (Invariant, Vec<Violation>) {
    let mut found = Vec::new();
    let mut checked = 0u64;
    for (slot, fx) in cx.effects.iter() {
        let Some(asked) = cx.requests.asked(slot) else {
            continue;
        };
        let id = cx.ids.value(slot);
        checked += 1;
        let expected = [
            cx.effects.debit(fx).map(|d| (d, asked.external_account_id)),
            cx.effects.credit(fx).map(|c| (c, asked.user_id)),
        ];
        let wrong_account = expected
            .iter()
            .flatten()
            .find(|((account, _), wanted)| account != wanted);
        let wrong_amount = expected
            .iter()
            .flatten()
            .find(|((_, amount), _)| *amount != asked.amount_cents);
        if let Some(((account, _), _)) = wrong_account {
            let detail = format!(
                "an entry on {account}; the request named external account {} and user {}",
                asked.external_account_id, asked.user_id
            );
            found.push(Violation::of_transfer(
                ViolationClass::WrongAccount,
                id,
                fx,
                detail,
            ));
        }
        if let Some(((_, amount), _)) = wrong_amount {
            let detail = format!(
                "an entry of {amount} cents; the request asked for {}",
                asked.amount_cents
            );
            found.push(Violation::of_transfer(
                ViolationClass::AmountMismatch,
                id,
                fx,
                detail,
            ));
        } else if fx.entries_differ && wrong_account.is_none() {
            let detail = "the entries of one kind name different accounts or amounts".to_owned();
            found.push(Violation::of_transfer(
                ViolationClass::AmountMismatch,
                id,
                fx,
                detail,
            ));
        }
    }
    let detail = format!("{checked} transfer ids tied to a request checked");
    (
        judged(InvariantName::AccountsAndAmounts, &found, detail),
        found,
    )
}

/// Replays the external entries in commit order from the opening balances.
pub fn no_overdraft(cx: &Context<'_>) -> (Invariant, Vec<Violation>) {
    let Some(books) = cx.books else {
        return (
            super::unknown(InvariantName::NoOverdraft, "no books"),
            Vec::new(),
        );
    };
    let mut balances: FxHashMap<&str, i128> = books
        .external_before
        .accounts
        .iter()
        .map(|a| (a.account_id.as_str(), i128::from(a.balance_cents.get())))
        .collect();
    let first_new = super::effects::last_seq(&books.external_before);
    let mut found = Vec::new();
    for e in books
        .external_after
        .entries
        .iter()
        .filter(|e| e.seq > first_new)
    {
        let balance = balances.entry(e.account_id.as_str()).or_insert(0);
        match e.kind {
            EntryKind::Debit => *balance -= i128::from(e.amount_cents.get()),
            EntryKind::Reversal | EntryKind::Credit => *balance += i128::from(e.amount_cents.get()),
        }
        if *balance < 0 {
            let fx = cx.effects.of(cx.ids.find(e.transfer_id.as_str()));
            let detail = format!(
                "account {} at {} after entry {}",
                e.account_id, balance, e.seq
            );
            found.push(Violation::of_transfer(
                ViolationClass::Overdraft,
                &e.transfer_id,
                fx,
                detail,
            ));
        }
    }
    let detail = format!("{} negative balances in replay", found.len());
    (judged(InvariantName::NoOverdraft, &found, detail), found)
}

/// At most one debit, one reversal and one credit per transfer id.
pub fn no_duplicate_effect(cx: &Context<'_>) -> (Invariant, Vec<Violation>) {
    let mut found = Vec::new();
    for (slot, fx) in cx.effects.iter() {
        for (count, class) in [
            (fx.debits, ViolationClass::DoubleDebit),
            (fx.reversals, ViolationClass::DoubleReversal),
            (fx.credits, ViolationClass::DoubleCredit),
        ] {
            if count > 1 {
                found.push(Violation::of_transfer(
                    class,
                    cx.ids.value(slot),
                    fx,
                    format!("{count} entries"),
                ));
            }
        }
    }
    let detail = "at most one debit, reversal and credit per id".to_owned();
    (
        judged(InvariantName::NoDuplicateEffect, &found, detail),
        found,
    )
}

fn aborted(saga: &Saga) -> bool {
    saga.state == SagaState::Failed && saga.reason.as_deref() == Some(reasons::ABORTED)
}

/// Every effect belongs to a transfer a request produced, and came in an order that makes
/// sense: no reversal before its debit, no debit after its transfer was aborted.
pub fn no_orphan_effect(cx: &Context<'_>) -> (Invariant, Vec<Violation>) {
    let mut found = Vec::new();
    for (slot, fx) in cx.effects.iter() {
        let id = cx.ids.value(slot);
        if cx.requests.asked(slot).is_none() {
            let detail = "no request of the run produced this transfer id".to_owned();
            found.push(Violation::of_transfer(
                ViolationClass::OrphanEntry,
                id,
                fx,
                detail,
            ));
        }
        let first_debit = cx.effects.first_debit_seq(fx);
        let reversal_first = match (cx.effects.first_reversal_seq(fx), first_debit) {
            (Some(_), None) => true,
            (Some(reversal), Some(debit)) => reversal < debit,
            (None, _) => false,
        };
        if reversal_first {
            let detail = "a reversal entry with no debit before it".to_owned();
            found.push(Violation::of_transfer(
                ViolationClass::ReversalWithoutDebit,
                id,
                fx,
                detail,
            ));
        }
        let debit_last = matches!(cx.effects.last_external(fx), Some((_, EntryKind::Debit)));
        let was_aborted = cx.saga(slot).is_some_and(aborted);
        if fx.debits > 0 && (fx.tombstoned || (was_aborted && debit_last)) {
            let detail = if fx.tombstoned {
                "debited although the external side holds a tombstone for it".to_owned()
            } else {
                "the saga was aborted, and a debit came after any reversal".to_owned()
            };
            found.push(Violation::of_transfer(
                ViolationClass::LateOriginal,
                id,
                fx,
                detail,
            ));
        }
    }
    let detail = format!("{} transfer ids with an effect", cx.effects.len());
    (judged(InvariantName::NoOrphanEffect, &found, detail), found)
}
