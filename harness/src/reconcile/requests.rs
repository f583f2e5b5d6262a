//! What the client asked for, indexed for the checks: each transfer id the answers or the
//! saga log tie to a request (the user, the accounts and the amount it named), and each
//! logical request (a user's idempotency key: the scheduled request and its retries with
//! that key) with every transfer id it became.

use super::evidence::Resolution;
use super::ids::{Numbering, Slot};
use crate::history::HistoryRecord;
use service::contract::{Saga, SagaDump};

/// What a request asked of a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asked<'a> {
    pub user_id: &'a str,
    pub external_account_id: &'a str,
    pub amount_cents: u64,
}

/// A user's idempotency key.
pub type KeyOf<'a> = (&'a str, &'a str);

/// One logical request: the amount it asked for and the transfers it became (their
/// slots), in the order first seen.
#[derive(Debug, Default)]
pub struct KeyRequest {
    pub amount_cents: u64,
    pub first: Option<Slot>,
    /// Transfers after the first (none, unless the key was not honoured: kept out of line so
    /// a million keys stay small).
    pub more: Option<Box<Vec<Slot>>>,
}

impl KeyRequest {
    fn note(&mut self, slot: Slot) {
        match self.first {
            None => self.first = Some(slot),
            Some(first) if first != slot => {
                let more = self.more.get_or_insert_with(Box::default);
                if !more.contains(&slot) {
                    more.push(slot);
                }
            }
            Some(_) => {}
        }
    }

    pub fn slots(&self) -> impl Iterator<Item = Slot> + '_ {
        let more = self.more.iter().flat_map(|m| m.iter().copied());
        self.first.into_iter().chain(more)
    }

    pub fn count(&self) -> usize {
        usize::from(self.first.is_some()) + self.more.as_ref().map_or(0, |m| m.len())
    }
}

/// What asked for a transfer: a history record's position, or the history's length plus a
/// saga's position in the log.
type Source = u32;

/// Nothing asked for the transfer.
const NO_SOURCE: Source = Source::MAX;

/// Notes what asked for the transfer numbered `slot`, unless something did already.
fn ask(by_id: &mut Vec<Source>, slot: Slot, source: usize) {
    let i = slot as usize;
    if i >= by_id.len() {
        by_id.resize(i + 1, NO_SOURCE);
    }
    if by_id[i] == NO_SOURCE {
        by_id[i] = source as Source;
    }
}

#[derive(Debug, Default)]
pub struct Requests<'a> {
    /// By transfer slot: the record or saga that tells what was asked of it (none for a
    /// transfer no answer named and the saga log does not tie to a request of the run).
    by_id: Vec<Source>,
    history: &'a [HistoryRecord],
    sagas: &'a [Saga],
    /// Every logical request of the run, numbered.
    pub keys: Numbering<u32>,
    /// By key slot.
    pub by_key: Vec<KeyRequest>,
    /// Per history record, the slot of the transfer its answer named.
    pub history_slots: Vec<Option<Slot>>,
    /// Per history record, the slot of its logical request (its key).
    pub history_keys: Vec<Slot>,
    /// Per saga of the log, the slot of its transfer.
    pub saga_slots: Vec<Slot>,
}

/// The run's logical requests numbered (each slot keeps the position of the first history
/// record with its key), with the key slot of every history record and of every saga (None
/// for a saga of no request of the run). It needs no transfer ids, so it can be built beside
/// them.
#[derive(Debug, Default)]
pub struct KeySlots {
    pub keys: Numbering<u32>,
    pub of_history: Vec<Slot>,
    pub of_sagas: Vec<Option<Slot>>,
}

impl KeySlots {
    pub fn of(history: &[HistoryRecord], sagas: Option<&SagaDump>) -> KeySlots {
        let sagas = sagas.map_or(&[][..], |d| d.sagas.as_slice());
        let mut keys = Numbering::with_capacity(history.len());
        let mut of_history = Vec::with_capacity(history.len());
        let records = (0..).zip(history);
        let items = records.map(|(i, r)| ((r.user_id.as_str(), r.key.as_str()), i, ()));
        keys.number_with(items, |slot, ()| of_history.push(slot));
        let mut of_sagas = Vec::with_capacity(sagas.len());
        let items = sagas
            .iter()
            .map(|s| ((s.user_id.as_str(), s.idempotency_key.as_str()), ()));
        keys.find_with(items, |slot, ()| of_sagas.push(slot));
        KeySlots {
            keys,
            of_history,
            of_sagas,
        }
    }
}

