//! The reconciler: from the evidence a run gathers (both institutions' books before and
//! after, the saga log, the client history, the coordinator's word on indeterminate answers
//! after the run, and totals sampled during it), it checks each named invariant. Every
//! violation is listed with its class, the transfer (or sample) it is about and the amounts.
//!
//! - `names`: the closed sets of invariant and class names, with their explanations.
//! - `evidence`: what a reconciliation reads, saved in the run folder and read back.
//! - `ids`: the run's transfer ids and idempotency keys, numbered densely.
//! - `effects`: the books' entries of the run, per transfer id.
//! - `requests`: what the client asked, per transfer id and per idempotency key.
//! - `books_checks`: the invariants the books alone decide.
//! - `client_checks`: the invariants that set the books against the client's answers.
//! - `run_checks`: convergence and the samples taken during the run.
//! - `read_again`: the books read again once nothing may move money, against the final read.
//! - `live`: the same checks as the run goes, request by request, and the rest at the end.

mod books_checks;
mod client_checks;
pub mod effects;
pub mod evidence;
pub mod ids;
pub mod live;
pub mod names;
pub mod read_again;
pub mod requests;
mod run_checks;

pub use evidence::{Books, Evidence, Resolution, Sample};
pub use names::{InvariantName, ViolationClass};

use effects::Effects;
use ids::{Numbering, Slot};
use requests::{KeySlots, Requests};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use service::contract::Saga;
use service::contract::SagaDump;
use std::collections::BTreeMap;

/// One invariant's verdict. `holds: None` means it could not be checked (unknown).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Invariant {
    pub name: InvariantName,
    pub holds: Option<bool>,
    pub violations: u64,
    pub detail: String,
}

/// One transfer (or sample) that broke an invariant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Violation {
    pub invariant: InvariantName,
    pub class: ViolationClass,
    /// The transfer it is about; None for a sample taken during the run.
    pub transfer_id: Option<String>,
    /// The request's idempotency key, where it matters (`double_charge`).
    pub key: Option<String>,
    /// Other transfers involved (the other transfers of one key).
    pub related: Vec<String>,
    pub external_net_debit_cents: i128,
    pub ledger_net_credit_cents: i128,
    pub detail: String,
}

impl Violation {
    /// A violation of `class` that names no transfer (a sample, a balance), with `detail`.
    pub fn of_run(class: ViolationClass, detail: String) -> Self {
        Violation {
            invariant: class.invariant(),
            class,
            transfer_id: None,
            key: None,
            related: Vec::new(),
            external_net_debit_cents: 0,
            ledger_net_credit_cents: 0,
            detail,
        }
    }

    /// A violation of `class` by transfer `id`, with its effects.
    pub fn of_transfer(class: ViolationClass, id: &str, fx: &Effects, detail: String) -> Self {
        Violation {
            invariant: class.invariant(),
            class,
            transfer_id: Some(id.to_owned()),
            key: None,
            related: Vec::new(),
            external_net_debit_cents: fx.external_net,
            ledger_net_credit_cents: fx.ledger_net,
            detail,
        }
    }
}

/// Where the money is after the run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Money {
    pub initial_total_cents: Option<u64>,
    pub final_total_cents: Option<u64>,
    /// More money than at the start.
    pub created_cents: Option<u64>,
    /// Less money than at the start, beyond what sagas not final still hold.
    pub lost_cents: Option<u64>,
    /// Debited and neither credited nor given back, by sagas not final at the end.
    pub in_flight_cents: Option<u64>,
    /// How many sagas were not final at the end.
    pub in_flight_sagas: Option<u64>,
}

/// How the indeterminate answers resolved after the run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Indeterminate {
    /// Operations answered `pending`, or not answered (timeout, transport error).
    pub operations: u64,
    pub resolved_completed: u64,
    pub resolved_failed: u64,
    /// No transfer id known, or the coordinator did not say.
    pub never_known: u64,
}

/// The reconciliation's file in a run folder.
pub const RECONCILIATION_FILE: &str = "reconciliation.json";

