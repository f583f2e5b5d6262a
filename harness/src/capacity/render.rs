//! A capacity search for people: a line per step as it ends, the conclusion, and
//! `capacity.md` / `capacity.html` (the curves, the knee, the steps, what limited them).

use super::{Capacity, Purpose, Step};
use crate::cpu::HostCpu;
use crate::report::capacity_charts::{self as charts, RatePoint};
use crate::report::html::{escape, figure, STYLE};
use crate::topology::ServiceRole;
use std::fmt::Write;

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"))
}

/// The line printed when a step ends.
pub fn step_line(number: usize, s: &Step) -> String {
    format!(
        "step {number:>2} {:>9} {:>6}/s  {:<5} goodput {:>8.1}/s  p50 {:>7} p99 {:>7} ms  errors+shed {:.4}{}",
        s.purpose.as_str(),
        s.rate_per_s,
        if s.meets { "meets" } else { "MISS" },
        s.goodput_rps,
        ms(s.p50_ms),
        ms(s.p99_ms),
        s.refused_rate,
        if s.generator_limited {
            "  (generator-limited)"
        } else {
            ""
        }
    )
}

/// What goodput past the knee says about the system.
fn overload_word(fraction: f64) -> &'static str {
    if fraction >= 0.9 {
        "holds its goodput"
    } else if fraction >= 0.5 {
        "degrades"
    } else {
        "collapses"
    }
}

/// The steps at the knee's rate.
fn at_rate(c: &Capacity, rate: u32) -> impl Iterator<Item = &Step> {
    c.steps.iter().filter(move |s| s.rate_per_s == rate)
}

