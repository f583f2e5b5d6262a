//! The SLO of a run: the p99 bound and any further percentiles the profile names, judged on
//! the merged latency histogram, and the error budget judged on the outcomes. The latency
//! bounds, with any phase's p99 bound (`phases`), become the `slo_latency` invariant; a blown error budget is a reason on its own.

use crate::phases::{PhaseFigures, Phases};
use crate::profile::plan::SloPlan;
use crate::reconcile::{Invariant, InvariantName};
use crate::stats::{quantile_ms, Requests};
use hdrhistogram::Histogram;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The invariant that holds the latency bounds.
pub const LATENCY_INVARIANT: InvariantName = InvariantName::SloLatency;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SloResult {
    pub p99_ms: u64,
    /// None when p99 has too few samples to judge.
    pub met: Option<bool>,
    pub percentiles: Vec<PercentileResult>,
    pub error_budget: f64,
    pub error_rate: f64,
    pub error_budget_met: bool,
    /// The profile's bound on the shed fraction (absent: not judged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shed_budget: Option<f64>,
    /// Shed answers over all operations.
    #[serde(default)]
    pub shed_rate: f64,
}

impl SloResult {
    /// Whether the shed fraction is within its budget (true when there is none).
    pub fn shed_budget_met(&self) -> bool {
        self.shed_budget.is_none_or(|b| self.shed_rate <= b)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct PercentileResult {
    pub name: String,
    pub bound_ms: u64,
    pub value_ms: Option<f64>,
    pub met: Option<bool>,
}

/// The SLO's parts, judged.
pub struct SloJudgement {
    pub result: SloResult,
    /// `slo_latency`: every latency bound held (unknown when one could not be shown).
    pub invariant: Invariant,
    /// Why the error budget is blown, when it is.
    pub error_budget_exceeded: Option<String>,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn shown(value: Option<f64>) -> String {
    value.map_or_else(|| "unknown".into(), |v| format!("{v:.2}"))
}

/// Why the error budget or the shed budget is blown, when one is.
pub fn budget_exceeded(result: &SloResult) -> Option<String> {
    let errors = (!result.error_budget_met).then(|| {
        format!(
            "error rate {:.4} exceeds the budget {}",
            result.error_rate, result.error_budget
        )
    });
    let shed = result
        .shed_budget
        .filter(|_| !result.shed_budget_met())
        .map(|budget| {
            format!(
                "shed rate {:.4} exceeds the shed budget {budget}",
                result.shed_rate
            )
        });
    match (errors, shed) {
        (Some(e), Some(s)) => Some(format!("{e}; {s}")),
        (e, s) => e.or(s),
    }
}

/// A phase's p99 against `bound_ms`. A phase is often short (a fault of a second or two),
/// too short for a p99: then its max, which no p99 exceeds, shows the bound held when it is
/// within it, and nothing otherwise. A phase with no operations holds its bound vacuously.
fn phase_p99(phase: &PhaseFigures, bound_ms: f64) -> (Option<f64>, Option<bool>) {
    let l = &phase.latency_ms;
    match (l.p99, l.max) {
        (Some(p99), _) => (Some(p99), Some(p99 <= bound_ms)),
        (None, Some(max)) if max <= bound_ms => (Some(max), Some(true)),
        (None, Some(_)) => (None, None),
        (None, None) => (None, Some(phase.operations == 0)),
    }
}

/// Judges `slo` on the latency histogram `h` (µs), the phases' latency and the outcome
/// counts. A phase bound is listed among the percentiles as `<phase>.p99`.
pub fn judge(
    slo: &SloPlan,
    h: &Histogram<u64>,
    phases: &Phases,
    requests: &Requests,
) -> SloJudgement {
    let p99 = quantile_ms(h, 0.99);
    let p99_bound = ms(slo.p99);
    let percentiles: Vec<PercentileResult> = slo
        .percentiles
        .iter()
        .map(|(name, q, bound)| {
            let value = quantile_ms(h, *q);
            PercentileResult {
                name: name.clone(),
                bound_ms: ms(*bound),
                value_ms: value,
                met: value.map(|v| v <= ms(*bound) as f64),
            }
        })
        .chain(slo.phases.iter().map(|(group, bound)| {
            let (value_ms, met) = phase_p99(phases.group(*group), ms(*bound) as f64);
            PercentileResult {
                name: format!("{}.p99", group.as_str()),
                bound_ms: ms(*bound),
                value_ms,
                met,
            }
        }))
        .collect();
    let operations = requests.operations();
    let share = |n: u64| {
        if operations == 0 {
            0.0
        } else {
            n as f64 / operations as f64
        }
    };
    let error_rate = share(requests.errors);
    let result = SloResult {
        p99_ms: p99_bound,
        met: p99.map(|p| p <= p99_bound as f64),
        percentiles,
        error_budget: slo.error_budget,
        error_rate,
        error_budget_met: error_rate <= slo.error_budget,
        shed_budget: slo.shed_budget,
        shed_rate: share(requests.shed),
    };

    let mut detail = format!("p99 {} ms against {p99_bound} ms", shown(p99));
    for p in &result.percentiles {
        detail.push_str(&format!(
            "; {} {} against {}",
            p.name,
            shown(p.value_ms),
            p.bound_ms
        ));
    }
    let parts: Vec<Option<bool>> = std::iter::once(result.met)
        .chain(result.percentiles.iter().map(|p| p.met))
        .collect();
    let holds = if parts.contains(&Some(false)) {
        Some(false)
    } else if parts.contains(&None) {
        None
    } else {
        Some(true)
    };
    let invariant = Invariant {
        name: LATENCY_INVARIANT,
        holds,
        violations: u64::from(holds == Some(false)),
        detail,
    };
    let error_budget_exceeded = budget_exceeded(&result);
    SloJudgement {
        result,
        invariant,
        error_budget_exceeded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::plan::PhaseGroup;
    use crate::stats::{new_histogram, Latency};

    fn phases_with_fault_p99(p99_ms: f64) -> Phases {
        Phases {
            during_faults: PhaseFigures {
                operations: 2_000,
                latency_ms: Latency {
                    p99: Some(p99_ms),
                    ..Latency::default()
                },
                ..PhaseFigures::default()
            },
            ..Phases::default()
        }
    }

    #[test]
    fn a_phase_bound_is_judged_on_its_phase_alone() {
        let mut h = new_histogram();
        for _ in 0..2_000 {
            h.record(5_000).expect("in range");
        }
        let plan = SloPlan {
            p99: Duration::from_millis(200),
            percentiles: Vec::new(),
            error_budget: 0.0,
            shed_budget: None,
            phases: vec![(PhaseGroup::DuringFaults, Duration::from_millis(100))],
        };
        let requests = Requests::default();
        let held = judge(&plan, &h, &phases_with_fault_p99(80.0), &requests);
        assert_eq!(
            held.invariant.holds,
            Some(true),
            "{}",
            held.invariant.detail
        );
        let broken = judge(&plan, &h, &phases_with_fault_p99(150.0), &requests);
        assert_eq!(broken.invariant.holds, Some(false));
        assert!(broken
            .invariant
            .detail
            .contains("during_faults.p99 150.00 against 100"));
        assert_eq!(broken.result.met, Some(true), "the overall p99 still holds");
        let empty = judge(&plan, &h, &Phases::default(), &requests);
        assert_eq!(
            empty.invariant.holds,
            Some(true),
            "no operation broke the bound"
        );
        let mut short = phases_with_fault_p99(0.0);
        short.during_faults.latency_ms.p99 = None;
        short.during_faults.latency_ms.max = Some(90.0);
        let judged = judge(&plan, &h, &short, &requests);
        assert_eq!(
            judged.invariant.holds,
            Some(true),
            "a max within the bound shows it"
        );
        short.during_faults.latency_ms.max = Some(120.0);
        let judged = judge(&plan, &h, &short, &requests);
        assert_eq!(judged.invariant.holds, None, "a max past it shows nothing");
    }

    #[test]
    fn shed_answers_are_judged_by_their_own_budget_never_the_error_budget() {
        let mut h = new_histogram();
        for _ in 0..2_000 {
            h.record(5_000).expect("in range");
        }
        let mut plan = SloPlan {
            p99: Duration::from_millis(200),
            percentiles: Vec::new(),
            error_budget: 0.0,
            shed_budget: None,
            phases: Vec::new(),
        };
        let requests = Requests {
            completed: 600,
            shed: 400,
            ..Requests::default()
        };
        let unbounded = judge(&plan, &h, &Phases::default(), &requests);
        assert!(unbounded.result.error_budget_met, "shed is not an error");
        assert_eq!(unbounded.result.shed_rate, 0.4);
        assert_eq!(
            unbounded.error_budget_exceeded, None,
            "no shed budget, no judgement"
        );
        plan.shed_budget = Some(0.5);
        let within = judge(&plan, &h, &Phases::default(), &requests);
        assert_eq!(within.error_budget_exceeded, None);
        plan.shed_budget = Some(0.3);
        let over = judge(&plan, &h, &Phases::default(), &requests);
        assert_eq!(
            over.error_budget_exceeded.as_deref(),
            Some("shed rate 0.4000 exceeds the shed budget 0.3")
        );
    }
}
