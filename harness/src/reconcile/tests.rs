//! Every invariant holding and failing, on hand-built books, histories, saga logs,
//! resolutions and samples.

use super::*;
use crate::history::{HistoryRecord, Outcome};
use service::contract::{
    AccountBalance, ClientStatus, Dump, Entry, EntryKind, Saga, SagaState, TransferRecord,
    TransferStatus,
};
use service::ids::{AccountId, IdempotencyKey, TransferId, UserId};
use service::money::AmountCents;

pub(super) const OPENING: u64 = 10_000;
const USERS: u32 = 3;

/// Books, history, saga log and the rest, built one event at a time.
pub(super) struct World {
    before: (Dump, Dump),
    external: Dump,
    ledger: Dump,
    pub(super) history: Vec<HistoryRecord>,
    sagas: Vec<Saga>,
    resolutions: Vec<Resolution>,
    samples: Vec<Sample>,
    converged: bool,
    /// The books read again after the final read (None: the same as the final read).
    again: Option<(Dump, Dump)>,
}

fn dump(accounts: Vec<(String, u64)>) -> Dump {
    Dump {
        accounts: accounts
            .into_iter()
            .map(|(account_id, cents)| AccountBalance {
                account_id,
                balance_cents: AmountCents::new(cents),
            })
            .collect(),
        entries: Vec::new(),
        transfers: Vec::new(),
    }
}

fn account(n: u32) -> String {
    format!("a-{n}")
}

fn user(n: u32) -> String {
    format!("u-{n}")
}

impl World {
    pub(super) fn new() -> World {
        let external = dump((0..USERS).map(|n| (account(n), OPENING)).collect());
        let ledger = dump((0..USERS).map(|n| (user(n), 0)).collect());
        World {
            before: (external.clone(), ledger.clone()),
            external,
            ledger,
            history: Vec::new(),
            sagas: Vec::new(),
            resolutions: Vec::new(),
            samples: Vec::new(),
            converged: true,
            again: None,
        }
    }

    fn entry(dump: &mut Dump, id: &str, account: &str, kind: EntryKind, amount: u64) {
        let balance = dump
            .accounts
            .iter_mut()
            .find(|a| a.account_id == account)
            .expect("a seeded account");
        let before = i128::from(balance.balance_cents.get());
        let after = match kind {
            EntryKind::Debit => before - i128::from(amount),
            EntryKind::Reversal | EntryKind::Credit => before + i128::from(amount),
        };
        // A replayed overdraft is the point of one test: the stored balance stays at zero.
        balance.balance_cents = AmountCents::new(u64::try_from(after.max(0)).expect("fits"));
        let seq = dump.entries.len() as i64 + 1;
        dump.entries.push(Entry {
            seq,
            transfer_id: id.to_owned(),
            account_id: account.to_owned(),
            kind,
            amount_cents: AmountCents::new(amount),
            balance_after_cents: balance.balance_cents,
            at_ms: seq,
        });
    }

    pub(super) fn debit(&mut self, id: &str, n: u32, amount: u64) -> &mut Self {
        Self::entry(
            &mut self.external,
            id,
            &account(n),
            EntryKind::Debit,
            amount,
        );
        self
    }

    pub(super) fn reverse(&mut self, id: &str, n: u32, amount: u64) -> &mut Self {
        Self::entry(
            &mut self.external,
            id,
            &account(n),
            EntryKind::Reversal,
            amount,
        );
        self
    }

    pub(super) fn credit(&mut self, id: &str, n: u32, amount: u64) -> &mut Self {
        Self::entry(&mut self.ledger, id, &user(n), EntryKind::Credit, amount);
        self
    }

    pub(super) fn tombstone(&mut self, id: &str) -> &mut Self {
        self.external.transfers.push(TransferRecord {
            transfer_id: id.to_owned(),
            account_id: None,
            amount_cents: None,
            status: TransferStatus::Tombstone,
            reason: None,
        });
        self
    }

