//! `report.html`: one self-contained page (inline SVG and CSS, no script, nothing fetched):
//! the verdict first, then the charts over time with the fault windows shaded, the latency
//! spectrum, money in flight, the phases, the invariants and the violations by transfer.

use super::markdown::ms;
use super::timeline::{self, FaultWindow};
use super::{charts, phase_rows, usage_charts, RunRecord, PHASE_COLUMNS};
use crate::summary::Summary;
use crate::verdict::Verdict;
use std::fmt::Write;

/// How many violations the page lists (all of them are in `reconciliation.json`).
const VIOLATIONS_LISTED: usize = 200;

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1140px;color:#222}\
h1{margin:0 0 4px}h2{margin-top:28px;border-bottom:1px solid #ddd}\
.verdict{padding:14px 18px;border-radius:6px;color:#fff}\
.pass{background:#2a7d3b}.fail{background:#b3261e}.unknown{background:#8a6d00}.unusable{background:#555}\
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\
th{background:#f3f3f3}td.l,th.l,tr>:first-child{text-align:left}code{font-size:92%}\
figure{margin:12px 0}figure svg{max-width:100%;height:auto}.bad{color:#b3261e;font-weight:bold}\
.small{color:#666;font-size:90%}";

fn cents(value: Option<u64>) -> String {
    value.map_or_else(|| "unknown".to_owned(), |c| c.to_string())
}

fn held(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "holds",
        Some(false) => "<span class=\"bad\">FAILS</span>",
        None => "unknown",
    }
}

/// A chart in a figure, or the reason it is missing.
pub fn figure(name: &str, chart: Result<String, charts::ChartError>) -> String {
    match chart {
        Ok(svg) => format!("<figure data-chart=\"{name}\">{svg}</figure>\n"),
        Err(e) => format!(
            "<p class=\"bad\" data-chart-error=\"{name}\">{}</p>\n",
            escape(&e.to_string())
        ),
    }
}

pub fn render(record: &RunRecord<'_>) -> String {
    let s = record.summary;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{} — {}</title><style>{STYLE}</style></head><body>\n",
        escape(&s.profile),
        s.verdict.as_str()
    );
    verdict(&mut out, s);
    figures(&mut out, s);
    charts_of(&mut out, record);
    phases(&mut out, s);
    invariants(&mut out, record);
    faults(&mut out, s);
    out.push_str("</body></html>\n");
    out
}

/// The verdict banner, where the run came from, and why it did not pass.
fn verdict(out: &mut String, s: &Summary) {
    let class = s.verdict.as_str();
    let _ = writeln!(
        out,
        "<div class=\"verdict {class}\"><h1>{}: {}</h1>design <code>{}</code> · seed {} · git \
         {} · started {} · target {}</div>",
        escape(&s.profile),
        class.to_uppercase(),
        escape(&s.design),
        s.seed,
        escape(&s.git_revision),
        escape(&s.started_at),
        escape(&s.target)
    );
    if !s.settings_not_applied.is_empty() {
        let _ = writeln!(out, "<p>{}</p><ul>", escape(super::NOT_APPLIED_HEADING));
        for setting in &s.settings_not_applied {
            let _ = writeln!(out, "<li><code>{}</code></li>", escape(setting));
        }
        out.push_str("</ul>\n");
    }
    if s.verdict != Verdict::Pass && !s.verdict_reasons.is_empty() {
        out.push_str("<h2>Why not pass</h2><ul>\n");
        for reason in &s.verdict_reasons {
            let _ = writeln!(out, "<li>{}</li>", escape(reason));
        }
        out.push_str("</ul>\n");
    }
}

/// The run's key figures in one table.
fn figures(out: &mut String, s: &Summary) {
    let l = &s.latency_ms;
    let r = &s.requests;
    let m = &s.money;
    let _ = write!(
        out,
        "<h2>Figures</h2><table>\
         <tr><th>measured</th><th>throughput</th><th>p50 ms</th><th>p99 ms</th><th>p99.9 ms</th>\
         <th>max ms</th><th>SLO p99</th><th>error rate</th><th>created</th><th>lost</th>\
         <th>in flight</th><th>convergence</th></tr>\
         <tr><td>{:.0} s</td><td>{:.1}/s</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
         <td>{} ms: {}</td><td>{:.4} (budget {}): {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\
         </table>\n\
         <table><tr><th>scheduled</th><th>retries</th><th>completed</th><th>failed</th>\
         <th>pending</th><th>shed</th><th>errors</th><th>overflow</th></tr>\
         <tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\
         </table>\n<p class=\"small\">{} Money in cents. Generator send lag p99 {:.2} ms, max {:.2} ms{}.</p>\n",
        s.duration_s,
        s.throughput_rps,
        ms(l.p50),
        ms(l.p99),
        ms(l.p999),
        ms(l.max),
        s.slo.p99_ms,
        held(s.slo.met),
        s.slo.error_rate,
        s.slo.error_budget,
        held(Some(s.slo.error_budget_met)),
        cents(m.created_cents),
        cents(m.lost_cents),
        cents(m.in_flight_cents),
        s.convergence_ms
            .map_or_else(|| "not known".to_owned(), |c| format!("{c} ms")),
        r.scheduled,
        r.retries,
        r.completed,
        r.failed,
        r.pending,
        r.shed,
        r.errors,
        r.overflow,
        escape(&super::shed_sentence(&s.slo)),
        s.generator.send_lag_ms_p99,
        s.generator.send_lag_ms_max,
        if s.generator.usable {
            ""
        } else {
            ": the generator could not keep up, the figures say nothing about the system"
        }
    );
    if !s.errors_by_kind.is_empty() {
        let kinds: Vec<String> = s
            .errors_by_kind
            .iter()
            .map(|(kind, n)| format!("{} {n}", escape(kind)))
            .collect();
        let _ = writeln!(out, "<p>Errors by kind: {}.</p>", kinds.join(", "));
    }
    for (kind, example) in &s.error_examples {
        let _ = writeln!(
            out,
            "<p class=\"small\">The first <code>{}</code> answer: <code>{}</code></p>",
            escape(kind),
            escape(example)
        );
    }
}

fn charts_of(out: &mut String, record: &RunRecord<'_>) {
    let s = record.summary;
    let end_s = s.warmup_s + s.duration_s;
    let windows: Vec<FaultWindow> = timeline::fault_windows(s);
    let seconds = record.series.seconds();
    let slo = s.slo.p99_ms as f64;
    out.push_str("<h2>Over time</h2>\n");
    let _ = writeln!(
        out,
        "<p class=\"small\">Shaded: a fault active (as read back). The first {:.0} s are \
         warm-up, outside the measured window.</p>",
        s.warmup_s
    );
    out.push_str(&figure(
        "latency",
        charts::latency_per_second(&seconds, &windows, slo, end_s),
    ));
    out.push_str(&figure(
        "outcomes",
        charts::outcomes_per_second(&seconds, &windows, end_s),
    ));
    out.push_str(&figure(
        "spectrum",
        charts::spectrum(&record.series.spectrum(), slo),
    ));
    if record
        .samples
        .iter()
        .any(|x| x.in_flight_bound_cents.is_some())
    {
        out.push_str(&figure(
            "money",
            charts::money_in_flight(record.samples, &windows, end_s),
        ));
    } else {
        out.push_str("<p>No money-in-flight samples: the coordinator does not report them.</p>\n");
    }
    if record.usage.is_empty() {
        return;
    }
    out.push_str(
        "<p class=\"small\">Each process's memory and CPU, sampled until the evidence was \
         reconciled: the harness's end-of-run work is the part past the load.</p>\n",
    );
    for (name, chart) in [
        ("memory", usage_charts::Figure::Memory),
        ("cpu", usage_charts::Figure::Cpu),
    ] {
        let drawn = usage_charts::chart(chart, record.usage, &windows, end_s);
        out.push_str(&figure(name, drawn));
    }
}

fn phases(out: &mut String, s: &Summary) {
    let _ = write!(
        out,
        "<h2>Latency by phase (ms)</h2><p class=\"small\">An operation counts in the phase of \
         its scheduled send time; recovery is the {} s after a fault heals.</p><table><tr>",
        s.phases.recovery_window_s
    );
    for column in PHASE_COLUMNS {
        let _ = write!(out, "<th>{column}</th>");
    }
    out.push_str("</tr>\n");
    for row in phase_rows(s) {
        out.push_str("<tr>");
        for cell in row.cells() {
            let _ = write!(out, "<td>{}</td>", escape(&cell.replace('`', "")));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

fn invariants(out: &mut String, record: &RunRecord<'_>) {
    let s = record.summary;
    out.push_str(
        "<h2>Invariants</h2><table><tr><th class=\"l\">invariant</th><th class=\"l\">verdict</th>\
         <th>violations</th><th class=\"l\">detail</th></tr>\n",
    );
    for i in &s.invariants {
        let _ = writeln!(
            out,
            "<tr><td class=\"l\"><code>{}</code></td><td class=\"l\">{}</td><td>{}</td>\
             <td class=\"l\">{}</td></tr>",
            i.name,
            held(i.holds),
            i.violations,
            escape(&i.detail)
        );
    }
    out.push_str("</table>\n");
    if s.anomalies.is_empty() {
        return;
    }
    out.push_str("<h2>What broke</h2><ul>\n");
    for (class, n) in &s.anomalies {
        let _ = writeln!(
            out,
            "<li><code>{class}</code>: {n}. {}</li>",
            escape(class.explanation())
        );
    }
    let _ = writeln!(
        out,
        "</ul><h2>Violations</h2><p class=\"small\">The first {} of {} (all of them are in \
         <code>reconciliation.json</code>). Cents.</p><table><tr><th class=\"l\">transfer</th>\
         <th class=\"l\">class</th><th class=\"l\">key</th><th>external net debit</th>\
         <th>ledger net credit</th><th class=\"l\">detail</th></tr>",
        record.violations.len().min(VIOLATIONS_LISTED),
        record.violations.len()
    );
    for v in record.violations.iter().take(VIOLATIONS_LISTED) {
        let _ = writeln!(
            out,
            "<tr><td class=\"l\"><code>{}</code></td><td class=\"l\"><code>{}</code></td>\
             <td class=\"l\">{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            escape(v.transfer_id.as_deref().unwrap_or("(sample)")),
            v.class,
            escape(v.key.as_deref().unwrap_or("")),
            v.external_net_debit_cents,
            v.ledger_net_credit_cents,
            escape(&v.detail)
        );
    }
    out.push_str("</table>\n");
}

fn faults(out: &mut String, s: &Summary) {
    out.push_str("<h2>Faults</h2>\n");
    if s.faults.is_empty() {
        out.push_str("<p>None in this profile.</p>\n");
        return;
    }
    out.push_str(
        "<table><tr><th class=\"l\">fault</th><th class=\"l\">kind</th><th class=\"l\">target</th>\
         <th class=\"l\">what</th><th>requested (s)</th><th>applied (s)</th><th>healed (s)</th></tr>\n",
    );
    let at = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |t| format!("{t:.3}"));
    for f in &s.faults {
        let _ = writeln!(
            out,
            "<tr><td class=\"l\"><code>{}</code></td><td class=\"l\">{}</td><td class=\"l\">{}</td>\
             <td class=\"l\">{}{}</td><td>{:.1}–{:.1}</td><td>{}</td><td>{}</td></tr>",
            escape(&f.name),
            escape(&f.kind),
            escape(&f.target),
            escape(&f.detail),
            f.error
                .as_ref()
                .map_or_else(String::new, |e| format!(" <span class=\"bad\">{}</span>", escape(e))),
            f.requested_start_s,
            f.requested_end_s,
            at(f.applied_at_s),
            at(f.healed_at_s)
        );
    }
    out.push_str("</table>\n");
}
