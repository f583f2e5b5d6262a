//! Reconciliation as the run goes. Every fact the run gathers (each answer, each saga as it
//! changes, each entry both institutions append, each tombstone) is filed under its request:
//! a user's idempotency key, with every transfer id its answers and sagas name. A request
//! whose sagas are all final and that has heard nothing new for the quiet period is closed:
//! its part is judged by the checks that look at one transfer at a time
//! (`reconcile::judge_part`), and leaves memory. What is still open when the run ends is
//! judged with the run-wide checks (`reconcile::finish_part`).
//!
//! - `closed`: the requests and transfer ids judged lately, so a fact arriving for one of
//!   them is known late. A late fact makes the live verdict unsure: the caller reconciles the
//!   whole run folder instead. A fact for a transfer judged longer ago than that comes as a
//!   request no answer names (an entry alone, a saga alone): such requests are listed
//!   (`Unanswered`), and the caller looks them up in the folder's history and saga log at the
//!   end. A correct run has none.
//! - `overdraft`: `no_overdraft`, replayed page by page.

mod closed;
mod details;
pub mod overdraft;
mod part;
mod unanswered;

use part::{net_effects, part_evidence, Open};
pub use part::{Part, Unanswered};
pub use unanswered::named_in;

use super::evidence::{Resolution, Sample};
use super::read_again::ReadAgain;
use super::{Convergence, Indeterminate, Reconciliation, Violation};
use crate::history::HistoryRecord;
use closed::{hash_of, Lately};
use overdraft::Overdraft;
use rustc_hash::FxHashMap;
use service::contract::{
    AccountBalance, Dump, Entry, Saga, SagaDump, TransferRecord, TransferStatus,
};

/// A request: a user and an idempotency key.
type RequestKey = (String, String);

const TRANSFER: u8 = 0;
const REQUEST: u8 = 1;

/// Which institution's books an entry is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    External,
    Ledger,
}

/// How much of the run was reconciled as it went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveCounts {
    /// Requests judged and let go during the run.
    pub requests_closed: u64,
    /// Violations found so far (the overdrafts as they are replayed).
    pub violations: u64,
    /// Facts that arrived for a request or transfer already judged.
    pub late_facts: u64,
}

/// How long a request must hear nothing before it is judged, in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quiet {
    /// A request the client is done with: long enough for the books to show what its last
    /// answer did.
    pub done_ms: u64,
    /// A request the client may still try again, or with no answer yet (its sagas only): long
    /// enough for another attempt to be answered.
    pub open_ms: u64,
}

/// What the run-wide checks read at the end, beside the part still open.
pub struct Ending {
    pub external_before: Dump,
    pub ledger_before: Dump,
    /// Each account's balance at the final read.
    pub external_accounts: Vec<AccountBalance>,
    pub ledger_accounts: Vec<AccountBalance>,
    /// Whether every saga became final, and when (its `sagas` are set here).
    pub convergence: Convergence,
    pub samples: Vec<Sample>,
    pub read_again: Option<ReadAgain>,
}

/// The live reconciler.
pub struct Live {
    quiet: Quiet,
    design: String,
    open: FxHashMap<RequestKey, Open>,
    /// Each open transfer id's request.
    request_of: FxHashMap<String, RequestKey>,
    /// Transfer ids with facts but no request known yet.
    loose: FxHashMap<String, Open>,
    /// The transfer ids closed lately.
    closed: Lately,
    /// Requests judged with no answer of the client's, to be looked up at the end.
    unanswered: Unanswered,
    /// The requests closed lately.
    closed_requests: Lately,
    /// The first late facts, described.
    late: Vec<String>,
    found: Vec<Violation>,
    indeterminate: Indeterminate,
    overdraft: Overdraft,
    /// Each overdraft violation's transfer not judged yet: its effects are filled in then.
    overdrafts_waiting: FxHashMap<String, Vec<usize>>,
    /// The per-transfer checks' details so far, their counts summed over the parts.
    details: std::collections::BTreeMap<super::InvariantName, String>,
    /// Sagas judged so far.
    sagas_judged: u64,
    /// Whether any saga was seen: a coordinator that keeps a log holds every answered
    /// transfer in it.
    log_kept: bool,
    pub counts: LiveCounts,
}

/// How long a transfer id judged is kept at least, in ms.
const KEEP_CLOSED_MS: u64 = 60_000;

/// How many late facts are described.
const LATE_DESCRIBED: usize = 5;

