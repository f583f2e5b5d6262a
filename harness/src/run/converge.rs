//! Convergence: after the load ends and every fault is healed, the saga log is polled until
//! every saga is final or the profile's window closes.

use crate::reconcile::Convergence;
use crate::system::admin::AdminClient;
use std::time::{Duration, Instant};

/// How often the saga log is read while waiting.
const POLL_EVERY: Duration = Duration::from_millis(50);

/// Polls `coordinator`'s saga log until every saga is final or `window` has passed.
pub async fn converge(admin: &AdminClient, coordinator: &str, window: Duration) -> Convergence {
    let started = Instant::now();
    let mut last = None;
    loop {
        match admin.sagas(coordinator).await {
            Ok(dump) => {
                let open = dump.sagas.iter().filter(|s| !s.state.is_final()).count();
                if open == 0 {
                    let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                    return Convergence {
                        sagas: Some(dump),
                        converged: true,
                        convergence_ms: Some(ms),
                    };
                }
                last = Some(dump);
            }
            // A coordinator started again by a fault may still be recovering: keep asking
            // until the window closes; never read at all means convergence is unknown.
            Err(err) => tracing::debug!(%err, "saga log not readable yet"),
        }
        if started.elapsed() > window {
            if last.is_none() {
                tracing::warn!("saga log not readable within the window; convergence unknown");
            }
            return Convergence {
                sagas: last,
                converged: false,
                convergence_ms: None,
            };
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}
