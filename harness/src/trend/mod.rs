//! `harness trend DIR…`: change points in a history of runs. Every `summary.json` under the
//! folders given (a CI's kept run folders, say) is read; for each profile the runs are put
//! in order of their start time (then revision), and each figure (throughput, p50, p99, the
//! CPU a transfer cost each process) is searched for change points by E-Divisive means
//! (`regression::change_points`) at a significance level. A change that makes a figure
//! worse is a regression, named with the first commit after it. Writes `trend.json`,
//! `trend.md` and `trend.html` (every figure drawn, its change points marked).

pub mod html;

use crate::cli::TrendArgs;
use crate::regression::change_points::{self, ChangePoint};
use crate::summary::{Figure, Summary, SUMMARY_FILE};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// How deep under each folder given `summary.json` files are looked for.
const SEARCH_DEPTH: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum TrendError {
    #[error("{path}: {detail}")]
    Input { path: PathBuf, detail: String },
    #[error("no summary.json under {0}")]
    Empty(String),
    #[error("cannot write {path}: {source}")]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One figure of one run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Point {
    pub git_revision: String,
    pub started_at: String,
    pub value: f64,
}

/// A change point, with the run it starts at.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Change {
    /// The first run after the change: its index in the series, commit and start.
    pub index: usize,
    pub git_revision: String,
    pub started_at: String,
    pub p_value: f64,
    /// The mean after over the mean before.
    pub mean_ratio: f64,
    /// Whether the figure got worse.
    pub regression: bool,
}

/// One figure of one profile over the runs.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Series {
    pub profile: String,
    pub metric: String,
    /// Whether a higher value is worse.
    pub higher_is_worse: bool,
    pub points: Vec<Point>,
    pub changes: Vec<Change>,
}

/// Every `summary.json` under `dir`, `depth` folders down at most.
fn summaries_under(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
    let file = dir.join(SUMMARY_FILE);
    if file.is_file() {
        found.push(file);
        return;
    }
    if depth == 0 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut folders: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    folders.sort();
    for folder in folders {
        summaries_under(&folder, depth - 1, found);
    }
}

fn read(path: &Path) -> Result<Summary, TrendError> {
    Summary::read_file(path).map_err(|detail| TrendError::Input {
        path: path.to_owned(),
        detail,
    })
}

/// The series of every profile and figure of `summaries`, each searched for change points.
pub fn analyse(
    summaries: &[Summary],
    significance: f64,
    min_segment: usize,
    seed: u64,
) -> Vec<Series> {
    let mut by_profile: BTreeMap<&str, Vec<&Summary>> = BTreeMap::new();
    for summary in summaries {
        by_profile
            .entry(&summary.profile)
            .or_default()
            .push(summary);
    }
    let mut all = Vec::new();
    for (profile, mut runs) in by_profile {
        runs.sort_by(|a, b| {
            (&a.started_at, &a.git_revision).cmp(&(&b.started_at, &b.git_revision))
        });
        let mut series: BTreeMap<String, Series> = BTreeMap::new();
        for run in &runs {
            for Figure {
                name: metric,
                higher_is_worse,
                value,
            } in run.figures()
            {
                series
                    .entry(metric.clone())
                    .or_insert_with(|| Series {
                        profile: profile.to_owned(),
                        metric,
                        higher_is_worse,
                        points: Vec::new(),
                        changes: Vec::new(),
                    })
                    .points
                    .push(Point {
                        git_revision: run.git_revision.clone(),
                        started_at: run.started_at.clone(),
                        value,
                    });
            }
        }
        for mut one in series.into_values() {
            let values: Vec<f64> = one.points.iter().map(|p| p.value).collect();
            one.changes = change_points::find(&values, significance, min_segment, seed)
                .into_iter()
                .map(
                    |ChangePoint {
                         index,
                         p_value,
                         mean_ratio,
                     }| {
                        let at = &one.points[index];
                        Change {
                            index,
                            git_revision: at.git_revision.clone(),
                            started_at: at.started_at.clone(),
                            p_value,
                            mean_ratio,
                            regression: if one.higher_is_worse {
                                mean_ratio > 1.0
                            } else {
                                mean_ratio < 1.0
                            },
                        }
                    },
                )
                .collect();
            all.push(one);
        }
    }
    all
}

