//! Sets a current run against a baseline, metric by metric: latency quantiles (from the
//! merged histograms when both runs have them, with a confidence interval for each
//! quantile so that sampling noise is not called a regression), throughput, the error rate,
//! and the invariants, with the two latency distributions side by side (`distributions`).

use super::distributions::{distributions, Distributions};
use super::load::Run;
use super::row::{pct, Judgement, Row};
use crate::cli::Tolerances;
use crate::stats::min_samples_for;
use hdrhistogram::Histogram;

/// The whole comparison.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub rows: Vec<Row>,
    pub distributions: Option<Distributions>,
    /// Reasons the runs cannot be compared at all (another profile, an unusable generator).
    pub refusals: Vec<String>,
    pub notes: Vec<String>,
}

impl Comparison {
    /// The worst judgement: a refusal counts as cannot judge.
    pub fn outcome(&self) -> Judgement {
        let worst = self.rows.iter().map(|r| r.judgement).max();
        let worst = worst.unwrap_or(Judgement::Ok);
        if worst == Judgement::Regression {
            Judgement::Regression
        } else if !self.refusals.is_empty() || worst == Judgement::CannotJudge {
            Judgement::CannotJudge
        } else {
            Judgement::Ok
        }
    }

    /// 0 no regression; 1 a regression; 2 the runs cannot tell.
    pub fn exit_code(&self) -> i32 {
        match self.outcome() {
            Judgement::Regression => 1,
            Judgement::CannotJudge => 2,
            Judgement::Ok | Judgement::NotJudged => 0,
        }
    }
}

/// z for a two-sided 99 % confidence interval.
const Z_99: f64 = 2.576;
fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// The value at `quantile` moved by `z` standard errors of its rank (a distribution-free
/// bound on where the true quantile lies).
fn quantile_bound(h: &Histogram<u64>, quantile: f64, z: f64) -> f64 {
    let n = h.len().max(1) as f64;
    let q = (quantile + z * (quantile * (1.0 - quantile) / n).sqrt()).clamp(0.0, 1.0);
    ms(h.value_at_quantile(q))
}

/// A latency quantile's row. `required`: a quantile without enough samples makes the
/// comparison unable to judge (p50, p99), rather than leaving it out (p99.9).
fn quantile_row(
    base: &Run,
    cur: &Run,
    (name, quantile): (&str, f64),
    tolerance_pct: f64,
    required: bool,
) -> Row {
    let limit = format!("+{tolerance_pct} %");
    let needed = min_samples_for(quantile);
    let samples = |run: &Run| {
        run.histogram
            .as_ref()
            .map_or(run.summary.latency_ms.samples, |h| h.len())
    };
    let (nb, nc) = (samples(base), samples(cur));
    let summary_value = |run: &Run| match name {
        "p50" => run.summary.latency_ms.p50,
        "p99" => run.summary.latency_ms.p99,
        _ => run.summary.latency_ms.p999,
    };
    let value = |run: &Run| -> Option<f64> {
        match &run.histogram {
            Some(h) if h.len() >= needed => Some(ms(h.value_at_quantile(quantile))),
            Some(_) => None,
            None => summary_value(run),
        }
    };
    let shown = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.2} ms"));
    let mut row = Row {
        metric: format!("latency {name}"),
        baseline: shown(value(base)),
        current: shown(value(cur)),
        change: "-".to_owned(),
        limit,
        judgement: Judgement::Ok,
        why: String::new(),
    };
    let (Some(b), Some(c)) = (value(base), value(cur)) else {
        row.judgement = if required {
            Judgement::CannotJudge
        } else {
            Judgement::NotJudged
        };
        row.why =
            format!("too few samples for {name} (baseline {nb}, current {nc}, {needed} needed)");
        return row;
    };
    let ratio = if b > 0.0 {
        c / b
    } else if c > 0.0 {
        f64::INFINITY
    } else {
        1.0
    };
    row.change = pct(ratio);
    let allowed = 1.0 + tolerance_pct / 100.0;
    if ratio <= allowed {
        return row;
    }
    match (&base.histogram, &cur.histogram) {
        (Some(hb), Some(hc)) => {
            // Even the current run's lowest likely value against the baseline's highest.
            let (base_high, cur_low) = (
                quantile_bound(hb, quantile, Z_99),
                quantile_bound(hc, quantile, -Z_99),
            );
            if cur_low > base_high * allowed {
                row.judgement = Judgement::Regression;
                row.why = format!(
                    "{name} grew beyond its tolerance, past sampling noise (99 % bounds: baseline ≤ {base_high:.2} ms, current ≥ {cur_low:.2} ms)"
                );
            } else {
                row.judgement = Judgement::CannotJudge;
                row.why = format!(
                    "{name} grew beyond its tolerance, but within sampling noise (99 % bounds: baseline ≤ {base_high:.2} ms, current ≥ {cur_low:.2} ms): run longer"
                );
            }
        }
        _ => {
            row.judgement = Judgement::Regression;
            row.why =
                format!("{name} grew beyond its tolerance (no interval log to bound the noise)");
        }
    }
    row
}

