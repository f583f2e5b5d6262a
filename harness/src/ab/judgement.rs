//! What the rounds of `harness ab` say: each figure's pairs judged by the paired test
//! (`regression::paired`) against its threshold, the verdicts of both arms, and the exit
//! code. A figure that is worse when it falls (throughput) is judged by its reciprocal, so
//! every ratio reads "B costs this many times A".

use crate::compare::load::Run;
use crate::regression::paired::{self, Decision};
use serde::Serialize;
use std::collections::BTreeMap;

/// The growth each kind of figure may show before it counts as a regression, as fractions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub cpu: f64,
    pub latency: f64,
    pub throughput: f64,
}

impl Thresholds {
    fn of(&self, figure: &str) -> f64 {
        if figure.starts_with("cpu_") {
            self.cpu
        } else if figure == "throughput_rps" {
            self.throughput
        } else {
            self.latency
        }
    }
}

/// One round of one arm.
#[derive(Debug, Clone, Serialize)]
pub struct ArmRun {
    pub round: usize,
    pub arm: char,
    pub folder: String,
    pub verdict: String,
    /// Why the verdict is not a pass.
    pub reasons: Vec<String>,
    /// The invariants it failed, by name.
    pub failed_invariants: Vec<String>,
}

/// The invariant a run of a shared machine can fail without a fault of the build: a stall of
/// the machine lifts one short run's p99 past any SLO. The latency figures judge latency.
const LATENCY_INVARIANT: &str = "slo_latency";

impl ArmRun {
    /// Whether the run failed on more than its latency bounds: money, the books, a promise
    /// to a client, or a verdict no failed invariant explains.
    pub fn failed_beyond_latency(&self) -> bool {
        self.verdict == "fail"
            && (self.failed_invariants.is_empty()
                || self
                    .failed_invariants
                    .iter()
                    .any(|n| n != LATENCY_INVARIANT))
    }
}

/// One figure judged over the pairs.
#[derive(Debug, Clone, Serialize)]
pub struct FigureJudgement {
    pub figure: String,
    pub higher_is_worse: bool,
    /// The growth that counts as a regression, in percent.
    pub threshold_pct: f64,
    pub a_median: f64,
    pub b_median: f64,
    pub pairs: usize,
    /// The median over the pairs of B's cost over A's (throughput: A over B).
    pub median_ratio: f64,
    pub interval: (f64, f64),
    pub confidence: f64,
    pub sign_test_p: f64,
    /// `regression`, `no_regression` or `cannot_tell`.
    pub decision: &'static str,
    /// For `cannot_tell`: about how many pairs in all would tell.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pairs_needed: Option<usize>,
}

