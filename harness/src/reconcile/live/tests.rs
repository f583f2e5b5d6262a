//! The live reconciler against the whole-run reconciliation, on hand-built runs holding
//! every class of violation: fed fact by fact, it finds the same violations.

use super::*;
use crate::history::Outcome;
use crate::reconcile::tests::{clean, World};
use crate::reconcile::{reconcile, Evidence, ViolationClass};
use service::contract::{ClientStatus, SagaState};

/// Each step feeds this many facts of each kind and lets this much time pass.
const STEP_MS: u64 = 10;
/// Requests quiet for this long (and final) are closed.
const QUIET_MS: u64 = 100;
const QUIET: Quiet = Quiet {
    done_ms: QUIET_MS,
    open_ms: QUIET_MS,
};

/// The run's facts fed `per_step` of each kind at a time, the closable requests judged after
/// each step, and the rest judged at the end.
fn live_verdict(evidence: &Evidence, per_step: usize) -> (Reconciliation, LiveCounts) {
    let books = evidence.books.as_ref().expect("books");
    let mut live = Live::new(QUIET, &books.external_before);
    let design = "saga";
    let (mut history, mut sagas) = (evidence.history.iter(), sagas_of(evidence).iter());
    let mut external = books.external_after.entries.iter();
    let mut ledger = books.ledger_after.entries.iter();
    // A tombstone is fed with the first entry of its transfer, as it is written with it.
    let mut records: Vec<&TransferRecord> = books.external_after.transfers.iter().collect();
    let resolutions_of = |part: &Part| -> Vec<Resolution> {
        evidence
            .resolutions
            .iter()
            .filter(|r| {
                part.history
                    .iter()
                    .any(|h| (h.user_id.as_str(), h.key.as_str()) == (&r.user_id, &r.key))
            })
            .cloned()
            .collect()
    };
    let mut now_ms = 0;
    loop {
        now_ms += STEP_MS;
        let take = |it: &mut dyn Iterator<Item = &Entry>| -> Vec<Entry> {
            it.take(per_step).cloned().collect()
        };
        let fed: Vec<HistoryRecord> = history.by_ref().take(per_step).cloned().collect();
        let logged: Vec<Saga> = sagas.by_ref().take(per_step).cloned().collect();
        let (outside, inside) = (take(&mut external), take(&mut ledger));
        let done = fed.is_empty() && logged.is_empty() && outside.is_empty() && inside.is_empty();
        let (tombstones, rest): (Vec<&TransferRecord>, Vec<&TransferRecord>) = records
            .into_iter()
            .partition(|t| done || outside.iter().any(|e| e.transfer_id == t.transfer_id));
        records = rest;
        let tombstones = tombstones.into_iter().cloned().collect();
        for record in fed {
            live.record(record, false, now_ms);
        }
        live.sagas(design, logged, now_ms);
        live.entries(Side::Ledger, inside, now_ms);
        live.entries(Side::External, outside, now_ms);
        live.transfer_records(tombstones, now_ms);
        let part = live.closable(now_ms);
        if !part.is_empty() {
            let resolutions = resolutions_of(&part);
            live.judge(part, resolutions);
        }
        if done {
            break;
        }
    }
    let part = live.remaining(now_ms);
    let resolutions = resolutions_of(&part);
    let counts = live.counts;
    let ending = Ending {
        external_before: books.external_before.clone(),
        ledger_before: books.ledger_before.clone(),
        external_accounts: books.external_after.accounts.clone(),
        ledger_accounts: books.ledger_after.accounts.clone(),
        convergence: evidence.convergence.clone(),
        samples: evidence.samples.clone(),
        read_again: books.read_again.clone(),
    };
    (live.finish(part, resolutions, ending), counts)
}

fn sagas_of(evidence: &Evidence) -> &[Saga] {
    evidence
        .convergence
        .sagas
        .as_ref()
        .map_or(&[][..], |d| d.sagas.as_slice())
}

/// What both verdicts must agree on.
fn verdict(r: &Reconciliation) -> impl PartialEq + std::fmt::Debug {
    let violations: Vec<_> = r
        .violations
        .iter()
        .map(|v| {
            (
                v.class,
                v.transfer_id.clone(),
                v.key.clone(),
                v.related.clone(),
                v.external_net_debit_cents,
                v.ledger_net_credit_cents,
            )
        })
        .collect();
    let invariants: Vec<_> = r
        .invariants
        .iter()
        .map(|i| (i.name, i.holds, i.violations, i.detail.clone()))
        .collect();
    (
        violations,
        invariants,
        r.anomalies.clone(),
        r.money.clone(),
        r.indeterminate.clone(),
    )
}

