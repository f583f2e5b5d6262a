//! The verdict of a run, from its invariants, its error budget and how well the generator
//! kept to its schedule.
//!
//! A late send is counted in the latency (latency runs from the scheduled time), so a
//! generator that fell behind can only make the service look slower than it is. A run
//! whose generator lagged is therefore still judged when every latency bound held with the
//! lag counted in; it is `unusable` only when a latency bound failed (or could not be
//! shown) while the generator lagged, or when requests could not be sent at all (the
//! in-flight cap), because then the load was not the profile's. A money or contract
//! violation is a failure whatever the generator did: the money moved all the same.

use crate::reconcile::Invariant;
use crate::slo::LATENCY_INVARIANT;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

service::named_enum! {
    /// `pass`: every invariant and the SLO held. `fail`: one did not. `unknown`: nothing
    /// failed but something could not be checked (no dumps, too few samples). `unusable`: the
    /// generator could not keep to its schedule, so the figures say nothing about the service.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub enum Verdict {
        Pass = "pass",
        Fail = "fail",
        Unknown = "unknown",
        Unusable = "unusable",
    }
}

impl Verdict {
    /// 0 pass; 1 an invariant or the SLO failed (or could not be shown to hold); 2 the
    /// harness could not do its job (an unusable generator).
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Pass => 0,
            Verdict::Fail | Verdict::Unknown => 1,
            Verdict::Unusable => 2,
        }
    }
}

/// How well the generator kept to its own schedule.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Generator {
    pub send_lag_ms_p99: f64,
    pub send_lag_ms_max: f64,
    pub usable: bool,
    pub reason: Option<String>,
}

/// What the generator measured of itself.
#[derive(Debug, Clone, Copy)]
pub struct GeneratorLoad {
    pub send_lag_ms_p99: f64,
    pub send_lag_ms_max: f64,
    /// The largest p99 send lag under which the generator counts as on schedule.
    pub lag_limit_ms: f64,
    /// Measured scheduled requests that could not be sent (in-flight cap full).
    pub overflow_measured: u64,
}

pub struct Judged {
    pub verdict: Verdict,
    pub reasons: Vec<String>,
    pub generator: Generator,
}

/// Judges a run. `error_budget_exceeded` is the reason, when more operations ended as
/// `error` than the profile allows.
/// Whether the generator's load was the profile's (usable), and why not or what to note.
fn generator_usable(load: &GeneratorLoad, latency_held: bool) -> (bool, Option<String>) {
    let lag = format!(
        "send lag p99 {:.1} ms exceeds {:.0} ms",
        load.send_lag_ms_p99, load.lag_limit_ms
    );
    let lagged = load.send_lag_ms_p99 > load.lag_limit_ms;
    if load.overflow_measured > 0 {
        (
            false,
            Some(format!(
                "{} scheduled requests could not be sent (client.max_in_flight reached): the load was not the profile's",
                load.overflow_measured
            )),
        )
    } else if lagged && !latency_held {
        (
            false,
            Some(format!(
                "{lag}: the generator fell behind its schedule, so the latency bounds say nothing about the service"
            )),
        )
    } else if lagged {
        (
            true,
            Some(format!(
                "{lag}, but every latency bound held with the lag counted in: the verdict stands"
            )),
        )
    } else {
        (true, None)
    }
}