/// The whole comparison.
#[derive(Debug, Clone, Serialize)]
pub struct AbJudgement {
    /// Runs whose verdict is not a pass, in either arm: reported before any figure.
    pub failed_runs: Vec<ArmRun>,
    pub figures: Vec<FigureJudgement>,
    /// `regression`, `no_regression` or `cannot_tell`.
    pub decision: &'static str,
    /// 1 a regression (B failed a verdict A passed, or a figure is worse by its threshold
    /// and significantly so), 2 the rounds cannot tell, 0 otherwise.
    pub exit_code: i32,
    /// For `cannot_tell`: the rounds that would tell every figure, about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rounds_needed: Option<usize>,
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Judges the rounds: `pairs` holds each round's runs of A and of B.
pub fn judge(
    pairs: &[(Run, Run)],
    runs: &[ArmRun],
    thresholds: Thresholds,
    confidence: f64,
    seed: u64,
) -> AbJudgement {
    let failed_runs: Vec<ArmRun> = runs
        .iter()
        .filter(|r| r.verdict != "pass")
        .cloned()
        .collect();
    // Each figure's values per round, in both arms; a figure missing from a run is left out
    // of that pair.
    let mut by_figure: BTreeMap<String, (bool, Vec<(f64, f64)>)> = BTreeMap::new();
    for (a, b) in pairs {
        let b_figures = b.summary.figures();
        for fa in a.summary.figures() {
            if let Some(fb) = b_figures.iter().find(|f| f.name == fa.name) {
                by_figure
                    .entry(fa.name.clone())
                    .or_insert_with(|| (fa.higher_is_worse, Vec::new()))
                    .1
                    .push((fa.value, fb.value));
            }
        }
    }
    let mut figures = Vec::new();
    for (name, (higher_is_worse, values)) in by_figure {
        let threshold = thresholds.of(&name);
        // Costs, so that a growth is worse: throughput enters as its reciprocal.
        let costs: Vec<(f64, f64)> = values
            .iter()
            .map(|&(a, b)| {
                if higher_is_worse {
                    (a, b)
                } else {
                    (1.0 / a, 1.0 / b)
                }
            })
            .collect();
        let Some(j) = paired::judge(&costs, threshold, confidence, seed) else {
            continue;
        };
        let (decision, pairs_needed) = match j.decision {
            Decision::Regression => ("regression", None),
            Decision::NoRegression => ("no_regression", None),
            Decision::CannotTell { pairs_needed } => ("cannot_tell", Some(pairs_needed)),
        };
        let column =
            |pick: fn(&(f64, f64)) -> f64| median(&values.iter().map(pick).collect::<Vec<_>>());
        figures.push(FigureJudgement {
            figure: name,
            higher_is_worse,
            threshold_pct: threshold * 100.0,
            a_median: column(|p| p.0),
            b_median: column(|p| p.1),
            pairs: j.pairs,
            median_ratio: j.median_ratio,
            interval: j.interval,
            confidence: j.confidence,
            sign_test_p: j.sign_test_p,
            decision,
            pairs_needed,
        });
    }
    // A run of B that broke more than its latency bounds, where no run of A did, is a
    // regression whatever the timings say.
    let broke = |arm: char| {
        failed_runs
            .iter()
            .any(|r| r.arm == arm && r.failed_beyond_latency())
    };
    let b_failed_where_a_passed = broke('B') && !broke('A');
    let regressed = figures.iter().any(|f| f.decision == "regression");
    let unsure: Vec<usize> = figures.iter().filter_map(|f| f.pairs_needed).collect();
    let too_few = figures.is_empty();
    let (decision, exit_code, rounds_needed) = if b_failed_where_a_passed || regressed {
        ("regression", 1, None)
    } else if too_few {
        ("cannot_tell", 2, Some(paired::MIN_PAIRS))
    } else if let Some(most) = unsure.iter().max() {
        ("cannot_tell", 2, Some(*most))
    } else {
        ("no_regression", 0, None)
    };
    AbJudgement {
        failed_runs,
        figures,
        decision,
        exit_code,
        rounds_needed,
    }
}

/// The comparison as markdown, for a CI job's summary: failed runs first, then the figures
/// that regressed, then every figure.
pub fn markdown(j: &AbJudgement, title: &str) -> String {
    use std::fmt::Write as _;
    let mut out = format!("## {title}\n\n");
    let headline = match j.decision {
        "regression" => "**Regression.**".to_owned(),
        "cannot_tell" => format!(
            "**Cannot tell**: too noisy; about {} rounds would tell.",
            j.rounds_needed.unwrap_or(0)
        ),
        _ => "**No regression.**".to_owned(),
    };
    let _ = writeln!(out, "{headline}\n");
    if !j.failed_runs.is_empty() {
        let _ = writeln!(out, "### Runs that did not pass\n");
        for r in &j.failed_runs {
            let _ = writeln!(
                out,
                "- arm {} round {}: **{}** ({}){}{}",
                r.arm,
                r.round,
                r.verdict,
                r.folder,
                if r.reasons.is_empty() {
                    String::new()
                } else {
                    format!(": {}", r.reasons.join("; "))
                },
                if r.verdict == "fail" && !r.failed_beyond_latency() {
                    " (latency only: judged by p50 and p99 below)"
                } else {
                    ""
                }
            );
        }
        out.push('\n');
    }
    let regressed: Vec<&FigureJudgement> = j
        .figures
        .iter()
        .filter(|f| f.decision == "regression")
        .collect();
    if !regressed.is_empty() {
        let _ = writeln!(out, "### Regressed\n");
        for f in regressed {
            let _ = writeln!(
                out,
                "- **{}**: B costs {:+.1} % (interval {:+.1} % to {:+.1} %), over its {:.0} % threshold",
                f.figure,
                (f.median_ratio - 1.0) * 100.0,
                (f.interval.0 - 1.0) * 100.0,
                (f.interval.1 - 1.0) * 100.0,
                f.threshold_pct
            );
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "| figure | A (median) | B (median) | B/A cost | {:.0} % interval | sign test p | threshold | decision |",
        j.figures.first().map_or(95.0, |f| f.confidence * 100.0)
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---|");
    for f in &j.figures {
        let decision = match f.pairs_needed {
            Some(n) => format!("cannot tell (~{n} rounds)"),
            None => f.decision.replace('_', " "),
        };
        let _ = writeln!(
            out,
            "| {} | {:.3} | {:.3} | {:.3} | {:.3}–{:.3} | {:.3} | {:.0} % | {} |",
            f.figure,
            f.a_median,
            f.b_median,
            f.median_ratio,
            f.interval.0,
            f.interval.1,
            f.sign_test_p,
            f.threshold_pct,
            decision
        );
    }
    out.push_str(
        "\nB/A cost: the median over the rounds of B's figure over A's (throughput: A's \
         over B's); the interval is a percentile bootstrap over whole rounds. A regression is over \
         its threshold with the interval clear of 1 and the sign test under 1 - confidence.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::example;
    use crate::verdict::Verdict;

    const THRESHOLDS: Thresholds = Thresholds {
        cpu: 0.05,
        latency: 0.10,
        throughput: 0.05,
    };

    /// A run whose coordinator costs `coordinator_ms` a transfer (no latency log).
    fn run(coordinator_ms: f64) -> Run {
        let mut s = example::summary(200.0, 0.0);
        s.cpu
            .ms_per_operation
            .insert("coordinator".into(), coordinator_ms);
        s.cpu.ms_per_operation.insert("ledger".into(), 0.2);
        Run {
            source: "run".into(),
            summary: s,
            histogram: None,
        }
    }

    fn arm_runs(rounds: usize) -> Vec<ArmRun> {
        (0..rounds)
            .flat_map(|round| {
                ['A', 'B'].map(|arm| ArmRun {
                    round,
                    arm,
                    folder: format!("round-{round}-{arm}"),
                    verdict: "pass".into(),
                    reasons: Vec::new(),
                    failed_invariants: Vec::new(),
                })
            })
            .collect()
    }

    /// Eight rounds whose noise both arms share, B's coordinator `factor` times A's.
    fn rounds(factor: f64) -> Vec<(Run, Run)> {
        let noise = [1.0, 1.03, 0.98, 1.01, 0.97, 1.02, 0.99, 1.0];
        noise
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let wobble = if i % 2 == 0 { 1.01 } else { 0.99 };
                (run(0.5 * n), run(0.5 * n * factor * wobble))
            })
            .collect()
    }

    #[test]
    fn a_ten_percent_costlier_coordinator_is_a_regression_named_first() {
        let j = judge(&rounds(1.10), &arm_runs(8), THRESHOLDS, 0.95, 1);
        assert_eq!((j.decision, j.exit_code), ("regression", 1), "{j:?}");
        let coordinator = j
            .figures
            .iter()
            .find(|f| f.figure == "cpu_ms_per_transfer.coordinator")
            .expect("judged");
        assert_eq!(coordinator.decision, "regression");
        assert!(
            (coordinator.median_ratio - 1.10).abs() < 0.02,
            "{coordinator:?}"
        );
        let ledger = j
            .figures
            .iter()
            .find(|f| f.figure == "cpu_ms_per_transfer.ledger")
            .expect("judged");
        assert_eq!(ledger.decision, "no_regression");
        let page = markdown(&j, "t");
        let regressed = page.find("### Regressed").expect("a regressed section");
        let table = page.find("| figure |").expect("a table");
        assert!(regressed < table, "{page}");
        assert!(page[regressed..table].contains("cpu_ms_per_transfer.coordinator"));
        assert!(!page[regressed..table].contains("ledger"), "{page}");
    }

    #[test]
    fn the_same_build_twice_is_no_regression() {
        let j = judge(&rounds(1.0), &arm_runs(8), THRESHOLDS, 0.95, 1);
        assert_eq!((j.decision, j.exit_code), ("no_regression", 0), "{j:?}");
    }

    #[test]
    fn a_regression_the_noise_hides_asks_for_more_rounds() {
        // B's coordinator costs 10 % more at the median, but two rounds lean the other way.
        let pairs: Vec<(Run, Run)> = [1.14, 0.96, 1.12, 0.98, 1.16, 1.08]
            .iter()
            .map(|r| (run(0.5), run(0.5 * r)))
            .collect();
        let j = judge(&pairs, &arm_runs(6), THRESHOLDS, 0.95, 1);
        assert_eq!((j.decision, j.exit_code), ("cannot_tell", 2), "{j:?}");
        assert!(j.rounds_needed.is_some_and(|n| n > 6), "{j:?}");
        assert!(markdown(&j, "t").contains("rounds would tell"));
    }

    #[test]
    fn a_failed_run_of_b_is_a_regression_reported_above_the_figures() {
        let mut runs = arm_runs(8);
        runs[3].verdict = Verdict::Fail.as_str().into();
        runs[3].reasons = vec!["money lost: 500 cents".into()];
        runs[3].failed_invariants = vec!["conservation".into()];
        let j = judge(&rounds(1.0), &runs, THRESHOLDS, 0.95, 1);
        assert_eq!((j.decision, j.exit_code), ("regression", 1), "{j:?}");
        let page = markdown(&j, "t");
        let failed = page.find("did not pass").expect("failed runs listed");
        assert!(failed < page.find("| figure |").expect("a table"), "{page}");
        assert!(page.contains("money lost: 500 cents"), "{page}");
    }

    #[test]
    fn a_run_of_b_that_failed_its_latency_bound_alone_is_listed_but_judged_by_the_figures() {
        let mut runs = arm_runs(8);
        runs[3].verdict = Verdict::Fail.as_str().into();
        runs[3].reasons = vec!["slo_latency fails: p99 336.38 ms against 200 ms".into()];
        runs[3].failed_invariants = vec!["slo_latency".into()];
        let j = judge(&rounds(1.0), &runs, THRESHOLDS, 0.95, 1);
        assert_eq!((j.decision, j.exit_code), ("no_regression", 0), "{j:?}");
        let page = markdown(&j, "t");
        assert!(page.contains("latency only"), "{page}");
    }
}
