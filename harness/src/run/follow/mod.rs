//! The run followed as it goes, for a system whose books and saga log read by pages: every
//! second of the load, the saga log then both institutions' books are read from where the
//! last read stopped, with the history as it is written; each fact goes to the live
//! reconciler (`reconcile::live`) and the entries and sagas to the run folder. Requests that
//! are final and quiet are judged and let go, their indeterminate answers asked about first.
//! After the load, the same reads follow convergence, make the final read, and read the
//! books again once they are at rest, by pages too. Memory holds the requests still open,
//! not the run.

mod end;

use super::error::RunError;
use super::resolve;
use crate::history::HistoryRecord;
use crate::reconcile::evidence::FactFiles;
use crate::reconcile::live::{Live, Quiet, Side};
use crate::reconcile::{self, Convergence, Reconciliation};
use crate::stats::LiveStats;
use crate::system::admin::AdminClient;
use crate::system::lookup::TransferLookup;
use crate::system::Endpoints;
use service::contract::{Dump, DumpCursor, Entry, TransferRecord, TransferStatus};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

/// How often the books and the saga log are read during the load.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);
/// How often they are read while waiting for the sagas to be final.
const CONVERGE_POLL: Duration = Duration::from_millis(50);

/// The two institutions, in the order they are read: the ledger first, so that every credit
/// read has its debit applied already.
const SIDES: [Side; 2] = [Side::Ledger, Side::External];

fn index(side: Side) -> usize {
    match side {
        Side::External => 0,
        Side::Ledger => 1,
    }
}

/// The run being followed.
pub(super) struct Follower {
    admin: AdminClient,
    lookup: TransferLookup,
    /// The external side's and the ledger's addresses.
    bases: [String; 2],
    coordinator: String,
    live: Option<Live>,
    retries: Option<crate::profile::plan::RetryPlan>,
    cursors: [DumpCursor; 2],
    saga_change: i64,
    design: String,
    history: UnboundedReceiver<HistoryRecord>,
    /// Where the followed facts are written (taken when the run ends).
    files: Option<FactFiles>,
    /// Each account's balance as of the last entry read, per side.
    balances: [BTreeMap<String, u64>; 2],
    tombstones: Vec<TransferRecord>,
    start: tokio::time::Instant,
    stats: Arc<LiveStats>,
}

/// What the follower needs to start.
pub(super) struct Start<'a> {
    pub admin: &'a AdminClient,
    pub endpoints: &'a Endpoints,
    pub before: &'a (Dump, Dump),
    /// How long a request must hear nothing before it is judged.
    pub quiet: Quiet,
    /// Whether the client tries again after an answer.
    pub retries: Option<crate::profile::plan::RetryPlan>,
    pub out: &'a Path,
    pub start: tokio::time::Instant,
    pub stats: Arc<LiveStats>,
}

/// What the follower found, for the summary.
pub(super) struct Followed {
    pub reconciliation: Reconciliation,
    pub convergence_ms: Option<u64>,
    pub design: Option<String>,
}

impl Follower {
    /// A follower, and where the history is to be handed to it; None when the system cannot
    /// be followed (books read from a `books:` source or a mapped API, or a service that does
    /// not page its books or its saga log): the run then reads everything at the end.
    pub(super) async fn start(
        s: Start<'_>,
    ) -> Result<Option<(Follower, UnboundedSender<HistoryRecord>)>, RunError> {
        let endpoints = s.endpoints;
        let (Some(external), Some(ledger)) = (&endpoints.external, &endpoints.ledger) else {
            return Ok(None);
        };
        if endpoints.books.given() || endpoints.api.is_some() {
            return Ok(None);
        }
        let (external_before, ledger_before) = s.before;
        let cursors = [
            DumpCursor {
                after_seq: reconcile::effects::last_seq(external_before),
                after_change: 0,
            },
            DumpCursor {
                after_seq: reconcile::effects::last_seq(ledger_before),
                after_change: 0,
            },
        ];
        let paged = [
            s.admin.dump_page(external, cursors[0]).await.ok().flatten(),
            s.admin.dump_page(ledger, cursors[1]).await.ok().flatten(),
        ];
        let log = s
            .admin
            .saga_page(&endpoints.coordinator, 0)
            .await
            .ok()
            .flatten();
        if paged.iter().any(Option::is_none) || log.is_none() {
            return Ok(None);
        }
        let files = FactFiles::create(s.out)?;
        let (tap, history) = tokio::sync::mpsc::unbounded_channel();
        let balances_of = |dump: &Dump| {
            dump.accounts
                .iter()
                .map(|a| (a.account_id.clone(), a.balance_cents.get()))
                .collect()
        };
        let follower = Follower {
            admin: s.admin.clone(),
            lookup: TransferLookup::new(s.admin, endpoints),
            bases: [external.clone(), ledger.clone()],
            coordinator: endpoints.coordinator.clone(),
            live: Some(Live::new(s.quiet, external_before)),
            retries: s.retries,
            cursors,
            saga_change: 0,
            design: String::new(),
            history,
            files: Some(files),
            balances: [balances_of(external_before), balances_of(ledger_before)],
            tombstones: Vec::new(),
            start: s.start,
            stats: s.stats,
        };
        Ok(Some((follower, tap)))
    }

    fn live(&mut self) -> &mut Live {
        self.live.get_or_insert_with(idle)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(
            tokio::time::Instant::now()
                .saturating_duration_since(self.start)
                .as_millis(),
        )
        .unwrap_or(u64::MAX)
    }

    /// Follows the run every second until `stop` fires (or is dropped), then hands the
    /// follower back.
    pub(super) async fn follow(mut self, mut stop: tokio::sync::oneshot::Receiver<()>) -> Follower {
        loop {
            tokio::select! {
                () = tokio::time::sleep(FOLLOW_EVERY) => {}
                _ = &mut stop => break,
            }
            self.step().await;
        }
        self
    }

