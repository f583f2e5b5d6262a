//! `harness shrink DIR`: from a failed run, the smallest run found that still fails the same
//! way. The run's folder gives the profile as run and the system (as `harness replay`
//! reads them); the class to keep is `--class`, or the one the run showed most of. Cuts are
//! tried one at a time (`cuts`), each a fresh run of the same seed on the same system; a
//! cut is kept when its run shows the class (a run that does not is tried again, up to
//! `--tries` times: a class that shows only now and then is not lost to one unlucky run),
//! and the cuts start over from the smaller profile (but those that passed), until no cut
//! keeps the class or the budget is spent. Ctrl-C or SIGTERM stops the run under way (its faults healed) and keeps
//! the smallest failing run so far.
//!
//! Writes `shrunk/profile.yaml` (a profile `harness --profile` runs), `shrunk/run/` (the
//! smallest failing run's folder) and `shrink.md` (`render`).

pub mod cuts;
mod render;

use crate::cli::ShrinkArgs;
use crate::interrupt::Interrupt;
use crate::profile::{plan, Profile};
use crate::reconcile::evidence::read_json;
use crate::reconcile::names::ViolationClass;
use crate::replay;
use crate::run::{self, RunError, RunOptions};
use crate::summary::{Summary, SUMMARY_FILE};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The size of a run, on every dimension a cut makes smaller.
#[derive(Debug, Clone, PartialEq)]
pub struct Size {
    pub faults: usize,
    pub warmup_s: u32,
    pub duration_s: u32,
    pub rate_per_s: u32,
    pub users: u32,
    pub retries: u32,
    /// The requests its schedule held (known once it ran).
    pub scheduled: Option<u64>,
}

impl Size {
    fn of(profile: &Profile, summary: Option<&Summary>) -> Size {
        Size {
            faults: cuts::faults(profile).len(),
            warmup_s: profile.warmup_s,
            duration_s: profile.duration_s,
            rate_per_s: cuts::peak_rate(&profile.arrival),
            users: profile.users.count,
            retries: profile.client.retries.max,
            scheduled: summary.map(|s| s.requests.scheduled),
        }
    }
}

/// What became of one cut.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Its run showed the class (on this try): the cut is kept.
    Failed { tries: u32 },
    /// No try showed the class.
    Passed { tries: u32 },
    /// The profile's rules refuse it (not run).
    Invalid(String),
    /// The run could not happen.
    Error(String),
}

#[derive(Debug, Clone)]
pub struct Step {
    pub what: String,
    pub outcome: Outcome,
    pub size: Size,
    pub took: Duration,
}

/// Why shrinking did not start.
#[derive(Debug, thiserror::Error)]
pub enum ShrinkError {
    #[error("{0}: nothing to shrink (the run showed no anomaly)")]
    NothingToShrink(String),
    #[error("the run did not show `{class}`; it showed: {shown}")]
    ClassNotShown { class: String, shown: String },
    #[error("--budget: {0}")]
    Budget(String),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Evidence(#[from] crate::reconcile::evidence::EvidenceError),
    #[error("cannot write {path}: {source}")]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// `10m`, `90s`, `1h` or seconds.
pub fn parse_budget(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 90s, 10m or 1h"))?;
    let seconds = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("`{text}` is not a duration like 90s, 10m or 1h")),
    };
    if seconds == 0 {
        return Err("the budget must be more than 0 s".to_owned());
    }
    Ok(Duration::from_secs(seconds))
}

/// The class to keep: the one asked for, or the one the run showed most of.
fn class_to_keep(summary: &Summary, asked: Option<&str>) -> Result<ViolationClass, ShrinkError> {
    let shown = replay::classes(summary);
    let names = || {
        shown
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match asked {
        Some(name) => shown
            .iter()
            .copied()
            .find(|c| c.as_str() == name)
            .ok_or_else(|| ShrinkError::ClassNotShown {
                class: name.to_owned(),
                shown: if shown.is_empty() {
                    "none".to_owned()
                } else {
                    names()
                },
            }),
        None => summary
            .anomalies
            .iter()
            .filter(|(_, n)| **n > 0)
            .max_by_key(|(class, n)| (**n, std::cmp::Reverse(**class)))
            .map(|(class, _)| *class)
            .ok_or_else(|| ShrinkError::NothingToShrink(summary.profile.clone())),
    }
}

/// The search as it stands: the smallest failing profile and its run's folder.
struct Best {
    profile: Profile,
    run: PathBuf,
    summary: Summary,
}

struct Search<'a> {
    dir: &'a Path,
    work: PathBuf,
    class: ViolationClass,
    tries: u32,
    deadline: Instant,
    interrupt: Interrupt,
    runs: u32,
    quiet: bool,
}

