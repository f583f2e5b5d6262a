//! The saga driver: one step at a time, each step one remote call followed by one
//! compare-and-set on the saga row. Used by request handlers (within the deadline) and by the
//! recovery worker (after it, and after restarts).
//!
//! | state     | call                         | applied        | refused           | unknown   |
//! |-----------|------------------------------|----------------|-------------------|-----------|
//! | started   | debit (first attempt only)   | -> debited     | -> failed         | abort     |
//! | started   | abort = reverse (tombstone)  | -> failed      | (never)           | retry     |
//! | debited   | credit, same transfer id     | -> completed   | -> reversing      | retry     |
//! | reversing | reverse                      | -> reversed    | (never)           | retry     |

use super::in_flight::InFlightTally;
use super::mutant::Mutations;
use super::remote::{CallOutcome, Remote};
use super::saga_log::{self, Saga, SagaState};
use crate::contract::reasons;
use crate::metrics::Counters;
use crate::store::{Store, StoreError};
use std::sync::Arc;
use std::time::Duration;

/// What a `started` saga's driver does next. Only the request handler that wrote the intent
/// ever sends the debit; any other driver of a `started` saga aborts it, because it cannot
/// know whether a debit is still on its way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartedMode {
    SendDebit,
    Abort,
}

/// The result of one step.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// The saga moved (or the mode changed); step again.
    Progressed,
    /// The call's outcome is unknown; try again later.
    Blocked(String),
    /// The saga is final.
    Done,
}

pub struct Driver {
    pub log: Store,
    pub remote: Remote,
    pub counters: Arc<Counters>,
    /// The money in flight, counted as this driver moves sagas.
    pub in_flight: InFlightTally,
    /// All off but for a mutant design.
    pub mutations: Mutations,
}

impl Driver {
    /// Takes one step of `saga`, with `timeout` for its remote call.
    pub async fn step(
        &self,
        saga: &mut Saga,
        mode: &mut StartedMode,
        timeout: Duration,
    ) -> Result<Step, StoreError> {
        let id = saga.transfer_id.clone();
        match (saga.state, *mode) {
            (state, _) if state.is_final() => Ok(Step::Done),
            (SagaState::Started, StartedMode::SendDebit) => {
                let outcome = self
                    .remote
                    .debit(
                        &id,
                        saga.external_account_id.as_str(),
                        saga.amount_cents,
                        timeout,
                    )
                    .await;
                self.counters.inc("debit", outcome_label(&outcome));
                match outcome {
                    CallOutcome::Applied => self.advance(saga, SagaState::Debited, None).await,
                    CallOutcome::Refused(reason) => {
                        self.advance(saga, SagaState::Failed, Some(reason)).await
                    }
                    CallOutcome::Unknown(_) => {
                        // Maybe debited, maybe not, maybe still on its way: never resend it.
                        *mode = StartedMode::Abort;
                        Ok(Step::Progressed)
                    }
                }
            }
            (SagaState::Started, StartedMode::Abort) => {
                let outcome = self.remote.reverse(&id, timeout).await;
                self.counters.inc("abort", outcome_label(&outcome));
                match outcome {
                    CallOutcome::Applied => {
                        self.advance(saga, SagaState::Failed, Some(reasons::ABORTED.into()))
                            .await
                    }
                    CallOutcome::Refused(why) | CallOutcome::Unknown(why) => Ok(Step::Blocked(why)),
                }
            }
            (SagaState::Debited, _) => {
                let outcome = self
                    .remote
                    .credit(&id, saga.user_id.as_str(), saga.amount_cents, timeout)
                    .await;
                self.counters.inc("credit", outcome_label(&outcome));
                match outcome {
                    CallOutcome::Applied => self.advance(saga, SagaState::Completed, None).await,
                    // Recorded by the ledger under this id: a late duplicate replays the
                    // refusal, so reversing the debit is safe.
                    CallOutcome::Refused(reason) => match &self.mutations.volatile_queue {
                        None => self.advance(saga, SagaState::Reversing, Some(reason)).await,
                        // MUTANT (volatile-queue): failed at once, the reversal in memory.
                        Some(queue) => {
                            let step = self.fail_debited(saga, reason).await?;
                            queue.push(id);
                            Ok(step)
                        }
                    },
                    // MUTANT (timeout-is-failure): an unknown credit taken as refused.
                    CallOutcome::Unknown(why) if self.mutations.timeout_is_failure => {
                        self.advance(saga, SagaState::Reversing, Some(why)).await
                    }
                    CallOutcome::Unknown(why) => Ok(Step::Blocked(why)),
                }
            }
            (SagaState::Reversing, _) => {
                let outcome = self.remote.reverse(&id, timeout).await;
                self.counters.inc("reverse", outcome_label(&outcome));
                match outcome {
                    CallOutcome::Applied => self.advance(saga, SagaState::Reversed, None).await,
                    CallOutcome::Refused(why) | CallOutcome::Unknown(why) => Ok(Step::Blocked(why)),
                }
            }
            (SagaState::Completed | SagaState::Failed | SagaState::Reversed, _) => Ok(Step::Done),
        }
    }

    /// Compare-and-set `saga` to `next`. If another actor moved it first, re-read it and
    /// carry on from what is really there.
    async fn advance(
        &self,
        saga: &mut Saga,
        next: SagaState,
        reason: Option<String>,
    ) -> Result<Step, StoreError> {
        let id = saga.transfer_id.clone();
        let from = saga.state;
        let cas_reason = reason.clone();
        let moved = self
            .log
            .write(move |conn| {
                saga_log::compare_and_set(conn, &id, from, next, cas_reason.as_deref())
            })
            .await?;
        if moved {
            self.in_flight.moved(from, next, saga.amount_cents);
            saga.state = next;
            if reason.is_some() {
                saga.reason = reason;
            }
            self.counters.inc("saga_state", next.as_str());
        } else {
            tracing::warn!(transfer_id = %saga.transfer_id, ?from, ?next, "saga moved under us");
            self.reload(saga).await?;
        }
        Ok(if saga.state.is_final() {
            Step::Done
        } else {
            Step::Progressed
        })
    }

    /// MUTANT (volatile-queue): marks a debited saga failed without the durable reversal.
    async fn fail_debited(&self, saga: &mut Saga, reason: String) -> Result<Step, StoreError> {
        let id = saga.transfer_id.clone();
        let why = reason.clone();
        let moved = self
            .log
            .write(move |conn| saga_log::mutant_fail_debited(conn, &id, &why))
            .await?;
        if moved {
            self.in_flight
                .moved(SagaState::Debited, SagaState::Failed, saga.amount_cents);
            saga.state = SagaState::Failed;
            saga.reason = Some(reason);
        } else {
            self.reload(saga).await?;
        }
        Ok(if saga.state.is_final() {
            Step::Done
        } else {
            Step::Progressed
        })
    }

    /// Replaces `saga` with its current row.
    pub async fn reload(&self, saga: &mut Saga) -> Result<(), StoreError> {
        let id = saga.transfer_id.clone();
        match self.log.read(move |conn| saga_log::get(conn, &id)).await? {
            Some(fresh) => {
                *saga = fresh;
                Ok(())
            }
            None => Err(StoreError::Corrupt(format!(
                "saga {} vanished from the log",
                saga.transfer_id
            ))),
        }
    }
}

fn outcome_label(outcome: &CallOutcome) -> &'static str {
    match outcome {
        CallOutcome::Applied => "applied",
        CallOutcome::Refused(_) => "refused",
        CallOutcome::Unknown(_) => "unknown",
    }
}