impl Live {
    /// `quiet`: how long a request must hear nothing before it is closed. `external_before`:
    /// the external side's books before the run (the overdraft replay starts from them).
    pub fn new(quiet: Quiet, external_before: &Dump) -> Live {
        Live {
            quiet,
            design: String::new(),
            open: FxHashMap::default(),
            request_of: FxHashMap::default(),
            loose: FxHashMap::default(),
            closed: Lately::new(quiet.open_ms.saturating_mul(2).max(KEEP_CLOSED_MS)),
            unanswered: Unanswered::default(),
            // Twice the longest a request may stay quiet and still hear from the client.
            closed_requests: Lately::new(quiet.open_ms.saturating_mul(2)),
            late: Vec::new(),
            found: Vec::new(),
            indeterminate: Indeterminate::default(),
            overdraft: Overdraft::from(external_before),
            overdrafts_waiting: FxHashMap::default(),
            details: std::collections::BTreeMap::new(),
            sagas_judged: 0,
            log_kept: false,
            counts: LiveCounts::default(),
        }
    }

    fn late_fact(&mut self, what: String) {
        self.counts.late_facts += 1;
        if self.late.len() < LATE_DESCRIBED {
            self.late.push(what);
        }
    }

    /// The first late facts, described.
    pub fn late(&self) -> &[String] {
        &self.late
    }

    /// The requests judged with no answer of the client's, so far.
    pub fn unanswered(&self) -> &Unanswered {
        &self.unanswered
    }

    /// Notes a late fact found outside (a request judged with no answer, that the run's
    /// history or saga log names after all).
    pub fn found_late(&mut self, what: String) {
        self.late_fact(what);
    }

    /// Ties transfer `id` to `request`, moving any facts it had alone into the request.
    fn tie(&mut self, id: &str, request: &RequestKey) {
        if self.request_of.contains_key(id) {
            return;
        }
        self.request_of.insert(id.to_owned(), request.clone());
        if let Some(facts) = self.loose.remove(id) {
            if let Some(open) = self.open.get_mut(request) {
                open.absorb(facts);
            }
        }
    }

    /// The open facts of `request`, opened now unless it was judged already (None: late).
    fn request(&mut self, request: &RequestKey, now_ms: u64) -> Option<&mut Open> {
        if !self.open.contains_key(request) {
            let hash = hash_of(REQUEST, &[&request.0, &request.1]);
            if self.closed_requests.contains(hash) {
                return None;
            }
        }
        let open = self.open.entry(request.clone()).or_default();
        open.last_ms = now_ms;
        Some(open)
    }

    /// An answer (or an operation that got none); `retrying`: whether the client tries the
    /// request again after it.
    pub fn record(&mut self, record: HistoryRecord, retrying: bool, now_ms: u64) {
        let request = (record.user_id.clone(), record.key.clone());
        let id = record.transfer_id.clone();
        if id
            .as_deref()
            .is_some_and(|id| !self.request_of.contains_key(id) && self.closed_id(id))
        {
            return self.late_fact(format!(
                "an answer for transfer {} after it was judged",
                id.unwrap_or_default()
            ));
        }
        match self.request(&request, now_ms) {
            Some(open) => {
                open.retrying = retrying;
                open.history.push(record);
            }
            None => {
                return self.late_fact(format!(
                    "an answer for user {}, key {} after the request was judged",
                    request.0, request.1
                ))
            }
        }
        if let Some(id) = id {
            self.tie(&id, &request);
        }
    }

    fn closed_id(&self, id: &str) -> bool {
        self.closed.contains(hash_of(TRANSFER, &[id]))
    }

    /// Sagas as they are now (each replaces what was seen of it before).
    pub fn sagas(&mut self, design: &str, sagas: Vec<Saga>, now_ms: u64) {
        if self.design.is_empty() {
            self.design = design.to_owned();
        }
        for saga in sagas {
            self.log_kept = true;
            let id = saga.transfer_id.as_str().to_owned();
            if !self.request_of.contains_key(&id) && self.closed_id(&id) {
                self.late_fact(format!(
                    "transfer {id}'s saga changed ({}) after it was judged",
                    saga.state.as_str()
                ));
                continue;
            }
            let request = (
                saga.user_id.as_str().to_owned(),
                saga.idempotency_key.as_str().to_owned(),
            );
            let Some(open) = self.request(&request, now_ms) else {
                self.late_fact(format!("transfer {id}'s saga after its request was judged"));
                continue;
            };
            match open.sagas.iter_mut().find(|s| s.transfer_id.as_str() == id) {
                Some(seen) => *seen = saga,
                None => open.sagas.push(saga),
            }
            self.tie(&id, &request);
        }
    }

