//! What the client asked for, indexed for the checks: each transfer id the answers or the
//! saga log tie to a request (the user, the accounts and the amount it named), and each
//! logical request (a user's idempotency key: the scheduled request and its retries with
//! that key) with every transfer id it became.

use crate::history::HistoryRecord;
use service::contract::SagaDump;
use std::collections::{HashMap, HashSet};

/// What a request asked of a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asked<'a> {
    pub user_id: &'a str,
    pub external_account_id: &'a str,
    pub amount_cents: u64,
}

/// A user's idempotency key.
pub type KeyOf<'a> = (&'a str, &'a str);

#[derive(Debug, Default)]
pub struct Requests<'a> {
    /// Every transfer id an answer named or the saga log holds for a request of the run.
    pub by_id: HashMap<&'a str, Asked<'a>>,
    /// Every logical request, with the transfer ids it became, in the order first seen.
    pub by_key: HashMap<KeyOf<'a>, Vec<&'a str>>,
    /// The amount each logical request asked for.
    pub amount_of_key: HashMap<KeyOf<'a>, u64>,
}

impl<'a> Requests<'a> {
    pub fn index(history: &'a [HistoryRecord], sagas: Option<&'a SagaDump>) -> Requests<'a> {
        let mut requests = Requests::default();
        let mut keys: HashSet<KeyOf<'a>> = HashSet::with_capacity(history.len());
        for record in history {
            let key = (record.user_id.as_str(), record.key.as_str());
            keys.insert(key);
            requests.amount_of_key.insert(key, record.amount_cents);
            if let Some(id) = record.transfer_id.as_deref() {
                requests.by_id.entry(id).or_insert(Asked {
                    user_id: &record.user_id,
                    external_account_id: &record.external_account_id,
                    amount_cents: record.amount_cents,
                });
                requests.note(key, id);
            }
        }
        // The saga log ties a transfer to a request by its user and key, also when no answer
        // named it (a timeout, a lost connection).
        for saga in sagas.iter().flat_map(|d| d.sagas.iter()) {
            let key = (saga.user_id.as_str(), saga.idempotency_key.as_str());
            if !keys.contains(&key) {
                continue;
            }
            let id = saga.transfer_id.as_str();
            requests.by_id.entry(id).or_insert(Asked {
                user_id: saga.user_id.as_str(),
                external_account_id: saga.external_account_id.as_str(),
                amount_cents: saga.amount_cents.get(),
            });
            requests.note(key, id);
        }
        requests
    }

    fn note(&mut self, key: KeyOf<'a>, id: &'a str) {
        let ids = self.by_key.entry(key).or_default();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }

    /// The transfer a logical request became, when exactly one is known.
    pub fn only_transfer_of(&self, key: KeyOf<'_>) -> Option<&'a str> {
        match self.by_key.get(&key).map(Vec::as_slice) {
            Some([id]) => Some(id),
            _ => None,
        }
    }
}
