//! What the client asked for, indexed for the checks: each transfer id the answers or the
//! saga log tie to a request (the user, the accounts and the amount it named), and each
//! logical request (a user's idempotency key: the scheduled request and its retries with
//! that key) with every transfer id it became.

use crate::history::HistoryRecord;
use rustc_hash::FxHashMap;
use service::contract::SagaDump;

/// What a request asked of a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asked<'a> {
    pub user_id: &'a str,
    pub external_account_id: &'a str,
    pub amount_cents: u64,
}

/// A user's idempotency key.
pub type KeyOf<'a> = (&'a str, &'a str);

/// One logical request: the amount it asked for and the transfers it became, in the order
/// first seen.
#[derive(Debug, Default)]
pub struct KeyRequest<'a> {
    pub amount_cents: u64,
    pub first: Option<&'a str>,
    /// Transfers after the first (none, unless the key was not honoured: kept out of line so
    /// a million keys stay small).
    pub more: Option<Box<Vec<&'a str>>>,
}

impl<'a> KeyRequest<'a> {
    fn note(&mut self, id: &'a str) {
        match self.first {
            None => self.first = Some(id),
            Some(first) if first != id => {
                let more = self.more.get_or_insert_with(Box::default);
                if !more.contains(&id) {
                    more.push(id);
                }
            }
            Some(_) => {}
        }
    }

    pub fn ids(&self) -> impl Iterator<Item = &'a str> + '_ {
        let more = self.more.iter().flat_map(|m| m.iter().copied());
        self.first.into_iter().chain(more)
    }

    pub fn count(&self) -> usize {
        usize::from(self.first.is_some()) + self.more.as_ref().map_or(0, |m| m.len())
    }
}

#[derive(Debug, Default)]
pub struct Requests<'a> {
    /// Every transfer id an answer named or the saga log holds for a request of the run.
    pub by_id: FxHashMap<&'a str, Asked<'a>>,
    /// Every logical request of the run.
    pub by_key: FxHashMap<KeyOf<'a>, KeyRequest<'a>>,
}

impl<'a> Requests<'a> {
    pub fn index(history: &'a [HistoryRecord], sagas: Option<&'a SagaDump>) -> Requests<'a> {
        let mut requests = Requests::default();
        requests.by_id.reserve(history.len());
        requests.by_key.reserve(history.len());
        for record in history {
            let key = (record.user_id.as_str(), record.key.as_str());
            let request = requests.by_key.entry(key).or_default();
            request.amount_cents = record.amount_cents;
            if let Some(id) = record.transfer_id.as_deref() {
                request.note(id);
                requests.by_id.entry(id).or_insert(Asked {
                    user_id: &record.user_id,
                    external_account_id: &record.external_account_id,
                    amount_cents: record.amount_cents,
                });
            }
        }
        // The saga log ties a transfer to a request by its user and key, also when no answer
        // named it (a timeout, a lost connection).
        for saga in sagas.iter().flat_map(|d| d.sagas.iter()) {
            let key = (saga.user_id.as_str(), saga.idempotency_key.as_str());
            let Some(request) = requests.by_key.get_mut(&key) else {
                continue;
            };
            let id = saga.transfer_id.as_str();
            request.note(id);
            requests.by_id.entry(id).or_insert(Asked {
                user_id: saga.user_id.as_str(),
                external_account_id: saga.external_account_id.as_str(),
                amount_cents: saga.amount_cents.get(),
            });
        }
        requests
    }

    /// The transfer a logical request became, when exactly one is known.
    pub fn only_transfer_of(&self, key: KeyOf<'_>) -> Option<&'a str> {
        self.by_key
            .get(&key)
            .filter(|r| r.more.is_none())
            .and_then(|r| r.first)
    }
}