    /// The open facts of transfer `id` (its request's, or its own while none is known).
    fn facts_of(&mut self, id: &str, now_ms: u64) -> Option<&mut Open> {
        if let Some(request) = self.request_of.get(id) {
            let open = self.open.get_mut(request)?;
            open.last_ms = now_ms;
            return Some(open);
        }
        if !self.loose.contains_key(id) && self.closed_id(id) {
            return None;
        }
        let open = self.loose.entry(id.to_owned()).or_default();
        open.last_ms = now_ms;
        Some(open)
    }

    /// Entries one institution appended, in commit order.
    pub fn entries(&mut self, side: Side, entries: Vec<Entry>, now_ms: u64) {
        if side == Side::External {
            let first = self.overdraft.found.len();
            self.counts.violations += self.overdraft.replay(&entries) as u64;
            for i in first..self.overdraft.found.len() {
                let id = self.overdraft.found[i]
                    .transfer_id
                    .clone()
                    .unwrap_or_default();
                self.overdrafts_waiting.entry(id).or_default().push(i);
            }
        }
        for entry in entries {
            let id = entry.transfer_id.clone();
            match self.facts_of(&id, now_ms) {
                Some(open) if side == Side::External => open.external.push(entry),
                Some(open) => open.ledger.push(entry),
                None => self.late_fact(format!(
                    "a {} of {} for transfer {id} (entry {}) after it was judged",
                    entry.kind.as_str(),
                    entry.amount_cents.get(),
                    entry.seq
                )),
            }
        }
    }

    /// Transfer records the external side wrote: only tombstones are read by the checks.
    pub fn transfer_records(&mut self, records: Vec<TransferRecord>, now_ms: u64) {
        for record in records {
            if record.status != TransferStatus::Tombstone {
                continue;
            }
            let id = record.transfer_id.clone();
            match self.facts_of(&id, now_ms) {
                Some(open) => open.tombstones.push(record),
                None => {
                    self.late_fact(format!("a tombstone for transfer {id} after it was judged"))
                }
            }
        }
    }

    /// How many sagas are not final.
    pub fn open_sagas(&self) -> usize {
        let open = self.open.values().flat_map(|o| o.sagas.iter());
        open.filter(|s| !s.state.is_final()).count()
    }

    /// The requests (and lone transfer ids) quiet for the quiet period with every saga
    /// final, taken out to be judged.
    pub fn closable(&mut self, now_ms: u64) -> Part {
        self.closed.at(now_ms);
        self.closed_requests.at(now_ms);
        let Quiet { done_ms, open_ms } = self.quiet;
        let quiet = |open: &Open| {
            let wait = match open.retrying || open.history.is_empty() {
                true => open_ms,
                false => done_ms,
            };
            open.last_ms.saturating_add(wait) <= now_ms
        };
        let requests: Vec<RequestKey> = self
            .open
            .iter()
            .filter(|(_, open)| quiet(open) && open.sagas_final())
            .map(|(request, _)| request.clone())
            .collect();
        let ids: Vec<String> = self
            .loose
            .iter()
            .filter(|(_, open)| quiet(open))
            .map(|(id, _)| id.clone())
            .collect();
        let mut part = self.part();
        part.closed_ms = now_ms;
        for request in requests {
            if let Some(open) = self.open.remove(&request) {
                part.add(open);
            }
        }
        for id in ids {
            if let Some(open) = self.loose.remove(&id) {
                part.add(open);
            }
        }
        part.sort();
        part
    }

    /// Every request still open, taken out to be judged at the end.
    pub fn remaining(&mut self, now_ms: u64) -> Part {
        let mut part = self.part();
        part.closed_ms = now_ms;
        for (_, open) in self.open.drain() {
            part.add(open);
        }
        for (_, open) in self.loose.drain() {
            part.add(open);
        }
        part.sort();
        part
    }

    fn part(&self) -> Part {
        Part {
            sagas: SagaDump {
                design: self.design.clone(),
                sagas: Vec::new(),
            },
            history: Vec::new(),
            external: Vec::new(),
            ledger: Vec::new(),
            tombstones: Vec::new(),
            requests: 0,
            closed_ms: 0,
            unanswered: Unanswered::default(),
        }
    }