    /// The client's answer to operation `op` (key `k-op`).
    pub(super) fn answer(
        &mut self,
        op: u64,
        n: u32,
        amount: u64,
        outcome: Outcome,
        id: Option<&str>,
    ) -> &mut Self {
        self.history.push(HistoryRecord {
            op,
            attempt: 0,
            key: format!("k-{op}"),
            user_id: user(n),
            external_account_id: account(n),
            amount_cents: amount,
            scheduled_us: op,
            sent_us: Some(op),
            answered_us: Some(op + 1),
            latency_us: Some(1),
            outcome,
            jepsen_type: outcome.jepsen().to_owned(),
            http_status: None,
            error_kind: None,
            transfer_id: id.map(str::to_owned),
            reason: None,
            measured: true,
        });
        self
    }

    pub(super) fn saga(
        &mut self,
        id: &str,
        op: u64,
        n: u32,
        amount: u64,
        state: SagaState,
    ) -> &mut Self {
        self.sagas.push(Saga {
            transfer_id: TransferId::parse(id).expect("id"),
            user_id: UserId::parse(&user(n)).expect("id"),
            idempotency_key: IdempotencyKey::parse(&format!("k-{op}")).expect("key"),
            external_account_id: AccountId::parse(&account(n)).expect("id"),
            amount_cents: AmountCents::new(amount),
            state,
            reason: (state == SagaState::Failed).then(|| "aborted".to_owned()),
            created_ms: 0,
            updated_ms: 0,
        });
        self
    }

    /// A transfer done right: both sides, a `completed` answer, a completed saga.
    pub(super) fn completed(&mut self, op: u64, id: &str, n: u32, amount: u64) -> &mut Self {
        self.debit(id, n, amount)
            .credit(id, n, amount)
            .answer(op, n, amount, Outcome::Completed, Some(id))
            .saga(id, op, n, amount, SagaState::Completed)
    }

    pub(super) fn resolved(
        &mut self,
        op: u64,
        n: u32,
        id: &str,
        status: Option<ClientStatus>,
    ) -> &mut Self {
        self.resolutions.push(Resolution {
            op,
            attempt: 0,
            outcome: Outcome::Pending,
            user_id: user(n),
            key: format!("k-{op}"),
            transfer_id: Some(id.to_owned()),
            final_status: status,
            asked: true,
        });
        self
    }

    pub(super) fn sample(&mut self, ledger: u64, external: u64, in_flight: u64) -> &mut Self {
        self.samples.push(Sample {
            at_s: self.samples.len() as f64,
            ledger_total_cents: ledger,
            external_total_cents: external,
            lowest_balance_cents: 0,
            in_flight_bound_cents: Some(in_flight),
            active_faults: vec!["storm".into()],
        });
        self
    }

    pub(super) fn evidence(&self) -> Evidence {
        Evidence {
            books: Some(Books {
                external_before: self.before.0.clone(),
                ledger_before: self.before.1.clone(),
                external_after: self.external.clone(),
                ledger_after: self.ledger.clone(),
                read_again: Some(read_again::ReadAgain::of(
                    "after the services stopped".into(),
                    &Books {
                        external_before: self.before.0.clone(),
                        ledger_before: self.before.1.clone(),
                        external_after: self.external.clone(),
                        ledger_after: self.ledger.clone(),
                        read_again: None,
                    },
                    self.again.as_ref().map_or(&self.external, |(e, _)| e),
                    self.again.as_ref().map_or(&self.ledger, |(_, l)| l),
                )),
            }),
            history: self.history.clone(),
            convergence: Convergence {
                polled: None,
                sagas: Some(SagaDump {
                    design: "saga".into(),
                    sagas: self.sagas.clone(),
                }),
                converged: self.converged,
                convergence_ms: self.converged.then_some(5),
            },
            resolutions: self.resolutions.clone(),
            samples: self.samples.clone(),
        }
    }

    fn reconcile(&self) -> Reconciliation {
        reconcile(&self.evidence())
    }
}

fn classes(r: &Reconciliation) -> Vec<ViolationClass> {
    let mut found: Vec<ViolationClass> = r.violations.iter().map(|v| v.class).collect();
    found.dedup();
    found
}

fn holds(r: &Reconciliation, name: InvariantName) -> Option<bool> {
    r.invariants
        .iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("{name} not reported"))
        .holds
}

