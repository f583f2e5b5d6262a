//! What a refusal costs beside a served transfer, per process, and the goodput that cost
//! allows past the knee.
//!
//! Each step measured each process's CPU over its load. Steps below the knee serve nearly
//! everything; steps past it shed much of what they are offered. Fitting each process's
//! CPU as `idle_ms_per_s × seconds + served_ms × served + shed_ms × shed` over every step
//! (least squares) separates the two costs from what the process burns with no load at all
//! (timers, scans), which would otherwise weigh on the slow steps' costs. On a machine whose
//! cores every process shares, offered `R`/s can then be served at most at
//! `(cores × 1000 − idle − R × shed) / (served − shed)`/s, the sums taken over the
//! processes: the limit a refusal's cost implies, beside the knee's goodput (the ideal,
//! where refusals would cost nothing).

use super::Step;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One process's fitted CPU costs, ms per request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProcessCost {
    /// CPU each second with no request at all.
    pub idle_ms_per_s: f64,
    /// CPU per request not shed (completed, failed, pending or errored).
    pub served_ms: f64,
    /// CPU per request answered 503 `overloaded`.
    pub shed_ms: f64,
}

/// The fitted costs of every process, and the cores they share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CpuCosts {
    pub by_process: BTreeMap<String, ProcessCost>,
    /// The steps the fit used, and how many of them shed at least 1 % of their requests.
    pub steps: usize,
    pub shedding_steps: usize,
    /// The cores of the machine the steps ran on.
    pub cores: u32,
}

/// A step's measurement window and requests: (seconds, served, shed), the counts scaled
/// from the measured window to the CPU's (which also holds the warm-up). None before these
/// were recorded, or when more than 1 % of the step's requests were neither answered nor
/// shed (transport errors, timeouts, the generator's overflow): what those cost cannot be
/// told apart.
fn requests(step: &Step) -> Option<(f64, f64, f64)> {
    let operations = step.operations.filter(|n| *n > 0)? as f64;
    let seconds = step.cpu_window_s.filter(|s| *s > 0.0)?;
    let scheduled = step.scheduled as f64;
    let other = (step.errors + step.overflow) as f64;
    if scheduled <= 0.0 || other > 0.01 * scheduled {
        return None;
    }
    let scale = operations / scheduled;
    let shed = (step.shed as f64).min(scheduled);
    Some((seconds, (scheduled - shed - other) * scale, shed * scale))
}

/// Solves `m · x = v` for the `n` (at most 3) unknowns by Gaussian elimination with
/// partial pivoting; None when the system is singular.
fn solve(mut m: [[f64; 3]; 3], mut v: [f64; 3], n: usize) -> Option<[f64; 3]> {
    for col in 0..n {
        let pivot = (col..n).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))?;
        let scale = m
            .iter()
            .take(n)
            .flatten()
            .map(|x| x.abs())
            .fold(0.0, f64::max);
        if m[pivot][col].abs() <= 1e-12 * scale {
            return None;
        }
        m.swap(col, pivot);
        v.swap(col, pivot);
        let (pivot_row, pivot_v) = (m[col], v[col]);
        for (row, v_row) in m.iter_mut().zip(v.iter_mut()).take(n).skip(col + 1) {
            let f = row[col] / pivot_row[col];
            for (cell, above) in row.iter_mut().zip(pivot_row).take(n).skip(col) {
                *cell -= f * above;
            }
            *v_row -= f * pivot_v;
        }
    }
    let mut x = [0.0; 3];
    for row in (0..n).rev() {
        let known: f64 = (row + 1..n).map(|k| m[row][k] * x[k]).sum();
        x[row] = (v[row] - known) / m[row][row];
    }
    Some(x)
}

