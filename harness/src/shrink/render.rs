//! `shrink.md`: the path from the original run to the smallest failing one (each cut, kept
//! or not, with its tries), and the smallest run's violations of the class with their
//! transfer ids, next to the faults active while each transfer was in flight.

use super::{cuts, Outcome, Size, Step};
use crate::history::{self, HistoryRecord};
use crate::profile::Profile;
use crate::reconcile::names::ViolationClass;
use crate::reconcile::{Reconciliation, RECONCILIATION_FILE};
use crate::summary::Summary;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct Report<'a> {
    pub dir: &'a Path,
    pub class: ViolationClass,
    pub original: &'a Size,
    pub steps: &'a [Step],
    pub took: Duration,
    /// Why the search stopped before no cut was left to try.
    pub stopped: Option<&'static str>,
    pub runs: u32,
}

/// The smallest failing run.
pub struct Minimal<'a> {
    pub profile: &'a Profile,
    pub summary: &'a Summary,
    pub run: PathBuf,
}

impl Report<'_> {
    /// The first candidate whose run could not happen, and why, if one could not.
    pub fn could_not_run(&self) -> Option<(usize, &str)> {
        self.steps
            .iter()
            .enumerate()
            .find_map(|(i, s)| match &s.outcome {
                Outcome::Error(why) => Some((i + 1, why.as_str())),
                _ => None,
            })
    }

    /// The sentence that says a candidate could not run, when one could not.
    fn incomplete(&self) -> Option<String> {
        self.could_not_run().map(|(n, why)| {
            format!(
                "step {n} could not run ({why}): the search is incomplete, and a cut that did not run says nothing of the class"
            )
        })
    }
}

fn outcome(o: &Outcome) -> (String, String) {
    match o {
        Outcome::Failed { tries } => ("kept: still fails".to_owned(), tries.to_string()),
        Outcome::Passed { tries } => ("undone: passes".to_owned(), tries.to_string()),
        Outcome::Invalid(why) => (format!("not run: {why}"), "0".to_owned()),
        Outcome::Error(why) => (format!("could not run: {why}"), "0".to_owned()),
    }
}

fn size_cells(s: &Size) -> String {
    format!(
        "{} | {} | {} | {} | {} | {} | {}",
        s.faults,
        s.warmup_s,
        s.duration_s,
        s.rate_per_s,
        s.users,
        s.retries,
        s.scheduled.map_or("—".to_owned(), |n| n.to_string())
    )
}

/// One line of progress.
pub fn step_line(n: usize, step: &Step) -> String {
    let (what, tries) = outcome(&step.outcome);
    format!(
        "step {n}: {}: {what} ({tries} tries, {:.0} s)",
        step.what,
        step.took.as_secs_f64()
    )
}

/// When each transfer was in flight, in seconds from the start of the load: from its first
/// scheduled request to its last answer (or its last request, when none was answered).
fn in_flight(run: &Path) -> HashMap<String, (f64, f64)> {
    let mut at: HashMap<String, (f64, f64)> = HashMap::new();
    let _unreadable = history::each_in(run, |record: HistoryRecord| {
        if let Some(id) = record.transfer_id {
            let from = record.scheduled_us as f64 / 1e6;
            let to = record.answered_us.unwrap_or(record.scheduled_us) as f64 / 1e6;
            let span = at.entry(id).or_insert((from, to));
            span.0 = span.0.min(from);
            span.1 = span.1.max(to);
        }
        Ok(())
    });
    // An unreadable history leaves the transfers it did not reach without their faults.
    at
}

