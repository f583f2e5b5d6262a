//! `harness replay DIR`: runs again exactly what a run's folder describes — the profile as
//! run (seed, rate, duration, users, faults and their seeded times, service settings and
//! design, from `profile.yaml`) on the system it reached (`system.json`: started by the
//! harness, or the target, whose file the folder keeps a copy of) — into a new folder, and
//! says whether the same anomaly classes appear.

use crate::reconcile::evidence::read_json;
use crate::reconcile::names::ViolationClass;
use crate::run::folder::{SystemAsRun, PROFILE_FILE, SYSTEM_FILE, TARGET_FILE_COPY};
use crate::run::{self, RunError, RunOptions};
use crate::summary::{Summary, SUMMARY_FILE};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What a replay writes in its own folder beside the run's files.
pub const REPLAYED_FILE: &str = "replayed.json";

/// The anomaly classes a run showed (those with a count).
pub fn classes(summary: &Summary) -> BTreeSet<ViolationClass> {
    summary
        .anomalies
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(class, _)| *class)
        .collect()
}

/// The run options that run again what `dir` describes, into `out`.
pub fn options_of(dir: &Path, out: PathBuf) -> Result<RunOptions, RunError> {
    let summary: Summary = read_json(dir, SUMMARY_FILE)?;
    if summary.shard.is_some() {
        return Err(RunError::Shard(format!(
            "{} is one shard's folder: merge the shards' folders (harness merge) and replay the merged one, which runs the whole run in one process",
            dir.display()
        )));
    }
    let system: SystemAsRun = read_json(dir, SYSTEM_FILE)?;
    let target_file = system
        .target_file
        .as_ref()
        .map(|_| dir.join(TARGET_FILE_COPY));
    let take_existing_accounts = target_file.is_some() || system.target.is_some();
    Ok(RunOptions {
        profile: dir.join(PROFILE_FILE),
        out: Some(out),
        target_file,
        target: system.target,
        external_url: system.external_url,
        ledger_url: system.ledger_url,
        toxiproxy: system.toxiproxy,
        ignore_service_settings: system.ignore_service_settings,
        // A target still holds the accounts its original run created (with `seed: create`
        // a second creation would be refused): they are taken as they are.
        take_existing_accounts,
        ..RunOptions::default()
    })
}

/// A replay's outcome: the classes of the original run and of the replay.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Replayed {
    pub replay_of: PathBuf,
    pub out: PathBuf,
    pub classes_before: BTreeSet<ViolationClass>,
    pub classes_after: BTreeSet<ViolationClass>,
    /// The replay's own exit code, as a run's.
    pub run_exit: i32,
}

impl Replayed {
    /// Whether the replay showed the same classes as the original.
    pub fn reproduced(&self) -> bool {
        self.classes_before == self.classes_after
    }

    /// One line: reproduced or not, with the classes that differ.
    pub fn describe(&self) -> String {
        let names = |set: &BTreeSet<ViolationClass>| {
            if set.is_empty() {
                "none".to_owned()
            } else {
                set.iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        if self.reproduced() {
            return format!(
                "replayed in {}: the same anomaly classes ({})",
                self.out.display(),
                names(&self.classes_after)
            );
        }
        let missing: BTreeSet<_> = self
            .classes_before
            .difference(&self.classes_after)
            .copied()
            .collect();
        let new: BTreeSet<_> = self
            .classes_after
            .difference(&self.classes_before)
            .copied()
            .collect();
        format!(
            "replayed in {}: not the same anomaly classes: missing {}; new {}",
            self.out.display(),
            names(&missing),
            names(&new)
        )
    }
}

/// The default folder of a replay of `dir`: `results/<UTC time>-<profile>-replay/`.
fn default_out(summary: &Summary) -> PathBuf {
    PathBuf::from("results").join(format!(
        "{}-{}-replay",
        crate::provenance::compact(std::time::SystemTime::now()),
        summary.profile
    ))
}

/// Runs `dir` again into `out` (by default `results/<UTC time>-<profile>-replay/`), quietly
/// or with the run's progress, and writes `replayed.json` there.
pub async fn replay(
    dir: &Path,
    out: Option<PathBuf>,
    display: ReplayDisplay,
) -> Result<Replayed, RunError> {
    let original: Summary = read_json(dir, SUMMARY_FILE)?;
    let out = out.unwrap_or_else(|| default_out(&original));
    let mut options = options_of(dir, out.clone())?;
    options.quiet = display == ReplayDisplay::Plain;
    options.silent = display == ReplayDisplay::Off;
    let run_exit = run::run(options).await?;
    let replay: Summary = read_json(&out, SUMMARY_FILE)?;
    let replayed = Replayed {
        replay_of: dir.to_owned(),
        out: out.clone(),
        classes_before: classes(&original),
        classes_after: classes(&replay),
        run_exit,
    };
    crate::run::folder::write_json(&out.join(REPLAYED_FILE), &replayed)?;
    Ok(replayed)
}

/// How much of a replayed run is shown as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayDisplay {
    /// The run's live line.
    Live,
    /// Plain progress lines.
    Plain,
    /// Nothing (a step of another command).
    Off,
}