impl Search<'_> {
    /// Runs `profile` up to `tries` times; the folder of the run that showed the class.
    async fn attempt(
        &mut self,
        profile: &Profile,
    ) -> Result<(Outcome, Option<PathBuf>), ShrinkError> {
        if let Err((field, message)) = plan::validate(profile) {
            return Ok((Outcome::Invalid(format!("{field}: {message}")), None));
        }
        for tryno in 1..=self.tries {
            if Instant::now() >= self.deadline || self.interrupt.requested() {
                return Ok((Outcome::Passed { tries: tryno - 1 }, None));
            }
            self.runs += 1;
            let step = self.work.join(format!("run-{:03}", self.runs));
            std::fs::create_dir_all(&step).map_err(|source| ShrinkError::Output {
                path: step.clone(),
                source,
            })?;
            let file = step.join("profile-in.yaml");
            let text = serde_yaml::to_string(profile).map_err(|e| ShrinkError::Output {
                path: file.clone(),
                source: std::io::Error::other(e),
            })?;
            std::fs::write(&file, text).map_err(|source| ShrinkError::Output {
                path: file.clone(),
                source,
            })?;
            let out = step.join("run");
            let mut options: RunOptions = replay::options_of(self.dir, out.clone())?;
            options.profile = file;
            options.silent = true;
            options.interrupt = self.interrupt.clone();
            // A run that could not happen is tried once more (a port taken for a moment, a
            // read-back late on a busy machine); twice is the candidate's outcome.
            let mut ran = run::run(options.clone()).await;
            if ran.is_err() && !self.interrupt.requested() {
                self.runs += 1;
                remove(&out);
                ran = run::run(options).await;
            }
            match ran {
                Ok(run::INTERRUPTED_EXIT) => return Ok((Outcome::Passed { tries: tryno }, None)),
                Ok(_) => {}
                Err(e) => return Ok((Outcome::Error(e.to_string()), None)),
            }
            let summary: Summary = read_json(&out, SUMMARY_FILE)?;
            if replay::classes(&summary).contains(&self.class) {
                return Ok((Outcome::Failed { tries: tryno }, Some(step)));
            }
            remove(&step);
        }
        Ok((Outcome::Passed { tries: self.tries }, None))
    }
}