    /// Forgets the transfer ids and requests of `part`, remembering them as closed, and
    /// fills in the effects of the overdrafts that name them.
    fn close(&mut self, part: &Part) {
        let ids = part
            .external
            .iter()
            .chain(&part.ledger)
            .map(|e| e.transfer_id.as_str())
            .chain(part.tombstones.iter().map(|t| t.transfer_id.as_str()))
            .chain(part.sagas.sagas.iter().map(|s| s.transfer_id.as_str()))
            .chain(part.history.iter().filter_map(|r| r.transfer_id.as_deref()));
        let mut named: Vec<&str> = ids.collect();
        named.sort_unstable();
        named.dedup();
        for id in &named {
            self.request_of.remove(*id);
            self.closed.insert(hash_of(TRANSFER, &[id]), part.closed_ms);
            if let Some(waiting) = self.overdrafts_waiting.remove(*id) {
                let (external_net, ledger_net) = net_effects(part, id);
                for i in waiting {
                    let v = &mut self.overdraft.found[i];
                    v.external_net_debit_cents = external_net;
                    v.ledger_net_credit_cents = ledger_net;
                }
            }
        }
        let requests = part
            .history
            .iter()
            .map(|r| (r.user_id.as_str(), r.key.as_str()))
            .chain(
                part.sagas
                    .sagas
                    .iter()
                    .map(|s| (s.user_id.as_str(), s.idempotency_key.as_str())),
            );
        for (user, key) in requests {
            let hash = hash_of(REQUEST, &[user, key]);
            self.closed_requests.insert(hash, part.closed_ms);
        }
        self.counts.requests_closed += part.requests;
        self.unanswered.extend(&part.unanswered);
    }

    /// Judges a part closed during the run, with what became of its indeterminate answers.
    pub fn judge(&mut self, part: Part, resolutions: Vec<Resolution>) {
        self.close(&part);
        self.sagas_judged += part.sagas.sagas.len() as u64;
        let evidence = part_evidence(part, resolutions, None);
        let judged = super::judge_part(&evidence, self.log_kept);
        self.counts.violations += judged.violations.len() as u64;
        self.found.extend(judged.violations);
        add(&mut self.indeterminate, &judged.indeterminate);
        for invariant in judged.invariants {
            let detail = match self.details.remove(&invariant.name) {
                Some(so_far) => details::summed(&so_far, &invariant.detail),
                None => invariant.detail,
            };
            self.details.insert(invariant.name, detail);
        }
    }

    /// The verdict of the run: the parts judged during it, and the part still open judged
    /// with the run-wide checks and `ending`.
    pub fn finish(
        mut self,
        part: Part,
        resolutions: Vec<Resolution>,
        ending: Ending,
    ) -> Reconciliation {
        let last_requests = part.requests;
        let last_sagas = part.sagas.sagas.len() as u64;
        self.close(&part);
        let evidence = part_evidence(part, resolutions, Some(ending));
        let last = super::reconcile_with(&evidence, self.log_kept);
        let mut violations = self.found;
        violations.extend(
            last.violations
                .into_iter()
                .filter(|v| v.class != super::ViolationClass::Overdraft),
        );
        violations.extend(self.overdraft.found);
        let mut indeterminate = self.indeterminate;
        add(&mut indeterminate, &last.indeterminate);
        let mut invariants = last.invariants;
        let overdrafts = violations
            .iter()
            .filter(|v| v.class == super::ViolationClass::Overdraft)
            .count();
        let sagas = self.sagas_judged + last_sagas;
        for invariant in &mut invariants {
            // Each detail as the whole run's: the counts of the parts judged during the run
            // added to the last part's.
            invariant.detail = match invariant.name {
                super::InvariantName::NoOverdraft => {
                    format!("{overdrafts} negative balances in replay")
                }
                super::InvariantName::Convergence if invariant.detail.contains(" sagas final ") => {
                    details::first_count_set(&invariant.detail, sagas)
                }
                name => match self.details.get(&name) {
                    Some(so_far) => details::summed(so_far, &invariant.detail),
                    None => std::mem::take(&mut invariant.detail),
                },
            };
        }
        let (invariants, violations, anomalies) = super::counted(invariants, violations);
        let live = super::LiveReconciliation {
            requests_closed_during_run: self.counts.requests_closed - last_requests,
            requests: self.counts.requests_closed,
            late_facts: self.counts.late_facts,
            late_described: self.late,
            whole_because: None,
        };
        Reconciliation {
            money: last.money,
            invariants,
            violations,
            anomalies,
            indeterminate,
            live: Some(live),
        }
    }
}

fn add(sum: &mut Indeterminate, more: &Indeterminate) {
    sum.operations += more.operations;
    sum.resolved_completed += more.resolved_completed;
    sum.resolved_failed += more.resolved_failed;
    sum.never_known += more.never_known;
}

#[cfg(test)]
mod tests;