/// The change points as a Markdown page.
pub fn markdown(series: &[Series], significance: f64) -> String {
    let mut out = String::from("# Trend\n\n");
    let runs: usize = series.iter().map(|s| s.points.len()).max().unwrap_or(0);
    let _ = writeln!(
        out,
        "Change points by E-Divisive means (Matteson and James 2014), kept at p < {significance}, over up to {runs} runs per profile.\n"
    );
    let changes: Vec<(&Series, &Change)> = series
        .iter()
        .flat_map(|s| s.changes.iter().map(move |c| (s, c)))
        .collect();
    if changes.is_empty() {
        out.push_str("No change point.\n");
        return out;
    }
    out.push_str("| profile | figure | from run | commit | change | p | regression |\n");
    out.push_str("|---|---|---|---|---|---|---|\n");
    for (s, c) in changes {
        let _ = writeln!(
            out,
            "| {} | {} | {} ({}) | `{}` | {:+.1} % | {:.3} | {} |",
            s.profile,
            s.metric,
            c.index,
            c.started_at,
            c.git_revision.chars().take(12).collect::<String>(),
            (c.mean_ratio - 1.0) * 100.0,
            c.p_value,
            if c.regression { "**yes**" } else { "no" }
        );
    }
    out
}

/// Runs `harness trend`: exit 0 (its findings are in the files and on stdout).
pub fn run(args: &TrendArgs) -> Result<i32, TrendError> {
    let mut files = Vec::new();
    for dir in &args.dirs {
        summaries_under(dir, SEARCH_DEPTH, &mut files);
    }
    if files.is_empty() {
        let given: Vec<String> = args.dirs.iter().map(|d| d.display().to_string()).collect();
        return Err(TrendError::Empty(given.join(", ")));
    }
    let summaries = files
        .iter()
        .map(|f| read(f))
        .collect::<Result<Vec<_>, _>>()?;
    let series = analyse(&summaries, args.significance, args.min_segment, args.seed);
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from("trend"));
    let output = |path: PathBuf| {
        move |source| TrendError::Output {
            path: path.clone(),
            source,
        }
    };
    std::fs::create_dir_all(&out).map_err(output(out.clone()))?;
    let json = serde_json::to_string_pretty(&series).unwrap_or_default();
    std::fs::write(out.join("trend.json"), json).map_err(output(out.join("trend.json")))?;
    let page = markdown(&series, args.significance);
    std::fs::write(out.join("trend.md"), &page).map_err(output(out.join("trend.md")))?;
    let html = html::page(&series, args.significance);
    std::fs::write(out.join(html::FILE), html).map_err(output(out.join(html::FILE)))?;
    print!("{page}");
    println!("\n{} runs read; written to {}", files.len(), out.display());
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::example;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// 30 runs of one profile, a run a day, the coordinator's CPU per transfer stepping up
    /// by `step` at run 15, each figure with ±5 % of noise.
    fn history(step: f64, seed: u64) -> Vec<Summary> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..30)
            .map(|i| {
                let mut summary = example::summary(1000.0 * rng.gen_range(0.95..1.05), 0.0);
                summary.git_revision = format!("{i:040x}");
                summary.started_at = format!("2026-11-{:02}T00:00:00Z", i + 1);
                let level = if i < 15 { 0.20 } else { 0.20 * step };
                summary
                    .cpu
                    .ms_per_operation
                    .insert("coordinator".to_owned(), level * rng.gen_range(0.95..1.05));
                summary
            })
            .collect()
    }

    #[test]
    fn a_fifteen_percent_step_in_cpu_is_a_regression_at_its_commit() {
        let series = analyse(&history(1.15, 3), 0.05, 3, 1);
        let cpu = series
            .iter()
            .find(|s| s.metric == "cpu_ms_per_transfer.coordinator")
            .expect("the coordinator's CPU");
        assert_eq!(cpu.changes.len(), 1, "{cpu:?}");
        let change = &cpu.changes[0];
        assert_eq!(change.index, 15);
        assert_eq!(change.git_revision, format!("{:040x}", 15));
        assert!(change.regression && change.mean_ratio > 1.1, "{change:?}");
        let page = markdown(&series, 0.05);
        assert!(page.contains("cpu_ms_per_transfer.coordinator"), "{page}");
        // Throughput did not change.
        let throughput = series
            .iter()
            .find(|s| s.metric == "throughput_rps")
            .expect("throughput");
        assert!(throughput.changes.is_empty(), "{throughput:?}");
    }

    #[test]
    fn a_flat_history_has_no_change_point() {
        let series = analyse(&history(1.0, 4), 0.05, 3, 1);
        assert!(series.iter().all(|s| s.changes.is_empty()), "{series:?}");
        assert!(markdown(&series, 0.05).contains("No change point."));
    }

    #[test]
    fn runs_are_put_in_time_order_whatever_order_they_are_read_in() {
        let mut runs = history(1.15, 3);
        runs.reverse();
        let series = analyse(&runs, 0.05, 3, 1);
        let cpu = series
            .iter()
            .find(|s| s.metric == "cpu_ms_per_transfer.coordinator")
            .expect("the coordinator's CPU");
        assert_eq!(cpu.changes.first().map(|c| c.index), Some(15));
    }
}