impl<'a> Requests<'a> {
    /// Indexes the history and the saga log, numbering their transfer ids in `ids`.
    pub fn index(
        history: &'a [HistoryRecord],
        sagas: Option<&'a SagaDump>,
        ids: &mut Numbering<&'a str>,
    ) -> Requests<'a> {
        Requests::with_keys(history, sagas, &[], ids, KeySlots::of(history, sagas))
    }

    /// Indexes the history and the saga log whose keys are numbered in `keys`, numbering
    /// their transfer ids in `ids`.
    pub fn with_keys(
        history: &'a [HistoryRecord],
        sagas: Option<&'a SagaDump>,
        looked_up: &'a [Resolution],
        ids: &mut Numbering<&'a str>,
        keys: KeySlots,
    ) -> Requests<'a> {
        let sagas = sagas.map_or(&[][..], |d| d.sagas.as_slice());
        let KeySlots {
            keys,
            of_history,
            of_sagas,
        } = keys;
        let mut by_key: Vec<KeyRequest> = Vec::with_capacity(keys.len());
        by_key.resize_with(keys.len(), KeyRequest::default);
        let mut history_slots = vec![None; history.len()];
        let mut by_id: Vec<Source> = Vec::with_capacity(ids.len());
        let answered = history.iter().enumerate().filter_map(|(i, r)| {
            let id = r.transfer_id.as_deref()?;
            Some((id, id, i))
        });
        ids.number_with(answered, |slot, i| {
            history_slots[i] = Some(slot);
            by_key[of_history[i] as usize].note(slot);
            ask(&mut by_id, slot, i);
        });
        for (record, &key) in history.iter().zip(&of_history) {
            by_key[key as usize].amount_cents = record.amount_cents;
        }
        // The saga log ties a transfer to a request by its user and key, also when no answer
        // named it (a timeout, a lost connection).
        let mut saga_slots = Vec::with_capacity(sagas.len());
        let logged = sagas.iter().zip(of_sagas).enumerate();
        let items =
            logged.map(|(i, (s, key))| (s.transfer_id.as_str(), s.transfer_id.as_str(), (i, key)));
        ids.number_with(items, |slot, (i, key)| {
            saga_slots.push(slot);
            if let Some(key) = key {
                by_key[key as usize].note(slot);
                ask(&mut by_id, slot, history.len() + i);
            }
        });
        // A lookup after the run ties a transfer to its request by the key too, for a system
        // that keeps no saga log (a mapped API's status lookup by key).
        let looked = looked_up.iter().filter_map(|r| {
            let id = r.transfer_id.as_deref()?;
            let key = keys.find(&(r.user_id.as_str(), r.key.as_str()))?;
            Some((id, id, key))
        });
        ids.number_with(looked, |slot, key| {
            by_key[key as usize].note(slot);
            ask(&mut by_id, slot, keys.value(key) as usize);
        });
        by_id.resize(ids.len(), NO_SOURCE);
        Requests {
            by_id,
            history,
            sagas,
            keys,
            by_key,
            history_slots,
            history_keys: of_history,
            saga_slots,
        }
    }

    /// The user and key of the logical request numbered `key`.
    pub fn key(&self, key: Slot) -> KeyOf<'a> {
        let record = &self.history[self.keys.value(key) as usize];
        (record.user_id.as_str(), record.key.as_str())
    }

    /// What the request that produced the transfer numbered `slot` asked.
    pub fn asked(&self, slot: Slot) -> Option<Asked<'a>> {
        let source = *self.by_id.get(slot as usize)? as usize;
        if let Some(record) = self.history.get(source) {
            return Some(Asked {
                user_id: &record.user_id,
                external_account_id: &record.external_account_id,
                amount_cents: record.amount_cents,
            });
        }
        let saga = self.sagas.get(source.checked_sub(self.history.len())?)?;
        Some(Asked {
            user_id: saga.user_id.as_str(),
            external_account_id: saga.external_account_id.as_str(),
            amount_cents: saga.amount_cents.get(),
        })
    }

    /// The transfer a logical request became, when exactly one is known.
    pub fn only_transfer_of(&self, key: KeyOf<'_>) -> Option<Slot> {
        let slot = self.keys.find(&key)?;
        let request = &self.by_key[slot as usize];
        request.more.is_none().then_some(request.first).flatten()
    }
}
