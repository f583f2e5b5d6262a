//! The recovery worker: finishes every non-final saga that no live task is driving, such as
//! those whose request ran out of time, and all of them after a restart.
//!
//! It reads the log once, when it starts: every saga an earlier life of the process left
//! open. After that nothing is rescanned: a request handler that leaves its saga unfinished
//! hands the id over (`hand_over`), and a saga the worker could not finish goes back into its
//! queue, due again after a capped, jittered exponential backoff. The queue is ordered by
//! when each saga is due; the worker takes every due saga its free slots allow, claims them
//! and reads their rows in one batch. So a backlog of tens of thousands costs a heap of ids,
//! not a scan of the log every tick, and a saga due now is never starved by older ones still
//! backing off.

use super::ownership::{OwnerGuard, Ownership};
use super::saga::{Driver, StartedMode, Step};
use super::saga_log::{self, Saga};
use crate::ids::TransferId;
use rand::Rng;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// How the worker paces itself.
#[derive(Debug, Clone)]
pub struct RecoveryConfig {
    /// Timeout of each remote call the worker makes.
    pub call_timeout: Duration,
    /// Sagas driven at once.
    pub max_concurrent: usize,
    /// First retry delay; doubles per failed attempt up to `backoff_cap`.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
}

impl RecoveryConfig {
    /// The worker's pacing, with `call_timeout` for each remote call (a coordinator setting).
    pub fn with_call_timeout(call_timeout: Duration) -> Self {
        RecoveryConfig {
            call_timeout,
            max_concurrent: 64,
            backoff_base: Duration::from_millis(20),
            backoff_cap: Duration::from_millis(2000),
        }
    }
}

impl RecoveryConfig {
    /// The longest wait before try `attempts + 1` of a saga: `backoff_base` doubled per
    /// failed attempt, never past `backoff_cap` (a saga is tried again and again until it
    /// is final: what it owes cannot be given up).
    pub fn backoff(&self, attempts: u32) -> Duration {
        let exp = self.backoff_base.saturating_mul(1u32 << attempts.min(16));
        exp.min(self.backoff_cap)
    }
}

/// The sagas the worker owes a try, by when each is due, and how often each was tried.
#[derive(Default)]
struct DueQueue {
    due: BinaryHeap<Reverse<(Instant, TransferId)>>,
    attempts: HashMap<TransferId, u32>,
}

impl DueQueue {
    fn push(&mut self, at: Instant, id: TransferId) {
        self.due.push(Reverse((at, id)));
    }

    /// Up to `max` ids due by `now`, earliest first.
    fn take_due(&mut self, now: Instant, max: usize) -> Vec<TransferId> {
        let mut taken = Vec::new();
        while taken.len() < max {
            match self.due.peek() {
                Some(Reverse((at, _))) if *at <= now => {}
                _ => break,
            }
            if let Some(Reverse((_, id))) = self.due.pop() {
                taken.push(id);
            }
        }
        taken
    }

    fn next_due(&self) -> Option<Instant> {
        self.due.peek().map(|Reverse((at, _))| *at)
    }
}

pub struct Recovery {
    pub driver: Arc<Driver>,
    pub ownership: Ownership,
    pub config: RecoveryConfig,
    /// Woken when a saga is handed over or a slot frees, so due work starts at once.
    wake: Notify,
    queue: Mutex<DueQueue>,
    slots: Arc<Semaphore>,
}