/// A run holding a violation of nearly every class, among transfers done right.
fn troubled() -> World {
    let mut w = clean();
    for op in 20..60u64 {
        let id = format!("t-{op}");
        w.completed(op, &id, (op % 3) as u32, 10 + op);
    }
    // A debit nobody credited, answered failed.
    w.debit("t-9", 0, 100)
        .answer(9, 0, 100, Outcome::Failed, Some("t-9"))
        .saga("t-9", 9, 0, 100, SagaState::Reversed);
    // An overdraft.
    w.completed(8, "t-8", 1, OPENING_PLUS);
    // A double charge: a retry became a second transfer.
    w.completed(7, "t-7", 0, 70);
    w.debit("t-7b", 0, 70)
        .credit("t-7b", 0, 70)
        .saga("t-7b", 7, 0, 70, SagaState::Completed);
    let mut retry = w.history.last().cloned().expect("an answer");
    retry.attempt = 1;
    retry.transfer_id = Some("t-7b".into());
    w.history.push(retry);
    // An orphan, a reversal first, a late original after a tombstone.
    w.debit("t-ghost", 0, 10).credit("t-ghost", 0, 10);
    w.reverse("t-6", 1, 60)
        .answer(6, 1, 60, Outcome::Error, None)
        .saga("t-6", 6, 1, 60, SagaState::Failed);
    w.tombstone("t-5")
        .debit("t-5", 2, 50)
        .answer(5, 2, 50, Outcome::Error, None)
        .saga("t-5", 5, 2, 50, SagaState::Failed);
    // An indeterminate answer that resolved to what the books deny, and a lost transfer.
    w.debit("t-4", 0, 40)
        .answer(4, 0, 40, Outcome::Pending, Some("t-4"))
        .saga("t-4", 4, 0, 40, SagaState::Reversed)
        .resolved(4, 0, "t-4", Some(ClientStatus::Completed));
    w.debit("t-3", 2, 30)
        .credit("t-3", 2, 30)
        .answer(3, 2, 30, Outcome::Completed, Some("t-3"));
    w
}

/// Enough to overdraw an account opened with `OPENING`.
const OPENING_PLUS: u64 = 10_001;

#[test]
fn fed_fact_by_fact_the_live_verdict_is_the_whole_runs() {
    let evidence = troubled().evidence();
    let whole = reconcile(&evidence);
    for class in [
        ViolationClass::LostDebit,
        ViolationClass::Overdraft,
        ViolationClass::DoubleCharge,
        ViolationClass::OrphanEntry,
        ViolationClass::ReversalWithoutDebit,
        ViolationClass::LateOriginal,
        ViolationClass::WrongFinalStatus,
        ViolationClass::LostTransfer,
    ] {
        assert!(
            whole.anomalies.contains_key(&class),
            "{class}: {:?}",
            whole.anomalies
        );
    }
    for per_step in [1, 3, 1000] {
        let (live, counts) = live_verdict(&evidence, per_step);
        assert_eq!(counts.late_facts, 0, "{per_step} facts a step");
        assert_eq!(verdict(&live), verdict(&whole), "{per_step} facts a step");
        if per_step < 1000 {
            assert!(counts.requests_closed > 10, "{counts:?}");
        }
    }
}

/// One transfer done right, fed and judged at `QUIET_MS`; its credit, to feed again.
fn one_judged() -> (Live, Vec<Entry>) {
    let mut w = World::new();
    w.completed(0, "t-0", 0, 500);
    let evidence = w.evidence();
    let books = evidence.books.as_ref().expect("books");
    let mut live = Live::new(QUIET, &books.external_before);
    for record in evidence.history.clone() {
        live.record(record, false, 0);
    }
    live.sagas("saga", sagas_of(&evidence).to_vec(), 0);
    live.entries(Side::External, books.external_after.entries.clone(), 0);
    live.entries(Side::Ledger, books.ledger_after.entries.clone(), 0);
    let part = live.closable(QUIET_MS);
    assert!(!part.is_empty() && part.unanswered().is_empty());
    live.judge(part, Vec::new());
    assert_eq!(live.counts.late_facts, 0);
    (live, books.ledger_after.entries.clone())
}

#[test]
fn a_fact_for_a_transfer_already_judged_is_counted_late() {
    let (mut live, credit) = one_judged();
    // The credit again, after the transfer was judged.
    live.entries(Side::Ledger, credit, QUIET_MS + 1);
    assert_eq!(live.counts.late_facts, 1);
    assert!(live.late()[0].contains("t-0"), "{:?}", live.late());
}

#[test]
fn a_fact_for_a_transfer_judged_long_ago_comes_as_a_request_no_answer_names() {
    let (mut live, credit) = one_judged();
    // Long after it was forgotten, the credit again: an entry alone, listed for the folder.
    let much_later = QUIET_MS + 10 * KEEP_CLOSED_MS;
    for now_ms in [much_later / 2, much_later] {
        let part = live.closable(now_ms);
        live.judge(part, Vec::new());
    }
    live.entries(Side::Ledger, credit, much_later);
    assert_eq!(live.counts.late_facts, 0);
    let part = live.closable(much_later + QUIET_MS);
    assert_eq!(part.unanswered().ids, ["t-0"]);
}