/// Least squares of `y ≈ Σ coef_i · x_i` with every coefficient at least 0: the best fit over
/// each subset of the three terms whose solution is not negative (a cost below zero is a
/// saturated machine's artefact, not a saving).
fn non_negative_fit(rows: &[([f64; 3], f64)]) -> Option<[f64; 3]> {
    let mut best: Option<([f64; 3], f64)> = None;
    for subset in 1u8..8 {
        let terms: Vec<usize> = (0..3).filter(|i| subset & (1 << i) != 0).collect();
        let (mut m, mut v) = ([[0.0; 3]; 3], [0.0; 3]);
        for (x, y) in rows {
            for (a, &i) in terms.iter().enumerate() {
                for (b, &j) in terms.iter().enumerate() {
                    m[a][b] += x[i] * x[j];
                }
                v[a] += x[i] * y;
            }
        }
        let Some(solved) = solve(m, v, terms.len()) else {
            continue;
        };
        if solved.iter().take(terms.len()).any(|c| *c < 0.0) {
            continue;
        }
        let mut coef = [0.0; 3];
        for (a, &i) in terms.iter().enumerate() {
            coef[i] = solved[a];
        }
        let sse: f64 = rows
            .iter()
            .map(|(x, y)| (y - (0..3).map(|i| coef[i] * x[i]).sum::<f64>()).powi(2))
            .sum();
        if best.is_none_or(|(_, b)| sse < b) {
            best = Some((coef, sse));
        }
    }
    best.map(|(coef, _)| coef)
}

/// Fits each process's costs over `steps`. None unless at least two steps shed 1 % or more
/// of their requests and two did not: without both kinds, the two costs cannot be told
/// apart.
pub fn fit(steps: &[Step], cores: u32) -> Option<CpuCosts> {
    let measured: Vec<(&Step, (f64, f64, f64))> = steps
        .iter()
        .filter_map(|s| requests(s).map(|r| (s, r)))
        .collect();
    let shedding = measured
        .iter()
        .filter(|(_, (_, served, shed))| *shed >= 0.01 * (served + shed))
        .count();
    if shedding < 2 || measured.len() - shedding < 2 {
        return None;
    }
    let processes: std::collections::BTreeSet<&String> = measured
        .iter()
        .flat_map(|(s, _)| s.cpu_ms_per_operation.keys())
        .collect();
    let mut by_process = BTreeMap::new();
    for process in processes {
        // total = idle·seconds + served_ms·served + shed_ms·shed, no term below 0.
        let rows: Vec<([f64; 3], f64)> = measured
            .iter()
            .filter_map(|(step, (seconds, served, shed))| {
                let per_operation = step.cpu_ms_per_operation.get(process)?;
                let operations = step.operations? as f64;
                Some(([*seconds, *served, *shed], per_operation * operations))
            })
            .collect();
        let Some([idle_ms_per_s, served_ms, shed_ms]) = non_negative_fit(&rows) else {
            continue;
        };
        by_process.insert(
            process.clone(),
            ProcessCost {
                idle_ms_per_s,
                served_ms,
                shed_ms,
            },
        );
    }
    (!by_process.is_empty()).then_some(CpuCosts {
        by_process,
        steps: measured.len(),
        shedding_steps: shedding,
        cores,
    })
}

impl CpuCosts {
    /// CPU ms per served and per shed request, summed over the processes.
    pub fn total(&self) -> ProcessCost {
        self.by_process.values().fold(
            ProcessCost {
                idle_ms_per_s: 0.0,
                served_ms: 0.0,
                shed_ms: 0.0,
            },
            |sum, c| ProcessCost {
                idle_ms_per_s: sum.idle_ms_per_s + c.idle_ms_per_s,
                served_ms: sum.served_ms + c.served_ms,
                shed_ms: sum.shed_ms + c.shed_ms,
            },
        )
    }

