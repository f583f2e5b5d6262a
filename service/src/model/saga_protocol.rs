//! The saga protocol as the service implements it (`coordinator/saga.rs`), with the external
//! institution (`external.rs`) and the ledger (`ledger.rs`) as actors exchanging messages over
//! a network that delays and reorders (any in-flight message may be delivered next),
//! duplicates and loses them (within budgets). The coordinator may crash and restart: it
//! keeps its durable saga rows and loses what it held in memory (calls in flight, the request
//! handler, an in-memory reversal queue). A call whose answer does not come may time out.
//!
//! Bounds keep the state space small enough for `cargo test`: two transfers, at most one
//! crash, one lost and one duplicated message, and a few sends per transfer.

use stateright::{Model, Property};
use std::fmt;

/// The service's deliberately broken variants, each of which must yield a counterexample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutant {
    /// The external side forgets reversals of ids it has never seen (`--no-tombstone`).
    NoTombstone,
    /// A refused credit marks the saga `failed` and leaves the reversal in a queue in memory.
    VolatileQueue,
    /// The institutions do not deduplicate by transfer id.
    NoIdempotency,
    /// A call that times out is treated as refused.
    TimeoutIsFailure,
}

/// Durable saga state (`saga_log::SagaState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Saga {
    Started,
    Debited,
    Completed,
    Failed,
    Reversing,
    Reversed,
}

impl Saga {
    fn is_final(self) -> bool {
        matches!(self, Saga::Completed | Saga::Failed | Saga::Reversed)
    }
}

/// A remote call the coordinator waits on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Call {
    Debit,
    Abort,
    Credit,
    Reverse,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Answer {
    Completed,
    Failed,
    Pending,
}

/// What the coordinator knows of one transfer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Coord {
    /// Durable: survives a crash.
    pub saga: Saga,
    /// Volatile: the call in flight, if any.
    pub pending: Option<Call>,
    /// Volatile: the request handler that wrote the intent is still running. Only it sends
    /// the debit, and only once.
    pub handler: bool,
    pub debit_sent: bool,
    /// Volatile (mutant `VolatileQueue` only): a reversal owed, held in memory.
    pub owed_reversal: bool,
    /// Requests sent for this transfer (bounded).
    pub sends: u8,
    /// What the client was told.
    pub answer: Option<Answer>,
    /// The saga was aborted (reversal of a `started` saga), for the `sometimes` property.
    pub aborted: bool,
}

/// The external institution's record of one transfer id (`book::TransferStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExtRecord {
    None,
    Debited,
    Refused,
    Reversed,
    Tombstone,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LedgerRecord {
    None,
    Credited,
    Refused,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Msg {
    DebitReq(u8),
    ReverseReq(u8),
    CreditReq(u8),
    /// `true`: applied; `false`: refused.
    DebitResp(u8, bool),
    /// Always definite: the id holds no debit any more.
    ReverseResp(u8),
    CreditResp(u8, bool),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    pub coord: Vec<Coord>,
    pub ext: Vec<ExtRecord>,
    pub ledger: Vec<LedgerRecord>,
    pub ext_balance: i64,
    pub ledger_balance: i64,
    /// Entries per transfer: (debits, reversals, credits).
    pub effects: Vec<(u8, u8, u8)>,
    /// Messages in flight, kept sorted: a multiset.
    pub net: Vec<Msg>,
    pub crashes: u8,
    pub losses: u8,
    pub duplicates: u8,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "external={} ledger={}",
            self.ext_balance, self.ledger_balance
        )?;
        for (t, c) in self.coord.iter().enumerate() {
            write!(
                f,
                " | t{t}: saga={:?}{}{} ext={:?} ledger={:?}",
                c.saga,
                c.pending
                    .map_or(String::new(), |p| format!(" awaiting={p:?}")),
                c.answer.map_or(String::new(), |a| format!(" told={a:?}")),
                self.ext[t],
                self.ledger[t]
            )?;
        }
        write!(f, " | in flight: {:?}", self.net)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// The request handler sends the debit (`Driver::step`, `StartedMode::SendDebit`).
    SendDebit(u8),
    /// A driver aborts a `started` saga (`StartedMode::Abort`).
    SendAbort(u8),
    /// A driver (re)sends the credit of a `debited` saga.
    SendCredit(u8),
    /// A driver (re)sends the reversal of a `reversing` saga (or, mutant, of an owed one).
    SendReverse(u8),
    /// The awaited call gives no answer in time (`CallOutcome::Unknown`).
    Timeout(u8),
    /// A message arrives. For a new credit, `refuse` is the ledger's antifraud decision.
    Deliver(Msg, bool),
    Duplicate(Msg),
    Lose(Msg),
    /// The coordinator process dies and restarts on its saga log.
    Crash,
}

