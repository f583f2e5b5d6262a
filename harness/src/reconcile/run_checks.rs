//! The invariants the run itself decides: every saga final within the window, and the
//! totals sampled while the load ran.

use super::effects::total;
use super::names::{InvariantName, ViolationClass};
use super::{judged, unknown, Context, Invariant, PolledTransfers, Violation};

pub fn convergence(cx: &Context<'_>) -> (Invariant, Vec<Violation>) {
    let c = &cx.evidence.convergence;
    let Some(dump) = &c.sagas else {
        return match &c.polled {
            Some(polled) => polled_convergence(cx, polled),
            None => (
                unknown(InvariantName::Convergence, "the saga log is not reachable"),
                Vec::new(),
            ),
        };
    };
    let found: Vec<Violation> = dump
        .sagas
        .iter()
        .zip(&cx.requests.saga_slots)
        .filter(|(s, _)| !s.state.is_final())
        .map(|(saga, &slot)| {
            let id = saga.transfer_id.as_str();
            let fx = cx.effects.of(Some(slot));
            let detail = format!("still {} after the convergence window", saga.state.as_str());
            Violation::of_transfer(ViolationClass::Stuck, id, fx, detail)
        })
        .collect();
    let detail = match c.convergence_ms {
        Some(ms) => format!(
            "{} sagas final {ms} ms after the load ended",
            dump.sagas.len()
        ),
        None => format!("{} sagas not final within the window", found.len()),
    };
    let mut invariant = judged(InvariantName::Convergence, &found, detail);
    if !c.converged && found.is_empty() {
        invariant.holds = Some(false);
        invariant.violations = 1;
    }
    (invariant, found)
}

/// Convergence of a system without a saga log, from what `GET /transfers/{id}` said of every
/// transfer whose end the client did not see.
fn polled_convergence(cx: &Context<'_>, polled: &PolledTransfers) -> (Invariant, Vec<Violation>) {
    let c = &cx.evidence.convergence;
    let found: Vec<Violation> = polled
        .open
        .iter()
        .map(|id| {
            let fx = cx.effects.of(cx.ids.find(id.as_str()));
            let detail = "not final after the convergence window (GET /transfers/{id})".to_owned();
            Violation::of_transfer(ViolationClass::Stuck, id, fx, detail)
        })
        .collect();
    let unfollowed = if polled.without_id > 0 {
        format!(
            "; {} operations without a transfer id could not be followed",
            polled.without_id
        )
    } else {
        String::new()
    };
    let detail = match c.convergence_ms {
        Some(ms) => format!(
            "no saga log: {} transfers answered pending or unanswered, all final {ms} ms after the load ended (GET /transfers/{{id}}){unfollowed}",
            polled.asked
        ),
        None => format!(
            "no saga log: {} of {} transfers not final within the window (GET /transfers/{{id}}){unfollowed}",
            found.len(),
            polled.asked
        ),
    };
    let mut invariant = judged(InvariantName::Convergence, &found, detail);
    if !c.converged && found.is_empty() {
        invariant.holds = Some(false);
        invariant.violations = 1;
    }
    (invariant, found)
}

/// A sample's breach of one bound: the first time, how often, the faults active then.
struct Breach {
    class: ViolationClass,
    first_at_s: f64,
    faults: Vec<String>,
    samples: u64,
    worst: String,
}

/// The totals sampled during the run never exceed the initial total, never fall below it by
/// more than the money in flight, and no balance goes below zero.
pub fn sampled_bounds(cx: &Context<'_>) -> (Invariant, Vec<Violation>) {
    let samples = &cx.evidence.samples;
    let Some(books) = cx.books else {
        return (
            unknown(
                InvariantName::SampledBounds,
                "no books to take the initial total from",
            ),
            Vec::new(),
        );
    };
    if samples.is_empty() {
        return (
            unknown(
                InvariantName::SampledBounds,
                "no samples taken during the run",
            ),
            Vec::new(),
        );
    }
    let initial = u128::from(total(&books.external_before) + total(&books.ledger_before));
    let mut breaches: Vec<Breach> = Vec::new();
    let mut note = |class, at_s: f64, faults: &[String], worst: String| match breaches
        .iter_mut()
        .find(|b| b.class == class)
    {
        Some(b) => b.samples += 1,
        None => breaches.push(Breach {
            class,
            first_at_s: at_s,
            faults: faults.to_vec(),
            samples: 1,
            worst,
        }),
    };
    let mut bounded = 0u64;
    for s in samples {
        let sum = u128::from(s.ledger_total_cents) + u128::from(s.external_total_cents);
        if sum > initial {
            let worst = format!("{} cents above the initial total", sum - initial);
            note(
                ViolationClass::CreatedDuringRun,
                s.at_s,
                &s.active_faults,
                worst,
            );
        }
        if let Some(bound) = s.in_flight_bound_cents {
            bounded += 1;
            let floor = initial.saturating_sub(u128::from(bound));
            if sum < floor {
                let worst = format!(
                    "{} cents below the initial total less {bound} in flight",
                    floor - sum
                );
                note(
                    ViolationClass::LostDuringRun,
                    s.at_s,
                    &s.active_faults,
                    worst,
                );
            }
        }
        if s.lowest_balance_cents < 0 {
            let worst = format!("a balance of {}", s.lowest_balance_cents);
            note(
                ViolationClass::NegativeBalance,
                s.at_s,
                &s.active_faults,
                worst,
            );
        }
    }
    let found: Vec<Violation> = breaches
        .into_iter()
        .map(|b| {
            Violation::of_run(
                b.class,
                format!(
                    "first at {:.1} s ({}), {} samples in all; first: {}",
                    b.first_at_s,
                    if b.faults.is_empty() {
                        "no fault active".to_owned()
                    } else {
                        format!("faults active: {}", b.faults.join(", "))
                    },
                    b.samples,
                    b.worst
                ),
            )
        })
        .collect();
    let detail = format!(
        "{} samples, {bounded} with the money in flight known",
        samples.len()
    );
    (judged(InvariantName::SampledBounds, &found, detail), found)
}
