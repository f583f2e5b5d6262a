//! The compact table a run prints when it ends: verdict, rate, latency, outcomes, money and
//! invariants, each line within `WIDTH` columns (long values are cut with `…`).

use crate::summary::Summary;
use crate::topology::ServiceRole;
use std::path::Path;

/// The table's width, in columns.
pub const WIDTH: usize = 100;

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "?".to_owned(), |v| format!("{v:.1}"))
}

fn cents(value: Option<u64>) -> String {
    value.map_or_else(|| "?".to_owned(), |c| c.to_string())
}

/// `text` cut to `width` characters.
fn fit(text: String, width: usize) -> String {
    if text.chars().count() <= width {
        return text;
    }
    let mut cut: String = text.chars().take(width - 1).collect();
    cut.push('…');
    cut
}

/// The end-of-run table of `s`, whose files are in `dir`.
pub fn end_of_run(s: &Summary, dir: &Path) -> String {
    let l = &s.latency_ms;
    let r = &s.requests;
    let m = &s.money;
    let failing: Vec<&str> = s
        .invariants
        .iter()
        .filter(|i| i.holds != Some(true))
        .map(|i| i.name.as_str())
        .collect();
    let held = s.invariants.len() - failing.len();
    let slo = match s.slo.met {
        Some(true) => "holds",
        Some(false) => "FAILS",
        None => "unknown",
    };
    let mut latency = format!(
        "p50 {} · p99 {} ms (SLO {} ms: {slo})",
        ms(l.p50),
        ms(l.p99),
        s.slo.p99_ms
    );
    if s.phases.during_faults.operations > 0 {
        latency.push_str(&format!(
            " · during faults p99 {} ms",
            ms(s.phases.during_faults.latency_ms.p99)
        ));
    }
    let cpu = if s.cpu.ms_per_operation.is_empty() {
        "not reported".to_owned()
    } else {
        // The services in the order of a transfer's path, then the harness.
        let mut each: Vec<(&String, &f64)> = s.cpu.ms_per_operation.iter().collect();
        each.sort_by_key(|(process, _)| {
            let mut order = ServiceRole::ALL.iter().map(|r| r.as_str());
            order
                .position(|p| p == process.as_str())
                .unwrap_or(ServiceRole::ALL.len())
        });
        let each: Vec<String> = each
            .iter()
            .map(|(process, ms)| format!("{process} {ms:.3}"))
            .collect();
        format!("{} ms per operation", each.join(" · "))
    };
    let rows = [
        (
            "verdict",
            format!(
                "{}  ({}, {} design, seed {})",
                s.verdict.as_str().to_uppercase(),
                s.profile,
                s.design,
                s.seed
            ),
        ),
        (
            "rate",
            format!(
                "{} scheduled in {:.0} s · {:.1} completed/s · error rate {:.4} (budget {})",
                r.scheduled, s.duration_s, s.throughput_rps, s.slo.error_rate, s.slo.error_budget
            ),
        ),
        ("latency", latency),
        ("cpu", cpu),
        (
            "host cpu",
            s.cpu
                .host
                .map_or_else(|| "not known".to_owned(), |h| h.describe()),
        ),
        (
            "outcomes",
            format!(
                "completed {} · failed {} · pending {} · shed {} · errors {} · overflow {}",
                r.completed, r.failed, r.pending, r.shed, r.errors, r.overflow
            ),
        ),
        (
            "money",
            format!(
                "created {} · lost {} · in flight {} cents · convergence {}",
                cents(m.created_cents),
                cents(m.lost_cents),
                cents(m.in_flight_cents),
                s.convergence_ms
                    .map_or_else(|| "not reached".into(), |c| format!("{c} ms"))
            ),
        ),
        (
            "invariants",
            if failing.is_empty() {
                format!("{held} of {} hold", s.invariants.len())
            } else {
                format!(
                    "{held} of {} hold; not shown to hold: {}",
                    s.invariants.len(),
                    failing.join(", ")
                )
            },
        ),
        ("results", dir.display().to_string()),
    ];
    let label = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (key, value) in rows {
        out.push_str(&fit(format!("{key:>label$}  {value}"), WIDTH));
        out.push('\n');
    }
    for reason in &s.verdict_reasons {
        out.push_str(&fit(format!("{:>label$}  - {reason}", ""), WIDTH));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_fits_and_long_values_are_cut() {
        let mut s: Summary = serde_json::from_str(include_str!(
            "../../../results/baselines/smoke/summary.json"
        ))
        .expect("the committed baseline is a summary");
        s.verdict_reasons = vec!["x".repeat(300)];
        s.invariants[0].holds = Some(false);
        // A run whose processes reported no CPU (the baseline's own figures are set below).
        s.cpu = Default::default();
        let table = end_of_run(&s, Path::new(&"d/".repeat(80)));
        for line in table.lines() {
            assert!(line.chars().count() <= WIDTH, "{line}");
        }
        assert!(
            table.contains("verdict  PASS  (smoke, saga design, seed 42)"),
            "{table}"
        );
        assert!(table.contains("not shown to hold: conservation"), "{table}");
        assert!(table.contains('…'));
        assert!(table.contains("cpu  not reported"), "{table}");
        assert!(table.contains("host cpu  not known"), "{table}");
        assert_eq!(table.lines().count(), 10);
        s.cpu.ms_per_operation = [("harness", 0.16), ("ledger", 0.08), ("coordinator", 0.25)]
            .into_iter()
            .map(|(process, ms)| (process.to_owned(), ms))
            .collect();
        let table = end_of_run(&s, Path::new("d"));
        assert!(
            table
                .contains("cpu  coordinator 0.250 · ledger 0.080 · harness 0.160 ms per operation"),
            "{table}"
        );
        s.cpu.host = Some(crate::cpu::HostCpu {
            busy_pct: 80.5,
            idle_pct: 7.0,
            steal_pct: 12.5,
        });
        let table = end_of_run(&s, Path::new("d"));
        assert!(
            table.contains("host cpu  busy 80.5 % · idle 7.0 % · stolen 12.5 % (a noisy machine"),
            "{table}"
        );
    }
}
