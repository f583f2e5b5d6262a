//! Convergence: after the load ends and every fault is healed, the saga log is polled until
//! every saga is final or the profile's window closes. A system without a saga log
//! (`GET /admin/sagas` answers 404) is followed through `GET /transfers/{id}` instead: every
//! transfer answered `pending`, or left without an answer, is asked about until it is final.

use super::resolve::indeterminate;
use crate::history::HistoryRecord;
use crate::reconcile::{Convergence, PolledTransfers};
use crate::system::admin::AdminClient;
use crate::system::lookup::TransferLookup;
use futures_util::stream::{self, StreamExt};
use service::contract::ClientStatus;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// How often the saga log (or the open transfers) is read while waiting.
const POLL_EVERY: Duration = Duration::from_millis(50);
/// Transfers asked about at once.
const CONCURRENT_LOOKUPS: usize = 32;

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Polls `coordinator`'s saga log until every saga is final or `window` has passed; without
/// a saga log, the transfers of `history` whose end the client did not see.
pub async fn converge(
    admin: &AdminClient,
    lookup: &TransferLookup,
    window: Duration,
    history: &[HistoryRecord],
) -> Convergence {
    let coordinator = lookup.coordinator.as_str();
    let started = Instant::now();
    let mut last = None;
    loop {
        match admin.sagas_if_kept(coordinator).await {
            Ok(Some(dump)) => {
                let open = dump.sagas.iter().filter(|s| !s.state.is_final()).count();
                if open == 0 {
                    return Convergence {
                        sagas: Some(dump),
                        converged: true,
                        convergence_ms: Some(elapsed_ms(started)),
                        polled: None,
                    };
                }
                last = Some(dump);
            }
            Ok(None) => return poll_transfers(lookup, window, started, history).await,
            // A coordinator started again by a fault may still be recovering: keep asking
            // until the window closes; never read at all means convergence is unknown.
            Err(err) => tracing::debug!(%err, "saga log not readable yet"),
        }
        if started.elapsed() > window {
            if last.is_none() {
                tracing::warn!("saga log not readable within the window; convergence unknown");
            }
            return Convergence {
                sagas: last,
                converged: false,
                convergence_ms: None,
                polled: None,
            };
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// The transfers whose end the client did not see, each once with the operation that asked
/// for it and its id when an answer gave one (by id, or by key when the lookup goes by key),
/// and how many such operations could not be asked about (no id, and no lookup by key).
pub fn transfers_to_follow(
    history: &[HistoryRecord],
    by_key: bool,
) -> (Vec<(&HistoryRecord, Option<&str>)>, u64) {
    let mut id_of_key: HashMap<(&str, &str), &str> = HashMap::new();
    for r in history {
        if let Some(id) = &r.transfer_id {
            id_of_key.entry((&r.user_id, &r.key)).or_insert(id);
        }
    }
    let mut follow: BTreeMap<(bool, &str, &str), (&HistoryRecord, Option<&str>)> = BTreeMap::new();
    let mut without_id = 0;
    for record in history.iter().filter(|r| indeterminate(r)) {
        let key = (record.user_id.as_str(), record.key.as_str());
        match record
            .transfer_id
            .as_deref()
            .or(id_of_key.get(&key).copied())
        {
            Some(id) => {
                follow.entry((true, id, "")).or_insert((record, Some(id)));
            }
            None if by_key => {
                follow
                    .entry((false, key.0, key.1))
                    .or_insert((record, None));
            }
            None => without_id += 1,
        }
    }
    (follow.into_values().collect(), without_id)
}

/// Asks `GET /transfers/{id}` for every transfer not known final until all are, or until
/// `window` (counted from `started`) has passed.
async fn poll_transfers(
    lookup: &TransferLookup,
    window: Duration,
    started: Instant,
    history: &[HistoryRecord],
) -> Convergence {
    let (follow, without_id) = transfers_to_follow(history, lookup.by_key());
    let asked = follow.len() as u64;
    let mut pending = follow;
    loop {
        let still: Vec<Option<(&HistoryRecord, Option<&str>)>> = stream::iter(pending)
            .map(|(record, id)| async move {
                // Looked up by key, a transfer the system does not know never arrived: the
                // request left nothing to wait for.
                let finished = match lookup.look(record, id).await {
                    Ok(Some(looked)) => looked.status != ClientStatus::Pending,
                    Ok(None) => id.is_none(),
                    Err(_) => false,
                };
                (!finished).then_some((record, id))
            })
            .buffer_unordered(CONCURRENT_LOOKUPS)
            .collect()
            .await;
        pending = still.into_iter().flatten().collect();
        let mut open: Vec<String> = pending
            .iter()
            .map(|(record, id)| id.map_or_else(|| format!("key {}", record.key), str::to_owned))
            .collect();
        open.sort_unstable();
        let converged = open.is_empty();
        if converged || started.elapsed() > window {
            return Convergence {
                sagas: None,
                converged,
                convergence_ms: converged.then(|| elapsed_ms(started)),
                polled: Some(PolledTransfers {
                    asked,
                    open,
                    without_id,
                }),
            };
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}