pub fn judge(
    invariants: &[Invariant],
    error_budget_exceeded: Option<String>,
    load: GeneratorLoad,
) -> Judged {
    let latency_held = invariants
        .iter()
        .filter(|i| i.name == LATENCY_INVARIANT)
        .all(|i| i.holds == Some(true));
    let (usable, generator_reason) = generator_usable(&load, latency_held);
    let mut reasons = Vec::new();
    if !usable {
        reasons.extend(generator_reason.clone());
    }
    for i in invariants {
        match i.holds {
            Some(false) => reasons.push(format!("{} fails: {}", i.name, i.detail)),
            None => reasons.push(format!("{} unknown: {}", i.name, i.detail)),
            Some(true) => {}
        }
    }
    reasons.extend(error_budget_exceeded.clone());

    let fails = |latency: bool| {
        invariants
            .iter()
            .any(|i| (i.name == LATENCY_INVARIANT) == latency && i.holds == Some(false))
    };
    let verdict = if fails(false) || error_budget_exceeded.is_some() {
        Verdict::Fail
    } else if !usable {
        Verdict::Unusable
    } else if fails(true) {
        Verdict::Fail
    } else if invariants.iter().any(|i| i.holds.is_none()) {
        Verdict::Unknown
    } else {
        Verdict::Pass
    };
    Judged {
        verdict,
        reasons,
        generator: Generator {
            send_lag_ms_p99: load.send_lag_ms_p99,
            send_lag_ms_max: load.send_lag_ms_max,
            usable,
            reason: generator_reason,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::InvariantName;

    fn invariant(name: InvariantName, holds: Option<bool>) -> Invariant {
        Invariant {
            name,
            holds,
            violations: u64::from(holds == Some(false)),
            detail: String::new(),
        }
    }

    fn load(lag_p99_ms: f64, overflow: u64) -> GeneratorLoad {
        GeneratorLoad {
            send_lag_ms_p99: lag_p99_ms,
            send_lag_ms_max: lag_p99_ms * 2.0,
            lag_limit_ms: 20.0,
            overflow_measured: overflow,
        }
    }

    fn verdict(money: Option<bool>, latency: Option<bool>, l: GeneratorLoad) -> Verdict {
        let invariants = [
            invariant(InvariantName::Conservation, money),
            invariant(LATENCY_INVARIANT, latency),
        ];
        judge(&invariants, None, l).verdict
    }

    #[test]
    fn a_generator_on_schedule_lets_the_invariants_decide() {
        let on_time = load(1.0, 0);
        assert_eq!(verdict(Some(true), Some(true), on_time), Verdict::Pass);
        assert_eq!(verdict(Some(true), Some(false), on_time), Verdict::Fail);
        assert_eq!(verdict(Some(false), Some(true), on_time), Verdict::Fail);
        assert_eq!(verdict(Some(true), None, on_time), Verdict::Unknown);
    }

    #[test]
    fn a_lagging_generator_makes_a_latency_failure_unusable_not_a_failure() {
        let late = load(45.0, 0);
        assert_eq!(verdict(Some(true), Some(false), late), Verdict::Unusable);
        assert_eq!(verdict(Some(true), None, late), Verdict::Unusable);
        let judged = judge(&[invariant(LATENCY_INVARIANT, Some(false))], None, late);
        assert!(!judged.generator.usable);
        assert!(
            judged.reasons[0].contains("fell behind"),
            "{:?}",
            judged.reasons
        );
    }

    #[test]
    fn a_lagging_generator_does_not_spoil_latency_that_held_anyway() {
        let judged = judge(
            &[invariant(LATENCY_INVARIANT, Some(true))],
            None,
            load(45.0, 0),
        );
        assert_eq!(judged.verdict, Verdict::Pass);
        assert!(judged.generator.usable);
        assert!(judged
            .generator
            .reason
            .is_some_and(|r| r.contains("verdict stands")));
    }

    #[test]
    fn unsent_requests_make_the_run_unusable_but_money_still_fails_it() {
        let capped = load(1.0, 3);
        assert_eq!(verdict(Some(true), Some(true), capped), Verdict::Unusable);
        assert_eq!(verdict(Some(false), Some(true), capped), Verdict::Fail);
        assert_eq!(
            verdict(Some(false), Some(false), load(45.0, 0)),
            Verdict::Fail
        );
    }

    #[test]
    fn an_exceeded_error_budget_fails_the_run() {
        let judged = judge(
            &[invariant(LATENCY_INVARIANT, Some(true))],
            Some("error rate 0.2 exceeds the budget 0.1".into()),
            load(1.0, 0),
        );
        assert_eq!(judged.verdict, Verdict::Fail);
        assert_eq!(judged.reasons, ["error rate 0.2 exceeds the budget 0.1"]);
    }
}