fn throughput_row(base: &Run, cur: &Run, tolerance_pct: f64) -> Row {
    let (b, c) = (base.summary.throughput_rps, cur.summary.throughput_rps);
    let ratio = if b > 0.0 { c / b } else { 1.0 };
    Row::against_threshold(
        "throughput".to_owned(),
        (format!("{b:.1}/s"), format!("{c:.1}/s")),
        pct(ratio),
        format!("-{tolerance_pct} %"),
        (1.0 - ratio) * 100.0 > tolerance_pct,
        || "completed transfers per second fell beyond the tolerance".to_owned(),
    )
}

fn error_rate_row(base: &Run, cur: &Run, rise: f64) -> Row {
    let (b, c) = (base.summary.slo.error_rate, cur.summary.slo.error_rate);
    Row::against_threshold(
        "error rate".to_owned(),
        (format!("{b:.4}"), format!("{c:.4}")),
        format!("{:+.4}", c - b),
        format!("+{rise}"),
        c - b > rise,
        || "errors per operation rose beyond the tolerance".to_owned(),
    )
}

/// A row per invariant the current run fails: always a regression.
fn invariant_rows(base: &Run, cur: &Run) -> Vec<Row> {
    cur.summary
        .invariants
        .iter()
        .filter(|i| i.holds == Some(false))
        .map(|i| {
            let before = base.summary.invariants.iter().find(|b| b.name == i.name);
            let before = match before.and_then(|b| b.holds) {
                Some(true) => "holds",
                Some(false) => "fails",
                None => "-",
            };
            Row {
                metric: format!("invariant {}", i.name.as_str()),
                baseline: before.to_owned(),
                current: "fails".to_owned(),
                change: "-".to_owned(),
                limit: "holds".to_owned(),
                judgement: Judgement::Regression,
                why: i.detail.clone(),
            }
        })
        .collect()
}

/// Why the two runs cannot be compared at all.
fn refusals(base: &Run, cur: &Run) -> Vec<String> {
    let mut why = Vec::new();
    if base.summary.profile != cur.summary.profile {
        why.push(format!(
            "not the same profile: baseline `{}`, current `{}`",
            base.summary.profile, cur.summary.profile
        ));
    }
    for (side, run) in [("baseline", base), ("current", cur)] {
        if !run.summary.generator.usable {
            why.push(format!(
                "the {side} run's generator could not keep its schedule: its figures say nothing of the system"
            ));
        }
    }
    why
}