/// A world where every invariant holds: a completed transfer, a reversed one answered
/// failed, a pending one that became completed, and a sample within bounds.
pub(super) fn clean() -> World {
    let mut w = World::new();
    w.completed(0, "t-0", 0, 500);
    w.debit("t-1", 1, 700)
        .reverse("t-1", 1, 700)
        .answer(1, 1, 700, Outcome::Failed, Some("t-1"))
        .saga("t-1", 1, 1, 700, SagaState::Reversed);
    w.debit("t-2", 2, 300)
        .credit("t-2", 2, 300)
        .answer(2, 2, 300, Outcome::Pending, Some("t-2"))
        .saga("t-2", 2, 2, 300, SagaState::Completed)
        .resolved(2, 2, "t-2", Some(ClientStatus::Completed));
    let total = OPENING * u64::from(USERS);
    w.sample(0, total - 500, 500);
    w
}

#[test]
fn a_clean_world_holds_every_invariant() {
    let r = clean().reconcile();
    assert!(r.violations.is_empty(), "{:#?}", r.violations);
    for invariant in &r.invariants {
        assert_eq!(invariant.holds, Some(true), "{invariant:?}");
    }
    assert_eq!(r.money.created_cents, Some(0));
    assert_eq!(r.money.lost_cents, Some(0));
    assert_eq!(r.indeterminate.resolved_completed, 1);
}

#[test]
fn without_books_the_money_invariants_are_unknown() {
    let mut evidence = clean().evidence();
    evidence.books = None;
    let r = reconcile(&evidence);
    for name in [
        InvariantName::Conservation,
        InvariantName::Atomicity,
        InvariantName::Idempotency,
        InvariantName::IndeterminateOutcomes,
    ] {
        assert_eq!(holds(&r, name), None, "{name}");
    }
}

#[test]
fn a_debit_nobody_credits_is_lost_and_the_failed_answer_broken() {
    let mut w = clean();
    w.debit("t-9", 0, 400)
        .answer(9, 0, 400, Outcome::Failed, Some("t-9"))
        .saga("t-9", 9, 0, 400, SagaState::Reversed);
    let r = w.reconcile();
    assert_eq!(
        classes(&r),
        [ViolationClass::LostDebit, ViolationClass::ContractBroken]
    );
    assert_eq!(r.money.lost_cents, Some(400));
    assert_eq!(holds(&r, InvariantName::Conservation), Some(false));
    assert_eq!(holds(&r, InvariantName::Atomicity), Some(false));
    assert_eq!(holds(&r, InvariantName::ClientContract), Some(false));
}

#[test]
fn money_held_by_sagas_not_final_is_in_flight_not_lost() {
    let mut w = clean();
    w.debit("t-9", 0, 400)
        .answer(9, 0, 400, Outcome::Pending, Some("t-9"))
        .saga("t-9", 9, 0, 400, SagaState::Debited);
    w.converged = false;
    let r = w.reconcile();
    assert_eq!(r.money.lost_cents, Some(0));
    assert_eq!(r.money.in_flight_cents, Some(400));
    assert_eq!(r.money.in_flight_sagas, Some(1));
    assert_eq!(classes(&r), [ViolationClass::Stuck]);
    assert_eq!(holds(&r, InvariantName::Atomicity), Some(true));
    assert_eq!(holds(&r, InvariantName::Convergence), Some(false));
}

#[test]
fn a_credit_without_debit_and_a_reversal_after_a_credit_create_money() {
    let mut w = clean();
    w.credit("t-8", 0, 100)
        .answer(8, 0, 100, Outcome::Error, None)
        .saga("t-8", 8, 0, 100, SagaState::Failed);
    w.debit("t-9", 1, 200)
        .credit("t-9", 1, 200)
        .reverse("t-9", 1, 200)
        .answer(9, 1, 200, Outcome::Failed, Some("t-9"))
        .saga("t-9", 9, 1, 200, SagaState::Reversed);
    let r = w.reconcile();
    let found = classes(&r);
    assert!(
        found.contains(&ViolationClass::CreditWithoutDebit),
        "{found:?}"
    );
    assert!(
        found.contains(&ViolationClass::ReversalAfterCredit),
        "{found:?}"
    );
    assert_eq!(r.money.created_cents, Some(300));
}

