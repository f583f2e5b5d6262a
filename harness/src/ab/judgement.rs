//! What the rounds of `harness ab` say: each figure judged against its threshold, the
//! verdicts of both arms, and the exit code. CPU and throughput are judged pair by pair
//! (`regression::paired`); p50 and p99, when every run kept its latency log, by the
//! quantile of each arm's latencies pooled over the rounds (`regression::pooled`), since
//! one stall of the machine carries a short round's own p99. A figure that is worse when it
//! falls (throughput) is judged by its reciprocal, so every ratio reads "B costs this many
//! times A".

use crate::compare::load::Run;
use crate::regression::paired::{self, Decision, PairedJudgement};
use crate::regression::pooled;
use crate::summary::{latency_quantile, LATENCY_FIGURES};
use hdrhistogram::Histogram;
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
    /// `median_of_round_ratios` or `pooled_quantile` (see `ratio`).
    pub method: &'static str,
    /// A's and B's figure: the median over the rounds, or for a pooled quantile that
    /// quantile of all the arm's latencies.
    pub a_value: f64,
    pub b_value: f64,
    pub pairs: usize,
    /// B's cost over A's (throughput: A over B): the median of the rounds' ratios, or the
    /// ratio of the pooled quantiles.
    pub ratio: f64,
    pub interval: (f64, f64),
    pub confidence: f64,
    /// The sign test over the rounds, where the decision needs it (median of ratios).
    pub sign_test_p: Option<f64>,
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

