//! The invariants that set the books against what the client was told: one transfer per
//! idempotency key, every answer's promise, and what became of the answers that promised
//! nothing yet.

use super::ids::Slot;
use super::names::{InvariantName, ViolationClass};
use super::{judged, Context, Indeterminate, Invariant, Violation};
use crate::history::Outcome;
use rustc_hash::FxHashSet;
use service::contract::ClientStatus;

/// Per user and key, one transfer at most, and money moved once.
pub fn idempotency(cx: &Context<'_>) -> (Invariant, Vec<Violation>) {
    let mut found = Vec::new();
    for (slot, request) in (0..).zip(&cx.requests.by_key) {
        if request.count() < 2 {
            continue;
        }
        let (user, key) = cx.requests.key(slot);
        let slots: Vec<Slot> = request.slots().collect();
        let moved: Vec<Slot> = slots
            .iter()
            .copied()
            .filter(|&slot| {
                cx.effects
                    .get(slot)
                    .is_some_and(|fx| fx.external_net > 0 || fx.ledger_net > 0)
            })
            .collect();
        let amounts: Vec<String> = slots
            .iter()
            .map(|&slot| {
                let fx = cx.effects.of(Some(slot));
                format!(
                    "{}: external {} ledger {}",
                    cx.ids.value(slot),
                    fx.external_net,
                    fx.ledger_net
                )
            })
            .collect();
        let class = if moved.len() > 1 {
            ViolationClass::DoubleCharge
        } else {
            ViolationClass::SplitKey
        };
        let first = moved.first().copied().unwrap_or(slots[0]);
        let mut violation = Violation::of_transfer(
            class,
            cx.ids.value(first),
            cx.effects.of(Some(first)),
            format!(
                "user {user}, key {key}: {} transfers ({}), {} moved money; asked {} cents once",
                slots.len(),
                amounts.join("; "),
                moved.len(),
                request.amount_cents
            ),
        );
        violation.key = Some(key.to_owned());
        violation.related = slots
            .iter()
            .filter(|&&slot| slot != first)
            .map(|&slot| cx.ids.value(slot).to_owned())
            .collect();
        found.push(violation);
    }
    let detail = format!("{} idempotency keys checked", cx.requests.by_key.len());
    (judged(InvariantName::Idempotency, &found, detail), found)
}

/// Every definite answer kept its promise, and every transfer id an answer named is still
/// known to the coordinator (when it keeps a saga log).
pub fn client_contract(cx: &Context<'_>) -> (Invariant, Vec<Violation>) {
    // A coordinator that keeps no saga log (an empty one) is not held to it.
    let logged = cx.log_kept;
    let mut found = Vec::new();
    let mut reported: FxHashSet<(&str, ViolationClass)> = FxHashSet::default();
    let mut checked = 0u64;
    let history = cx.evidence.history.iter().zip(&cx.requests.history_slots);
    for (record, &slot) in history {
        let (Some(id), Some(slot)) = (record.transfer_id.as_deref(), slot) else {
            continue;
        };
        checked += 1;
        let fx = cx.effects.of(Some(slot));
        let amount = i128::from(record.amount_cents);
        let broken = match record.outcome {
            Outcome::Completed => (fx.external_net != amount || fx.ledger_net != amount)
                .then(|| "answered completed, but the books do not hold both sides".to_owned()),
            Outcome::Failed => (fx.external_net != 0 || fx.ledger_net != 0)
                .then(|| "answered failed, but a net effect remains".to_owned()),
            _ => None,
        };
        if let Some(detail) = broken {
            if reported.insert((id, ViolationClass::ContractBroken)) {
                found.push(Violation::of_transfer(
                    ViolationClass::ContractBroken,
                    id,
                    fx,
                    detail,
                ));
            }
        }
        if logged && cx.saga(slot).is_none() && reported.insert((id, ViolationClass::LostTransfer))
        {
            let detail = format!(
                "answered {}, but the saga log does not hold the transfer",
                record.outcome.as_str()
            );
            found.push(Violation::of_transfer(
                ViolationClass::LostTransfer,
                id,
                fx,
                detail,
            ));
        }
    }
    let (shed_only, shed_found) = shed_promises(cx);
    found.extend(shed_found);
    let detail = format!(
        "{checked} answers with a transfer id checked; {shed_only} requests only ever shed (overloaded) checked for no effect"
    );
    (judged(InvariantName::ClientContract, &found, detail), found)
}