/// The knee, its stability, headroom, Little's law and overload, in sentences.
pub fn conclusion(c: &Capacity) -> String {
    let mut out = String::new();
    let Some(knee) = c.knee_rate_per_s else {
        let _ = writeln!(
            out,
            "no knee: even the first step ({}/s) missed the SLO or the error budget",
            c.steps.first().map_or(0, |s| s.rate_per_s)
        );
        return out;
    };
    let first = at_rate(c, knee).next();
    let _ = writeln!(
        out,
        "knee: {knee}/s{} (p99 {} ms against {} ms, goodput {:.1}/s)",
        if c.first_miss_rate_per_s.is_none() {
            format!(
                " or more (every step up to --max {} met the SLO)",
                c.max_rate_per_s
            )
        } else {
            String::new()
        },
        ms(first.and_then(|s| s.p99_ms)),
        c.slo_p99_ms,
        first.map_or(0.0, |s| s.goodput_rps)
    );
    if let Some(miss) = c.first_miss_rate_per_s {
        let runs_at_knee = at_rate(c, knee).count();
        let _ = writeln!(
            out,
            "boundary: {} ({} run(s) at {knee}/s, {} at {miss}/s)",
            match c.knee_stable {
                Some(true) => "stable: every run at the knee met the targets, every run at the first miss missed",
                _ => "NOT stable: the runs at the knee or at the first miss disagree",
            },
            runs_at_knee,
            at_rate(c, miss).count()
        );
    }
    if let Some(headroom) = c.headroom {
        let _ = writeln!(
            out,
            "headroom: {headroom:.2}× the profile's peak rate of {:.0}/s",
            c.expected_rate_per_s
        );
    }
    if let Some(l) = first.and_then(|s| s.concurrency) {
        let _ = writeln!(
            out,
            "Little's law at the knee: {l:.1} transfers in the system on average (goodput × mean latency)"
        );
    }
    if let Some(costs) = &c.cpu_costs {
        let total = costs.total();
        let each: Vec<String> = costs
            .by_process
            .iter()
            .map(|(p, c)| {
                format!(
                    "{p} {:.3} / {:.3} (idle {:.0} ms/s)",
                    c.served_ms, c.shed_ms, c.idle_ms_per_s
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "CPU ms per served request / per shed one (fitted over {} steps, {} shedding): {}; all {:.3} / {:.3}, a refusal {:.0} % of a served request",
            costs.steps,
            costs.shedding_steps,
            each.join(", "),
            total.served_ms,
            total.shed_ms,
            100.0 * total.shed_ms / total.served_ms.max(f64::EPSILON)
        );
    }
    for p in &c.past_knee {
        let limit = p.cpu_limit_rps.map_or(String::new(), |l| {
            format!(
                "; what a refusal costs lets {} cores serve {l:.0}/s",
                c.cpu_costs.as_ref().map_or(0, |c| c.cores)
            )
        });
        let _ = writeln!(
            out,
            "past the knee, {}× ({}/s): goodput {:.0}/s, {:.0} % of the knee's (p99 {} ms){limit}: the system {}",
            p.factor,
            p.rate_per_s,
            p.goodput_rps,
            p.of_knee * 100.0,
            ms(p.p99_ms),
            overload_word(p.of_knee)
        );
    }
    out
}

fn notes(c: &Capacity) -> Vec<String> {
    let mut notes = vec![format!(
        "The system was started by the harness and shared this machine with it (the load \
         generator, the proxies and the reconciler): the knee is this machine's, for this \
         profile{}.",
        c.fault
            .as_deref()
            .map_or(String::new(), |f| format!(" with `{f}` held active"))
    )];
    if c.client_http2_connections > 0 {
        notes.push(format!(
            "The generator sent its requests over {} HTTP/2 connection(s) to the coordinator \
             (`client.http2_connections`), not over HTTP/1.1.",
            c.client_http2_connections
        ));
    }
    let limited: Vec<String> = c
        .steps
        .iter()
        .filter(|s| s.generator_limited)
        .map(|s| format!("{}/s", s.rate_per_s))
        .collect();
    if !limited.is_empty() {
        notes.push(format!(
            "The generator, not the system, limited the steps at {}: it fell behind its \
             schedule by more than a quarter of the p99 it measured, so those steps say little \
             about the system.",
            limited.join(", ")
        ));
    }
    let noisy: Vec<String> = steps_in_rate_order(c)
        .into_iter()
        .filter_map(|s| {
            let host = s.host_cpu.filter(|h| h.noisy())?;
            Some(format!("{}/s ({:.1} %)", s.rate_per_s, host.steal_pct))
        })
        .collect();
    if !noisy.is_empty() {
        notes.push(format!(
            "The machine lent {} % or more of its CPU to other guests (steal) during the steps \
             at {}: their latency is partly the machine's, and the knee may be lower than the \
             system's. Run again on a quieter machine before planning on it.",
            HostCpu::NOISY_STEAL_PCT,
            noisy.join(", ")
        ));
    }
    let saturated: Vec<String> = c
        .steps
        .iter()
        .filter(|s| !s.generator_limited && s.send_lag_ms_p99 > 10.0)
        .map(|s| {
            format!(
                "{}/s (send lag p99 {:.1} ms, latency p99 {} ms)",
                s.rate_per_s,
                s.send_lag_ms_p99,
                ms(s.p99_ms)
            )
        })
        .collect();
    if !saturated.is_empty() {
        notes.push(format!(
            "The generator fell behind its schedule at {} while the system saturated the \
             machine they share; the latency measured there is far above that lag, so it is \
             the system's.",
            saturated.join(", ")
        ));
    }
    notes
}

fn steps_in_rate_order(c: &Capacity) -> Vec<&Step> {
    let mut steps: Vec<&Step> = c.steps.iter().collect();
    steps.sort_by_key(|s| (s.rate_per_s, s.purpose != Purpose::Search));
    steps
}

/// The budgets each step was judged against (`within_budgets` in the module above).
fn budgets(c: &Capacity) -> String {
    match c.shed_budget {
        Some(shed) => format!("error budget {}, shed budget {shed}", c.error_budget),
        None => format!("error budget {} (shed answers count in it)", c.error_budget),
    }
}

/// `capacity.md`.
pub fn markdown(c: &Capacity) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Capacity of `{}`{}\n",
        c.profile,
        c.fault
            .as_deref()
            .map_or(String::new(), |f| format!(" with `{f}` held active"))
    );
    let _ = writeln!(
        out,
        "seed {} · git {} · started {} · steps of {} s after {} s warm-up · SLO p99 {} ms, \
         {} · resolution {} %\n",
        c.seed,
        c.git_revision,
        c.started_at,
        c.step_s,
        c.warmup_s,
        c.slo_p99_ms,
        budgets(c),
        c.resolution * 100.0
    );
    for line in conclusion(c).lines() {
        let _ = writeln!(out, "- {line}");
    }
    let _ = writeln!(out);
    for note in notes(c) {
        let _ = writeln!(out, "{note}\n");
    }
    let _ = writeln!(out, "| {} |", COLUMNS.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(COLUMNS.len()));
    for (i, s) in c.steps.iter().enumerate() {
        let _ = writeln!(out, "| {} |", cells(i + 1, s).join(" | "));
    }
    out
}

/// The columns of the table of steps, in both reports.
const COLUMNS: [&str; 16] = [
    "#",
    "why",
    "offered/s",
    "meets",
    "goodput/s",
    "p50 ms",
    "p99 ms",
    "p99.9 ms",
    "errors + shed",
    "shed",
    "pending",
    "overflow",
    "send lag p99 ms",
    "Little's L",
    "coordinator CPU ms/op",
    "all CPU ms/op",
];