#[test]
fn unequal_effects_wrong_accounts_and_wrong_amounts_are_named() {
    let mut w = clean();
    // Debited 500 from the right account, credited 450 to another user.
    w.debit("t-9", 0, 500)
        .credit("t-9", 1, 450)
        .answer(9, 0, 500, Outcome::Completed, Some("t-9"))
        .saga("t-9", 9, 0, 500, SagaState::Completed);
    let r = w.reconcile();
    let found = classes(&r);
    for class in [
        ViolationClass::UnequalEffects,
        ViolationClass::WrongAccount,
        ViolationClass::AmountMismatch,
        ViolationClass::ContractBroken,
    ] {
        assert!(found.contains(&class), "{class}: {found:?}");
    }
    assert_eq!(holds(&r, InvariantName::AccountsAndAmounts), Some(false));
}

#[test]
fn an_overdraft_is_found_by_replaying_the_entries() {
    let mut w = clean();
    w.completed(9, "t-9", 1, OPENING + 1);
    let r = w.reconcile();
    assert_eq!(classes(&r), [ViolationClass::Overdraft]);
    assert_eq!(holds(&r, InvariantName::NoOverdraft), Some(false));
}

#[test]
fn doubled_entries_are_named_by_kind() {
    let mut w = clean();
    w.completed(9, "t-9", 0, 100);
    w.debit("t-9", 0, 100).credit("t-9", 0, 100);
    w.debit("t-8", 1, 50)
        .reverse("t-8", 1, 50)
        .reverse("t-8", 1, 50)
        .answer(8, 1, 50, Outcome::Error, None);
    let r = w.reconcile();
    let found = classes(&r);
    for class in [
        ViolationClass::DoubleDebit,
        ViolationClass::DoubleCredit,
        ViolationClass::DoubleReversal,
    ] {
        assert!(found.contains(&class), "{class}: {found:?}");
    }
    assert_eq!(holds(&r, InvariantName::NoDuplicateEffect), Some(false));
}

#[test]
fn one_key_that_moves_money_twice_is_a_double_charge() {
    let mut w = clean();
    w.completed(9, "t-9", 0, 100);
    // The retry of key k-9 became a second transfer, which moved money too.
    w.debit("t-9b", 0, 100)
        .credit("t-9b", 0, 100)
        .saga("t-9b", 9, 0, 100, SagaState::Completed);
    let mut retry = w.history.last().cloned().expect("an answer");
    retry.attempt = 1;
    retry.transfer_id = Some("t-9b".into());
    w.history.push(retry);
    let r = w.reconcile();
    assert_eq!(classes(&r), [ViolationClass::DoubleCharge]);
    let v = &r.violations[0];
    assert_eq!(v.key.as_deref(), Some("k-9"));
    assert_eq!(v.related, ["t-9b"]);
    assert_eq!(holds(&r, InvariantName::Idempotency), Some(false));
}

#[test]
fn one_key_that_names_two_transfers_splits_even_if_money_moved_once() {
    let mut w = clean();
    w.completed(9, "t-9", 0, 100)
        .saga("t-9b", 9, 0, 100, SagaState::Failed);
    let mut retry = w.history.last().cloned().expect("an answer");
    retry.attempt = 1;
    retry.outcome = Outcome::Failed;
    retry.transfer_id = Some("t-9b".into());
    w.history.push(retry);
    let r = w.reconcile();
    assert_eq!(classes(&r), [ViolationClass::SplitKey]);
}