/// How a figure's ratio was found.
const MEDIAN_OF_ROUND_RATIOS: &str = "median_of_round_ratios";
const POOLED_QUANTILE: &str = "pooled_quantile";

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
    // Every round's latency histograms, when every run kept them.
    let histograms: Option<Vec<(&Histogram<u64>, &Histogram<u64>)>> = pairs
        .iter()
        .map(|(a, b)| Some((a.histogram.as_ref()?, b.histogram.as_ref()?)))
        .collect();
    // With every log at hand the latency figures are judged on the pooled rounds, even
    // where each run alone was too short to report its own p99.
    if histograms.is_some() {
        for (name, _) in LATENCY_FIGURES {
            by_figure
                .entry(name.to_owned())
                .or_insert_with(|| (true, Vec::new()));
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
        let pooled =
            latency_quantile(&name)
                .zip(histograms.as_deref())
                .and_then(|(quantile, rounds)| {
                    pooled::judge(rounds, quantile, threshold, confidence, seed)
                });
        let column =
            |pick: fn(&(f64, f64)) -> f64| median(&values.iter().map(pick).collect::<Vec<_>>());
        let (j, method, a_value, b_value): (PairedJudgement, _, _, _) = match pooled {
            // The histograms hold µs; the figures are in ms.
            Some(p) => (
                p.judgement,
                POOLED_QUANTILE,
                p.a_value as f64 / 1000.0,
                p.b_value as f64 / 1000.0,
            ),
            None => {
                let Some(j) = paired::judge(&costs, threshold, confidence, seed) else {
                    continue;
                };
                (j, MEDIAN_OF_ROUND_RATIOS, column(|p| p.0), column(|p| p.1))
            }
        };
        let (decision, pairs_needed) = match j.decision {
            Decision::Regression => ("regression", None),
            Decision::NoRegression => ("no_regression", None),
            Decision::CannotTell { pairs_needed } => ("cannot_tell", Some(pairs_needed)),
        };
        figures.push(FigureJudgement {
            figure: name,
            higher_is_worse,
            threshold_pct: threshold * 100.0,
            method,
            a_value,
            b_value,
            pairs: j.pairs,
            ratio: j.ratio,
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
                (f.ratio - 1.0) * 100.0,
                (f.interval.0 - 1.0) * 100.0,
                (f.interval.1 - 1.0) * 100.0,
                f.threshold_pct
            );
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "| figure | judged by | A | B | B/A cost | {:.0} % interval | sign test p | threshold | decision |",
        j.figures.first().map_or(95.0, |f| f.confidence * 100.0)
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---|");
    for f in &j.figures {
        let decision = match f.pairs_needed {
            Some(n) => format!("cannot tell (~{n} rounds)"),
            None => f.decision.replace('_', " "),
        };
        let judged_by = match f.method {
            POOLED_QUANTILE => "pooled quantile",
            _ => "median of rounds",
        };
        let sign_test = f
            .sign_test_p
            .map_or_else(|| "—".to_owned(), |p| format!("{p:.3}"));
        let _ = writeln!(
            out,
            "| {} | {judged_by} | {:.3} | {:.3} | {:.3} | {:.3}–{:.3} | {sign_test} | {:.0} % | {} |",
            f.figure,
            f.a_value,
            f.b_value,
            f.ratio,
            f.interval.0,
            f.interval.1,
            f.threshold_pct,
            decision
        );
    }
    out.push_str(
        "\nB/A cost: B's figure over A's (throughput: A's over B's). Median of rounds: A and B \
         are the medians over the rounds, the cost the median of the rounds' ratios, and a \
         regression is over its threshold with the interval clear of 1 and the sign test under \
         1 - confidence. Pooled quantile (p50, p99): A and B are that quantile of all the arm's \
         latencies over the rounds, and a regression is over its threshold with the interval \
         clear of 1. Intervals are percentile bootstraps over whole rounds.\n",
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
        assert!((coordinator.ratio - 1.10).abs() < 0.02, "{coordinator:?}");
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

    /// A run whose latency log holds 1,600 latencies near 3 ms, 2 % of them near `tail_us`,
    /// and whose p99 figure is `own_p99_ms` (a round's own p99, which a stall can carry).
    fn run_with_latency(tail_us: u64, own_p99_ms: f64) -> Run {
        let mut r = run(0.5);
        r.summary.latency_ms.p50 = Some(3.0);
        r.summary.latency_ms.p99 = Some(own_p99_ms);
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
        for i in 0..1_600_u64 {
            let value = if i % 50 == 0 { tail_us + i } else { 3_000 + i };
            h.record(value).expect("in bounds");
        }
        r.histogram = Some(h);
        r
    }

    fn figure<'a>(j: &'a AbJudgement, name: &str) -> &'a FigureJudgement {
        j.figures.iter().find(|f| f.figure == name).expect("judged")
    }

    #[test]
    fn latency_from_every_round_s_log_is_judged_by_the_pooled_quantile() {
        // B's tail is a fifth slower in every round, but the rounds' own p99 figures (which
        // stalls carried) lean up in only half of them: the pooled p99 still sees it.
        let pairs: Vec<(Run, Run)> = (0..8)
            .map(|i| {
                let (own_a, own_b) = if i % 2 == 0 { (9.0, 7.0) } else { (6.0, 7.5) };
                (
                    run_with_latency(6_000, own_a),
                    run_with_latency(7_200, own_b),
                )
            })
            .collect();
        let j = judge(&pairs, &arm_runs(8), THRESHOLDS, 0.95, 1);
        let p99 = figure(&j, "p99_ms");
        assert_eq!(
            (p99.method, p99.decision, p99.sign_test_p),
            (POOLED_QUANTILE, "regression", None),
            "{p99:?}"
        );
        assert!(
            (p99.b_value / p99.a_value - p99.ratio).abs() < 1e-9,
            "{p99:?}"
        );
        let p50 = figure(&j, "p50_ms");
        assert_eq!(p50.decision, "no_regression", "{p50:?}");
        assert!(markdown(&j, "t").contains("| p99_ms | pooled quantile |"));
        // Without the logs, the same rounds are judged by their own p99 figures.
        let bare: Vec<(Run, Run)> = pairs
            .into_iter()
            .map(|(mut a, mut b)| {
                a.histogram = None;
                b.histogram = None;
                (a, b)
            })
            .collect();
        let j = judge(&bare, &arm_runs(8), THRESHOLDS, 0.95, 1);
        let p99 = figure(&j, "p99_ms");
        assert_eq!(p99.method, MEDIAN_OF_ROUND_RATIOS, "{p99:?}");
        assert_ne!(p99.decision, "regression", "{p99:?}");
    }
}
