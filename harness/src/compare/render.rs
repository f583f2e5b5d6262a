//! A comparison as text (aligned columns, for a terminal) or as Markdown (for a CI job
//! summary): the verdict first, then every metric, the two distributions, and the notes.

use super::judge::Comparison;
use super::load::Run;
use super::row::Judgement;
use std::fmt::Write;

/// The verdict in one sentence.
fn headline(comparison: &Comparison) -> String {
    match comparison.outcome() {
        Judgement::Regression => "REGRESSION: the current run is worse than the baseline beyond the tolerances".to_owned(),
        Judgement::CannotJudge => "CANNOT JUDGE: the runs are too short, too noisy or not comparable (exit 2, not a regression)".to_owned(),
        Judgement::Ok | Judgement::NotJudged => "no regression: every metric is within its tolerance".to_owned(),
    }
}

fn sides(base: &Run, cur: &Run) -> [String; 2] {
    [("baseline", base), ("current", cur)].map(|(side, run)| {
        let s = &run.summary;
        format!(
            "{side}: {} (profile {}, seed {}, design {}, revision {}, {})",
            run.source.display(),
            s.profile,
            s.seed,
            s.design,
            s.git_revision,
            s.started_at
        )
    })
}

/// What the distribution comparison says, in one sentence.
fn distribution_sentence(comparison: &Comparison) -> Option<String> {
    let d = comparison.distributions.as_ref()?;
    let verdict = if d.ks_distance > d.ks_critical {
        "the latency distributions differ beyond sampling noise"
    } else {
        "the latency distributions agree within sampling noise"
    };
    Some(format!(
        "{verdict} (Kolmogorov–Smirnov distance {:.3}, {:.3} at 99 %)",
        d.ks_distance, d.ks_critical
    ))
}

fn ladder_cells(comparison: &Comparison) -> Vec<[String; 4]> {
    let Some(d) = &comparison.distributions else {
        return Vec::new();
    };
    d.ladder
        .iter()
        .map(|r| {
            let change = if r.baseline_ms > 0.0 {
                format!("{:+.1} %", (r.current_ms / r.baseline_ms - 1.0) * 100.0)
            } else {
                "-".to_owned()
            };
            [
                format!("p{}", r.quantile * 100.0),
                format!("{:.2} ms", r.baseline_ms),
                format!("{:.2} ms", r.current_ms),
                change,
            ]
        })
        .collect()
}

pub fn text(base: &Run, cur: &Run, comparison: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", headline(comparison));
    for line in sides(base, cur) {
        let _ = writeln!(out, "  {line}");
    }
    for why in &comparison.refusals {
        let _ = writeln!(out, "  cannot compare: {why}");
    }
    let _ = writeln!(
        out,
        "\n{:<28} {:>12} {:>12} {:>10} {:>8}  judgement",
        "metric", "baseline", "current", "change", "limit"
    );
    for r in &comparison.rows {
        let _ = writeln!(
            out,
            "{:<28} {:>12} {:>12} {:>10} {:>8}  {}",
            r.metric,
            r.baseline,
            r.current,
            r.change,
            r.limit,
            r.judgement.as_str()
        );
        if !r.why.is_empty() {
            let _ = writeln!(out, "    {}", r.why);
        }
    }
    let ladder = ladder_cells(comparison);
    if !ladder.is_empty() {
        let _ = writeln!(
            out,
            "\n{:<10} {:>12} {:>12} {:>10}",
            "quantile", "baseline", "current", "change"
        );
        for [q, b, c, change] in ladder {
            let _ = writeln!(out, "{q:<10} {b:>12} {c:>12} {change:>10}");
        }
    }
    if let Some(sentence) = distribution_sentence(comparison) {
        let _ = writeln!(out, "{sentence}");
    }
    for note in &comparison.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

pub fn markdown(base: &Run, cur: &Run, comparison: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### harness compare: {}\n", headline(comparison));
    for line in sides(base, cur) {
        let _ = writeln!(out, "- {line}");
    }
    for why in &comparison.refusals {
        let _ = writeln!(out, "- **cannot compare**: {why}");
    }
    let _ = writeln!(
        out,
        "\n| metric | baseline | current | change | limit | judgement |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---|");
    for r in &comparison.rows {
        let judgement = match r.judgement {
            Judgement::Regression => format!("**{}** {}", r.judgement.as_str(), r.why),
            _ if !r.why.is_empty() => format!("{}: {}", r.judgement.as_str(), r.why),
            _ => r.judgement.as_str().to_owned(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            r.metric, r.baseline, r.current, r.change, r.limit, judgement
        );
    }
    let ladder = ladder_cells(comparison);
    if !ladder.is_empty() {
        let _ = writeln!(out, "\n| quantile | baseline | current | change |");
        let _ = writeln!(out, "|---|---:|---:|---:|");
        for [q, b, c, change] in ladder {
            let _ = writeln!(out, "| {q} | {b} | {c} | {change} |");
        }
    }
    if let Some(sentence) = distribution_sentence(comparison) {
        let _ = writeln!(out, "\n{sentence}.");
    }
    for note in &comparison.notes {
        let _ = writeln!(out, "\n_note: {note}_");
    }
    out
}
