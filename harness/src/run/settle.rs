//! The books read a second time, once nothing may move money any more, against the final
//! read the verdict rests on (`reconcile::read_again` judges the difference):
//! - a system the harness started: left running for `LAUNCHED_SETTLE` (a queue still
//!   working, a retry that wakes soon, moves money then), then stopped, and read. The
//!   coordinator stays down; the two institutions, which move no money of their own, are
//!   started again on their files only to be read over HTTP, then stopped;
//! - a target: after `settle_s` of quiet (the target file's, 5 s by default), its services
//!   being its owner's to stop.

use crate::reconcile::read_again::ReadAgain;
use crate::reconcile::Books;
use crate::system::admin::AdminClient;
use crate::system::launch::Launched;
use crate::system::Endpoints;
use crate::topology::ServiceRole;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long the services the harness started keep running after the final read, before
/// they are stopped and their books read again.
pub(crate) const LAUNCHED_SETTLE: Duration = Duration::from_secs(1);

/// How the books come to rest before they are read again.
pub(crate) enum Settle {
    /// Stop the services the harness started.
    Stop(Arc<Mutex<Launched>>),
    /// Leave a target alone this long.
    Quiet(Duration),
}

/// Runs `f` on the services, off the async runtime (starting and stopping them blocks).
async fn with_services<T: Send + 'static>(
    launched: &Arc<Mutex<Launched>>,
    f: impl FnOnce(&mut Launched) -> T + Send + 'static,
) -> Result<T, String> {
    let launched = launched.clone();
    tokio::task::spawn_blocking(move || match launched.lock() {
        Ok(mut l) => f(&mut l),
        Err(poisoned) => f(&mut poisoned.into_inner()),
    })
    .await
    .map_err(|e| format!("the thread that stops the services failed: {e}"))
}

/// The books read again as `settle` says, and what changed since the final read (`books`).
/// An interrupted run does not wait out a target's quiet period.
pub(crate) async fn read_again(
    settle: &Settle,
    admin: &AdminClient,
    endpoints: &Endpoints,
    books: &Books,
    interrupted: bool,
) -> ReadAgain {
    let (when, read) = settled(settle, interrupted, || async {
        admin.books(endpoints).await.map_err(|e| e.to_string())
    })
    .await;
    judge(when, books, read)
}

/// Brings the books to rest as `settle` says, then runs `read`: when that was, and what it
/// read. The services the harness started are up again, on their files only, while `read`
/// runs.
pub(crate) async fn settled<T, F, Fut>(
    settle: &Settle,
    interrupted: bool,
    read: F,
) -> (String, Result<T, String>)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let when = match settle {
        Settle::Stop(_) if interrupted => "after the services stopped".to_owned(),
        Settle::Stop(_) => format!(
            "{} s after the final read, once the services stopped",
            LAUNCHED_SETTLE.as_secs()
        ),
        Settle::Quiet(_) if interrupted => "at once (the run was interrupted)".to_owned(),
        Settle::Quiet(quiet) => format!("after {} s of quiet", quiet.as_secs()),
    };
    match settle {
        Settle::Stop(launched) => {
            if !interrupted {
                tokio::time::sleep(LAUNCHED_SETTLE).await;
            }
            let restarted = with_services(launched, |l| {
                l.stop();
                l.respawn(ServiceRole::External)?;
                l.respawn(ServiceRole::Ledger)
            })
            .await;
            let read = match restarted {
                Ok(Ok(())) => read().await,
                Ok(Err(e)) => Err(format!("an institution did not start again: {e}")),
                Err(e) => Err(e),
            };
            // Stopped again whatever happened; the run's own stop finds them stopped.
            let _ = with_services(launched, Launched::stop).await;
            (when, read)
        }
        Settle::Quiet(quiet) => {
            if !interrupted {
                tokio::time::sleep(*quiet).await;
            }
            (when, read().await)
        }
    }
}

fn judge(
    when: String,
    books: &Books,
    read: Result<Option<(service::contract::Dump, service::contract::Dump)>, String>,
) -> ReadAgain {
    match read {
        Ok(Some((external, ledger))) => ReadAgain::of(when, books, &external, &ledger),
        Ok(None) => ReadAgain::failed(when, "an institution has no address".to_owned()),
        Err(why) => ReadAgain::failed(when, why),
    }
}