/// Step `s`, numbered `number`, as the table's cells.
fn cells(number: usize, s: &Step) -> [String; COLUMNS.len()] {
    [
        number.to_string(),
        s.purpose.as_str().to_owned(),
        s.rate_per_s.to_string(),
        if s.meets { "yes" } else { "NO" }.to_owned(),
        format!("{:.1}", s.goodput_rps),
        ms(s.p50_ms),
        ms(s.p99_ms),
        ms(s.p999_ms),
        format!("{:.4}", s.refused_rate),
        s.shed.to_string(),
        s.pending.to_string(),
        s.overflow.to_string(),
        format!(
            "{:.1}{}",
            s.send_lag_ms_p99,
            if s.generator_limited {
                " (generator)"
            } else {
                ""
            }
        ),
        ms(s.concurrency),
        cpu_ms(
            s.cpu_ms_per_operation
                .get(ServiceRole::Coordinator.as_str())
                .copied(),
        ),
        cpu_ms(
            (!s.cpu_ms_per_operation.is_empty())
                .then(|| s.cpu_ms_per_operation.values().sum::<f64>()),
        ),
    ]
}

/// CPU milliseconds per operation, to the microsecond; `–` when not measured.
fn cpu_ms(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |ms| format!("{ms:.3}"))
}

/// One point a rate, in rate order: the mean of the steps run at it (a repeated rate is one
/// point, so the curves follow offered load), meeting the targets only if every run did.
fn points(c: &Capacity) -> Vec<RatePoint> {
    let steps = steps_in_rate_order(c);
    let mut points: Vec<RatePoint> = Vec::new();
    for group in steps.chunk_by(|a, b| a.rate_per_s == b.rate_per_s) {
        let n = group.len() as f64;
        let mean = |pick: fn(&Step) -> Option<f64>| -> Option<f64> {
            let values: Vec<f64> = group.iter().filter_map(|s| pick(s)).collect();
            (values.len() == group.len()).then(|| values.iter().sum::<f64>() / n)
        };
        points.push(RatePoint {
            offered_per_s: f64::from(group[0].rate_per_s),
            goodput_per_s: group.iter().map(|s| s.goodput_rps).sum::<f64>() / n,
            p50_ms: mean(|s| s.p50_ms),
            p99_ms: mean(|s| s.p99_ms),
            meets: group.iter().all(|s| s.meets),
        });
    }
    points
}

