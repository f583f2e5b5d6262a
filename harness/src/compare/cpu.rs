//! Each process's CPU per operation: its growth against the tolerance, and, when asked, its
//! growth beyond the machine's drift. A machine slower or busier than the one that recorded
//! the baseline (a noisy neighbour, another CPU) moves every process by about the same
//! factor, which the median of their growths measures; a regression in one process's code
//! moves that process alone. The drift cannot tell a change that slows every process alike
//! from a slower machine: the plain tolerance is what judges that.

use super::load::Run;
use super::row::{pct, Row};
use crate::cli::Tolerances;

/// The fewest processes whose median growth stands for the machine's drift.
pub const MIN_PROCESSES_FOR_DRIFT: usize = 3;

/// The median of `values` (not empty).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// A row per process whose CPU per operation both runs measured, then (with
/// `cpu_share_pct`) a row per process for its growth beyond the machine's drift. A mean over
/// every operation of the load, so it carries no sampling bounds: the tolerance is the noise.
pub fn rows(base: &Run, cur: &Run, tolerances: &Tolerances) -> Vec<Row> {
    let (b, c) = (
        &base.summary.cpu.ms_per_operation,
        &cur.summary.cpu.ms_per_operation,
    );
    let both: Vec<(&String, f64, f64)> = b
        .iter()
        .filter_map(|(process, before)| Some((process, *before, *c.get(process)?)))
        .filter(|(_, before, _)| *before > 0.0)
        .collect();
    let tolerance_pct = tolerances.cpu_pct;
    let mut rows: Vec<Row> = both
        .iter()
        .map(|&(process, before, now)| {
            let ratio = now / before;
            Row::against_threshold(
                format!("cpu {process}"),
                (format!("{before:.3} ms/op"), format!("{now:.3} ms/op")),
                pct(ratio),
                format!("+{tolerance_pct} %"),
                ratio > 1.0 + tolerance_pct / 100.0,
                || format!("{process}'s CPU per operation grew beyond its tolerance"),
            )
        })
        .collect();
    let Some(share_pct) = tolerances.cpu_share_pct else {
        return rows;
    };
    if both.len() < MIN_PROCESSES_FOR_DRIFT {
        return rows;
    }
    let growths: Vec<f64> = both.iter().map(|(_, before, now)| now / before).collect();
    let drift = median(&growths);
    for &(process, before, now) in &both {
        let beyond = now / before / drift;
        rows.push(Row::against_threshold(
            format!("cpu {process} beyond drift"),
            (
                format!("{before:.3} ms/op"),
                format!("{:.3} ms/op", now / drift),
            ),
            pct(beyond),
            format!("+{share_pct} %"),
            beyond > 1.0 + share_pct / 100.0,
            || {
                format!(
                    "{process}'s CPU per operation grew beyond the machine's drift ({} for \
                     the median process) by more than its tolerance",
                    pct(drift)
                )
            },
        ));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::row::Judgement;
    use crate::summary::example::summary;

    fn run_with(cpu: &[(&str, f64)]) -> Run {
        let mut s = summary(400.0, 0.0);
        s.cpu.ms_per_operation = cpu.iter().map(|(p, ms)| ((*p).to_owned(), *ms)).collect();
        Run {
            source: std::path::PathBuf::from("run"),
            summary: s,
            histogram: None,
        }
    }

    const BASE: [(&str, f64); 4] = [
        ("coordinator", 0.56),
        ("external", 0.21),
        ("harness", 0.25),
        ("ledger", 0.21),
    ];

    fn scaled(machine: f64, coordinator: f64) -> Vec<(&'static str, f64)> {
        BASE.iter()
            .map(|&(p, ms)| {
                let own = if p == "coordinator" { coordinator } else { 1.0 };
                (p, ms * machine * own)
            })
            .collect()
    }

    fn judged(cur: &[(&str, f64)]) -> Vec<(String, Judgement)> {
        let tolerances = Tolerances {
            cpu_pct: 60.0,
            cpu_share_pct: Some(15.0),
            ..Tolerances::default()
        };
        rows(&run_with(&BASE), &run_with(cur), &tolerances)
            .into_iter()
            .map(|r| (r.metric, r.judgement))
            .collect()
    }

    fn regressions(cur: &[(&str, f64)]) -> Vec<String> {
        judged(cur)
            .into_iter()
            .filter(|(_, j)| *j == Judgement::Regression)
            .map(|(m, _)| m)
            .collect()
    }

    #[test]
    fn a_slower_machine_moves_every_process_and_is_no_regression() {
        assert_eq!(regressions(&scaled(1.30, 1.0)), Vec::<String>::new());
    }

    #[test]
    fn one_process_a_quarter_costlier_is_a_regression_on_any_machine() {
        for machine in [0.75, 1.0, 1.30] {
            let found = regressions(&scaled(machine, 1.25));
            assert!(
                found.contains(&"cpu coordinator beyond drift".to_owned()),
                "machine ×{machine}: {found:?}"
            );
            // Only the coordinator; on the slowest machine its plain row too (×1.625).
            assert!(
                found.iter().all(|m| m.starts_with("cpu coordinator")),
                "machine ×{machine}: {found:?}"
            );
        }
    }

    #[test]
    fn without_the_share_tolerance_or_with_two_processes_only_the_plain_rows_are_judged() {
        let plain = rows(
            &run_with(&BASE),
            &run_with(&scaled(1.0, 1.25)),
            &Tolerances::default(),
        );
        assert!(plain.iter().all(|r| !r.metric.ends_with("beyond drift")));
        let two = rows(
            &run_with(&BASE[..2]),
            &run_with(&scaled(1.0, 1.25)[..2]),
            &Tolerances {
                cpu_share_pct: Some(15.0),
                ..Tolerances::default()
            },
        );
        assert_eq!(two.len(), 2);
    }
}
