//! The single-bug mutants of the saga design, gathered here so each bug is easy to find and
//! each stays a few lines away from the real code: the switches the saga driver reads, the
//! in-memory reversal queue of `volatile-queue`, and when `late-shed` refuses. The store's `ack-before-durable` switch
//! is `store::Durability::AckBeforeCommit`; `no-tombstone` is the external institution's
//! `--no-tombstone`. Do not "fix" them: the tests assert that the harness catches each.

use super::remote::{CallOutcome, Remote};
use super::settings::Design;
use crate::ids::TransferId;
use std::time::Duration;
use tokio::sync::mpsc;

/// What a mutant changes in the saga driver. All off for the `saga` design.
#[derive(Default)]
pub struct Mutations {
    /// `volatile-queue`: a refused credit marks the saga failed and queues its reversal here.
    pub volatile_queue: Option<VolatileQueue>,
    /// `no-idempotency`: a replayed key starts a new transfer.
    pub no_idempotency: bool,
    /// `timeout-is-failure`: an unknown credit is taken as refused.
    pub timeout_is_failure: bool,
}

impl Mutations {
    /// The mutations of `design`; starts the volatile queue's job when it has one.
    pub fn of(design: Design, remote: &Remote) -> Mutations {
        Mutations {
            volatile_queue: (design == Design::VolatileQueue)
                .then(|| VolatileQueue::start(remote.clone())),
            no_idempotency: design == Design::NoIdempotency,
            timeout_is_failure: design == Design::TimeoutIsFailure,
        }
    }
}

/// `late-shed`: the refusal a request over the limit is given after it was carried out,
/// instead of before anything was written (None: the design sheds at the door, or there is
/// nothing to refuse).
pub fn sheds_late(design: Design, refusal: Option<&'static str>) -> Option<&'static str> {
    refusal.filter(|_| design == Design::LateShed)
}

/// How often the volatile queue's job works off the reversals queued since its last turn.
const QUEUE_TURN: Duration = Duration::from_millis(200);

/// Reversals owed, held in memory only: everything on it dies with the process.
pub struct VolatileQueue {
    reversals: mpsc::UnboundedSender<TransferId>,
}

impl VolatileQueue {
    fn start(remote: Remote) -> VolatileQueue {
        let (reversals, queue) = mpsc::unbounded_channel();
        tokio::spawn(work_off(remote, queue));
        VolatileQueue { reversals }
    }

    pub fn push(&self, id: TransferId) {
        let _ = self.reversals.send(id);
    }
}

async fn work_off(remote: Remote, mut queue: mpsc::UnboundedReceiver<TransferId>) {
    let mut turn = tokio::time::interval(QUEUE_TURN);
    loop {
        turn.tick().await;
        let mut due = Vec::new();
        while let Ok(id) = queue.try_recv() {
            due.push(id);
        }
        for id in due {
            for _attempt in 0..3 {
                if remote.reverse(&id, Duration::from_secs(1)).await == CallOutcome::Applied {
                    break;
                }
            }
        }
    }
}
