//! A part of the run: the facts of requests closed together (or of transfer ids no request
//! is known for), made evidence for the reconciler, and the requests in it no answer names.

use super::Ending;
use crate::history::HistoryRecord;
use crate::reconcile::evidence::{Books, Evidence, Resolution};
use crate::reconcile::Convergence;
use service::contract::{Dump, Entry, EntryKind, Saga, SagaDump, TransferRecord};

/// Every fact of one request (or of one transfer id no request is known for yet).
#[derive(Debug, Default)]
pub(super) struct Open {
    pub(super) history: Vec<HistoryRecord>,
    pub(super) sagas: Vec<Saga>,
    pub(super) external: Vec<Entry>,
    pub(super) ledger: Vec<Entry>,
    pub(super) tombstones: Vec<TransferRecord>,
    /// When the last fact arrived, in ms from the load's start.
    pub(super) last_ms: u64,
    /// The client may try the request again (its last answer makes the user retry).
    pub(super) retrying: bool,
}

impl Open {
    pub(super) fn absorb(&mut self, other: Open) {
        self.history.extend(other.history);
        self.sagas.extend(other.sagas);
        self.external.extend(other.external);
        self.ledger.extend(other.ledger);
        self.tombstones.extend(other.tombstones);
        self.last_ms = self.last_ms.max(other.last_ms);
        self.retrying |= other.retrying;
    }

    pub(super) fn sagas_final(&self) -> bool {
        self.sagas.iter().all(|s| s.state.is_final())
    }
}

/// Requests closed together, to be judged as one part of the run.
#[derive(Debug)]
pub struct Part {
    pub history: Vec<HistoryRecord>,
    pub sagas: SagaDump,
    pub(super) external: Vec<Entry>,
    pub(super) ledger: Vec<Entry>,
    pub(super) tombstones: Vec<TransferRecord>,
    pub(super) requests: u64,
    /// When it was closed, in ms from the load's start.
    pub(super) closed_ms: u64,
    pub(super) unanswered: Unanswered,
}

impl Part {
    pub(super) fn add(&mut self, open: Open) {
        if open.history.is_empty() {
            if open.sagas.is_empty() {
                let ids = open
                    .external
                    .iter()
                    .chain(&open.ledger)
                    .map(|e| &e.transfer_id);
                let ids = ids.chain(open.tombstones.iter().map(|t| &t.transfer_id));
                self.unanswered.ids.extend(ids.take(1).cloned());
            } else {
                let keys = open.sagas.iter().map(|s| {
                    (
                        s.user_id.as_str().to_owned(),
                        s.idempotency_key.as_str().to_owned(),
                    )
                });
                self.unanswered.keys.extend(keys.take(1));
            }
        }
        self.history.extend(open.history);
        self.sagas.sagas.extend(open.sagas);
        self.external.extend(open.external);
        self.ledger.extend(open.ledger);
        self.tombstones.extend(open.tombstones);
        self.requests += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.requests == 0
    }

    /// Its requests with no answer of the client's.
    pub fn unanswered(&self) -> &Unanswered {
        &self.unanswered
    }

    /// The entries of both sides, in commit order per side.
    pub(super) fn sort(&mut self) {
        self.external.sort_unstable_by_key(|e| e.seq);
        self.ledger.sort_unstable_by_key(|e| e.seq);
    }
}

/// Requests judged with no answer of the client's: a transfer's entries alone (`ids`), or
/// sagas alone (`keys`, their users and idempotency keys). Each is either no request of the
/// run at all (an orphan effect, a saga of an earlier run) or a fact that came for a
/// transfer long judged: the history and the saga log in the run folder tell which.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Unanswered {
    pub ids: Vec<String>,
    pub keys: Vec<(String, String)>,
}

impl Unanswered {
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty() && self.keys.is_empty()
    }

    pub fn extend(&mut self, more: &Unanswered) {
        self.ids.extend(more.ids.iter().cloned());
        self.keys.extend(more.keys.iter().cloned());
    }
}

/// The net debit at the external side and net credit in the ledger of transfer `id` in
/// `part`, as `effects` sums them.
pub(super) fn net_effects(part: &Part, id: &str) -> (i128, i128) {
    let signed = |e: &Entry, plus: EntryKind| {
        let amount = i128::from(e.amount_cents.get());
        if e.kind == plus {
            amount
        } else {
            -amount
        }
    };
    let external = part.external.iter().filter(|e| e.transfer_id == id);
    let ledger = part.ledger.iter().filter(|e| e.transfer_id == id);
    (
        external.map(|e| signed(e, EntryKind::Debit)).sum(),
        ledger.map(|e| signed(e, EntryKind::Credit)).sum(),
    )
}

/// A part as evidence: its entries as the books appended during the run (after empty books,
/// or after the run's books before, at the end).
pub(super) fn part_evidence(
    part: Part,
    resolutions: Vec<Resolution>,
    ending: Option<Ending>,
) -> Evidence {
    let empty = || Dump {
        accounts: Vec::new(),
        entries: Vec::new(),
        transfers: Vec::new(),
    };
    let Some(ending) = ending else {
        return Evidence {
            books: Some(Books {
                external_before: empty(),
                ledger_before: empty(),
                external_after: Dump {
                    accounts: Vec::new(),
                    entries: part.external,
                    transfers: part.tombstones,
                },
                ledger_after: Dump {
                    accounts: Vec::new(),
                    entries: part.ledger,
                    transfers: Vec::new(),
                },
                read_again: None,
            }),
            history: part.history,
            convergence: Convergence {
                sagas: Some(part.sagas),
                converged: true,
                convergence_ms: None,
                polled: None,
            },
            resolutions,
            samples: Vec::new(),
        };
    };
    let mut convergence = ending.convergence;
    convergence.sagas = Some(part.sagas);
    Evidence {
        books: Some(Books {
            external_before: ending.external_before,
            ledger_before: ending.ledger_before,
            external_after: Dump {
                accounts: ending.external_accounts,
                entries: part.external,
                transfers: part.tombstones,
            },
            ledger_after: Dump {
                accounts: ending.ledger_accounts,
                entries: part.ledger,
                transfers: Vec::new(),
            },
            read_again: ending.read_again,
        }),
        history: part.history,
        convergence,
        resolutions,
        samples: ending.samples,
    }
}
