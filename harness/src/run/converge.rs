//! Convergence: after the load ends and every fault is healed, the saga log is polled until
//! every saga is final or the profile's window closes. The log is followed by pages, each
//! poll reading only the sagas written since the last (a coordinator that does not page it
//! is read whole each time). A system without a saga log (`GET /admin/sagas` answers 404) is
//! followed through `GET /transfers/{id}` instead: every transfer answered `pending`, or left
//! without an answer, is asked about until it is final.

use super::resolve::indeterminate;
use crate::history::HistoryRecord;
use crate::reconcile::{Convergence, PolledTransfers};
use crate::system::admin::{AdminClient, AdminError};
use crate::system::lookup::TransferLookup;
use futures_util::stream::{self, StreamExt};
use service::contract::{ClientStatus, Saga, SagaDump, SagaPage};
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
    let mut log = SagaLog::Unread;
    loop {
        match log.read(admin, coordinator).await {
            Ok(true) if log.open() == Some(0) => {
                return Convergence {
                    sagas: log.into_dump(),
                    converged: true,
                    convergence_ms: Some(elapsed_ms(started)),
                    polled: None,
                };
            }
            Ok(true) => {}
            Ok(false) => return poll_transfers(lookup, window, started, history).await,
            // A coordinator started again by a fault may still be recovering: keep asking
            // until the window closes; never read at all means convergence is unknown.
            Err(err) => tracing::debug!(%err, "saga log not readable yet"),
        }
        if started.elapsed() > window {
            let sagas = log.into_dump();
            if sagas.is_none() {
                tracing::warn!("saga log not readable within the window; convergence unknown");
            }
            return Convergence {
                sagas,
                converged: false,
                convergence_ms: None,
                polled: None,
            };
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// The saga log as read so far.
enum SagaLog {
    Unread,
    /// Followed by pages: every saga as last read, and where to read from next.
    Paged(FollowedLog),
    /// Read whole, by a coordinator that does not page its log.
    Whole(SagaDump),
}

impl SagaLog {
    /// Reads what changed (by pages) or the whole log again. False: the coordinator keeps
    /// no saga log.
    async fn read(&mut self, admin: &AdminClient, coordinator: &str) -> Result<bool, AdminError> {
        if !matches!(self, SagaLog::Whole(_)) {
            let mut followed = match std::mem::replace(self, SagaLog::Unread) {
                SagaLog::Paged(followed) => followed,
                _ => FollowedLog::default(),
            };
            let paged = followed.catch_up(admin, coordinator).await;
            let first = followed.next_change == 0 && followed.sagas.is_empty();
            match paged {
                Ok(true) => {
                    *self = SagaLog::Paged(followed);
                    return Ok(true);
                }
                // A page refused after others were read: what was read stands.
                Ok(false) if !first => {
                    *self = SagaLog::Paged(followed);
                    return Ok(true);
                }
                Ok(false) => {}
                Err(err) => {
                    if !first {
                        *self = SagaLog::Paged(followed);
                    }
                    return Err(err);
                }
            }
        }
        match admin.sagas_if_kept(coordinator).await? {
            Some(dump) => {
                *self = SagaLog::Whole(dump);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// How many sagas are not final; None before the log was read.
    fn open(&self) -> Option<usize> {
        match self {
            SagaLog::Unread => None,
            SagaLog::Paged(followed) => Some(followed.open),
            SagaLog::Whole(dump) => Some(dump.sagas.iter().filter(|s| !s.state.is_final()).count()),
        }
    }

    fn into_dump(self) -> Option<SagaDump> {
        match self {
            SagaLog::Unread => None,
            SagaLog::Paged(followed) => Some(followed.into_dump()),
            SagaLog::Whole(dump) => Some(dump),
        }
    }
}

/// The saga log followed by pages.
#[derive(Default)]
struct FollowedLog {
    design: String,
    sagas: Vec<Saga>,
    /// Each saga's place in `sagas`, by transfer id.
    at: HashMap<String, usize>,
    /// Sagas not final.
    open: usize,
    /// The cursor to read from next.
    next_change: i64,
}

impl FollowedLog {
    /// Reads the pages after the cursor until none is left. False when the coordinator
    /// does not page its log.
    async fn catch_up(
        &mut self,
        admin: &AdminClient,
        coordinator: &str,
    ) -> Result<bool, AdminError> {
        loop {
            let Some(page) = admin.saga_page(coordinator, self.next_change).await? else {
                return Ok(false);
            };
            let more = page.more && page.next_change > self.next_change;
            self.apply(page);
            if !more {
                return Ok(true);
            }
        }
    }

    /// Every saga of `page` as it is now.
    fn apply(&mut self, page: SagaPage) {
        self.design = page.design;
        self.next_change = self.next_change.max(page.next_change);
        for saga in page.sagas {
            let open = !saga.state.is_final();
            match self.at.get(saga.transfer_id.as_str()) {
                Some(&i) => {
                    let was_open = !self.sagas[i].state.is_final();
                    self.open = self.open + usize::from(open) - usize::from(was_open);
                    self.sagas[i] = saga;
                }
                None => {
                    self.open += usize::from(open);
                    self.at
                        .insert(saga.transfer_id.as_str().to_owned(), self.sagas.len());
                    self.sagas.push(saga);
                }
            }
        }
    }

    /// The log as `GET /admin/sagas` gives it whole: in the order the sagas were created.
    fn into_dump(self) -> SagaDump {
        let mut sagas = self.sagas;
        sagas.sort_by(|a, b| {
            (a.created_ms, a.transfer_id.as_str()).cmp(&(b.created_ms, b.transfer_id.as_str()))
        });
        SagaDump {
            design: self.design,
            sagas,
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use service::contract::SagaState;
    use service::ids::{AccountId, IdempotencyKey, TransferId, UserId};
    use service::money::AmountCents;

    fn saga(id: &str, created_ms: i64, state: SagaState) -> Saga {
        Saga {
            transfer_id: TransferId::parse(id).expect("id"),
            user_id: UserId::parse("u-1").expect("id"),
            idempotency_key: IdempotencyKey::parse(&format!("k-{id}")).expect("key"),
            external_account_id: AccountId::parse("a-1").expect("id"),
            amount_cents: AmountCents::new(100),
            state,
            reason: None,
            created_ms,
            updated_ms: created_ms,
        }
    }

    fn page(sagas: Vec<Saga>, next_change: i64) -> SagaPage {
        SagaPage {
            design: "saga".into(),
            sagas,
            next_change,
            more: false,
        }
    }

    #[test]
    fn a_followed_log_keeps_each_saga_as_last_read_and_counts_the_open_ones() {
        let mut log = FollowedLog::default();
        log.apply(page(
            vec![
                saga("t-2", 2, SagaState::Started),
                saga("t-1", 1, SagaState::Debited),
                saga("t-3", 3, SagaState::Completed),
            ],
            3,
        ));
        assert_eq!((log.open, log.next_change), (2, 3));
        log.apply(page(
            vec![
                saga("t-1", 1, SagaState::Completed),
                saga("t-2", 2, SagaState::Debited),
            ],
            5,
        ));
        assert_eq!(log.open, 1);
        log.apply(page(vec![saga("t-2", 2, SagaState::Reversed)], 6));
        assert_eq!((log.open, log.next_change), (0, 6));
        let dump = log.into_dump();
        let read: Vec<_> = dump
            .sagas
            .iter()
            .map(|s| (s.transfer_id.as_str().to_owned(), s.state))
            .collect();
        // In the order the whole log gives: by creation.
        assert_eq!(
            read,
            [
                ("t-1".to_owned(), SagaState::Completed),
                ("t-2".to_owned(), SagaState::Reversed),
                ("t-3".to_owned(), SagaState::Completed)
            ]
        );
    }
}