/// Compares `cur` with `base` under `tolerances`.
pub fn compare(base: &Run, cur: &Run, tolerances: &Tolerances) -> Comparison {
    let mut rows = vec![
        quantile_row(base, cur, ("p50", 0.5), tolerances.p50_pct, true),
        quantile_row(base, cur, ("p99", 0.99), tolerances.p99_pct, true),
        quantile_row(base, cur, ("p999", 0.999), tolerances.p999_pct, false),
        throughput_row(base, cur, tolerances.throughput_pct),
        error_rate_row(base, cur, tolerances.error_rate_rise),
    ];
    rows.extend(super::cpu::rows(base, cur, tolerances));
    rows.extend(invariant_rows(base, cur));
    let mut notes = Vec::new();
    if base.summary.cpu.ms_per_operation.is_empty() || cur.summary.cpu.ms_per_operation.is_empty() {
        notes.push("CPU per operation not compared: a run without its figures (recorded before they were measured, or a target that does not report process_cpu_seconds_total)".to_owned());
    }
    let distributions = match (&base.histogram, &cur.histogram) {
        (Some(b), Some(c)) => Some(distributions(b, c)),
        _ => {
            notes.push("no interval log beside a summary: latency judged on the summaries' figures alone, without noise bounds".to_owned());
            None
        }
    };
    for (which, run) in [("baseline", base), ("current run", cur)] {
        if let Some(host) = run.summary.cpu.host.filter(|h| h.noisy()) {
            notes.push(format!(
                "the {which}'s machine lent {:.1} % of its CPU to other guests (steal) while the load ran: its latency is partly the machine's",
                host.steal_pct
            ));
        }
    }
    if base.summary.seed != cur.summary.seed {
        notes.push(format!(
            "the runs used different seeds ({} and {}): their schedules differ",
            base.summary.seed, cur.summary.seed
        ));
    }
    Comparison {
        rows,
        distributions,
        refusals: refusals(base, cur),
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::CpuUse;
    use crate::stats::new_histogram;
    use crate::stats::Latency;
    use crate::summary::example::summary;
    use std::path::PathBuf;

    /// `n` latencies spread evenly over [low, high) µs.
    fn histogram(n: u64, low_us: u64, high_us: u64) -> Histogram<u64> {
        let mut h = new_histogram();
        for i in 0..n {
            let _ = h.record(low_us + (high_us - low_us) * i / n);
        }
        h
    }

    fn run(h: Histogram<u64>) -> Run {
        Run {
            source: PathBuf::from("run"),
            summary: summary(200.0, 0.0),
            histogram: Some(h),
        }
    }

    fn judged(base: &Run, cur: &Run) -> (Comparison, i32) {
        let c = compare(base, cur, &Tolerances::default());
        let code = c.exit_code();
        (c, code)
    }

    #[test]
    fn a_rerun_of_the_same_distribution_is_no_regression() {
        let (c, code) = judged(
            &run(histogram(5_000, 2_000, 12_000)),
            &run(histogram(5_000, 2_100, 12_300)),
        );
        assert_eq!(code, 0, "{c:?}");
        let d = c.distributions.expect("both runs have histograms");
        assert!(d.ks_distance < d.ks_critical, "{d:?}");
        assert!(d.ladder.len() >= 5);
    }

    #[test]
    fn a_doubled_latency_is_a_regression() {
        let (c, code) = judged(
            &run(histogram(5_000, 2_000, 12_000)),
            &run(histogram(5_000, 4_000, 24_000)),
        );
        assert_eq!(code, 1, "{c:?}");
        let p99 = &c.rows[1];
        assert_eq!(
            (p99.metric.as_str(), p99.judgement),
            ("latency p99", Judgement::Regression)
        );
        let d = c.distributions.expect("both runs have histograms");
        assert!(d.ks_distance > d.ks_critical, "{d:?}");
    }

    #[test]
    fn too_few_samples_cannot_be_judged() {
        let (c, code) = judged(
            &run(histogram(300, 2_000, 12_000)),
            &run(histogram(300, 2_000, 13_000)),
        );
        assert_eq!(code, 2, "{c:?}");
        assert_eq!(c.rows[1].judgement, Judgement::CannotJudge);
        assert!(
            c.rows[1].why.contains("too few samples"),
            "{}",
            c.rows[1].why
        );
    }

    #[test]
    fn a_growth_inside_the_sampling_noise_cannot_be_judged() {
        // 1,000 samples: p99 rests on the top ten; one slow tail moves it a lot.
        let base = histogram(1_000, 1_000, 10_000);
        let mut tail = histogram(985, 1_000, 10_000);
        for _ in 0..15 {
            let _ = tail.record(16_000);
        }
        let (c, code) = judged(&run(base), &run(tail));
        assert_eq!(c.rows[1].judgement, Judgement::CannotJudge, "{c:?}");
        assert_eq!(code, 2);
    }

    #[test]
    fn a_process_whose_cpu_per_operation_grew_past_its_tolerance_is_a_regression() {
        let cpu = |coordinator: f64, ledger: f64| CpuUse {
            window_s: 10.0,
            operations: 2_000,
            ms_per_operation: [("coordinator", coordinator), ("ledger", ledger)]
                .into_iter()
                .map(|(process, ms)| (process.to_owned(), ms))
                .collect(),
            host: None,
        };
        let mut base = run(histogram(5_000, 2_000, 12_000));
        base.summary.cpu = cpu(0.5, 0.25);
        let mut cur = run(histogram(5_000, 2_000, 12_000));
        cur.summary.cpu = cpu(0.6, 0.25);
        let (c, code) = judged(&base, &cur);
        assert_eq!(code, 0, "+20 % is inside the default 50 %: {c:?}");
        cur.summary.cpu = cpu(1.0, 0.2);
        let (c, code) = judged(&base, &cur);
        assert_eq!(code, 1, "{c:?}");
        let judged_cpu: Vec<(&str, Judgement)> = c
            .rows
            .iter()
            .filter(|r| r.metric.starts_with("cpu "))
            .map(|r| (r.metric.as_str(), r.judgement))
            .collect();
        assert_eq!(
            judged_cpu,
            [
                ("cpu coordinator", Judgement::Regression),
                ("cpu ledger", Judgement::Ok)
            ]
        );
        // A baseline without the figures: nothing judged, and the note says why.
        base.summary.cpu = CpuUse::default();
        let (c, code) = judged(&base, &cur);
        assert_eq!(code, 0, "{c:?}");
        assert!(c
            .notes
            .iter()
            .any(|n| n.contains("CPU per operation not compared")));
    }

    #[test]
    fn throughput_errors_and_invariants_are_judged() {
        let base = run(histogram(5_000, 2_000, 12_000));
        let mut cur = run(histogram(5_000, 2_000, 12_000));
        cur.summary.throughput_rps = 90.0;
        cur.summary.slo.error_rate = 0.05;
        cur.summary.invariants[0].holds = Some(false);
        let (c, code) = judged(&base, &cur);
        assert_eq!(code, 1);
        let regressions: Vec<&str> = c
            .rows
            .iter()
            .filter(|r| r.judgement == Judgement::Regression)
            .map(|r| r.metric.as_str())
            .collect();
        assert_eq!(
            regressions,
            ["throughput", "error rate", "invariant conservation"]
        );
    }

    #[test]
    fn runs_of_different_profiles_or_an_unusable_generator_are_refused() {
        let base = run(histogram(5_000, 2_000, 12_000));
        let mut cur = run(histogram(5_000, 2_000, 12_000));
        cur.summary.profile = "steady".to_owned();
        cur.summary.generator.usable = false;
        let (c, code) = judged(&base, &cur);
        assert_eq!(code, 2);
        assert_eq!(c.refusals.len(), 2, "{:?}", c.refusals);
    }

    #[test]
    fn a_summary_alone_is_judged_on_its_figures() {
        let mut base = run(histogram(1, 1, 2));
        let mut cur = run(histogram(1, 1, 2));
        base.histogram = None;
        cur.histogram = None;
        for (s, p99) in [(&mut base.summary, 10.0), (&mut cur.summary, 20.0)] {
            s.latency_ms = Latency {
                samples: 5_000,
                p50: Some(5.0),
                p90: Some(8.0),
                p99: Some(p99),
                p999: None,
                max: Some(30.0),
                mean: Some(6.0),
            };
        }
        let (c, code) = judged(&base, &cur);
        assert_eq!(code, 1, "{c:?}");
        assert!(c.notes.iter().any(|n| n.contains("no interval log")));
    }

    #[test]
    fn a_run_on_a_machine_that_lent_its_cpu_away_is_said_to_be_noisy() {
        use crate::cpu::HostCpu;
        let host = |steal_pct: f64| HostCpu {
            busy_pct: 80.0 - steal_pct,
            idle_pct: 20.0,
            steal_pct,
        };
        let mut base = run(histogram(5_000, 2_000, 12_000));
        let mut cur = run(histogram(5_000, 2_000, 12_000));
        base.summary.cpu.host = Some(host(1.0));
        cur.summary.cpu.host = Some(host(12.5));
        let (c, _) = judged(&base, &cur);
        let noisy: Vec<&String> = c.notes.iter().filter(|n| n.contains("steal")).collect();
        assert_eq!(noisy.len(), 1, "{:?}", c.notes);
        assert!(noisy[0].contains("current run") && noisy[0].contains("12.5 %"));
        cur.summary.cpu.host = Some(host(HostCpu::NOISY_STEAL_PCT - 0.1));
        let (c, _) = judged(&base, &cur);
        assert!(
            !c.notes.iter().any(|n| n.contains("steal")),
            "{:?}",
            c.notes
        );
    }
}