/// `reconciliation.json` (schema: `harness/schema/reconciliation.schema.json`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Reconciliation {
    pub money: Money,
    pub invariants: Vec<Invariant>,
    pub violations: Vec<Violation>,
    /// Violations by class.
    pub anomalies: BTreeMap<ViolationClass, u64>,
    pub indeterminate: Indeterminate,
    /// How the run was reconciled as it went; absent when it was reconciled whole at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveReconciliation>,
}

/// The run reconciled as it went (`reconcile::live`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct LiveReconciliation {
    /// Requests judged and let go during the run, of all the requests judged.
    pub requests_closed_during_run: u64,
    pub requests: u64,
    /// Facts that arrived for a request or transfer already judged; the first described.
    pub late_facts: u64,
    pub late_described: Vec<String>,
    /// Why the verdict was taken from the whole run folder instead of the live one (a late
    /// fact, balances the pages do not explain); None when the live verdict stands.
    pub whole_because: Option<String>,
}

impl Reconciliation {
    /// Nothing checked: a shard of a run, whose evidence is reconciled with the other
    /// shards' by `harness merge`.
    pub fn not_reconciled() -> Reconciliation {
        Reconciliation {
            money: Money::default(),
            invariants: Vec::new(),
            violations: Vec::new(),
            anomalies: BTreeMap::new(),
            indeterminate: Indeterminate::default(),
            live: None,
        }
    }
}

/// Whether every saga became final, and how long it took after the load ended.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Convergence {
    /// None when the saga log could not be read.
    pub sagas: Option<SagaDump>,
    pub converged: bool,
    pub convergence_ms: Option<u64>,
    /// For a system without a saga log (`GET /admin/sagas` answers 404): what polling
    /// `GET /transfers/{id}` showed of every transfer answered `pending`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polled: Option<PolledTransfers>,
}

/// Convergence seen through `GET /transfers/{id}`, when there is no saga log to read.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct PolledTransfers {
    /// Transfers answered `pending` whose end was asked about.
    pub asked: u64,
    /// Those still not final (or not known to the coordinator) when polling stopped.
    pub open: Vec<String>,
    /// Operations with no transfer id to ask about (no answer, no other answer of their
    /// key): their end is not followed.
    pub without_id: u64,
}

/// An invariant that could not be checked, and why.
fn unknown(name: InvariantName, why: &str) -> Invariant {
    Invariant {
        name,
        holds: None,
        violations: 0,
        detail: why.to_owned(),
    }
}

/// The verdict of `name` from the violations found, with `detail`.
fn judged(name: InvariantName, violations: &[Violation], detail: String) -> Invariant {
    let count = violations.iter().filter(|v| v.invariant == name).count() as u64;
    Invariant {
        name,
        holds: Some(count == 0),
        violations: count,
        detail,
    }
}

/// What each check needs, built once.
pub struct Context<'a> {
    pub evidence: &'a Evidence,
    pub books: Option<&'a Books>,
    /// The run's transfer ids, numbered: those with an entry in the books first.
    pub ids: Numbering<&'a str>,
    pub effects: effects::EffectsById<'a>,
    pub requests: Requests<'a>,
    pub sagas: Option<&'a SagaDump>,
    /// The saga log by transfer slot (all None without one).
    pub saga_of: Vec<Option<&'a Saga>>,
    /// Whether the coordinator keeps a saga log: an answer's transfer must then be in it.
    pub log_kept: bool,
}

impl Context<'_> {
    /// The saga of the transfer numbered `slot`, if the log holds it.
    pub fn saga(&self, slot: Slot) -> Option<&Saga> {
        self.saga_of.get(slot as usize).copied().flatten()
    }
}

/// The saga log by transfer slot.
fn saga_index<'a>(
    sagas: Option<&'a SagaDump>,
    slots: &[Slot],
    ids: usize,
) -> Vec<Option<&'a Saga>> {
    let mut by_slot = vec![None; ids];
    for (saga, &slot) in sagas.iter().flat_map(|d| d.sagas.iter()).zip(slots) {
        by_slot[slot as usize].get_or_insert(saga);
    }
    by_slot
}

