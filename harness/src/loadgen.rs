//! The open-loop load generator. A dispatcher sends each request at its scheduled time,
//! whatever the answers do; latency is measured from the scheduled time, so a stalled
//! service shows in the figures instead of slowing the client down (no coordinated
//! omission). Workers each own their histograms (merged at the end) and run many requests
//! at once. The dispatcher measures its own lag against the schedule, so a run whose
//! generator could not keep up can be told apart from a slow service.

use crate::client::{Answer, TransferClient};
use crate::history::{HistoryRecord, Outcome};
use crate::profile::plan::RetryPlan;
use crate::profile::{RetryKey, RetryOn};
use crate::schedule::{Schedule, ScheduledOp};
use crate::stats::{new_histogram, LiveStats, WorkerStats};
use crate::system::{account_id, user_id};
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

pub struct LoadConfig {
    pub client: TransferClient,
    /// The schedule's zero.
    pub start: Instant,
    /// Operations scheduled before `start + warmup` are not measured.
    pub warmup: Duration,
    pub timeout: Duration,
    pub retries: Option<RetryPlan>,
    pub max_in_flight: usize,
    pub workers: usize,
    /// Prefix of every idempotency key, unique to the run.
    pub key_prefix: String,
}

/// Everything the generator measured.
pub struct LoadReport {
    pub workers: Vec<WorkerStats>,
    /// Send lag against the schedule, µs (dispatcher).
    pub send_lag: hdrhistogram::Histogram<u64>,
    /// Measured scheduled requests that could not be sent (in-flight cap full).
    pub overflow_measured: u64,
    pub scheduled_measured: u64,
    pub scheduled_total: u64,
}

/// One request or retry on its way to a worker.
struct Job {
    op: ScheduledOp,
    attempt: u32,
    key: String,
    scheduled: Instant,
    measured: bool,
    /// Held by the user's whole session (request and retries).
    permit: OwnedSemaphorePermit,
}

struct Done {
    job: Job,
    answer: Answer,
    sent: Instant,
    answered: Instant,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

struct Context {
    config: LoadConfig,
    history: std_mpsc::Sender<HistoryRecord>,
    live: Arc<LiveStats>,
}

impl Context {
    async fn attempt(self: Arc<Self>, job: Job) -> Done {
        // Only retries are early here; a first attempt arrives when it is due.
        if job.scheduled > Instant::now() {
            tokio::time::sleep_until(job.scheduled).await;
        }
        let sent = Instant::now();
        let answer = self
            .config
            .client
            .send(
                &job.key,
                &user_id(job.op.user),
                &account_id(job.op.user),
                job.op.amount.get(),
                self.config.timeout,
            )
            .await;
        Done {
            job,
            answer,
            sent,
            answered: Instant::now(),
        }
    }

    fn since_start(&self, at: Instant) -> u64 {
        micros(at.saturating_duration_since(self.config.start))
    }

    fn record(&self, done: &Done, stats: &mut WorkerStats) {
        let latency = done.answered.saturating_duration_since(done.job.scheduled);
        let latency_us = micros(latency).max(1);
        if done.job.measured {
            stats.record(
                done.answer.outcome,
                latency_us,
                done.answer.error_kind.as_deref(),
            );
            self.live.record(done.answer.outcome, latency_us);
        }
        stats.record_interval(self.since_start(done.answered) / 1_000_000, latency_us);
        let _ = self.history.send(HistoryRecord {
            op: done.job.op.index,
            attempt: done.job.attempt,
            key: done.job.key.clone(),
            user_id: user_id(done.job.op.user),
            external_account_id: account_id(done.job.op.user),
            amount_cents: done.job.op.amount.get(),
            scheduled_us: self.since_start(done.job.scheduled),
            sent_us: Some(self.since_start(done.sent)),
            answered_us: Some(self.since_start(done.answered)),
            latency_us: Some(latency_us),
            outcome: done.answer.outcome,
            jepsen_type: done.answer.outcome.jepsen().to_owned(),
            http_status: done.answer.http_status,
            error_kind: done.answer.error_kind.clone(),
            transfer_id: done.answer.transfer_id.clone(),
            reason: done.answer.reason.clone(),
            measured: done.job.measured,
        });
    }

