//! The reconciler: from both institutions' books (before and after the run), the saga log
//! and the client history, which the run reads through the contract, it checks each named
//! invariant. Every violation is listed per transfer id with its class and amounts.

use crate::history::{HistoryRecord, Outcome};
use schemars::JsonSchema;
use serde::Serialize;
use service::contract::{Dump, EntryKind, SagaDump, SagaState};
use std::collections::{BTreeMap, HashMap};

/// One invariant's verdict. `holds: None` means it could not be checked (unknown).
#[derive(Debug, Clone, Serialize, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Invariant {
    pub name: &'static str,
    pub holds: Option<bool>,
    pub violations: u64,
    pub detail: String,
}

/// One transfer that broke an invariant.
#[derive(Debug, Clone, Serialize, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Violation {
    pub transfer_id: String,
    pub invariant: &'static str,
    /// `lost_debit`, `credit_without_debit`, `reversal_after_credit`, `amount_mismatch`,
    /// `double_debit`, `double_credit`, `double_reversal`, `overdraft`, `contract_broken`, `stuck`.
    pub class: &'static str,
    pub external_net_debit_cents: i128,
    pub ledger_net_credit_cents: i128,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Money {
    pub initial_total_cents: Option<u64>,
    pub final_total_cents: Option<u64>,
    pub created_cents: Option<u64>,
    pub lost_cents: Option<u64>,
}

/// `reconciliation.json` (schema: `harness/schema/reconciliation.schema.json`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Reconciliation {
    pub money: Money,
    pub invariants: Vec<Invariant>,
    pub violations: Vec<Violation>,
    pub anomalies: BTreeMap<String, u64>,
}

/// The books before and after the run (absent for a system whose dumps are not reachable).
pub struct Books {
    pub external_before: Dump,
    pub ledger_before: Dump,
    pub external_after: Dump,
    pub ledger_after: Dump,
}

/// Whether every saga became final, and how long it took after the load ended.
pub struct Convergence {
    /// None when the saga log could not be read.
    pub sagas: Option<SagaDump>,
    pub converged: bool,
    pub convergence_ms: Option<u64>,
}

fn total(dump: &Dump) -> u64 {
    dump.accounts.iter().map(|a| a.balance_cents.get()).sum()
}

#[derive(Default, Clone, Copy)]
struct Effects {
    external_net: i128,
    ledger_net: i128,
    debits: u32,
    reversals: u32,
    credits: u32,
}

/// The last entry number of a dump taken before the run: later entries are the run's.
fn last_seq(dump: &Dump) -> i64 {
    dump.entries.iter().map(|e| e.seq).max().unwrap_or(0)
}

fn effects(books: &Books) -> BTreeMap<String, Effects> {
    let first_new_external = last_seq(&books.external_before);
    let first_new_ledger = last_seq(&books.ledger_before);
    let mut by_id: BTreeMap<String, Effects> = BTreeMap::new();
    for e in books
        .external_after
        .entries
        .iter()
        .filter(|e| e.seq > first_new_external)
    {
        let fx = by_id.entry(e.transfer_id.clone()).or_default();
        let amount = i128::from(e.amount_cents.get());
        match e.kind {
            EntryKind::Debit => {
                fx.external_net += amount;
                fx.debits += 1;
            }
            EntryKind::Reversal => {
                fx.external_net -= amount;
                fx.reversals += 1;
            }
            EntryKind::Credit => {}
        }
    }
    for e in books
        .ledger_after
        .entries
        .iter()
        .filter(|e| e.seq > first_new_ledger)
    {
        if e.kind == EntryKind::Credit {
            let fx = by_id.entry(e.transfer_id.clone()).or_default();
            fx.ledger_net += i128::from(e.amount_cents.get());
            fx.credits += 1;
        }
    }
    by_id
}

fn invariant(name: &'static str, violations: &[Violation], detail: String) -> Invariant {
    let count = violations.iter().filter(|v| v.invariant == name).count() as u64;
    Invariant {
        name,
        holds: Some(count == 0),
        violations: count,
        detail,
    }
}

