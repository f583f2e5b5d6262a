//! Past the knee: the rates the overload steps run at (`PAST_KNEE_FACTORS`) and goodput at
//! each, beside the knee's and the limit the CPU a refusal costs implies (`cost`).

use super::{cost, Step};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The multiples of the knee the overload steps run at, once a first miss bounds the knee.
/// They are not capped by `--max`, which bounds the search.
pub const PAST_KNEE_FACTORS: [f64; 3] = [1.5, 2.0, 4.0];

/// The rate `factor` times the knee.
pub(super) fn past_knee_rate(knee: u32, factor: f64) -> u32 {
    (f64::from(knee) * factor).round() as u32
}

/// Goodput at one multiple of the knee, beside the knee's (the ideal under overload: a
/// system that sheds what it cannot finish keeps finishing what it finished at the knee).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PastKnee {
    pub factor: f64,
    pub rate_per_s: u32,
    /// Mean goodput of the steps at this rate, completed transfers/s.
    pub goodput_rps: f64,
    /// That goodput over the knee's.
    pub of_knee: f64,
    /// p99 of the answered transfers, ms (mean over the steps at this rate).
    pub p99_ms: Option<f64>,
    /// The goodput the cores allow at this rate, given the fitted CPU of a served and of a
    /// shed request (`cost`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_limit_rps: Option<f64>,
}

/// The mean of `pick` over the steps at `rate`; None when no step ran there or one has no
/// value.
fn mean_at(steps: &[Step], rate: u32, pick: fn(&Step) -> Option<f64>) -> Option<f64> {
    let at: Vec<Option<f64>> = steps
        .iter()
        .filter(|s| s.rate_per_s == rate)
        .map(pick)
        .collect();
    let values: Option<Vec<f64>> = at.into_iter().collect();
    values
        .filter(|v| !v.is_empty())
        .map(|v| v.iter().sum::<f64>() / v.len() as f64)
}

/// Goodput at each multiple of the knee that ran, beside the knee's and the limit the
/// fitted CPU costs imply.
pub(super) fn past_knee(
    steps: &[Step],
    knee: u32,
    costs: Option<&cost::CpuCosts>,
) -> Vec<PastKnee> {
    let Some(at_knee) = mean_at(steps, knee, |s| Some(s.goodput_rps)).filter(|g| *g > 0.0) else {
        return Vec::new();
    };
    PAST_KNEE_FACTORS
        .iter()
        .filter_map(|&factor| {
            let rate = past_knee_rate(knee, factor);
            let goodput_rps = mean_at(steps, rate, |s| Some(s.goodput_rps))?;
            Some(PastKnee {
                factor,
                rate_per_s: rate,
                goodput_rps,
                of_knee: goodput_rps / at_knee,
                p99_ms: mean_at(steps, rate, |s| s.p99_ms),
                cpu_limit_rps: costs.and_then(|c| c.goodput_limit(f64::from(rate))),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(rate: u32, goodput: f64, p99: Option<f64>) -> Step {
        serde_json::from_value(serde_json::json!({
            "rate_per_s": rate, "purpose": "past_knee", "meets": false, "verdict": "fail",
            "reasons": [], "goodput_rps": goodput, "p50_ms": 5.0, "p99_ms": p99,
            "p999_ms": null, "mean_ms": 6.0, "error_rate": 0.0, "refused_rate": 0.0,
            "scheduled": 1000, "shed": 0, "pending": 0, "errors": 0, "overflow": 0,
            "send_lag_ms_p99": 1.0, "generator_limited": false, "concurrency": 1.0,
            "duration_s": 10, "dir": "d"
        }))
        .expect("a step")
    }

    #[test]
    fn goodput_past_the_knee_is_set_beside_the_knees_at_each_multiple_that_ran() {
        let steps = [
            step(333, 300.0, Some(20.0)),
            step(333, 310.0, Some(30.0)),
            step(500, 240.0, Some(150.0)),
            step(666, 155.0, Some(180.0)),
            step(666, 151.0, None),
        ];
        // 1.5× rounds to 500; 2× ran twice (one without latencies); 4× did not run.
        let past = past_knee(&steps, 333, None);
        let factors: Vec<f64> = past.iter().map(|p| p.factor).collect();
        assert_eq!(factors, [1.5, 2.0]);
        assert_eq!(past[0].rate_per_s, 500);
        assert!((past[0].of_knee - 240.0 / 305.0).abs() < 1e-9);
        assert_eq!(past[0].p99_ms, Some(150.0));
        assert_eq!(past[1].goodput_rps, 153.0);
        assert_eq!(
            past[1].p99_ms, None,
            "a step without latencies has no mean p99"
        );
        assert!(
            past_knee(&steps, 999, None).is_empty(),
            "no step at the knee"
        );
    }
}
