//! `harness baseline --profile P`: runs a profile and keeps what `harness compare` needs of
//! it as the profile's baseline (`results/baselines/<profile>/`): its `summary.json`, its
//! `latency.hlog`, and `machine.json`, the machine that recorded it. A run that does not
//! pass is not kept.

use crate::cli::BaselineArgs;
use crate::compare::load::{LATENCY_LOG_FILE, SUMMARY_FILE};
use crate::provenance;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The description of the machine that recorded a baseline.
pub const MACHINE_FILE: &str = "machine.json";

/// The machine a baseline was recorded on: a comparison against it means most on the same.
#[derive(Debug, Serialize)]
pub struct Machine {
    pub recorded_at: String,
    pub hostname: String,
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_bytes: u64,
    pub kernel: String,
    pub git_revision: String,
}

/// The first line of /proc/`file` whose key is `key`, its value.
fn proc_value(file: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(Path::new("/proc").join(file)).ok()?;
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().to_owned())
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

impl Machine {
    pub fn this_one() -> Machine {
        let memory_kb = proc_value("meminfo", "MemTotal")
            .and_then(|v| v.trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0);
        Machine {
            recorded_at: provenance::rfc3339(SystemTime::now()),
            hostname: read_trimmed("/proc/sys/kernel/hostname"),
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model: proc_value("cpuinfo", "model name").unwrap_or_else(|| "unknown".to_owned()),
            memory_bytes: memory_kb * 1024,
            kernel: read_trimmed("/proc/sys/kernel/osrelease"),
            git_revision: provenance::git_revision(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("{0}")]
    Options(String),
    #[error(transparent)]
    Run(#[from] crate::run::RunError),
    #[error(
        "the run did not pass (exit {0}): a baseline must; nothing was kept (the run is in {1})"
    )]
    NotPassed(i32, PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Summary(#[from] crate::compare::load::LoadError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BaselineError + '_ {
    move |source| BaselineError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A new, empty folder for the run under the system's temporary folder, made with a unique
/// name (not just named): a process id alone comes back, and a run in an earlier run's
/// folder would find that run's databases (its accounts already seeded). Kept after the
/// run: its summary names it.
fn fresh_run_dir() -> Result<PathBuf, BaselineError> {
    let temp = std::env::temp_dir();
    tempfile::Builder::new()
        .prefix("harness-baseline-")
        .tempdir_in(&temp)
        .map(tempfile::TempDir::keep)
        .map_err(io(&temp))
}

/// Runs the profile and keeps its baseline; returns the folder it was kept in.
pub async fn record(args: BaselineArgs) -> Result<PathBuf, BaselineError> {
    let mut run = args.run;
    if run.out.is_some() {
        return Err(BaselineError::Options(
            "harness baseline keeps its run in --dir DIR/<profile>/; --out is not for it"
                .to_owned(),
        ));
    }
    let run_dir = fresh_run_dir()?;
    run.out = Some(run_dir.clone());
    let options = run.into_options().map_err(BaselineError::Options)?;
    let code = crate::run::run(options).await?;
    if code != 0 {
        return Err(BaselineError::NotPassed(code, run_dir));
    }
    let summary = crate::compare::load::run(&run_dir)?.summary;
    let kept = args.dir.join(&summary.profile);
    std::fs::create_dir_all(&kept).map_err(io(&kept))?;
    for file in [SUMMARY_FILE, LATENCY_LOG_FILE] {
        let to = kept.join(file);
        std::fs::copy(run_dir.join(file), &to).map_err(io(&to))?;
    }
    let machine = kept.join(MACHINE_FILE);
    let text = serde_json::to_string_pretty(&Machine::this_one())
        .map_err(|e| BaselineError::Options(e.to_string()))?;
    std::fs::write(&machine, text + "\n").map_err(io(&machine))?;
    // The run's other files (databases, logs, the report) stay where the run printed they
    // are: they are not part of the baseline.
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_run_gets_a_folder_of_its_own_even_in_one_process() {
        let first = fresh_run_dir().expect("first folder");
        let second = fresh_run_dir().expect("second folder");
        assert_ne!(
            first, second,
            "a folder named by the process id alone comes back"
        );
        for dir in [&first, &second] {
            let entries = std::fs::read_dir(dir).expect("created").count();
            assert_eq!(entries, 0, "{} is not empty", dir.display());
            std::fs::remove_dir(dir).expect("remove");
        }
    }
}
