//! The indeterminate answers, resolved the Jepsen way: after the run, for every operation
//! answered `pending` or not answered at all (a timeout, a broken connection, a 5xx), the
//! coordinator is asked what became of its transfer (`GET /transfers/{id}`). The id is the
//! answer's own, or the one another answer with the same key or the saga log gives.

use crate::client::kind;
use crate::history::{HistoryRecord, Outcome};
use crate::reconcile::ids::Numbering;
use crate::reconcile::requests::Requests;
use crate::reconcile::Resolution;
use crate::system::lookup::{Looked, TransferLookup};
use futures_util::stream::{self, StreamExt};
use service::contract::SagaDump;
use std::collections::HashMap;

/// Transfers asked about at once.
const CONCURRENT_LOOKUPS: usize = 32;

/// How one transfer is asked about: by the id an answer gave, or by the user's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Ask<'a> {
    Id(&'a str),
    Key(&'a str, &'a str),
}

/// Whether an operation's answer left its fate unknown.
pub fn indeterminate(record: &HistoryRecord) -> bool {
    match record.outcome {
        Outcome::Pending => true,
        Outcome::Error => record
            .error_kind
            .as_deref()
            .is_some_and(kind::indeterminate),
        _ => false,
    }
}

/// What became of each indeterminate operation of `history`.
pub async fn resolve(
    lookup: &TransferLookup,
    history: &[HistoryRecord],
    sagas: Option<&SagaDump>,
) -> Vec<Resolution> {
    let mut transfer_ids = Numbering::default();
    let requests = Requests::index(history, sagas, &mut transfer_ids);
    let pending: Vec<(&HistoryRecord, Option<&str>)> = history
        .iter()
        .filter(|r| indeterminate(r))
        .map(|r| {
            let id = r.transfer_id.as_deref().or_else(|| {
                let key = (r.user_id.as_str(), r.key.as_str());
                let slot = requests.only_transfer_of(key)?;
                Some(transfer_ids.value(slot))
            });
            (r, id)
        })
        .collect();
    // Each transfer asked about once: retries of one key share it. Without an id, a lookup
    // by key asks by the key.
    let by_key = lookup.by_key();
    let mut asks: Vec<(Ask, &HistoryRecord, Option<&str>)> = pending
        .iter()
        .filter_map(|(record, id)| {
            let ask = match id {
                Some(id) => Ask::Id(id),
                None if by_key => Ask::Key(&record.user_id, &record.key),
                None => return None,
            };
            Some((ask, *record, *id))
        })
        .collect();
    asks.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    asks.dedup_by(|a, b| a.0 == b.0);
    let answers: HashMap<Ask, Option<Option<Looked>>> = stream::iter(asks)
        .map(|(ask, record, id)| async move {
            let answer = lookup.look(record, id).await;
            (ask, answer.ok())
        })
        .buffer_unordered(CONCURRENT_LOOKUPS)
        .collect()
        .await;
    pending
        .into_iter()
        .map(|(record, id)| {
            let ask = match id {
                Some(id) => Ask::Id(id),
                None => Ask::Key(&record.user_id, &record.key),
            };
            let answer = answers.get(&ask).cloned().flatten();
            let looked = answer.clone().flatten();
            Resolution {
                op: record.op,
                attempt: record.attempt,
                outcome: record.outcome,
                user_id: record.user_id.clone(),
                key: record.key.clone(),
                transfer_id: id
                    .map(str::to_owned)
                    .or_else(|| looked.as_ref().and_then(|l| l.transfer_id.clone())),
                final_status: looked.map(|l| l.status),
                asked: answer.is_some(),
            }
        })
        .collect()
}