#[test]
fn orphans_reversals_first_and_late_originals_are_found() {
    let mut w = clean();
    // An entry no request produced.
    w.debit("t-ghost", 0, 10).credit("t-ghost", 0, 10);
    // A reversal with no debit before it.
    w.reverse("t-7", 1, 70)
        .answer(7, 1, 70, Outcome::Error, None)
        .saga("t-7", 7, 1, 70, SagaState::Failed);
    // Aborted first, debited after: the late original debit.
    w.debit("t-6", 2, 60)
        .answer(6, 2, 60, Outcome::Pending, Some("t-6"))
        .saga("t-6", 6, 2, 60, SagaState::Failed);
    // Debited although a tombstone stands for it.
    w.tombstone("t-5")
        .debit("t-5", 2, 50)
        .answer(5, 2, 50, Outcome::Error, None)
        .saga("t-5", 5, 2, 50, SagaState::Failed);
    let r = w.reconcile();
    let found = classes(&r);
    for class in [
        ViolationClass::OrphanEntry,
        ViolationClass::ReversalWithoutDebit,
        ViolationClass::LateOriginal,
    ] {
        assert!(found.contains(&class), "{class}: {found:?}");
    }
    let late: Vec<_> = r
        .violations
        .iter()
        .filter(|v| v.class == ViolationClass::LateOriginal)
        .filter_map(|v| v.transfer_id.as_deref())
        .collect();
    assert_eq!(late, ["t-5", "t-6"]);
    assert_eq!(holds(&r, InvariantName::NoOrphanEffect), Some(false));
}

#[test]
fn an_answered_transfer_the_saga_log_forgot_is_lost() {
    let mut w = clean();
    w.debit("t-9", 0, 100)
        .credit("t-9", 0, 100)
        .answer(9, 0, 100, Outcome::Completed, Some("t-9"));
    let r = w.reconcile();
    assert_eq!(classes(&r), [ViolationClass::LostTransfer]);
    assert_eq!(holds(&r, InvariantName::ClientContract), Some(false));
}

#[test]
fn an_indeterminate_answer_must_resolve_to_what_the_books_show() {
    let mut w = clean();
    // Said to have completed, but only the debit happened.
    w.debit("t-9", 0, 100)
        .answer(9, 0, 100, Outcome::Pending, Some("t-9"))
        .saga("t-9", 9, 0, 100, SagaState::Debited)
        .resolved(9, 0, "t-9", Some(ClientStatus::Completed));
    // The coordinator does not know a transfer id it handed out.
    w.answer(8, 1, 100, Outcome::Pending, Some("t-8"))
        .resolved(8, 1, "t-8", None);
    let r = w.reconcile();
    let found = classes(&r);
    assert!(
        found.contains(&ViolationClass::WrongFinalStatus),
        "{found:?}"
    );
    assert!(found.contains(&ViolationClass::LostTransfer), "{found:?}");
    assert_eq!(holds(&r, InvariantName::IndeterminateOutcomes), Some(false));
    assert_eq!(r.indeterminate.resolved_completed, 2);
    assert_eq!(r.indeterminate.never_known, 1);
}

#[test]
fn samples_outside_their_bounds_are_reported_with_their_faults() {
    let total = OPENING * u64::from(USERS);
    let mut w = clean();
    w.sample(1_000, total, 0) // more money than at the start
        .sample(0, total - 900, 100); // less than the start minus what was in flight
    w.samples.push(Sample {
        at_s: 9.0,
        ledger_total_cents: 0,
        external_total_cents: total,
        lowest_balance_cents: -5,
        in_flight_bound_cents: None,
        active_faults: Vec::new(),
    });
    let r = w.reconcile();
    assert_eq!(
        classes(&r),
        [
            ViolationClass::CreatedDuringRun,
            ViolationClass::LostDuringRun,
            ViolationClass::NegativeBalance
        ]
    );
    let created = &r.violations[0];
    assert!(created.detail.contains("storm"), "{}", created.detail);
    assert_eq!(holds(&r, InvariantName::SampledBounds), Some(false));
}

impl World {
    /// A further answer to operation `op`'s key (a retry), with `outcome`.
    fn retried(&mut self, op: u64, outcome: Outcome, id: Option<&str>) -> &mut Self {
        let mut again = self
            .history
            .iter()
            .rev()
            .find(|r| r.op == op)
            .expect("the first answer")
            .clone();
        again.attempt += 1;
        again.outcome = outcome;
        again.jepsen_type = outcome.jepsen().to_owned();
        again.transfer_id = id.map(str::to_owned);
        self.history.push(again);
        self
    }
}