fn unknown(name: &'static str, why: &str) -> Invariant {
    Invariant {
        name,
        holds: None,
        violations: 0,
        detail: why.to_owned(),
    }
}

/// Checks every money invariant. `books` is None when the dumps were not reachable.
pub fn reconcile(
    books: Option<&Books>,
    history: &[HistoryRecord],
    convergence: &Convergence,
) -> Reconciliation {
    let mut violations = Vec::new();
    let mut invariants = Vec::new();
    let mut money = Money::default();
    if let Some(books) = books {
        let fx = effects(books);
        let initial = total(&books.external_before) + total(&books.ledger_before);
        let fin = total(&books.external_after) + total(&books.ledger_after);
        money = Money {
            initial_total_cents: Some(initial),
            final_total_cents: Some(fin),
            created_cents: Some(fin.saturating_sub(initial)),
            lost_cents: Some(initial.saturating_sub(fin)),
        };
        let violation = |id: &str, invariant, class, fx: &Effects, detail: String| Violation {
            transfer_id: id.to_owned(),
            invariant,
            class,
            external_net_debit_cents: fx.external_net,
            ledger_net_credit_cents: fx.ledger_net,
            detail,
        };

        // atomicity: per transfer id, what left the external side arrived in the ledger.
        for (id, f) in &fx {
            if f.external_net == f.ledger_net {
                continue;
            }
            let class = if f.ledger_net == 0 {
                "lost_debit"
            } else if f.external_net == 0 && f.reversals > 0 {
                "reversal_after_credit"
            } else if f.external_net == 0 {
                "credit_without_debit"
            } else {
                "amount_mismatch"
            };
            violations.push(violation(
                id,
                "atomicity",
                class,
                f,
                format!(
                    "external net debit {} ≠ ledger net credit {}",
                    f.external_net, f.ledger_net
                ),
            ));
        }

        // no_duplicate_effect: at most one debit, one reversal and one credit per id.
        for (id, f) in &fx {
            for (count, class) in [
                (f.debits, "double_debit"),
                (f.reversals, "double_reversal"),
                (f.credits, "double_credit"),
            ] {
                if count > 1 {
                    violations.push(violation(
                        id,
                        "no_duplicate_effect",
                        class,
                        f,
                        format!("{count} entries"),
                    ));
                }
            }
        }

        // no_overdraft: replay the external entries in commit order from the opening balances.
        let mut balances: HashMap<&str, i128> = books
            .external_before
            .accounts
            .iter()
            .map(|a| (a.account_id.as_str(), i128::from(a.balance_cents.get())))
            .collect();
        let first_new = last_seq(&books.external_before);
        let mut overdrafts = 0u64;
        for e in books
            .external_after
            .entries
            .iter()
            .filter(|e| e.seq > first_new)
        {
            let balance = balances.entry(e.account_id.as_str()).or_insert(0);
            match e.kind {
                EntryKind::Debit => *balance -= i128::from(e.amount_cents.get()),
                EntryKind::Reversal | EntryKind::Credit => {
                    *balance += i128::from(e.amount_cents.get())
                }
            }
            if *balance < 0 {
                overdrafts += 1;
                let f = fx.get(&e.transfer_id).copied().unwrap_or_default();
                violations.push(violation(
                    &e.transfer_id,
                    "no_overdraft",
                    "overdraft",
                    &f,
                    format!(
                        "account {} at {} after entry {}",
                        e.account_id, balance, e.seq
                    ),
                ));
            }
        }

        // client_contract: every answer kept its promise.
        let saga_state: HashMap<&str, SagaState> = convergence
            .sagas
            .iter()
            .flat_map(|d| d.sagas.iter())
            .map(|s| (s.transfer_id.as_str(), s.state))
            .collect();
        let mut checked = 0u64;
        for record in history {
            let Some(id) = record.transfer_id.as_deref() else {
                continue;
            };
            let f = fx.get(id).copied().unwrap_or_default();
            let amount = i128::from(record.amount_cents);
            let broken = match record.outcome {
                Outcome::Completed => (f.external_net != amount || f.ledger_net != amount)
                    .then(|| "answered completed, but the books do not hold both sides".to_owned()),
                Outcome::Failed => (f.external_net != 0 || f.ledger_net != 0)
                    .then(|| "answered failed, but a net effect remains".to_owned()),
                Outcome::Pending => match saga_state.get(id) {
                    None if convergence.sagas.is_some() => {
                        Some("answered pending, but the saga log does not know it".to_owned())
                    }
                    Some(state) if !state.is_final() => Some(format!(
                        "answered pending, still {} at the end",
                        state.as_str()
                    )),
                    Some(SagaState::Completed)
                        if f.external_net != amount || f.ledger_net != amount =>
                    {
                        Some(
                            "pending became completed, but the books do not hold both sides"
                                .to_owned(),
                        )
                    }
                    Some(SagaState::Failed | SagaState::Reversed)
                        if f.external_net != 0 || f.ledger_net != 0 =>
                    {
                        Some("pending became failed, but a net effect remains".to_owned())
                    }
                    _ => None,
                },
                _ => None,
            };
            checked += 1;
            if let Some(detail) = broken {
                violations.push(violation(
                    id,
                    "client_contract",
                    "contract_broken",
                    &f,
                    detail,
                ));
            }
        }

        let created = money.created_cents.unwrap_or(0);
        let lost = money.lost_cents.unwrap_or(0);
        invariants.push(Invariant {
            name: "conservation",
            holds: Some(initial == fin),
            violations: u64::from(initial != fin),
            detail: format!(
                "initial {initial}, final {fin} (Σ external + Σ ledger): created {created}, lost {lost}"
            ),
        });
        invariants.push(invariant(
            "atomicity",
            &violations,
            format!("{} transfer ids with an effect", fx.len()),
        ));
        invariants.push(invariant(
            "no_overdraft",
            &violations,
            format!("{overdrafts} negative balances in replay"),
        ));
        invariants.push(invariant(
            "no_duplicate_effect",
            &violations,
            "at most one debit, reversal and credit per id".into(),
        ));
        invariants.push(invariant(
            "client_contract",
            &violations,
            format!("{checked} answers with a transfer id checked"),
        ));
    } else {
        let why =
            "the institutions' dumps are not reachable (give --external-url and --ledger-url)";
        for name in [
            "conservation",
            "atomicity",
            "no_overdraft",
            "no_duplicate_effect",
            "client_contract",
        ] {
            invariants.push(unknown(name, why));
        }
    }

    match &convergence.sagas {
        Some(dump) => {
            let stuck: Vec<_> = dump.sagas.iter().filter(|s| !s.state.is_final()).collect();
            for saga in &stuck {
                violations.push(Violation {
                    transfer_id: saga.transfer_id.to_string(),
                    invariant: "convergence",
                    class: "stuck",
                    external_net_debit_cents: 0,
                    ledger_net_credit_cents: 0,
                    detail: format!("still {} after the convergence window", saga.state.as_str()),
                });
            }
            invariants.push(Invariant {
                name: "convergence",
                holds: Some(convergence.converged && stuck.is_empty()),
                violations: stuck.len() as u64,
                detail: match convergence.convergence_ms {
                    Some(ms) => format!(
                        "{} sagas final {ms} ms after the load ended",
                        dump.sagas.len()
                    ),
                    None => format!("{} sagas not final within the window", stuck.len()),
                },
            });
        }
        None => invariants.push(unknown("convergence", "the saga log is not reachable")),
    }

    let mut anomalies = BTreeMap::new();
    for v in &violations {
        *anomalies.entry(v.class.to_owned()).or_insert(0) += 1;
    }
    Reconciliation {
        money,
        invariants,
        violations,
        anomalies,
    }
}
