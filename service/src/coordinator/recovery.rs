//! The recovery worker: finishes every non-final saga that no live task is driving, such as
//! those whose request ran out of time, and all of them after a restart (it scans the log on
//! start). Retries use capped, jittered exponential backoff; concurrency is bounded.

use super::ownership::Ownership;
use super::saga::{Driver, StartedMode, Step};
use super::saga_log::{self, Saga};
use crate::ids::TransferId;
use rand::Rng;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore};

/// How the worker paces itself.
#[derive(Debug, Clone)]
pub struct RecoveryConfig {
    /// Time between scans of the log when nothing wakes the worker earlier.
    pub scan_interval: Duration,
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
            scan_interval: Duration::from_millis(50),
            call_timeout,
            max_concurrent: 64,
            backoff_base: Duration::from_millis(20),
            backoff_cap: Duration::from_millis(2000),
        }
    }
}

/// When each blocked saga may be tried again.
#[derive(Default)]
struct Backoff {
    by_id: HashMap<TransferId, (u32, Instant)>,
}

pub struct Recovery {
    pub driver: Arc<Driver>,
    pub ownership: Ownership,
    pub config: RecoveryConfig,
    /// Woken by request handlers that leave a saga unfinished, so it is picked up at once.
    pub wake: Arc<Notify>,
    backoff: Mutex<Backoff>,
    slots: Arc<Semaphore>,
}

impl Recovery {
    pub fn new(
        driver: Arc<Driver>,
        ownership: Ownership,
        config: RecoveryConfig,
        wake: Arc<Notify>,
    ) -> Arc<Recovery> {
        let slots = Arc::new(Semaphore::new(config.max_concurrent));
        Arc::new(Recovery {
            driver,
            ownership,
            config,
            wake,
            backoff: Mutex::new(Backoff::default()),
            slots,
        })
    }

    fn backoff(&self) -> std::sync::MutexGuard<'_, Backoff> {
        match self.backoff.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Runs forever: scan, drive what is due, wait for the next tick or a wake-up.
    pub async fn run(self: Arc<Self>) {
        loop {
            if let Err(err) = self.clone().scan_once().await {
                tracing::error!(%err, "recovery scan failed");
            }
            tokio::select! {
                () = tokio::time::sleep(self.config.scan_interval) => {}
                () = self.wake.notified() => {}
            }
        }
    }

    async fn scan_once(self: Arc<Self>) -> Result<(), crate::store::StoreError> {
        let limit = self.config.max_concurrent * 16;
        let open = self
            .driver
            .log
            .read(move |conn| saga_log::open_sagas(conn, limit))
            .await?;
        let now = Instant::now();
        for saga in open {
            let due = self
                .backoff()
                .by_id
                .get(&saga.transfer_id)
                .is_none_or(|(_, at)| *at <= now);
            if !due || self.ownership.is_owned(&saga.transfer_id) {
                continue;
            }
            let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                break;
            };
            let Some(guard) = self.ownership.try_claim(&saga.transfer_id) else {
                continue;
            };
            let worker = self.clone();
            tokio::spawn(async move {
                worker.drive(saga).await;
                drop(guard);
                drop(slot);
            });
        }
        Ok(())
    }

    /// Drives one saga until it is final or blocked. The row is re-read first: the scan's copy
    /// may be stale (its last owner may have moved it since), and acting on a stale state
    /// could reverse a completed transfer.
    async fn drive(&self, mut saga: Saga) {
        if let Err(err) = self.driver.reload(&mut saga).await {
            tracing::error!(%err, transfer_id = %saga.transfer_id, "cannot reload saga");
            return;
        }
        let mut mode = StartedMode::Abort;
        loop {
            match self
                .driver
                .step(&mut saga, &mut mode, self.config.call_timeout)
                .await
            {
                Ok(Step::Progressed) => continue,
                Ok(Step::Done) => {
                    self.backoff().by_id.remove(&saga.transfer_id);
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

    fn defer(&self, id: &TransferId, why: &str) {
        let mut backoff = self.backoff();
        let attempts = backoff.by_id.get(id).map_or(0, |(n, _)| *n) + 1;
        let exp = self
            .config
            .backoff_base
            .saturating_mul(1u32 << attempts.min(16));
        let capped = exp.min(self.config.backoff_cap);
        // Full jitter in [capped/2, capped], so retries of many sagas spread out.
        let half = capped / 2;
        let jitter_ms =
            rand::thread_rng().gen_range(0..=u64::try_from(half.as_millis()).unwrap_or(0));
        let delay = half + Duration::from_millis(jitter_ms);
        tracing::debug!(transfer_id = %id, attempts, ?delay, why, "saga blocked; retrying later");
        backoff
            .by_id
            .insert(id.clone(), (attempts, Instant::now() + delay));
    }
}
