//! The money sampled while the load runs: every half second, the coordinator's money in
//! flight, then the ledger's totals, then the external side's, then the money in flight
//! again. Reading the ledger first means every credit seen has its debit already applied,
//! so a total above the initial one is a real creation; the money in flight read around the
//! two reads bounds how far below it the total may be. Reads bypass the proxies; a service
//! that does not answer in time (paused, killed) costs one sample.

use crate::interrupt::Interrupt;
use crate::reconcile::Sample;
use crate::stats::LiveStats;
use crate::system::admin::AdminClient;
use crate::system::Endpoints;
use crate::topology::ServiceRole;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Time between samples.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(500);

/// Samples from `start` until `until` (or an interrupt), then returns what it took. Nothing to sample (an
/// institution without an address) gives no samples.
pub async fn sample(
    admin: AdminClient,
    endpoints: Endpoints,
    live: Arc<LiveStats>,
    start: Instant,
    until: Instant,
    interrupt: Interrupt,
) -> Vec<Sample> {
    if !endpoints.books_readable() {
        return Vec::new();
    }
    let mut samples = Vec::new();
    let mut next = start;
    while next < until {
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = interrupt.wait() => break,
        }
        next += SAMPLE_EVERY;
        let before = admin.in_flight(&endpoints.coordinator).await.ok().flatten();
        let ledger_totals = admin
            .institution_totals(&endpoints, ServiceRole::Ledger)
            .await;
        let external_totals = admin
            .institution_totals(&endpoints, ServiceRole::External)
            .await;
        let (Ok(ledger_totals), Ok(external_totals)) = (ledger_totals, external_totals) else {
            continue;
        };
        let after = admin.in_flight(&endpoints.coordinator).await.ok().flatten();
        let in_flight_bound_cents = match (before, after) {
            (Some(a), Some(b)) => Some(
                a.amount_cents
                    .saturating_add(b.begun_amount_cents.saturating_sub(a.begun_amount_cents)),
            ),
            _ => None,
        };
        samples.push(Sample {
            at_s: Instant::now()
                .saturating_duration_since(start)
                .as_secs_f64(),
            ledger_total_cents: ledger_totals.total_cents,
            external_total_cents: external_totals.total_cents,
            lowest_balance_cents: ledger_totals
                .lowest_balance_cents
                .min(external_totals.lowest_balance_cents),
            in_flight_bound_cents,
            active_faults: live.active_faults(),
        });
    }
    samples
}