pub struct SagaProtocol {
    pub amounts: Vec<i64>,
    pub opening: i64,
    pub mutant: Option<Mutant>,
    pub max_crashes: u8,
    pub max_losses: u8,
    pub max_duplicates: u8,
    pub max_sends: u8,
    /// Check only this property (a mutant's check stops at its first counterexample).
    pub only: Option<&'static str>,
}

impl SagaProtocol {
    pub fn new(mutant: Option<Mutant>) -> Self {
        SagaProtocol {
            // The second transfer does not fit beside the first: a debit can be refused.
            amounts: vec![5, 7],
            opening: 10,
            mutant,
            max_crashes: 1,
            max_losses: 1,
            max_duplicates: 1,
            max_sends: 3,
            only: None,
        }
    }

    fn is(&self, mutant: Mutant) -> bool {
        self.mutant == Some(mutant)
    }

    fn send(s: &mut State, t: usize, call: Call, msg: Msg) {
        s.coord[t].pending = Some(call);
        s.coord[t].sends += 1;
        s.net.push(msg);
        s.net.sort();
    }
}

/// The client is told once: the first final (or `reversing`) state the handler sees.
fn tell(c: &mut Coord) {
    if c.handler && c.answer.is_none() {
        c.answer = match c.saga {
            Saga::Completed => Some(Answer::Completed),
            Saga::Failed | Saga::Reversing | Saga::Reversed => Some(Answer::Failed),
            Saga::Started | Saga::Debited => None,
        };
    }
}

/// Nothing is in flight, nothing is owed, every saga is final: the system is at rest.
pub fn quiescent(s: &State) -> bool {
    s.net.is_empty()
        && s.coord
            .iter()
            .all(|c| c.saga.is_final() && !c.owed_reversal)
}

pub fn no_overdraft(_: &SagaProtocol, s: &State) -> bool {
    s.ext_balance >= 0
}

pub fn at_most_one_effect(_: &SagaProtocol, s: &State) -> bool {
    s.effects
        .iter()
        .all(|(d, r, c)| *d <= 1 && *r <= 1 && *c <= 1)
}

pub fn conservation_at_quiescence(m: &SagaProtocol, s: &State) -> bool {
    !quiescent(s) || s.ext_balance + s.ledger_balance == m.opening
}

/// At rest, every transfer's books match its final saga state (completed: both sides;
/// otherwise neither), and every answer the client got was kept.
pub fn client_contract(m: &SagaProtocol, s: &State) -> bool {
    if !quiescent(s) {
        return true;
    }
    s.coord.iter().enumerate().all(|(t, c)| {
        let amount = m.amounts[t];
        let (debit, credit) = (net_debit(s, t, amount), net_credit(s, t, amount));
        let held = match c.saga {
            Saga::Completed => debit == amount && credit == amount,
            _ => debit == 0 && credit == 0,
        };
        let kept = match c.answer {
            Some(Answer::Completed) => c.saga == Saga::Completed,
            Some(Answer::Failed) => c.saga != Saga::Completed,
            Some(Answer::Pending) | None => true,
        };
        held && kept
    })
}