    /// The most requests/s the cores can serve while `offered_per_s` arrive and the rest
    /// are shed; None when the fit says a refusal costs as much as a served request.
    pub fn goodput_limit(&self, offered_per_s: f64) -> Option<f64> {
        let ProcessCost {
            idle_ms_per_s,
            served_ms,
            shed_ms,
        } = self.total();
        if served_ms <= shed_ms {
            return None;
        }
        let budget_ms = f64::from(self.cores) * 1000.0 - idle_ms_per_s;
        let served = (budget_ms - offered_per_s * shed_ms) / (served_ms - shed_ms);
        Some(served.clamp(0.0, offered_per_s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 12 s step; each process burns `idle` ms a second besides its costs per request.
    fn step(operations: u64, shed: u64, ms_by_process: &[(&str, f64, f64, f64)]) -> Step {
        let served = (operations - shed) as f64;
        let per_operation: BTreeMap<String, f64> = ms_by_process
            .iter()
            .map(|(p, idle, a, b)| {
                let total = idle * 12.0 + a * served + b * shed as f64;
                (p.to_string(), total / operations as f64)
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "rate_per_s": operations / 10, "purpose": "search", "meets": true,
            "verdict": "pass", "reasons": [], "goodput_rps": served / 10.0,
            "p50_ms": 5.0, "p99_ms": 9.0, "p999_ms": null, "mean_ms": 6.0,
            "error_rate": 0.0, "refused_rate": 0.0, "scheduled": operations,
            "shed": shed, "pending": 0, "errors": 0, "overflow": 0,
            "send_lag_ms_p99": 1.0, "generator_limited": false, "concurrency": 1.0,
            "cpu_ms_per_operation": per_operation, "operations": operations, "cpu_window_s": 12.0,
            "duration_s": 10, "dir": "d"
        }))
        .expect("a step")
    }

    #[test]
    fn the_fit_tells_a_refusals_cost_from_a_served_requests() {
        let costs = [
            ("coordinator", 60.0, 0.2, 0.02),
            ("harness", 40.0, 0.1, 0.03),
        ];
        let steps = [
            step(3_000, 0, &costs),
            step(10_000, 0, &costs),
            step(20_000, 10, &costs),
            step(40_000, 8_000, &costs),
            step(80_000, 50_000, &costs),
        ];
        let fitted = fit(&steps, 2).expect("a fit");
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
        let c = fitted.by_process["coordinator"];
        assert!(
            close(c.idle_ms_per_s, 60.0) && close(c.served_ms, 0.2) && close(c.shed_ms, 0.02),
            "{c:?}"
        );
        let h = fitted.by_process["harness"];
        assert!(
            close(h.idle_ms_per_s, 40.0) && close(h.served_ms, 0.1) && close(h.shed_ms, 0.03),
            "{h:?}"
        );
        assert_eq!((fitted.steps, fitted.shedding_steps), (5, 2));
        // 2,000 ms of CPU a second, 100 of them idle: at 10,000/s offered,
        // served = (1900 − 10000 × 0.05) / (0.3 − 0.05) = 5,600/s.
        let limit = fitted.goodput_limit(10_000.0).expect("a limit");
        assert!(close(limit, 5_600.0), "{limit}");
        // Offered below what the cores can serve: the limit is what is offered.
        assert_eq!(fitted.goodput_limit(1_000.0), Some(1_000.0));
        // Refusals alone take every core: nothing can be served.
        assert_eq!(fitted.goodput_limit(50_000.0), Some(0.0));
    }

    #[test]
    fn a_cost_the_data_would_put_below_zero_is_held_at_zero() {
        // One unit a second and one per served request; the shedding rows fall a little
        // short, as a saturated machine's do: least squares alone gives refusals a saving.
        let rows = [
            ([1.0, 1.0, 0.0], 2.0),
            ([1.0, 2.0, 0.0], 3.0),
            ([1.0, 2.0, 2.0], 2.9),
            ([1.0, 3.0, 4.0], 3.8),
        ];
        let [idle, served, shed] = non_negative_fit(&rows).expect("a fit");
        assert_eq!(shed, 0.0);
        assert!(idle > 0.0 && served > 0.0, "{idle} {served}");
        let unconstrained = solve(
            [[4.0, 8.0, 6.0], [8.0, 18.0, 16.0], [6.0, 16.0, 20.0]],
            [11.7, 25.2, 21.0],
            3,
        )
        .expect("solvable");
        assert!(unconstrained[2] < 0.0, "{unconstrained:?}");
    }

    #[test]
    fn steps_with_many_requests_neither_answered_nor_shed_are_left_out() {
        let costs = [("coordinator", 50.0, 0.2, 0.02)];
        let mut lossy = step(40_000, 8_000, &costs);
        lossy.errors = 1_000;
        assert_eq!(requests(&lossy), None);
        lossy.errors = 100;
        assert!(requests(&lossy).is_some(), "under 1 % is kept");
    }

    #[test]
    fn without_steps_that_shed_and_steps_that_did_not_there_is_no_fit() {
        let costs = [("coordinator", 50.0, 0.2, 0.02)];
        let calm = [step(10_000, 0, &costs), step(20_000, 0, &costs)];
        assert!(fit(&calm, 2).is_none());
        let one_shedding = [
            step(10_000, 0, &costs),
            step(20_000, 0, &costs),
            step(40_000, 9_000, &costs),
        ];
        assert!(fit(&one_shedding, 2).is_none());
    }
}