fn remove(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

/// `harness shrink DIR`: exit 0 with a smaller failing run, 1 when every cut tried ran and
/// none kept the class, 2 when the run cannot be shrunk or a candidate could not run twice (a cut
/// that did not run is never taken as passing: the search stops there, keeping the smallest
/// run found so far).
pub async fn run(args: ShrinkArgs, interrupt: Interrupt) -> Result<i32, ShrinkError> {
    let budget = parse_budget(&args.budget).map_err(ShrinkError::Budget)?;
    let started = Instant::now();
    let original: Summary = read_json(&args.dir, SUMMARY_FILE)?;
    let class = class_to_keep(&original, args.class.as_deref())?;
    // The folder must replay before anything is cut.
    replay::options_of(&args.dir, args.dir.join("unused"))?;
    let (profile, _) =
        crate::profile::load(&args.dir.join(run::folder::PROFILE_FILE)).map_err(RunError::from)?;
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("results").join(format!(
            "{}-{}-shrink",
            crate::provenance::compact(std::time::SystemTime::now()),
            original.profile
        ))
    });
    let work = out.join("work");
    std::fs::create_dir_all(&work).map_err(|source| ShrinkError::Output {
        path: work.clone(),
        source,
    })?;
    let first = Size::of(&profile, Some(&original));
    println!(
        "shrinking {} for `{}` within {} s: {} fault(s), {} s at {}/s, {} users, {} retries, {} requests",
        args.dir.display(),
        class.as_str(),
        budget.as_secs(),
        first.faults,
        first.duration_s,
        first.rate_per_s,
        first.users,
        first.retries,
        first.scheduled.unwrap_or(0)
    );
    let mut search = Search {
        dir: &args.dir,
        work: work.clone(),
        class,
        tries: args.tries.max(1),
        deadline: started + budget,
        interrupt,
        runs: 0,
        quiet: args.quiet,
    };
    let mut best: Option<Best> = None;
    let mut current = profile.clone();
    let mut steps: Vec<Step> = Vec::new();
    let mut stopped = None;
    // A cut that passed on a larger profile is not tried again on a smaller one (dropping a
    // fault the class needs, a load too small to show it): it would pass again.
    let mut passed: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut invalid: std::collections::HashSet<String> = std::collections::HashSet::new();
    'search: loop {
        let mut kept = false;
        for cut in cuts::cuts(&current) {
            if passed.contains(&cut.what) {
                continue;
            }
            if search.interrupt.requested() {
                stopped = Some("interrupted");
                break 'search;
            }
            if Instant::now() >= search.deadline {
                stopped = Some("budget spent");
                break 'search;
            }
            let began = Instant::now();
            let (outcome, folder) = search.attempt(&cut.profile).await?;
            if let Outcome::Invalid(_) = outcome {
                // Listed once: checked again on every smaller profile, quietly.
                if !invalid.insert(cut.what.clone()) {
                    continue;
                }
            }
            let could_not_run = matches!(outcome, Outcome::Error(_));
            let summary = folder
                .as_ref()
                .and_then(|f| read_json::<Summary>(&f.join("run"), SUMMARY_FILE).ok());
            let size = Size::of(&cut.profile, summary.as_ref());
            let step = Step {
                what: cut.what.clone(),
                outcome: outcome.clone(),
                size,
                took: began.elapsed(),
            };
            if !search.quiet {
                eprintln!("{}", render::step_line(steps.len() + 1, &step));
            }
            // An invalid cut may be valid on a later profile (a fault moved earlier lets a
            // shorter load hold it): only a cut that ran and passed is not tried again.
            if matches!(outcome, Outcome::Passed { .. }) {
                passed.insert(cut.what.clone());
            }
            steps.push(step);
            if could_not_run {
                // What the other cuts would show is unknown too: the system did not take
                // this one. The search stops and says so; the smallest run so far is kept.
                stopped = Some(COULD_NOT_RUN);
                break 'search;
            }
            if let (Outcome::Failed { .. }, Some(folder), Some(summary)) =
                (&outcome, folder, summary)
            {
                if let Some(old) = best.take() {
                    remove(old.run.parent().unwrap_or(&old.run));
                }
                best = Some(Best {
                    profile: cut.profile.clone(),
                    run: folder.join("run"),
                    summary,
                });
                current = cut.profile;
                kept = true;
                break;
            }
        }
        if !kept {
            break;
        }
    }
    let report = render::Report {
        dir: &args.dir,
        class,
        original: &first,
        steps: &steps,
        took: started.elapsed(),
        stopped,
        runs: search.runs,
    };
    finish(&out, &report, best.as_ref())?;
    Ok(if report.could_not_run().is_some() {
        2
    } else {
        i32::from(best.is_none())
    })
}

/// Why a search stopped when a candidate's run could not happen.
const COULD_NOT_RUN: &str = "stopped: a candidate run could not happen";

/// Writes `shrunk/` and `shrink.md`, and says where.
fn finish(out: &Path, report: &render::Report<'_>, best: Option<&Best>) -> Result<(), ShrinkError> {
    let shrunk = out.join("shrunk");
    if let Some(best) = best {
        std::fs::create_dir_all(&shrunk).map_err(|source| ShrinkError::Output {
            path: shrunk.clone(),
            source,
        })?;
        let file = shrunk.join("profile.yaml");
        let text = serde_yaml::to_string(&best.profile).map_err(|e| ShrinkError::Output {
            path: file.clone(),
            source: std::io::Error::other(e),
        })?;
        let head = format!(
            "# The smallest run `harness shrink` found that still shows `{}` (from {}).\n",
            report.class.as_str(),
            report.dir.display()
        );
        std::fs::write(&file, head + &text).map_err(|source| ShrinkError::Output {
            path: file.clone(),
            source,
        })?;
        let run = shrunk.join("run");
        std::fs::rename(&best.run, &run).map_err(|source| ShrinkError::Output {
            path: run.clone(),
            source,
        })?;
    }
    let _ = std::fs::remove_dir_all(out.join("work"));
    let best_view = best.map(|b| render::Minimal {
        profile: &b.profile,
        summary: &b.summary,
        run: shrunk.join("run"),
    });
    let text = render::markdown(report, best_view.as_ref());
    let path = out.join("shrink.md");
    std::fs::write(&path, &text).map_err(|source| ShrinkError::Output {
        path: path.clone(),
        source,
    })?;
    println!("{}", render::closing(report, best_view.as_ref(), out));
    Ok(())
}