/// Everything the checks read, indexed once from `evidence`. `log_kept`: whether the
/// coordinator keeps a saga log (a run whose log is empty keeps none).
fn context(evidence: &Evidence, log_kept: bool) -> Context<'_> {
    let sagas = evidence.convergence.sagas.as_ref();
    let books = evidence.books.as_ref();
    // The keys are numbered on a second thread while the transfer ids are numbered here: at
    // a million transfers each is a few million lookups. A part of a run (a second's worth)
    // is numbered on this thread alone.
    let (effects, requests, ids) = if evidence.history.len() < PARALLEL_FROM {
        index(evidence, || KeySlots::of(&evidence.history, sagas))
    } else {
        std::thread::scope(|scope| {
            let keys = scope.spawn(|| KeySlots::of(&evidence.history, sagas));
            index(evidence, || {
                keys.join()
                    .unwrap_or_else(|_| KeySlots::of(&evidence.history, sagas))
            })
        })
    };
    let saga_of = saga_index(sagas, &requests.saga_slots, ids.len());
    Context {
        evidence,
        books,
        ids,
        effects,
        requests,
        sagas,
        saga_of,
        log_kept,
    }
}

/// The transfer ids numbered (those with an entry first) with their effects, and the
/// requests indexed once `keys` gives their keys numbered.
fn index(
    evidence: &Evidence,
    keys: impl FnOnce() -> KeySlots,
) -> (effects::EffectsById<'_>, Requests<'_>, Numbering<&str>) {
    let books = evidence.books.as_ref();
    let entries = books.map_or(0, |b| b.external_after.entries.len());
    let mut ids = Numbering::with_capacity(entries.max(evidence.history.len()));
    let effects = books
        .map(|b| effects::effects_of(b, &mut ids))
        .unwrap_or_default();
    let requests = Requests::with_keys(
        &evidence.history,
        evidence.convergence.sagas.as_ref(),
        &evidence.resolutions,
        &mut ids,
        keys(),
    );
    (effects, requests, ids)
}

/// From how many operations the indexing takes a second thread.
const PARALLEL_FROM: usize = 100_000;

/// A check of the books or the answers.
type Check = for<'c> fn(&Context<'c>) -> (Invariant, Vec<Violation>);

/// The checks that judge each transfer (and each request) on its own facts: a part of a run
/// holding every fact of its transfers gets the verdicts the whole run gives them.
const PER_TRANSFER_CHECKS: [Check; 6] = [
    books_checks::atomicity,
    books_checks::accounts_and_amounts,
    books_checks::no_duplicate_effect,
    books_checks::no_orphan_effect,
    client_checks::idempotency,
    client_checks::client_contract,
];

/// The violations of a part of a run that holds every fact of its transfers and requests
/// (`reconcile::live` closes such parts as the run goes), by the checks that judge each
/// transfer on its own, with what became of its indeterminate answers. The run-wide checks
/// (conservation, overdraft, convergence, the samples, the second read) are the caller's.
pub fn judge_part(evidence: &Evidence, log_kept: bool) -> JudgedPart {
    let cx = context(evidence, log_kept);
    let mut judged = JudgedPart::default();
    for check in PER_TRANSFER_CHECKS {
        let (invariant, found) = check(&cx);
        judged.invariants.push(invariant);
        judged.violations.extend(found);
    }
    let (invariant, found, indeterminate) = client_checks::indeterminate_outcomes(&cx);
    judged.invariants.push(invariant);
    judged.violations.extend(found);
    judged.indeterminate = indeterminate;
    judged
}

/// A part of a run judged by the per-transfer checks.
#[derive(Debug, Default)]
pub struct JudgedPart {
    /// Each check's verdict on the part (their details count what the part held).
    pub invariants: Vec<Invariant>,
    pub violations: Vec<Violation>,
    pub indeterminate: Indeterminate,
}

