//! `report.md`: the run's verdict for a person: what ran, what held, what broke and where.

use super::{phase_rows, PHASE_COLUMNS};
use crate::reconcile::Violation;
use crate::summary::Summary;
use std::fmt::Write;

pub(super) fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "unknown".to_owned(), |v| format!("{v:.2}"))
}

fn held(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "holds",
        Some(false) => "**FAILS**",
        None => "unknown",
    }
}

pub fn render(summary: &Summary, violations: &[Violation]) -> String {
    let mut out = String::new();
    header(&mut out, summary);
    load(&mut out, summary);
    latency(&mut out, summary);
    phases(&mut out, summary);
    money(&mut out, summary);
    invariants(&mut out, summary, violations);
    let _ = writeln!(out, "\n## Faults\n");
    render_faults(&mut out, summary);
    let _ = writeln!(
        out,
        "\nConvergence: {}.",
        summary.convergence_ms.map_or_else(
            || "not reached or not known".to_owned(),
            |ms| format!("{ms} ms after the load ended")
        )
    );
    let _ = writeln!(out, "\nReconciled: {}.", reconciled(summary));
    out
}

/// How the run was reconciled: as it went, or whole at the end, and why.
pub fn reconciled(s: &Summary) -> String {
    match &s.reconciled_live {
        None => "whole, at the end of the run or from its folder".to_owned(),
        Some(live) => match &live.whole_because {
            None => format!(
                "as the run went: {} of {} requests judged during the load, the rest at the end",
                live.requests_closed_during_run, live.requests
            ),
            Some(why) => format!(
                "followed as the run went, but the verdict is the whole run folder's: {why}"
            ),
        },
    }
}

/// The verdict, where the run came from, and why it did not pass.
fn header(out: &mut String, s: &Summary) {
    let _ = writeln!(
        out,
        "# Run `{}`: {}\n",
        s.profile,
        s.verdict.as_str().to_uppercase()
    );
    let _ = writeln!(
        out,
        "design `{}` · seed {} · git {} · started {} · target {}\n",
        s.design, s.seed, s.git_revision, s.started_at, s.target
    );
    if !s.settings_not_applied.is_empty() {
        let _ = writeln!(out, "{}\n", super::NOT_APPLIED_HEADING);
        for setting in &s.settings_not_applied {
            let _ = writeln!(out, "- `{setting}`");
        }
        let _ = writeln!(out);
    }
    if !s.verdict_reasons.is_empty() {
        let _ = writeln!(out, "Why not pass:\n");
        for reason in &s.verdict_reasons {
            let _ = writeln!(out, "- {reason}");
        }
        let _ = writeln!(out);
    }
}

/// What was sent, and how each operation ended.
fn load(out: &mut String, s: &Summary) {
    let r = &s.requests;
    let _ = writeln!(out, "## Load\n");
    let _ = writeln!(
        out,
        "{:.0} s measured after {:.0} s warm-up; {} requests scheduled, {} retries; throughput {:.1} completed/s.\n",
        s.duration_s, s.warmup_s, r.scheduled, r.retries, s.throughput_rps
    );
    let _ = writeln!(
        out,
        "| completed | failed | pending | shed | errors | overflow |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {} | {} |\n",
        r.completed, r.failed, r.pending, r.shed, r.errors, r.overflow
    );
    if !s.errors_by_kind.is_empty() {
        let kinds: Vec<_> = s
            .errors_by_kind
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        let _ = writeln!(out, "Errors by kind: {}.\n", kinds.join(", "));
    }
    for (kind, example) in &s.error_examples {
        let _ = writeln!(
            out,
            "The first `{kind}` answer: `{}`\n",
            example.replace('`', "'")
        );
    }
    if let Some(by_hop) = &s.connections_by_hop {
        let each: Vec<String> = by_hop.iter().map(|(hop, n)| format!("{hop} {n}")).collect();
        let _ = writeln!(
            out,
            "Connections the hops' proxies accepted while the load ran: {}.\n",
            each.join(", ")
        );
    }
}

/// The latency figures, the SLO, and whether the generator kept to its schedule.
fn latency(out: &mut String, s: &Summary) {
    let l = &s.latency_ms;
    let _ = writeln!(out, "## Latency (ms, from the scheduled send time)\n");
    let _ = writeln!(out, "| samples | p50 | p90 | p99 | p99.9 | max |");
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {} | {} |\n",
        l.samples,
        ms(l.p50),
        ms(l.p90),
        ms(l.p99),
        ms(l.p999),
        ms(l.max)
    );
    let _ = writeln!(
        out,
        "SLO: p99 ≤ {} ms: {}. Error rate {:.4} against a budget of {}: {}. {}",
        s.slo.p99_ms,
        held(s.slo.met),
        s.slo.error_rate,
        s.slo.error_budget,
        held(Some(s.slo.error_budget_met)),
        super::shed_sentence(&s.slo)
    );
    for p in &s.slo.percentiles {
        let _ = writeln!(
            out,
            "- {} ≤ {} ms: {} ({})",
            p.name,
            p.bound_ms,
            ms(p.value_ms),
            held(p.met)
        );
    }
    if let Some(host) = &s.cpu.host {
        let _ = writeln!(out, "\nHost CPU while the load ran: {}.", host.describe());
    }
    let g = &s.generator;
    let _ = writeln!(
        out,
        "\nGenerator: send lag p99 {:.2} ms, max {:.2} ms: {}.\n",
        g.send_lag_ms_p99,
        g.send_lag_ms_max,
        match (g.usable, &g.reason) {
            (true, None) => "kept to its schedule".to_owned(),
            (true, Some(reason)) => reason.clone(),
            (false, reason) => format!(
                "**the run is unusable**: {}",
                reason
                    .as_deref()
                    .unwrap_or("the generator could not keep up")
            ),
        }
    );
}

