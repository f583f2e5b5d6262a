//! The indeterminate answers, resolved the Jepsen way: after the run, for every operation
//! answered `pending` or not answered at all (a timeout, a broken connection, a 5xx), the
//! coordinator is asked what became of its transfer (`GET /transfers/{id}`). The id is the
//! answer's own, or the one another answer with the same key or the saga log gives.

use crate::client::kind;
use crate::history::{HistoryRecord, Outcome};
use crate::reconcile::ids::Numbering;
use crate::reconcile::requests::Requests;
use crate::reconcile::Resolution;
use crate::system::admin::AdminClient;
use futures_util::stream::{self, StreamExt};
use service::contract::{ClientStatus, SagaDump};
use std::collections::HashMap;

/// Transfers asked about at once.
const CONCURRENT_LOOKUPS: usize = 32;

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
    admin: &AdminClient,
    coordinator: &str,
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
    let mut ids: Vec<&str> = pending.iter().filter_map(|(_, id)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    // Each transfer asked about once: retries of one key share it.
    let answers: HashMap<&str, Option<Option<ClientStatus>>> = stream::iter(ids)
        .map(|id| async move {
            let answer = admin.transfer(coordinator, id).await;
            (id, answer.ok().map(|view| view.map(|v| v.status)))
        })
        .buffer_unordered(CONCURRENT_LOOKUPS)
        .collect()
        .await;
    pending
        .into_iter()
        .map(|(record, id)| {
            let answer = id.and_then(|id| answers.get(id).copied().flatten());
            Resolution {
                op: record.op,
                attempt: record.attempt,
                outcome: record.outcome,
                user_id: record.user_id.clone(),
                key: record.key.clone(),
                transfer_id: id.map(str::to_owned),
                final_status: answer.flatten(),
                asked: answer.is_some(),
            }
        })
        .collect()
}