fn net_debit(s: &State, t: usize, amount: i64) -> i64 {
    let (debits, reversals, _) = s.effects[t];
    (i64::from(debits) - i64::from(reversals)) * amount
}

fn net_credit(s: &State, t: usize, amount: i64) -> i64 {
    i64::from(s.effects[t].2) * amount
}

impl Model for SagaProtocol {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        let n = self.amounts.len();
        vec![State {
            coord: vec![
                Coord {
                    saga: Saga::Started,
                    pending: None,
                    handler: true,
                    debit_sent: false,
                    owed_reversal: false,
                    sends: 0,
                    answer: None,
                    aborted: false,
                };
                n
            ],
            ext: vec![ExtRecord::None; n],
            ledger: vec![LedgerRecord::None; n],
            ext_balance: self.opening,
            ledger_balance: 0,
            effects: vec![(0, 0, 0); n],
            net: Vec::new(),
            crashes: 0,
            losses: 0,
            duplicates: 0,
        }]
    }

    fn actions(&self, s: &State, actions: &mut Vec<Action>) {
        for (i, c) in s.coord.iter().enumerate() {
            let t = u8::try_from(i).unwrap_or(u8::MAX);
            if c.pending.is_some() {
                actions.push(Action::Timeout(t));
                continue;
            }
            if c.sends >= self.max_sends {
                continue;
            }
            match c.saga {
                Saga::Started if c.handler && !c.debit_sent => actions.push(Action::SendDebit(t)),
                Saga::Started if !c.handler || c.debit_sent => actions.push(Action::SendAbort(t)),
                Saga::Debited => actions.push(Action::SendCredit(t)),
                Saga::Reversing => actions.push(Action::SendReverse(t)),
                Saga::Failed if c.owed_reversal => actions.push(Action::SendReverse(t)),
                _ => {}
            }
        }
        let mut last = None;
        for msg in &s.net {
            if last == Some(*msg) {
                continue;
            }
            last = Some(*msg);
            let t = match msg {
                Msg::CreditReq(t) => Some(*t as usize),
                _ => None,
            };
            actions.push(Action::Deliver(*msg, false));
            let new_credit = t.is_some_and(|t| {
                s.ledger[t] == LedgerRecord::None || self.is(Mutant::NoIdempotency)
            });
            if new_credit {
                actions.push(Action::Deliver(*msg, true));
            }
            if s.duplicates < self.max_duplicates {
                actions.push(Action::Duplicate(*msg));
            }
            if s.losses < self.max_losses {
                actions.push(Action::Lose(*msg));
            }
        }
        if s.crashes < self.max_crashes {
            actions.push(Action::Crash);
        }
    }

    fn next_state(&self, s: &State, action: Action) -> Option<State> {
        let mut n = s.clone();
        match action {
            Action::SendDebit(t) => {
                n.coord[t as usize].debit_sent = true;
                Self::send(&mut n, t as usize, Call::Debit, Msg::DebitReq(t));
            }
            Action::SendAbort(t) => Self::send(&mut n, t as usize, Call::Abort, Msg::ReverseReq(t)),
            Action::SendCredit(t) => {
                Self::send(&mut n, t as usize, Call::Credit, Msg::CreditReq(t))
            }
            Action::SendReverse(t) => {
                Self::send(&mut n, t as usize, Call::Reverse, Msg::ReverseReq(t))
            }
            Action::Timeout(t) => {
                let timeout_is_failure = self.is(Mutant::TimeoutIsFailure);
                let c = &mut n.coord[t as usize];
                let call = c.pending.take()?;
                if timeout_is_failure {
                    match call {
                        Call::Debit => c.saga = Saga::Failed,
                        Call::Credit => c.saga = Saga::Reversing,
                        Call::Abort | Call::Reverse => {}
                    }
                    tell(c);
                }
                // The handler's deadline is over: it answers pending and leaves the saga
                // to the recovery worker, which aborts a `started` saga.
                if c.handler && c.answer.is_none() {
                    c.answer = Some(Answer::Pending);
                }
                c.handler = false;
            }
            Action::Duplicate(msg) => {
                n.duplicates += 1;
                n.net.push(msg);
                n.net.sort();
            }
            Action::Lose(msg) => {
                n.losses += 1;
                let at = n.net.iter().position(|m| *m == msg)?;
                n.net.remove(at);
            }
            Action::Crash => {
                n.crashes += 1;
                for c in &mut n.coord {
                    c.pending = None;
                    c.handler = false;
                    c.owed_reversal = false;
                }
            }
            Action::Deliver(msg, refuse) => {
                let at = n.net.iter().position(|m| *m == msg)?;
                n.net.remove(at);
                self.deliver(&mut n, msg, refuse);
                n.net.sort();
            }
        }
        Some(n)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let all = vec![
            Property::always("no_overdraft", no_overdraft),
            Property::always("at_most_one_effect_per_transfer", at_most_one_effect),
            Property::always("conservation_at_quiescence", conservation_at_quiescence),
            Property::always("client_contract", client_contract),
            Property::sometimes("a transfer completes", |_, s: &State| {
                quiescent(s) && s.coord.iter().any(|c| c.saga == Saga::Completed)
            }),
            Property::sometimes("a refused credit is reversed", |_, s: &State| {
                quiescent(s) && s.coord.iter().any(|c| c.saga == Saga::Reversed)
            }),
            Property::sometimes("an unknown debit is aborted", |_, s: &State| {
                quiescent(s) && s.coord.iter().any(|c| c.saga == Saga::Failed && c.aborted)
            }),
        ];
        match self.only {
            Some(name) => all.into_iter().filter(|p| p.name == name).collect(),
            None => all,
        }
    }
}