/// The faults active while a transfer was in flight (`from` to `to`): the timeline's
/// occurrences applied and not yet healed then, and the service faults (which hold the
/// whole run).
fn active_during(minimal: &Minimal<'_>, (from, to): (f64, f64)) -> String {
    let mut names: Vec<String> = minimal
        .summary
        .faults
        .iter()
        .filter(|f| {
            let applied = f.applied_at_s.unwrap_or(f.requested_start_s);
            let healed = f.healed_at_s.unwrap_or(f.requested_end_s);
            applied <= to && from <= healed
        })
        .map(|f| format!("`{}`", f.name))
        .collect();
    names.extend(
        cuts::faults(minimal.profile)
            .iter()
            .filter(|i| matches!(i, cuts::FaultItem::Setting { .. }))
            .map(|i| cuts::fault_label(minimal.profile, i)),
    );
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// The most violations listed.
const LISTED: usize = 25;

pub fn markdown(report: &Report<'_>, minimal: Option<&Minimal<'_>>) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Shrink of `{}`\n", report.dir.display());
    let _ = writeln!(
        md,
        "Kept: `{}` ({}). {} cut(s) tried in {} run(s), {:.0} s; {}.\n",
        report.class.as_str(),
        report.class.explanation(),
        report.steps.len(),
        report.runs,
        report.took.as_secs_f64(),
        report.stopped.unwrap_or("no cut left that keeps the class")
    );
    let _ = writeln!(
        md,
        "| run | faults | warm-up s | duration s | rate /s | users | retries | requests |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
    let _ = writeln!(md, "| original | {} |", size_cells(report.original));
    match minimal {
        Some(m) => {
            let size = report
                .steps
                .iter()
                .rev()
                .find(|s| matches!(s.outcome, Outcome::Failed { .. }))
                .map(|s| s.size.clone());
            if let Some(size) = size {
                let _ = writeln!(md, "| smallest | {} |", size_cells(&size));
            }
            let _ = writeln!(
                md,
                "\n`shrunk/profile.yaml` runs it again (`harness --profile shrunk/profile.yaml`); its run is `{}`.",
                m.run.display()
            );
        }
        None if report.could_not_run().is_some() => {
            let _ = writeln!(md, "\nNo smaller run found before the search stopped.");
        }
        None => {
            let _ = writeln!(
                md,
                "\nNo cut kept the class: the original is the smallest run found."
            );
        }
    }
    if let Some(incomplete) = report.incomplete() {
        let _ = writeln!(md, "\n**Incomplete:** {incomplete}.");
    }
    let _ = writeln!(md, "\n## Steps\n");
    let _ = writeln!(
        md,
        "| # | cut | outcome | tries | faults | warm-up s | duration s | rate /s | users | retries | requests | took s |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (i, step) in report.steps.iter().enumerate() {
        let (what, tries) = outcome(&step.outcome);
        let _ = writeln!(
            md,
            "| {} | {} | {what} | {tries} | {} | {:.0} |",
            i + 1,
            step.what,
            size_cells(&step.size),
            step.took.as_secs_f64()
        );
    }
    if let Some(m) = minimal {
        let _ = writeln!(
            md,
            "\n## The smallest run's `{}` violations\n",
            report.class.as_str()
        );
        let reconciliation: Option<Reconciliation> =
            crate::reconcile::evidence::read_json(&m.run, RECONCILIATION_FILE).ok();
        let at = in_flight(&m.run);
        let violations: Vec<_> = reconciliation
            .iter()
            .flat_map(|r| r.violations.iter())
            .filter(|v| v.class == report.class)
            .collect();
        let _ = writeln!(
            md,
            "{} in all{}.\n",
            violations.len(),
            if violations.len() > LISTED {
                format!(", the first {LISTED} here")
            } else {
                String::new()
            }
        );
        let _ = writeln!(
            md,
            "| transfer id | scheduled at s | faults active then | detail |"
        );
        let _ = writeln!(md, "|---|---|---|---|");
        for v in violations.iter().take(LISTED) {
            let id = v.transfer_id.as_deref().unwrap_or("(a sample)");
            let (when, active) = match at.get(id) {
                Some(&(from, to)) => (format!("{from:.2}–{to:.2}"), active_during(m, (from, to))),
                None => ("—".to_owned(), "—".to_owned()),
            };
            let _ = writeln!(
                md,
                "| `{id}` | {when} | {active} | {} |",
                v.detail.replace('|', "/")
            );
        }
    }
    md
}

/// The closing lines printed.
pub fn closing(report: &Report<'_>, minimal: Option<&Minimal<'_>>, out: &Path) -> String {
    let mut text = closing_sizes(report, minimal, out);
    if let Some(incomplete) = report.incomplete() {
        text = format!("{text}\n  incomplete: {incomplete}");
    }
    text
}

fn closing_sizes(report: &Report<'_>, minimal: Option<&Minimal<'_>>, out: &Path) -> String {
    match minimal {
        Some(_) => {
            let smallest = report
                .steps
                .iter()
                .rev()
                .find(|s| matches!(s.outcome, Outcome::Failed { .. }))
                .map(|s| s.size.clone());
            let (o, s) = (
                report.original,
                smallest.unwrap_or_else(|| report.original.clone()),
            );
            format!(
                "shrunk `{}` in {:.0} s ({} runs): faults {} → {}, {} s → {} s, {}/s → {}/s, {} → {} users, {} → {} requests\n  {}\n  {}",
                report.class.as_str(),
                report.took.as_secs_f64(),
                report.runs,
                o.faults,
                s.faults,
                o.duration_s,
                s.duration_s,
                o.rate_per_s,
                s.rate_per_s,
                o.users,
                s.users,
                o.scheduled.unwrap_or(0),
                s.scheduled.unwrap_or(0),
                out.join("shrunk").join("profile.yaml").display(),
                out.join("shrink.md").display(),
            )
        }
        None if report.could_not_run().is_some() => format!(
            "no smaller run of `{}` found before a candidate could not run ({} runs, {:.0} s); see {}",
            report.class.as_str(),
            report.runs,
            report.took.as_secs_f64(),
            out.join("shrink.md").display()
        ),
        None => format!(
            "no smaller run keeps `{}` ({} runs, {:.0} s); see {}",
            report.class.as_str(),
            report.runs,
            report.took.as_secs_f64(),
            out.join("shrink.md").display()
        ),
    }
}