/// Checks every invariant the evidence can decide.
pub fn reconcile(evidence: &Evidence) -> Reconciliation {
    let log_kept = evidence
        .convergence
        .sagas
        .as_ref()
        .is_some_and(|d| !d.sagas.is_empty());
    reconcile_with(evidence, log_kept)
}

/// Checks every invariant the evidence can decide, `log_kept` saying whether the coordinator
/// keeps a saga log (the evidence may hold part of it).
fn reconcile_with(evidence: &Evidence, log_kept: bool) -> Reconciliation {
    let cx = context(evidence, log_kept);
    let money = books_checks::money(&cx);
    let mut invariants = Vec::new();
    let mut violations = Vec::new();
    let [atomicity, accounts_and_amounts, no_duplicate_effect, no_orphan_effect, idempotency, client_contract] =
        PER_TRANSFER_CHECKS;
    let checks: [Check; 7] = [
        atomicity,
        accounts_and_amounts,
        books_checks::no_overdraft,
        no_duplicate_effect,
        no_orphan_effect,
        idempotency,
        client_contract,
    ];
    match cx.books {
        Some(_) => {
            invariants.push(books_checks::conservation(&money));
            // The checks only read the context: each on its own thread, their verdicts
            // taken in order.
            let verdicts = std::thread::scope(|scope| {
                let running: Vec<_> = checks
                    .iter()
                    .map(|check| scope.spawn(|| check(&cx)))
                    .collect();
                let verdicts: Vec<_> = running
                    .into_iter()
                    .map(|check| {
                        check
                            .join()
                            .unwrap_or_else(|e| std::panic::resume_unwind(e))
                    })
                    .collect();
                verdicts
            });
            for (invariant, found) in verdicts {
                invariants.push(invariant);
                violations.extend(found);
            }
        }
        None => {
            let why =
                "the institutions' dumps are not reachable (give --external-url and --ledger-url)";
            for name in [
                InvariantName::Conservation,
                InvariantName::Atomicity,
                InvariantName::AccountsAndAmounts,
                InvariantName::NoOverdraft,
                InvariantName::NoDuplicateEffect,
                InvariantName::NoOrphanEffect,
                InvariantName::Idempotency,
                InvariantName::ClientContract,
            ] {
                invariants.push(unknown(name, why));
            }
        }
    }
    let (invariant, found, indeterminate) = client_checks::indeterminate_outcomes(&cx);
    invariants.push(invariant);
    violations.extend(found);
    for check in [
        run_checks::convergence,
        run_checks::sampled_bounds,
        read_again::books_settled,
    ] {
        let (invariant, found) = check(&cx);
        invariants.push(invariant);
        violations.extend(found);
    }
    let (invariants, violations, anomalies) = counted(invariants, violations);
    Reconciliation {
        money,
        invariants,
        violations,
        anomalies,
        indeterminate,
        live: None,
    }
}

/// Each invariant's count taken from the whole list of violations (a check may find a
/// violation of another invariant: a lost transfer while resolving an indeterminate answer),
/// the violations in order, and their count by class.
fn counted(
    mut invariants: Vec<Invariant>,
    mut violations: Vec<Violation>,
) -> (
    Vec<Invariant>,
    Vec<Violation>,
    BTreeMap<ViolationClass, u64>,
) {
    for invariant in invariants
        .iter_mut()
        .filter(|i| i.holds.is_some() && i.name != InvariantName::Conservation)
    {
        let count = violations
            .iter()
            .filter(|v| v.invariant == invariant.name)
            .count() as u64;
        invariant.violations = count;
        invariant.holds = Some(count == 0);
    }
    violations.sort_by(|a, b| (a.class, &a.transfer_id).cmp(&(b.class, &b.transfer_id)));
    let mut anomalies = BTreeMap::new();
    for v in &violations {
        *anomalies.entry(v.class).or_insert(0) += 1;
    }
    (invariants, violations, anomalies)
}

#[cfg(test)]
mod tests;