#[test]
fn a_request_answered_only_503_that_moved_money_or_left_a_saga_broke_its_promise() {
    // Shed, shed again on the retry, yet carried out: money moved.
    let mut w = clean();
    w.debit("t-9", 0, 400)
        .credit("t-9", 0, 400)
        .answer(9, 0, 400, Outcome::Shed, None)
        .retried(9, Outcome::Shed, None)
        .saga("t-9", 9, 0, 400, SagaState::Completed);
    // Shed, and a saga written that moved nothing.
    w.answer(8, 1, 200, Outcome::Shed, None)
        .saga("t-8", 8, 1, 200, SagaState::Failed);
    let r = w.reconcile();
    assert_eq!(classes(&r), [ViolationClass::ShedWithEffect], "{r:#?}");
    let ids: Vec<_> = r
        .violations
        .iter()
        .map(|v| (v.transfer_id.as_deref(), v.key.as_deref()))
        .collect();
    assert_eq!(
        ids,
        [(Some("t-8"), Some("k-8")), (Some("t-9"), Some("k-9"))]
    );
    assert!(r.violations[1].detail.contains("money moved"), "{r:#?}");
    assert!(r.violations[0].detail.contains("saga log holds"), "{r:#?}");
    assert_eq!(holds(&r, InvariantName::ClientContract), Some(false));
    assert_eq!(holds(&r, InvariantName::Atomicity), Some(true));
}

#[test]
fn a_request_shed_and_answered_otherwise_is_judged_by_the_other_answer() {
    let mut w = clean();
    // Shed first, then the retry completed: the completed answer holds.
    w.debit("t-9", 0, 400)
        .credit("t-9", 0, 400)
        .answer(9, 0, 400, Outcome::Shed, None)
        .retried(9, Outcome::Completed, Some("t-9"))
        .saga("t-9", 9, 0, 400, SagaState::Completed);
    // Timed out after the debit, then shed on the retry: the saga finished it, which the
    // indeterminate answer allows.
    w.debit("t-8", 1, 200)
        .credit("t-8", 1, 200)
        .answer(8, 1, 200, Outcome::Error, None)
        .retried(8, Outcome::Shed, None)
        .saga("t-8", 8, 1, 200, SagaState::Completed);
    // Shed, and nothing written: the promise kept.
    w.answer(7, 2, 100, Outcome::Shed, None);
    let r = w.reconcile();
    assert!(r.violations.is_empty(), "{:#?}", r.violations);
    let contract = r
        .invariants
        .iter()
        .find(|i| i.name == InvariantName::ClientContract)
        .expect("client_contract");
    assert!(
        contract.detail.contains("1 requests only ever shed"),
        "{contract:?}"
    );
}

#[test]
fn money_that_moves_after_the_final_read_names_its_transfers() {
    let mut w = clean();
    // After the final read: a reversal of the completed t-0 lands, and a ledger balance
    // moves with no entry to show for it.
    let (final_external, final_ledger) = (w.external.clone(), w.ledger.clone());
    w.reverse("t-0", 0, 500);
    let mut again = (w.external.clone(), w.ledger.clone());
    again.1.accounts[2].balance_cents = AmountCents::new(42);
    w.external = final_external;
    w.ledger = final_ledger;
    w.again = Some(again);
    let r = w.reconcile();
    assert_eq!(
        classes(&r),
        [ViolationClass::MovedAfterFinalRead],
        "{:#?}",
        r.violations
    );
    let moved: Vec<_> = r
        .violations
        .iter()
        .map(|v| (v.transfer_id.as_deref(), v.external_net_debit_cents))
        .collect();
    assert_eq!(moved, [(None, 0), (Some("t-0"), -500)]);
    assert!(r.violations[1]
        .detail
        .contains("external reversal of 500 on a-0 appeared"));
    assert!(
        r.violations[0].detail.contains("u-2: 300 → 42"),
        "{:#?}",
        r.violations
    );
    assert_eq!(holds(&r, InvariantName::BooksSettled), Some(false));
    // The verdict's own read is untouched: the money there still balances.
    assert_eq!(holds(&r, InvariantName::Conservation), Some(true));
}

