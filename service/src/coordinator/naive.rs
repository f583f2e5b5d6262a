//! KNOWN-BAD BASELINE: the seed's design, as written, kept on purpose so the harness can show
//! it losing or creating money. Do not "fix" it.
//!
//! Call the external debit, then the ledger credit; on a credit failure push a reversal onto
//! a queue held in memory, served by a background task. No idempotency (every request is a
//! new transfer id), no saga log, and a timeout is treated as a failure.

use super::remote::{CallOutcome, Remote};
use super::saga_log::Intent;
use crate::ids::TransferId;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// What the naive coordinator answers.
pub enum NaiveOutcome {
    Completed(TransferId),
    Failed(TransferId, String),
}

pub struct Naive {
    pub remote: Remote,
    /// The in-memory reversal queue: everything on it is lost if the process dies.
    reversals: mpsc::UnboundedSender<TransferId>,
}

impl Naive {
    /// Starts the background reversal worker and returns the naive coordinator.
    pub fn start(remote: Remote) -> Naive {
        let (reversals, queue) = mpsc::unbounded_channel();
        tokio::spawn(reversal_worker(remote.clone(), queue));
        Naive { remote, reversals }
    }

    pub async fn transfer(&self, intent: &Intent, deadline: Instant) -> NaiveOutcome {
        let id = TransferId::generate();
        let left = || deadline.saturating_duration_since(Instant::now());
        let debit = self
            .remote
            .debit(
                &id,
                intent.external_account_id.as_str(),
                intent.amount_cents,
                left(),
            )
            .await;
        if debit != CallOutcome::Applied {
            // A timed-out debit may well have been applied: this answer can lose money.
            return NaiveOutcome::Failed(id, format!("debit: {debit:?}"));
        }
        let credit = self
            .remote
            .credit(&id, intent.user_id.as_str(), intent.amount_cents, left())
            .await;
        if credit == CallOutcome::Applied {
            return NaiveOutcome::Completed(id);
        }
        // A timed-out credit may well have been applied: reversing it creates money.
        let _ = self.reversals.send(id.clone());
        NaiveOutcome::Failed(id, format!("credit: {credit:?}"))
    }
}

async fn reversal_worker(remote: Remote, mut queue: mpsc::UnboundedReceiver<TransferId>) {
    while let Some(id) = queue.recv().await {
        for _attempt in 0..3 {
            if remote.reverse(&id, Duration::from_secs(1)).await == CallOutcome::Applied {
                break;
            }
        }
    }
}