impl SagaProtocol {
    /// A message reaches its actor.
    /// One message arrives at its receiver.
    fn deliver(&self, n: &mut State, msg: Msg, refuse: bool) {
        match msg {
            Msg::DebitReq(_) | Msg::ReverseReq(_) => self.at_external(n, msg),
            Msg::CreditReq(t) => self.at_ledger(n, t, refuse),
            Msg::DebitResp(..) | Msg::ReverseResp(_) | Msg::CreditResp(..) => {
                self.at_coordinator(n, msg)
            }
        }
    }

    /// The external institution handles a debit or a reversal.
    fn at_external(&self, n: &mut State, msg: Msg) {
        match msg {
            // external.rs `debit`
            Msg::DebitReq(t) => {
                let i = t as usize;
                let fresh = n.ext[i] == ExtRecord::None || self.is(Mutant::NoIdempotency);
                let applied = if fresh {
                    if n.ext_balance >= self.amounts[i] {
                        n.ext_balance -= self.amounts[i];
                        n.effects[i].0 += 1;
                        n.ext[i] = ExtRecord::Debited;
                        true
                    } else {
                        n.ext[i] = ExtRecord::Refused;
                        false
                    }
                } else {
                    n.ext[i] == ExtRecord::Debited
                };
                n.net.push(Msg::DebitResp(t, applied));
            }
            // external.rs `reverse`
            Msg::ReverseReq(t) => {
                let i = t as usize;
                match n.ext[i] {
                    ExtRecord::Debited => {
                        n.ext_balance += self.amounts[i];
                        n.effects[i].1 += 1;
                        n.ext[i] = ExtRecord::Reversed;
                    }
                    ExtRecord::None if !self.is(Mutant::NoTombstone) => {
                        n.ext[i] = ExtRecord::Tombstone
                    }
                    _ => {}
                }
                n.net.push(Msg::ReverseResp(t));
            }
            _ => {}
        }
    }