#[test]
fn an_entry_gone_after_the_final_read_is_money_that_moved() {
    let mut w = clean();
    let mut again = (w.external.clone(), w.ledger.clone());
    let gone = again.1.entries.remove(0);
    again.1.accounts[0].balance_cents = AmountCents::new(0);
    w.again = Some(again);
    let r = w.reconcile();
    assert_eq!(classes(&r), [ViolationClass::MovedAfterFinalRead]);
    assert_eq!(
        r.violations.len(),
        1,
        "the balance is explained: {:#?}",
        r.violations
    );
    assert_eq!(
        r.violations[0].transfer_id.as_deref(),
        Some(gone.transfer_id.as_str())
    );
    assert_eq!(r.violations[0].ledger_net_credit_cents, -500);
}

#[test]
fn books_not_read_again_leave_the_check_unknown_never_passed() {
    let mut evidence = clean().evidence();
    if let Some(books) = evidence.books.as_mut() {
        books.read_again = None;
    }
    let r = reconcile(&evidence);
    assert_eq!(holds(&r, InvariantName::BooksSettled), None);
    if let Some(books) = evidence.books.as_mut() {
        books.read_again = Some(read_again::ReadAgain::failed(
            "after the services stopped".into(),
            "the ledger did not start".into(),
        ));
    }
    let r = reconcile(&evidence);
    let settled = r
        .invariants
        .iter()
        .find(|i| i.name == InvariantName::BooksSettled)
        .expect("books_settled");
    assert_eq!(settled.holds, None);
    assert!(
        settled.detail.contains("the ledger did not start"),
        "{settled:?}"
    );
}

#[test]
fn the_folder_keeps_each_entry_once_and_reads_back_to_the_same_reconciliation() {
    // A system that ran before: its books before the run already hold entries.
    let mut w = World::new();
    w.debit("t-old", 0, 100).credit("t-old", 0, 100);
    w.before = (w.external.clone(), w.ledger.clone());
    let mut w = {
        let mut run = clean();
        run.before = w.before.clone();
        run.external.entries = [w.external.entries.clone(), run.external.entries].concat();
        run.ledger.entries = [w.ledger.entries.clone(), run.ledger.entries].concat();
        for (seq, e) in (1..).zip(run.external.entries.iter_mut()) {
            e.seq = seq;
        }
        for (seq, e) in (1..).zip(run.ledger.entries.iter_mut()) {
            e.seq = seq;
        }
        run
    };
    w.tombstone("t-9").debit("t-9", 1, 50);
    w.external.transfers.push(TransferRecord {
        transfer_id: "t-1".into(),
        account_id: Some(account(1)),
        amount_cents: Some(AmountCents::new(700)),
        status: TransferStatus::Reversed,
        reason: None,
    });
    let evidence = w.evidence();
    let dir = tempfile::tempdir().expect("tempdir");
    crate::history::write_in(dir.path(), &evidence.history).expect("history");
    evidence.save(dir.path()).expect("save");
    let stored: serde_json::Value =
        crate::compressed::read_json(&dir.path().join(evidence::BOOKS_FILE)).expect("stored");
    let stored_entries = stored["external_after"]["entries"]
        .as_array()
        .expect("entries");
    assert_eq!(
        stored_entries.len(),
        w.external.entries.len() - w.before.0.entries.len(),
        "the entries before the run are kept once, in the dump before"
    );
    assert_eq!(
        stored["external_after"]["transfers"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    let back = Evidence::load(dir.path()).expect("load");
    let books = back.books.as_ref().expect("books");
    assert_eq!(books.external_after.entries, w.external.entries);
    assert_eq!(books.ledger_after.entries, w.ledger.entries);
    let json = |r: &Reconciliation| serde_json::to_value(r).expect("json");
    let (first, again) = (reconcile(&evidence), reconcile(&back));
    assert_eq!(json(&first), json(&again));
    assert!(
        classes(&first).contains(&ViolationClass::LateOriginal),
        "{first:#?}"
    );
}