/// `capacity.html`: self-contained, like `report.html`.
pub fn html(c: &Capacity) -> String {
    let points = points(c);
    let knee = c.knee_rate_per_s.and_then(|k| {
        points
            .iter()
            .find(|p| (p.offered_per_s - f64::from(k)).abs() < 0.5)
    });
    let mut out = String::new();
    let title = format!(
        "Capacity of {}{}",
        c.profile,
        c.fault
            .as_deref()
            .map_or(String::new(), |f| format!(" with {f} held active"))
    );
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>{STYLE}</style></head><body>\n<div class=\"verdict {}\"><h1>{}</h1>seed {} · \
         git {} · started {} · steps of {} s after {} s warm-up · SLO p99 {} ms, {}\
         </div>\n<ul>\n",
        escape(&title),
        if c.knee_rate_per_s.is_some() {
            "pass"
        } else {
            "fail"
        },
        escape(&title),
        c.seed,
        escape(&c.git_revision),
        escape(&c.started_at),
        c.step_s,
        c.warmup_s,
        c.slo_p99_ms,
        escape(&budgets(c))
    );
    for line in conclusion(c).lines() {
        let _ = writeln!(out, "<li>{}</li>", escape(line));
    }
    out.push_str("</ul>\n");
    for note in notes(c) {
        let _ = writeln!(out, "<p class=\"small\">{}</p>", escape(&note));
    }
    out.push_str(&figure(
        "latency",
        charts::latency_vs_offered(&points, knee, c.slo_p99_ms as f64),
    ));
    out.push_str(&figure(
        "goodput",
        charts::goodput_vs_offered(&points, knee),
    ));
    out.push_str("<h2>Steps</h2><table><tr>");
    for column in COLUMNS {
        let _ = write!(out, "<th>{}</th>", escape(column));
    }
    out.push_str("</tr>\n");
    for (i, s) in c.steps.iter().enumerate() {
        out.push_str("<tr>");
        for cell in cells(i + 1, s) {
            let _ = write!(out, "<td>{}</td>", escape(&cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(rate: u32, purpose: &str, meets: bool, goodput: f64, p99: f64) -> serde_json::Value {
        serde_json::json!({
            "rate_per_s": rate, "purpose": purpose, "meets": meets, "verdict": "pass",
            "reasons": [], "goodput_rps": goodput, "p50_ms": 5.0, "p99_ms": p99,
            "p999_ms": null, "mean_ms": 6.0, "error_rate": 0.0, "refused_rate": 0.0,
            "scheduled": 1000, "shed": 0, "pending": 0, "errors": 0, "overflow": 0,
            "send_lag_ms_p99": 1.0, "generator_limited": false, "concurrency": 1.0,
            "duration_s": 10, "dir": "d"
        })
    }

    fn capacity() -> Capacity {
        serde_json::from_value(serde_json::json!({
            "profile": "p", "profile_file": "p.yaml", "seed": 1, "git_revision": "r",
            "started_at": "t", "fault": null, "expected_rate_per_s": 100.0,
            "slo_p99_ms": 200, "error_budget": 0.0, "step_s": 10, "warmup_s": 2,
            "resolution": 0.1, "max_rate_per_s": 1000, "knee_rate_per_s": 200,
            "first_miss_rate_per_s": 400, "knee_stable": false, "headroom": 2.0,
            "goodput_at_twice_knee": 0.5,
            "past_knee": [{"factor": 2.0, "rate_per_s": 400, "goodput_rps": 110.0,
                           "of_knee": 0.5, "p99_ms": 800.0, "cpu_limit_rps": 150.0}],
            "cpu_costs": {"by_process": {
                              "coordinator": {"idle_ms_per_s": 20.0, "served_ms": 0.3, "shed_ms": 0.03},
                              "harness": {"idle_ms_per_s": 10.0, "served_ms": 0.1, "shed_ms": 0.05}},
                          "steps": 5, "shedding_steps": 2, "cores": 2},
            "steps": [
                step(100, "search", true, 100.0, 10.0),
                step(200, "search", true, 200.0, 20.0),
                step(400, "search", false, 100.0, 900.0),
                step(200, "repeat", false, 190.0, 40.0),
                step(400, "repeat", false, 120.0, 700.0),
            ]
        }))
        .expect("a capacity")
    }

    #[test]
    fn a_repeated_rate_is_one_point_and_meets_only_if_every_run_did() {
        let points = points(&capacity());
        let rates: Vec<f64> = points.iter().map(|p| p.offered_per_s).collect();
        assert_eq!(rates, [100.0, 200.0, 400.0]);
        assert_eq!(points[1].goodput_per_s, 195.0);
        assert_eq!(points[1].p99_ms, Some(30.0));
        assert!(!points[1].meets);
        assert!(points[0].meets);
    }

    #[test]
    fn the_conclusion_says_what_the_runs_showed() {
        let text = conclusion(&capacity());
        assert!(text.contains("knee: 200/s"), "{text}");
        assert!(text.contains("NOT stable"), "{text}");
        assert!(
            text.contains("coordinator 0.300 / 0.030 (idle 20 ms/s), harness 0.100 / 0.050 (idle 10 ms/s); all 0.400 / 0.080, a refusal 20 % of a served request"),
            "{text}"
        );
        assert!(
            text.contains("past the knee, 2× (400/s): goodput 110/s, 50 % of the knee's (p99 800.0 ms); what a refusal costs lets 2 cores serve 150/s: the system degrades"),
            "{text}"
        );
        assert!(text.contains("degrades"), "{text}");
        let table = markdown(&capacity());
        assert!(
            table.contains("| 4 | repeat | 200 | NO | 190.0 |"),
            "{table}"
        );
    }

    #[test]
    fn the_report_says_when_the_load_went_over_http2() {
        let mut c = capacity();
        assert!(!markdown(&c).contains("HTTP/2"));
        c.client_http2_connections = 8;
        let text = markdown(&c);
        assert!(text.contains("over 8 HTTP/2 connection(s)"), "{text}");
    }

    #[test]
    fn the_report_names_the_steps_that_ran_on_a_noisy_machine() {
        let mut c = capacity();
        let host = |steal_pct: f64| HostCpu {
            busy_pct: 90.0 - steal_pct,
            idle_pct: 10.0,
            steal_pct,
        };
        c.steps[0].host_cpu = Some(host(1.0));
        assert!(!markdown(&c).contains("steal"));
        c.steps[1].host_cpu = Some(host(8.5));
        let text = markdown(&c);
        let rate = c.steps[1].rate_per_s;
        assert!(
            text.contains(&format!("during the steps at {rate}/s (8.5 %)")),
            "{text}"
        );
    }

    #[test]
    fn each_step_shows_what_a_transfer_cost_in_cpu() {
        let mut c = capacity();
        c.steps[0].cpu_ms_per_operation =
            [("coordinator", 0.5), ("ledger", 0.25), ("harness", 0.3)]
                .into_iter()
                .map(|(process, ms)| (process.to_owned(), ms))
                .collect();
        let table = markdown(&c);
        assert!(table.contains("| 1.0 | 0.500 | 1.050 |"), "{table}");
        assert!(
            table.contains("| 1.0 | – | – |"),
            "a step without figures: {table}"
        );
    }
}