    /// The impatient user's next attempt, if this answer makes them retry.
    fn retry_of(&self, done: Done) -> Option<Job> {
        let plan = self.config.retries.as_ref()?;
        let trigger = match done.answer.outcome {
            Outcome::Failed => RetryOn::Failed,
            Outcome::Pending => RetryOn::Pending,
            Outcome::Shed => RetryOn::Shed,
            Outcome::Error => RetryOn::Error,
            Outcome::Completed | Outcome::Overflow => return None,
        };
        if done.job.attempt >= plan.max || !plan.on.contains(&trigger) {
            return None;
        }
        let attempt = done.job.attempt + 1;
        let same_key = match plan.key {
            RetryKey::Same => true,
            RetryKey::New => false,
            // Half the requests (the even-numbered) retry with their key, half with a new one.
            RetryKey::Mixed => done.job.op.index % 2 == 0,
        };
        let key = match same_key {
            true => done.job.key,
            false => format!(
                "{}-{}-r{attempt}",
                self.config.key_prefix, done.job.op.index
            ),
        };
        Some(Job {
            op: done.job.op,
            attempt,
            key,
            scheduled: done.answered + plan.after,
            measured: done.job.measured,
            permit: done.job.permit,
        })
    }
}

async fn worker(context: Arc<Context>, mut jobs: mpsc::Receiver<Job>) -> WorkerStats {
    let mut stats = WorkerStats::new();
    let mut running = FuturesUnordered::new();
    let mut open = true;
    loop {
        tokio::select! {
            job = jobs.recv(), if open => match job {
                Some(job) => running.push(context.clone().attempt(job)),
                None => open = false,
            },
            Some(done) = running.next(), if !running.is_empty() => {
                context.record(&done, &mut stats);
                // Without a retry the session ends here and its in-flight permit is released.
                if let Some(retry) = context.retry_of(done) {
                    if retry.measured {
                        stats.retries += 1;
                    }
                    running.push(context.clone().attempt(retry));
                }
            },
            else => break,
        }
    }
    stats
}

/// Runs the whole schedule and returns once every request (and retry) has its answer.
pub async fn run(
    schedule: Schedule,
    config: LoadConfig,
    history: std_mpsc::Sender<HistoryRecord>,
    live: Arc<LiveStats>,
) -> LoadReport {
    let workers = config.workers.max(1);
    let in_flight = Arc::new(Semaphore::new(config.max_in_flight));
    let (start, warmup, key_prefix) = (config.start, config.warmup, config.key_prefix.clone());
    let context = Arc::new(Context {
        config,
        history: history.clone(),
        live: live.clone(),
    });
    let mut senders = Vec::with_capacity(workers);
    let mut handles = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (tx, rx) = mpsc::channel(65_536);
        senders.push(tx);
        handles.push(tokio::spawn(worker(context.clone(), rx)));
    }
    let mut send_lag = new_histogram();
    let (mut overflow_measured, mut scheduled_measured, mut scheduled_total) = (0, 0, 0);
    for op in schedule {
        let due = start + op.offset;
        // A timer only when the request is not due yet: at high rates most are.
        if due > Instant::now() {
            tokio::time::sleep_until(due).await;
        }
        let lag = Instant::now().saturating_duration_since(due);
        send_lag.saturating_record(micros(lag).max(1));
        let measured = op.offset >= warmup;
        scheduled_total += 1;
        if measured {
            scheduled_measured += 1;
        }
        live.scheduled();
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            if measured {
                overflow_measured += 1;
                live.record(Outcome::Overflow, 0);
            }
            let _ = history.send(HistoryRecord {
                op: op.index,
                attempt: 0,
                key: format!("{key_prefix}-{}", op.index),
                user_id: user_id(op.user),
                external_account_id: account_id(op.user),
                amount_cents: op.amount.get(),
                scheduled_us: micros(op.offset),
                sent_us: None,
                answered_us: None,
                latency_us: None,
                outcome: Outcome::Overflow,
                jepsen_type: Outcome::Overflow.jepsen().to_owned(),
                http_status: None,
                error_kind: Some("generator_in_flight_cap".into()),
                transfer_id: None,
                reason: None,
                measured,
            });
            continue;
        };
        let worker = usize::try_from(op.index).unwrap_or(0) % workers;
        let job = Job {
            key: format!("{key_prefix}-{}", op.index),
            attempt: 0,
            scheduled: due,
            measured,
            permit,
            op,
        };
        if senders[worker].send(job).await.is_err() {
            break;
        }
    }
    drop(senders);
    let mut stats = Vec::with_capacity(workers);
    for handle in handles {
        if let Ok(worker_stats) = handle.await {
            stats.push(worker_stats);
        }
    }
    LoadReport {
        workers: stats,
        send_lag,
        overflow_measured,
        scheduled_measured,
        scheduled_total,
    }
}
