//! The open-loop load generator. Each request leaves at its scheduled time, whatever the
//! answers do; latency is measured from the scheduled time, so a stalled service shows in
//! the figures instead of slowing the client down (no coordinated omission). A few driver
//! tasks each take every n-th request of the schedule, send it when due and handle its
//! answer (and the impatient user's retries) in the same task, with many requests in flight
//! and histograms of their own (merged at the end). A request due while the in-flight cap is
//! full is not sent and counts as overflow. Drivers measure their own lag against the
//! schedule, so a run whose generator could not keep up can be told apart from a slow
//! service.

use crate::client::{Answer, TransferClient};
use crate::history::{HistoryRecord, Outcome};
use crate::population;
use crate::profile::plan::RetryPlan;
use crate::profile::RetryKey;
use crate::schedule::{Schedule, ScheduledOp};
use crate::stats::{new_histogram, LiveStats, WorkerStats};
use futures_util::stream::{FuturesUnordered, StreamExt};
use service::contract::TransferRequest;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
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
    /// Driver tasks, each with every `workers`-th request of the schedule.
    pub workers: usize,
    /// Prefix of every idempotency key, unique to the run.
    pub key_prefix: String,
    /// How the users are named.
    pub names: population::Names,
}

/// Everything the generator measured.
pub struct LoadReport {
    pub workers: Vec<WorkerStats>,
    /// Send lag against the schedule, µs (all drivers).
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
    request: TransferRequest,
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
        let request = self
            .config
            .names
            .transfer_request(job.op.user, job.op.amount);
        let sent = Instant::now();
        let answer = self
            .config
            .client
            .send(&job.key, &request, job.op.index, self.config.timeout)
            .await;
        Done {
            job,
            request,
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
                done.answer.reason.as_deref(),
            );
            self.live.record(done.answer.outcome, latency_us);
        }
        stats.record_interval(self.since_start(done.answered) / 1_000_000, latency_us);
        let _ = self.history.send(HistoryRecord {
            op: done.job.op.index,
            attempt: done.job.attempt,
            key: done.job.key.clone(),
            user_id: done.request.user_id.clone(),
            external_account_id: done.request.external_account_id.clone(),
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

    /// A due request that could not be sent: the in-flight cap was full.
    fn overflow(&self, op: &ScheduledOp, measured: bool) {
        if measured {
            self.live.record(Outcome::Overflow, 0);
        }
        let _ = self.history.send(HistoryRecord {
            op: op.index,
            attempt: 0,
            key: format!("{}-{}", self.config.key_prefix, op.index),
            user_id: self.config.names.user_id(op.user),
            external_account_id: self.config.names.account_id(op.user),
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
    }

    /// The impatient user's next attempt, if this answer makes them retry.
    fn retry_of(&self, done: Done) -> Option<Job> {
        let plan = self.config.retries.as_ref()?;
        if !plan.retries(done.answer.outcome, done.job.attempt) {
            return None;
        }
        let attempt = done.job.attempt + 1;
        let same_key = match plan.key {
            RetryKey::Same => true,
            RetryKey::New => false,
            // Half the requests (the even-numbered) retry with their key, half with a new one.
            RetryKey::Mixed => done.job.op.index.is_multiple_of(2),
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

/// A request due sooner than this is waited for by yielding, not with a timer: tokio's timer
/// ticks every millisecond. Only rates above 5,000/s leave gaps this short, so slower runs
/// never spin (and a request there leaves at most a tick late, which the send lag shows).
const SPIN_BELOW: Duration = Duration::from_micros(200);

/// What one driver counted, beside its worker stats.
struct DriverReport {
    stats: WorkerStats,
    send_lag: hdrhistogram::Histogram<u64>,
    overflow_measured: u64,
    scheduled_measured: u64,
    scheduled_total: u64,
}

/// Starts every request of `schedule` due now, through `start`: a job each, or an overflow
/// when the in-flight cap is full.
fn send_due(
    context: &Context,
    schedule: &mut std::iter::Peekable<impl Iterator<Item = ScheduledOp>>,
    in_flight: &Arc<Semaphore>,
    report: &mut DriverReport,
    mut start: impl FnMut(Job),
) {
    let (zero, warmup) = (context.config.start, context.config.warmup);
    let now = Instant::now();
    while let Some(op) = schedule.next_if(|op| zero + op.offset <= now) {
        let due = zero + op.offset;
        report
            .send_lag
            .saturating_record(micros(now.saturating_duration_since(due)).max(1));
        let measured = op.offset >= warmup;
        report.scheduled_total += 1;
        if measured {
            report.scheduled_measured += 1;
        }
        context.live.scheduled();
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            if measured {
                report.overflow_measured += 1;
            }
            context.overflow(&op, measured);
            continue;
        };
        start(Job {
            key: format!("{}-{}", context.config.key_prefix, op.index),
            attempt: 0,
            scheduled: due,
            measured,
            permit,
            op,
        });
    }
}

/// One driver: sends its share of the schedule (every `drivers`-th request) when due and
/// handles the answers, in one task. Sending and answering in the same task saves a
/// hand-over and a wake-up per request; a request due while answers are being handled
/// leaves a little late, and the send lag says by how much.
async fn drive(
    context: Arc<Context>,
    schedule: impl Iterator<Item = ScheduledOp>,
    in_flight: Arc<Semaphore>,
) -> DriverReport {
    let start = context.config.start;
    let mut report = DriverReport {
        stats: WorkerStats::new(),
        send_lag: new_histogram(),
        overflow_measured: 0,
        scheduled_measured: 0,
        scheduled_total: 0,
    };
    let mut running = FuturesUnordered::new();
    let mut schedule = schedule.peekable();
    // One timer, moved to the next due time only when that time is in the future.
    let timer = tokio::time::sleep_until(start);
    tokio::pin!(timer);
    loop {
        // Send everything due now; at high rates most requests are due already.
        send_due(&context, &mut schedule, &in_flight, &mut report, |job| {
            running.push(context.clone().attempt(job));
        });
        let next_due = schedule.peek().map(|op| start + op.offset);
        // At high rates, where requests are due microseconds apart, a timer would send
        // them in bursts a millisecond apart: wait for those by yielding to the other tasks.
        let due_within_tick =
            next_due.is_some_and(|due| due.saturating_duration_since(Instant::now()) < SPIN_BELOW);
        if let Some(due) = next_due.filter(|due| !due_within_tick && *due != timer.deadline()) {
            timer.as_mut().reset(due);
        }
        tokio::select! {
            biased;
            Some(done) = running.next(), if !running.is_empty() => {
                context.record(&done, &mut report.stats);
                // Without a retry the session ends here and its in-flight permit is released.
                if let Some(retry) = context.retry_of(done) {
                    if retry.measured {
                        report.stats.retries += 1;
                    }
                    running.push(context.clone().attempt(retry));
                }
            },
            () = tokio::task::yield_now(), if due_within_tick => {},
            () = &mut timer, if next_due.is_some() && !due_within_tick => {},
            else => break,
        }
    }
    report
}

/// Runs the whole schedule and returns once every request (and retry) has its answer.
pub async fn run(
    schedule: Schedule,
    config: LoadConfig,
    history: std_mpsc::Sender<HistoryRecord>,
    live: Arc<LiveStats>,
) -> LoadReport {
    let drivers = config.workers.max(1);
    let in_flight = Arc::new(Semaphore::new(config.max_in_flight));
    let context = Arc::new(Context {
        config,
        history,
        live,
    });
    let handles: Vec<_> = (0..drivers)
        .map(|k| {
            let share = schedule
                .clone()
                .filter(move |op| op.index % drivers as u64 == k as u64);
            tokio::spawn(drive(context.clone(), share, in_flight.clone()))
        })
        .collect();
    let mut report = LoadReport {
        workers: Vec::with_capacity(drivers),
        send_lag: new_histogram(),
        overflow_measured: 0,
        scheduled_measured: 0,
        scheduled_total: 0,
    };
    for handle in handles {
        if let Ok(driver) = handle.await {
            let _ = report.send_lag.add(&driver.send_lag);
            report.overflow_measured += driver.overflow_measured;
            report.scheduled_measured += driver.scheduled_measured;
            report.scheduled_total += driver.scheduled_total;
            report.workers.push(driver.stats);
        }
    }
    report
}
