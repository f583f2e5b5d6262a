//! A request to end a run early (SIGTERM or Ctrl-C to the harness): the load stops sending,
//! every fault applied so far is healed, the sagas get a short while to finish, and the run
//! writes what it has, marked interrupted. One request is shared by every part of a run
//! (clones are the same request).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tokio::sync::Notify;

#[derive(Clone, Default)]
pub struct Interrupt(Arc<Inner>);

#[derive(Default)]
struct Inner {
    requested: AtomicBool,
    at: Mutex<Option<SystemTime>>,
    notify: Notify,
}

impl std::fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Interrupt(requested: {})", self.requested())
    }
}

impl Interrupt {
    /// Asks the run to end early; the first request's time is kept.
    pub fn request(&self) {
        if let Ok(mut at) = self.0.at.lock() {
            at.get_or_insert_with(SystemTime::now);
        }
        self.0.requested.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    pub fn requested(&self) -> bool {
        self.0.requested.load(Ordering::SeqCst)
    }

    /// When the run was asked to end, if it was.
    pub fn requested_at(&self) -> Option<SystemTime> {
        self.0.at.lock().ok().and_then(|at| *at)
    }

    /// Returns once the run is asked to end (at once if it was already).
    pub async fn wait(&self) {
        loop {
            let notified = self.0.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.requested() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiter_wakes_on_a_request_made_before_or_after_it_waits() {
        let interrupt = Interrupt::default();
        assert!(!interrupt.requested());
        let waiter = tokio::spawn({
            let interrupt = interrupt.clone();
            async move { interrupt.wait().await }
        });
        tokio::task::yield_now().await;
        interrupt.request();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("joined");
        assert!(interrupt.requested() && interrupt.requested_at().is_some());
        // Already requested: no wait at all.
        tokio::time::timeout(std::time::Duration::from_secs(5), interrupt.wait())
            .await
            .expect("at once");
    }
}
