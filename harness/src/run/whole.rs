//! The run read whole at the end, for a system that cannot be followed as it goes (books
//! from a `books:` source or a mapped API, no pages) or a shard: the history, convergence
//! from the saga log (or the transfers), the books whole, the indeterminate answers
//! resolved, the books read again; the evidence saved and reconciled.

use super::error::RunError;
use super::folder::write_json;
use super::options::RunOptions;
use super::settle::Settle;
use super::{converge, resolve, settle};
use crate::faults::FaultRecord;
use crate::history;
use crate::phases;
use crate::profile::plan::RunPlan;
use crate::reconcile::{self, Books, Evidence, Reconciliation, Sample, RECONCILIATION_FILE};
use crate::system::admin::AdminClient;
use crate::system::lookup::TransferLookup;
use crate::system::Endpoints;
use std::path::Path;
use std::time::Duration;

/// What the run's verdict rests on, however it was reached.
pub(super) struct Judged {
    pub(super) reconciliation: Reconciliation,
    pub(super) convergence_ms: Option<u64>,
    pub(super) system_design: Option<String>,
    pub(super) phases: phases::Phases,
}

/// What the read at the end needs of the run.
pub(super) struct AtEnd<'a> {
    pub(super) options: &'a RunOptions,
    pub(super) plan: &'a RunPlan,
    pub(super) endpoints: &'a Endpoints,
    pub(super) out: &'a Path,
    pub(super) settle: &'a Settle,
    pub(super) admin: &'a AdminClient,
    /// How long the sagas may take to be final.
    pub(super) window: Duration,
}

/// Everything read at the end: the history, convergence from the saga log (or the transfers),
/// the books whole, the indeterminate answers resolved, the books read again; the evidence
/// saved and reconciled (a shard's is reconciled by `harness merge`).
pub(super) async fn whole_at_end(
    at: AtEnd<'_>,
    before: Option<(service::contract::Dump, service::contract::Dump)>,
    samples: Vec<Sample>,
    faults: &[FaultRecord],
) -> Result<Judged, RunError> {
    let AtEnd {
        options,
        plan,
        endpoints,
        out,
        settle,
        admin,
        window,
    } = at;
    let history = history::read_in(out).map_err(RunError::History)?;
    let lookup = TransferLookup::new(admin, endpoints);
    let convergence = converge::converge(admin, &lookup, window, &history).await;
    let after = admin.books(endpoints).await?;
    admin.save_metrics(endpoints, out).await;
    let books = match (before, after) {
        (Some((external_before, ledger_before)), Some((external_after, ledger_after))) => {
            Some(Books {
                external_before,
                ledger_before,
                external_after,
                ledger_after,
                read_again: None,
            })
        }
        _ => None,
    };
    let resolutions = resolve::resolve(&lookup, &history, convergence.sagas.as_ref()).await;
    // Read again once nothing may move money: what moved after the read above is judged.
    let books = match books {
        Some(mut books) => {
            let interrupted = options.interrupt.requested();
            let again = settle::read_again(settle, admin, endpoints, &books, interrupted).await;
            books.read_again = Some(again);
            Some(books)
        }
        None => None,
    };
    let evidence = Evidence {
        books,
        history,
        convergence,
        resolutions,
        samples,
    };
    evidence.save(out)?;
    // A shard's books hold every shard's transfers, its history only its own: the run is
    // reconciled once, by `harness merge`, from every shard's evidence.
    let reconciliation = if plan.shard.is_whole() {
        let reconciliation = reconcile::reconcile(&evidence);
        write_json(&out.join(RECONCILIATION_FILE), &reconciliation)?;
        reconciliation
    } else {
        Reconciliation::not_reconciled()
    };
    let phases = phases::phases(&evidence.history, faults, plan.total().as_secs_f64());
    Ok(Judged {
        reconciliation,
        convergence_ms: evidence.convergence.convergence_ms,
        system_design: evidence
            .convergence
            .sagas
            .as_ref()
            .map(|dump| dump.design.clone()),
        phases,
    })
}