/// A 503 (`shed`) promises that nothing was written. A request (a user's key) whose every
/// answer was 503 must have become no transfer: none in the saga log, no money moved. A
/// request with another answer too is judged by that one (a retry shed after its first
/// attempt moved money is the first attempt's business). Returns how many requests were
/// answered only 503, and their violations.
fn shed_promises(cx: &Context<'_>) -> (u64, Vec<Violation>) {
    const UNSEEN: u8 = 0;
    const SHED: u8 = 1;
    const OTHER: u8 = 2;
    let mut answers = vec![UNSEEN; cx.requests.by_key.len()];
    for (record, &key) in cx.evidence.history.iter().zip(&cx.requests.history_keys) {
        let seen = &mut answers[key as usize];
        match record.outcome {
            // Never sent: no answer, no promise.
            Outcome::Overflow => {}
            Outcome::Shed if *seen != OTHER => *seen = SHED,
            Outcome::Shed => {}
            _ => *seen = OTHER,
        }
    }
    let mut found = Vec::new();
    let mut shed_only = 0u64;
    for (key, _) in (0..).zip(&answers).filter(|(_, &a)| a == SHED) {
        shed_only += 1;
        let request = &cx.requests.by_key[key as usize];
        let (user, idempotency_key) = cx.requests.key(key);
        for slot in request.slots() {
            let fx = cx.effects.of(Some(slot));
            let moved = fx.debits + fx.reversals + fx.credits > 0;
            let logged = cx.saga(slot).map(|s| s.state.as_str());
            let detail = match (moved, logged) {
                (true, _) => format!(
                    "user {user}, key {idempotency_key}: every answer was 503 (nothing written), yet money moved: external net debit {}, ledger net credit {} ({} debits, {} reversals, {} credits)",
                    fx.external_net, fx.ledger_net, fx.debits, fx.reversals, fx.credits
                ),
                (false, Some(state)) => format!(
                    "user {user}, key {idempotency_key}: every answer was 503 (nothing written), yet the saga log holds the transfer ({state})"
                ),
                (false, None) => continue,
            };
            let mut violation = Violation::of_transfer(
                ViolationClass::ShedWithEffect,
                cx.ids.value(slot),
                fx,
                detail,
            );
            violation.key = Some(idempotency_key.to_owned());
            found.push(violation);
        }
    }
    (shed_only, found)
}

/// What became of every answer that promised nothing yet (pending, a timeout, a transport
/// error), the Jepsen way: the coordinator's final word on the transfer after the run,
/// judged against the books.
pub fn indeterminate_outcomes(cx: &Context<'_>) -> (Invariant, Vec<Violation>, Indeterminate) {
    let mut counts = Indeterminate {
        operations: cx.evidence.resolutions.len() as u64,
        ..Indeterminate::default()
    };
    let mut found = Vec::new();
    let mut judged_ids: FxHashSet<&str> = FxHashSet::default();
    for r in &cx.evidence.resolutions {
        let (Some(id), true) = (r.transfer_id.as_deref(), r.asked) else {
            counts.never_known += 1;
            continue;
        };
        let slot = cx.ids.find(id);
        let fx = cx.effects.of(slot);
        let amount = slot
            .and_then(|slot| cx.requests.asked(slot))
            .map_or(0, |asked| i128::from(asked.amount_cents));
        let (kept, detail) = match r.final_status {
            None => {
                counts.never_known += 1;
                if judged_ids.insert(id) {
                    let detail = "the coordinator does not know this transfer after the run";
                    found.push(Violation::of_transfer(
                        ViolationClass::LostTransfer,
                        id,
                        fx,
                        detail.to_owned(),
                    ));
                }
                continue;
            }
            Some(ClientStatus::Pending) => {
                counts.never_known += 1;
                continue;
            }
            Some(ClientStatus::Completed) => {
                counts.resolved_completed += 1;
                (
                    fx.external_net == amount && fx.ledger_net == amount,
                    "became completed, but the books do not hold both sides",
                )
            }
            Some(ClientStatus::Failed) => {
                counts.resolved_failed += 1;
                (
                    fx.external_net == 0 && fx.ledger_net == 0,
                    "became failed, but a net effect remains",
                )
            }
        };
        if !kept && cx.books.is_some() && judged_ids.insert(id) {
            found.push(Violation::of_transfer(
                ViolationClass::WrongFinalStatus,
                id,
                fx,
                format!("answered {}; {detail}", r.outcome.as_str()),
            ));
        }
    }
    let detail = format!(
        "{} indeterminate answers: {} became completed, {} failed, {} never known",
        counts.operations, counts.resolved_completed, counts.resolved_failed, counts.never_known
    );
    let mut invariant = judged(InvariantName::IndeterminateOutcomes, &found, detail);
    if cx.books.is_none() {
        invariant.holds = None;
    }
    (invariant, found, counts)
}
