//! The run's reports for people, written into its folder: `report.md` (`markdown`) and the
//! self-contained `report.html` (`html`, with charts drawn by `charts` from the per-second
//! `timeline`, and each process's memory and CPU by `usage_charts`); `table` is what a run
//! prints when it ends. Both are made from the folder's own files, so `harness report DIR` rebuilds
//! them from a finished run.

pub mod capacity_charts;
pub mod charts;
pub mod html;
pub mod markdown;
pub mod table;
pub mod timeline;
pub mod trend_chart;
pub mod usage_charts;

use crate::history;
use crate::phases::PhaseFigures;
use crate::reconcile::evidence::{read_json, EvidenceError, SAMPLES_FILE};
use crate::reconcile::{Reconciliation, Sample, Violation, RECONCILIATION_FILE};
use crate::summary::{Summary, SUMMARY_FILE};
use crate::usage::{UsageSample, USAGE_FILE};
use std::path::{Path, PathBuf};

pub const MARKDOWN_FILE: &str = "report.md";
pub const HTML_FILE: &str = "report.html";

/// Reading or writing a run folder's files.
pub type ReportError = EvidenceError;

/// What the reports are made of.
pub struct RunRecord<'a> {
    pub summary: &'a Summary,
    pub violations: &'a [Violation],
    /// The history tallied per second and over the measured window.
    pub series: &'a timeline::Series,
    pub samples: &'a [Sample],
    /// Each process's memory and CPU over the run (none in folders written before).
    pub usage: &'a [UsageSample],
}

/// One row of a table of phases: its name, its seconds and its figures.
pub struct PhaseRow<'a> {
    pub name: String,
    pub window: String,
    pub figures: &'a PhaseFigures,
}

/// The phases of a run as rows: the three groups, then each fault's window and recovery.
/// The shed answers against their budget, in words: one sentence for both reports.
/// Above the list of the profile's service settings a target ran without.
pub const NOT_APPLIED_HEADING: &str =
    "Ran without these settings of the profile (--ignore-service-settings):";

pub fn shed_sentence(slo: &crate::slo::SloResult) -> String {
    match slo.shed_budget {
        Some(budget) => format!(
            "Shed {:.4} of operations against a shed budget of {budget}: {}.",
            slo.shed_rate,
            if slo.shed_budget_met() {
                "holds"
            } else {
                "exceeded"
            }
        ),
        None => format!(
            "Shed {:.4} of operations (no shed budget: not judged).",
            slo.shed_rate
        ),
    }
}

pub fn phase_rows(s: &Summary) -> Vec<PhaseRow<'_>> {
    let p = &s.phases;
    let mut rows = vec![
        PhaseRow {
            name: "steady".into(),
            window: "no fault, not recovering".into(),
            figures: &p.steady,
        },
        PhaseRow {
            name: "during faults".into(),
            window: "any fault active".into(),
            figures: &p.during_faults,
        },
        PhaseRow {
            name: "recovery".into(),
            window: format!("{} s after a heal", p.recovery_window_s),
            figures: &p.recovery,
        },
    ];
    for f in &p.faults {
        rows.push(PhaseRow {
            name: format!("during `{}`", f.fault),
            window: format!("{:.1}–{:.1}", f.from_s, f.to_s),
            figures: &f.during,
        });
        rows.push(PhaseRow {
            name: format!("after `{}`", f.fault),
            window: format!("{:.1}–{:.1}", f.to_s, f.recovery_to_s),
            figures: &f.recovery,
        });
    }
    rows
}

/// The columns of a table of phases, in both reports.
pub const PHASE_COLUMNS: [&str; 8] = [
    "phase",
    "seconds",
    "operations",
    "completed",
    "errors",
    "p50",
    "p99",
    "max",
];

impl PhaseRow<'_> {
    /// The row's cells, under `PHASE_COLUMNS`.
    pub fn cells(&self) -> [String; PHASE_COLUMNS.len()] {
        let f = self.figures;
        [
            self.name.clone(),
            self.window.clone(),
            f.operations.to_string(),
            f.completed.to_string(),
            f.errors.to_string(),
            markdown::ms(f.latency_ms.p50),
            markdown::ms(f.latency_ms.p99),
            markdown::ms(f.latency_ms.max),
        ]
    }
}

fn write_text(path: PathBuf, text: String) -> Result<(), ReportError> {
    std::fs::write(&path, text).map_err(|source| EvidenceError::Io { path, source })
}

/// Writes `report.md` and `report.html` into the run folder `dir`, reading the history and
/// the samples it holds.
pub fn write(dir: &Path, summary: &Summary, violations: &[Violation]) -> Result<(), ReportError> {
    let mut series = timeline::Series::new(summary.warmup_s + summary.duration_s);
    history::each_in(dir, |record| {
        series.add(&record);
        Ok(())
    })
    .map_err(|source| EvidenceError::Io {
        path: history::file_in(dir),
        source,
    })?;
    if series.late() > 0 {
        tracing::warn!(
            late = series.late(),
            "latencies recorded long after later-scheduled ones are left out of the per-second chart"
        );
    }
    let samples: Vec<Sample> = read_json(dir, SAMPLES_FILE).unwrap_or_default();
    let usage: Vec<UsageSample> = read_json(dir, USAGE_FILE).unwrap_or_default();
    let record = RunRecord {
        summary,
        violations,
        series: &series,
        samples: &samples,
        usage: &usage,
    };
    write_text(
        dir.join(MARKDOWN_FILE),
        markdown::render(summary, violations),
    )?;
    write_text(dir.join(HTML_FILE), html::render(&record))
}

/// `harness report DIR`: rebuilds both reports of a finished run from its folder.
pub fn regenerate(dir: &Path) -> Result<Summary, ReportError> {
    let summary: Summary = read_json(dir, SUMMARY_FILE)?;
    let reconciliation: Reconciliation = read_json(dir, RECONCILIATION_FILE)?;
    write(dir, &summary, &reconciliation.violations)?;
    Ok(summary)
}