    /// The ledger handles the credit of transfer `t` (ledger.rs `credit`): antifraud, which
    /// refuses it when `refuse`, decides only for a new id.
    fn at_ledger(&self, n: &mut State, t: u8, refuse: bool) {
        let i = t as usize;
        let fresh = n.ledger[i] == LedgerRecord::None || self.is(Mutant::NoIdempotency);
        let applied = if fresh && !refuse {
            n.ledger_balance += self.amounts[i];
            n.effects[i].2 += 1;
            n.ledger[i] = LedgerRecord::Credited;
            true
        } else if fresh {
            n.ledger[i] = LedgerRecord::Refused;
            false
        } else {
            n.ledger[i] == LedgerRecord::Credited
        };
        n.net.push(Msg::CreditResp(t, applied));
    }

    /// The coordinator takes an answer.
    fn at_coordinator(&self, n: &mut State, msg: Msg) {
        match msg {
            // coordinator/saga.rs `Driver::step`: an answer counts only for the awaited call.
            Msg::DebitResp(t, applied) => {
                let c = &mut n.coord[t as usize];
                if c.pending == Some(Call::Debit) && c.saga == Saga::Started {
                    c.pending = None;
                    c.saga = if applied { Saga::Debited } else { Saga::Failed };
                    tell(c);
                }
            }
            Msg::ReverseResp(t) => {
                let c = &mut n.coord[t as usize];
                match (c.pending, c.saga) {
                    (Some(Call::Abort), Saga::Started) => {
                        c.pending = None;
                        c.saga = Saga::Failed;
                        c.aborted = true;
                        tell(c);
                    }
                    (Some(Call::Reverse), Saga::Reversing) => {
                        c.pending = None;
                        c.saga = Saga::Reversed;
                        tell(c);
                    }
                    (Some(Call::Reverse), Saga::Failed) => {
                        c.pending = None;
                        c.owed_reversal = false;
                    }
                    _ => {}
                }
            }
            Msg::CreditResp(t, applied) => {
                let volatile_queue = self.is(Mutant::VolatileQueue);
                let c = &mut n.coord[t as usize];
                if c.pending == Some(Call::Credit) && c.saga == Saga::Debited {
                    c.pending = None;
                    c.saga = match (applied, volatile_queue) {
                        (true, _) => Saga::Completed,
                        (false, false) => Saga::Reversing,
                        (false, true) => {
                            c.owed_reversal = true;
                            Saga::Failed
                        }
                    };
                    tell(c);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stateright::Checker;

    #[test]
    fn the_saga_protocol_holds_every_property() {
        let checker = SagaProtocol::new(None)
            .checker()
            .threads(2)
            .spawn_bfs()
            .join();
        checker.assert_properties();
        eprintln!(
            "saga protocol: {} states, every property holds, every path reachable",
            checker.unique_state_count()
        );
    }

    /// Checks `mutant` for `property` alone and prints the shortest counterexample.
    fn counterexample(
        mutant: Mutant,
        property: &'static str,
        holds: fn(&SagaProtocol, &State) -> bool,
    ) {
        let model = SagaProtocol {
            only: Some(property),
            ..SagaProtocol::new(Some(mutant))
        };
        let checker = model.checker().spawn_bfs().join();
        let trace = checker
            .discovery(property)
            .unwrap_or_else(|| panic!("mutant {mutant:?}: no counterexample to {property}"));
        let model = checker.model();
        let (text, actions) = crate::model::render_until(trace, |s| !holds(model, s));
        eprintln!(
            "mutant {mutant:?} breaks {property} in {} steps:\n{text}",
            actions.len()
        );
    }

    #[test]
    fn without_tombstones_a_late_debit_is_lost() {
        counterexample(Mutant::NoTombstone, "client_contract", client_contract);
    }

    #[test]
    fn a_reversal_queue_in_memory_dies_with_the_process() {
        counterexample(Mutant::VolatileQueue, "client_contract", client_contract);
    }

    #[test]
    fn without_idempotency_a_duplicate_moves_money_twice() {
        counterexample(
            Mutant::NoIdempotency,
            "at_most_one_effect_per_transfer",
            at_most_one_effect,
        );
    }

    #[test]
    fn treating_a_timeout_as_a_refusal_breaks_the_books() {
        counterexample(Mutant::TimeoutIsFailure, "client_contract", client_contract);
    }
}