/// The latency of each phase: steady state, every fault's window and its recovery.
fn phases(out: &mut String, s: &Summary) {
    let p = &s.phases;
    let _ = writeln!(out, "## Latency by phase (ms)\n");
    let _ = writeln!(
        out,
        "An operation counts in the phase of its scheduled send time; recovery is the {} s \
         after a fault heals. Seconds from the start of the load.\n",
        p.recovery_window_s
    );
    let _ = writeln!(out, "| {} |", PHASE_COLUMNS.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(PHASE_COLUMNS.len()));
    for row in phase_rows(s) {
        let _ = writeln!(out, "| {} |", row.cells().join(" | "));
    }
    let _ = writeln!(out);
}

fn money(out: &mut String, s: &Summary) {
    let m = &s.money;
    let cents = |v: Option<u64>| v.map_or_else(|| "unknown".to_owned(), |c| c.to_string());
    let _ = writeln!(out, "## Money (cents)\n");
    let _ = writeln!(out, "| initial | final | created | lost |");
    let _ = writeln!(out, "|---|---|---|---|");
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} |\n",
        cents(m.initial_total_cents),
        cents(m.final_total_cents),
        cents(m.created_cents),
        cents(m.lost_cents)
    );
}

/// Every invariant's verdict, then the anomalies by class and the first violations.
fn invariants(out: &mut String, s: &Summary, violations: &[Violation]) {
    let _ = writeln!(out, "## Invariants\n");
    let _ = writeln!(out, "| invariant | verdict | violations | detail |");
    let _ = writeln!(out, "|---|---|---|---|");
    for i in &s.invariants {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            i.name,
            held(i.holds),
            i.violations,
            i.detail
        );
    }
    if s.anomalies.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n## What broke\n");
    for (class, n) in &s.anomalies {
        let _ = writeln!(out, "### `{class}`: {n}\n\n{}\n", class.explanation());
        if let Some(v) = violations.iter().find(|v| v.class == *class) {
            let _ = writeln!(out, "For example: {}.\n", example(v));
        }
    }
    let _ = writeln!(
        out,
        "First violations (all of them are in `reconciliation.json`):\n"
    );
    let _ = writeln!(
        out,
        "| transfer | invariant | class | external net debit | ledger net credit | detail |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for v in violations.iter().take(20) {
        let _ = writeln!(
            out,
            "| `{}` | `{}` | `{}` | {} | {} | {} |",
            v.transfer_id.as_deref().unwrap_or("(sample)"),
            v.invariant,
            v.class,
            v.external_net_debit_cents,
            v.ledger_net_credit_cents,
            v.detail
        );
    }
}

/// One violation told as a sentence: the transfer, what the books show, and the detail.
fn example(v: &Violation) -> String {
    match &v.transfer_id {
        Some(id) => {
            let key = v
                .key
                .as_deref()
                .map_or_else(String::new, |k| format!(" (idempotency key `{k}`)"));
            let others = if v.related.is_empty() {
                String::new()
            } else {
                format!(", with {}", v.related.join(", "))
            };
            format!(
                "transfer `{id}`{key}{others}: the external side's net debit is {} cents and the ledger's net credit {} cents; {}",
                v.external_net_debit_cents, v.ledger_net_credit_cents, v.detail
            )
        }
        None => v.detail.clone(),
    }
}

/// The fault timeline: one row per occurrence with its requested and actual times, then a
/// bar per occurrence over the load (`#` while it was in effect).
fn render_faults(out: &mut String, s: &Summary) {
    if s.faults.is_empty() {
        let _ = writeln!(out, "None in this profile.");
        return;
    }
    let at = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |t| format!("{t:.3}"));
    let _ = writeln!(
        out,
        "Seconds from the start of the load (warm-up included); applied and healed times are \
         when the change read back.\n"
    );
    let _ = writeln!(
        out,
        "| fault | kind | target | what | requested | applied | healed |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for f in &s.faults {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {}{} | {:.1}-{:.1} | {} | {} |",
            f.name,
            f.kind,
            f.target,
            f.detail,
            f.error
                .as_ref()
                .map_or_else(String::new, |e| format!(" (**{e}**)")),
            f.requested_start_s,
            f.requested_end_s,
            at(f.applied_at_s),
            at(f.healed_at_s)
        );
    }
    let total = s.warmup_s + s.duration_s;
    const COLUMNS: usize = 60;
    let column = |t: f64| ((t / total.max(f64::EPSILON)) * COLUMNS as f64).round() as usize;
    let width = s.faults.iter().map(|f| f.name.len()).max().unwrap_or(0);
    let _ = writeln!(out, "\n```text");
    let _ = writeln!(
        out,
        "{:width$}  0 s{:>pad$}",
        "",
        format!("{total:.0} s"),
        pad = COLUMNS - 1
    );
    for f in &s.faults {
        let from = column(f.applied_at_s.unwrap_or(f.requested_start_s)).min(COLUMNS);
        let to = column(f.healed_at_s.unwrap_or(f.requested_end_s)).clamp(from, COLUMNS);
        let bar: String = (0..COLUMNS)
            .map(|c| {
                if c >= from && (c < to || c == from) {
                    '#'
                } else {
                    '.'
                }
            })
            .collect();
        let _ = writeln!(out, "{:width$}  |{bar}|", f.name);
    }
    let _ = writeln!(out, "```");
}