impl Recovery {
    pub fn new(driver: Arc<Driver>, ownership: Ownership, config: RecoveryConfig) -> Arc<Recovery> {
        let slots = Arc::new(Semaphore::new(config.max_concurrent));
        Arc::new(Recovery {
            driver,
            ownership,
            config,
            wake: Notify::new(),
            queue: Mutex::new(DueQueue::default()),
            slots,
        })
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, DueQueue> {
        match self.queue.lock() {
            Ok(q) => q,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Takes over a saga its request handler left unfinished: due at once.
    pub fn hand_over(&self, id: TransferId) {
        self.queue().push(Instant::now(), id);
        self.wake.notify_one();
    }

    /// How many sagas wait in the queue (due or backing off).
    pub fn queued(&self) -> usize {
        self.queue().due.len()
    }

    /// Runs forever: read what an earlier life left open, then drive what falls due.
    pub async fn run(self: Arc<Self>) {
        while let Err(err) = self.enqueue_left_open().await {
            tracing::error!(%err, "recovery cannot read the saga log; trying again");
            tokio::time::sleep(self.config.backoff_cap).await;
        }
        loop {
            let free = self.slots.available_permits();
            let due = self.queue().take_due(Instant::now(), free);
            if !due.is_empty() {
                if let Err(err) = self.clone().start(due.clone()).await {
                    tracing::error!(%err, "recovery cannot read a batch of sagas");
                    let later = Instant::now() + self.config.backoff_cap;
                    let mut queue = self.queue();
                    for id in due {
                        queue.push(later, id);
                    }
                }
                continue;
            }
            let next_due = self.queue().next_due();
            let nap = next_due.map_or(self.config.backoff_cap, |at| {
                at.saturating_duration_since(Instant::now())
            });
            tokio::select! {
                () = tokio::time::sleep(nap) => {}
                () = self.wake.notified() => {}
            }
        }
    }

    /// Queues every saga the log holds open, once, at start.
    async fn enqueue_left_open(&self) -> Result<(), crate::store::StoreError> {
        let open = self.driver.log.read(saga_log::open_saga_ids).await?;
        if !open.is_empty() {
            tracing::info!(sagas = open.len(), "recovery: sagas left open");
        }
        let now = Instant::now();
        let mut queue = self.queue();
        for id in open {
            queue.push(now, id);
        }
        Ok(())
    }

    /// Claims a batch of due sagas, reads their rows in one read, and drives each in its own
    /// task. A saga another task owns is left to it: its owner hands it back if it stays open.
    async fn start(self: Arc<Self>, due: Vec<TransferId>) -> Result<(), crate::store::StoreError> {
        let mut claimed: Vec<(OwnerGuard, OwnedSemaphorePermit)> = Vec::with_capacity(due.len());
        for id in due {
            let Some(guard) = self.ownership.try_claim(&id) else {
                continue;
            };
            let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                self.queue().push(Instant::now(), id);
                break;
            };
            claimed.push((guard, slot));
        }
        if claimed.is_empty() {
            return Ok(());
        }
        // Read after the claims: no other task can move these rows now, so they are fresh.
        let ids: Vec<TransferId> = claimed.iter().map(|(g, _)| g.id().clone()).collect();
        let rows = self
            .driver
            .log
            .read(move |conn| saga_log::get_many(conn, &ids))
            .await?;
        for ((guard, slot), row) in claimed.into_iter().zip(rows) {
            let Some(saga) = row else {
                tracing::error!(transfer_id = %guard.id(), "saga vanished from the log");
                continue;
            };
            if saga.state.is_final() {
                self.queue().attempts.remove(&saga.transfer_id);
                continue;
            }
            let worker = self.clone();
            tokio::spawn(async move {
                worker.drive(saga).await;
                drop(guard);
                drop(slot);
                worker.wake.notify_one();
            });
        }
        Ok(())
    }

    /// Drives one saga until it is final or blocked (its row read after it was claimed).
    async fn drive(&self, mut saga: Saga) {
        let mut mode = StartedMode::Abort;
        loop {
            match self
                .driver
                .step(&mut saga, &mut mode, self.config.call_timeout)
                .await
            {
                Ok(Step::Progressed) => continue,
                Ok(Step::Done) => {
                    self.queue().attempts.remove(&saga.transfer_id);
                    return;
                }
                Ok(Step::Blocked(why)) => {
                    self.defer(&saga.transfer_id, &why);
                    return;
                }
                Err(err) => {
                    tracing::error!(%err, transfer_id = %saga.transfer_id, "saga step failed");
                    self.defer(&saga.transfer_id, "store error");
                    return;
                }
            }
        }
    }

    /// Puts a saga back in the queue, due after its backoff.
    fn defer(&self, id: &TransferId, why: &str) {
        let mut queue = self.queue();
        let attempts = queue
            .attempts
            .get(id)
            .copied()
            .unwrap_or(0)
            .saturating_add(1);
        let capped = self.config.backoff(attempts);
        // Full jitter in [capped/2, capped], so retries of many sagas spread out.
        let half = capped / 2;
        let jitter_ms =
            rand::thread_rng().gen_range(0..=u64::try_from(half.as_millis()).unwrap_or(0));
        let delay = half + Duration::from_millis(jitter_ms);
        tracing::debug!(transfer_id = %id, attempts, ?delay, why, "saga blocked; retrying later");
        queue.attempts.insert(id.clone(), attempts);
        queue.push(Instant::now() + delay, id.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> TransferId {
        TransferId::parse(&format!("t-{n:04}")).expect("an id")
    }

    #[test]
    fn the_backoff_doubles_up_to_its_cap_and_never_overflows() {
        let config = RecoveryConfig::with_call_timeout(Duration::from_secs(1));
        assert_eq!(config.backoff(1), config.backoff_base * 2);
        assert_eq!(config.backoff(2), config.backoff_base * 4);
        // 20 ms doubled six times is 1.28 s, seven times 2.56 s: the cap, 2 s.
        assert!(config.backoff(6) < config.backoff_cap);
        assert_eq!(config.backoff(7), config.backoff_cap);
        assert_eq!(config.backoff(u32::MAX), config.backoff_cap);
    }

    #[test]
    fn the_queue_hands_out_what_is_due_earliest_first_never_what_backs_off() {
        let now = Instant::now();
        let mut queue = DueQueue::default();
        // Thousands of old sagas backing off do not hide one due now.
        for n in 0..5_000 {
            queue.push(now + Duration::from_secs(2), id(n));
        }
        queue.push(now, id(9_001));
        queue.push(now - Duration::from_millis(5), id(9_000));
        assert_eq!(queue.take_due(now, 64), vec![id(9_000), id(9_001)]);
        assert!(queue.take_due(now, 64).is_empty());
        assert_eq!(queue.next_due(), Some(now + Duration::from_secs(2)));
        // A batch is bounded by the free slots.
        let later = now + Duration::from_secs(3);
        assert_eq!(queue.take_due(later, 64).len(), 64);
        assert_eq!(queue.due.len(), 5_000 - 64);
    }
}