    /// One read of everything that changed, and the requests that may be closed judged.
    /// Whether every read succeeded.
    async fn step(&mut self) -> bool {
        let now_ms = self.now_ms();
        while let Ok(record) = self.history.try_recv() {
            let retrying = self
                .retries
                .as_ref()
                .is_some_and(|r| r.retries(record.outcome, record.attempt));
            self.live().record(record, retrying, now_ms);
        }
        // The saga log before the books: every entry written before a saga was seen final
        // is in the books read after.
        let mut whole = self.read_sagas(now_ms).await;
        for side in SIDES {
            whole &= self.read_books(side, now_ms).await;
        }
        if let Err(err) = self.files.as_mut().map_or(Ok(()), FactFiles::flush) {
            tracing::warn!(%err, "the followed facts could not be written");
        }
        if whole {
            self.judge_closable(now_ms).await;
        }
        whole
    }

    async fn read_sagas(&mut self, now_ms: u64) -> bool {
        loop {
            match self
                .admin
                .saga_page(&self.coordinator, self.saga_change)
                .await
            {
                Ok(Some(page)) => {
                    self.design.clone_from(&page.design);
                    self.saga_change = page.next_change;
                    self.live().sagas(&page.design, page.sagas, now_ms);
                    if !page.more {
                        return true;
                    }
                }
                Ok(None) => return false,
                Err(err) => {
                    tracing::debug!(%err, "the saga log could not be read");
                    return false;
                }
            }
        }
    }

    async fn read_books(&mut self, side: Side, now_ms: u64) -> bool {
        let i = index(side);
        loop {
            let page = match self.admin.dump_page(&self.bases[i], self.cursors[i]).await {
                Ok(Some(page)) => page,
                Ok(None) => return false,
                Err(err) => {
                    tracing::debug!(%err, "the books could not be read");
                    return false;
                }
            };
            self.cursors[i] = page.next;
            let external = side == Side::External;
            let written = self
                .files
                .as_mut()
                .map(|f| f.entries(external, &page.entries));
            if let Some(Err(err)) = written {
                tracing::warn!(%err, "the followed entries could not be written");
            }
            track(&mut self.balances[i], &page.entries);
            if side == Side::External {
                let tombstones = page
                    .transfers
                    .iter()
                    .filter(|t| t.status == TransferStatus::Tombstone);
                self.tombstones.extend(tombstones.cloned());
                self.live().transfer_records(page.transfers, now_ms);
            }
            self.live().entries(side, page.entries, now_ms);
            if !page.more {
                return true;
            }
        }
    }

    /// Judges the requests final and quiet, their indeterminate answers asked about first.
    async fn judge_closable(&mut self, now_ms: u64) {
        let part = self.live().closable(now_ms);
        if part.is_empty() {
            return;
        }
        let resolutions = resolve::resolve(&self.lookup, &part.history, Some(&part.sagas)).await;
        if let Some(Err(err)) = self.files.as_mut().map(|f| f.sagas(&part.sagas.sagas)) {
            tracing::warn!(%err, "the followed sagas could not be written");
        }
        if let Some(Err(err)) = self.files.as_mut().map(|f| f.resolutions(&resolutions)) {
            tracing::warn!(%err, "the resolutions could not be written");
        }
        // Judged here, on the thread that follows the run (the load runs on the runtime's
        // workers): a second's part takes a few milliseconds.
        let live = self.live();
        live.judge(part, resolutions);
        let violations = live.counts.violations;
        self.stats.set_violations(violations);
    }

    /// Follows the sagas until every one is final or `window` has passed.
    pub(super) async fn converge(&mut self, window: Duration) -> Convergence {
        let started = Instant::now();
        loop {
            let whole = self.step().await;
            if whole && self.live().open_sagas() == 0 {
                return Convergence {
                    sagas: None,
                    converged: true,
                    convergence_ms: Some(
                        u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    ),
                    polled: None,
                };
            }
            if started.elapsed() > window {
                return Convergence {
                    sagas: None,
                    converged: false,
                    convergence_ms: None,
                    polled: None,
                };
            }
            tokio::time::sleep(CONVERGE_POLL).await;
        }
    }
}

/// Each account's balance after `entries`.
fn track(balances: &mut BTreeMap<String, u64>, entries: &[Entry]) {
    for e in entries {
        match balances.get_mut(&e.account_id) {
            Some(balance) => *balance = e.balance_after_cents.get(),
            None => {
                balances.insert(e.account_id.clone(), e.balance_after_cents.get());
            }
        }
    }
}

/// A reconciler with nothing to judge (the follower's own is only ever taken at the end).
fn idle() -> Live {
    let quiet = Quiet {
        done_ms: 0,
        open_ms: 0,
    };
    Live::new(quiet, &empty_dump())
}

fn empty_dump() -> Dump {
    Dump {
        accounts: Vec::new(),
        entries: Vec::new(),
        transfers: Vec::new(),
    }
}

/// How long the books may take to show what a request's last answer did.
const BOOKS_LAG: Duration = Duration::from_secs(2);

/// How long a request must hear nothing before it is judged: a request the client is done
/// with, `BOOKS_LAG`; one it may try again (or not answered yet), long enough for the retry's
/// delay and the client's timeout too.
pub(super) fn quiet_for(plan: &crate::profile::plan::RunPlan) -> Quiet {
    let delay = plan.retries.as_ref().map_or(Duration::ZERO, |r| r.after);
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    Quiet {
        done_ms: ms(BOOKS_LAG),
        open_ms: ms(BOOKS_LAG + plan.client_timeout + delay),
    }
}
