//! `harness ab`: two builds of the project run interleaved on one profile, and a paired
//! judgement of every figure. Round i runs both arms with the same seed (the profile's plus
//! i), A then B in even rounds and B then A in odd ones, so that drift on the machine (a
//! neighbour's compile, a warming disk) meets both arms alike. Each arm's runs use that
//! build's own harness and services. Writes `ab.json` and `ab.md` and every round's run
//! folder. Exit 1 a regression, 2 the rounds cannot tell (or a run could not be made), 0
//! none.

pub mod builds;
pub mod judgement;

use crate::cli::AbArgs;
use crate::summary::{Summary, SUMMARY_FILE};
use builds::Build;
use judgement::{AbJudgement, ArmRun, Thresholds};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum AbError {
    #[error(transparent)]
    Build(#[from] builds::BuildError),
    #[error("{0}")]
    Input(String),
    #[error("round {round}, arm {arm}: {detail}")]
    Run {
        round: usize,
        arm: char,
        detail: String,
    },
    #[error("cannot write {path}: {source}")]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One arm as `ab.json` records it.
#[derive(Debug, Serialize)]
pub struct ArmRecord {
    pub given: String,
    pub binary: String,
    pub commit: Option<String>,
}

impl From<&Build> for ArmRecord {
    fn from(b: &Build) -> Self {
        ArmRecord {
            given: b.given.clone(),
            binary: b.binary.display().to_string(),
            commit: b.commit.clone(),
        }
    }
}

/// `ab.json`.
#[derive(Debug, Serialize)]
pub struct AbRecord {
    pub profile: String,
    pub seed: Option<u64>,
    pub rounds: usize,
    pub a: ArmRecord,
    pub b: ArmRecord,
    pub runs: Vec<ArmRun>,
    pub wall_s: f64,
    #[serde(flatten)]
    pub judgement: AbJudgement,
}

/// Runs the profile once with `build` into `folder`; its summary.
fn run_once(
    build: &Build,
    args: &AbArgs,
    seed: Option<u64>,
    folder: &Path,
) -> Result<Summary, String> {
    let mut command = Command::new(&build.binary);
    command
        .arg("--profile")
        .arg(&args.profile)
        .arg("--out")
        .arg(folder)
        .arg("--quiet");
    if let Some(seed) = seed {
        command.arg("--seed").arg(seed.to_string());
    }
    if let Some(duration) = args.duration {
        command.arg("--duration").arg(duration.to_string());
    }
    if let Some(rate) = args.rate {
        command.arg("--rate").arg(rate.to_string());
    }
    let output = command
        .output()
        .map_err(|e| format!("cannot start {}: {e}", build.binary.display()))?;
    // Exit 0 and 1 are a pass and a fail, both with a summary; anything else made none.
    if !matches!(output.status.code(), Some(0 | 1)) {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last: Vec<&str> = stderr.lines().rev().take(5).collect();
        return Err(format!(
            "the run exited {}: {}",
            output.status,
            last.into_iter().rev().collect::<Vec<_>>().join(" | ")
        ));
    }
    Summary::read_file(&folder.join(SUMMARY_FILE))
}

fn write(path: PathBuf, text: &str) -> Result<(), AbError> {
    std::fs::write(&path, text).map_err(|source| AbError::Output { path, source })
}

pub fn run(args: &AbArgs) -> Result<i32, AbError> {
    if args.rounds < crate::regression::paired::MIN_PAIRS {
        return Err(AbError::Input(format!(
            "--rounds {}: the paired test needs at least {} rounds",
            args.rounds,
            crate::regression::paired::MIN_PAIRS
        )));
    }
    crate::profile::load(&args.profile).map_err(|e| AbError::Input(format!("--profile: {e}")))?;
    let a = builds::resolve(&args.a)?;
    let b = builds::resolve(&args.b)?;
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from("ab"));
    let output = |path: &Path| {
        let path = path.to_owned();
        move |source| AbError::Output { path, source }
    };
    std::fs::create_dir_all(&out).map_err(output(&out))?;
    let started = Instant::now();
    let mut pairs = Vec::new();
    let mut runs = Vec::new();
    for round in 0..args.rounds {
        let seed = args.seed.map(|s| s.wrapping_add(round as u64));
        let order = if round % 2 == 0 {
            [('A', &a), ('B', &b)]
        } else {
            [('B', &b), ('A', &a)]
        };
        let mut summaries: [Option<Summary>; 2] = [None, None];
        for (arm, build) in order {
            let folder = out.join(format!("round-{round:02}-{}", arm.to_ascii_lowercase()));
            let _ = std::fs::remove_dir_all(&folder);
            let summary = run_once(build, args, seed, &folder).map_err(|detail| AbError::Run {
                round,
                arm,
                detail,
            })?;
            eprintln!(
                "harness ab: round {}/{} arm {arm}: {} ({:.0} s so far)",
                round + 1,
                args.rounds,
                summary.verdict.as_str(),
                started.elapsed().as_secs_f64()
            );
            runs.push(ArmRun {
                round,
                arm,
                folder: folder.display().to_string(),
                verdict: summary.verdict.as_str().to_owned(),
                reasons: summary.verdict_reasons.clone(),
            });
            summaries[usize::from(arm == 'B')] = Some(summary);
        }
        if let [Some(sa), Some(sb)] = summaries {
            pairs.push((sa, sb));
        }
    }
    let thresholds = Thresholds {
        cpu: args.cpu_threshold_pct / 100.0,
        latency: args.latency_threshold_pct / 100.0,
        throughput: args.throughput_threshold_pct / 100.0,
    };
    let judgement = judgement::judge(&pairs, &runs, thresholds, args.confidence, 1);
    let title = format!(
        "harness ab: {} (B) against {} (A), {} rounds of {}",
        b.given,
        a.given,
        args.rounds,
        args.profile.display()
    );
    let page = judgement::markdown(&judgement, &title);
    let code = judgement.exit_code;
    let record = AbRecord {
        profile: args.profile.display().to_string(),
        seed: args.seed,
        rounds: args.rounds,
        a: (&a).into(),
        b: (&b).into(),
        runs,
        wall_s: started.elapsed().as_secs_f64(),
        judgement,
    };
    let json = serde_json::to_string_pretty(&record).unwrap_or_default();
    write(out.join("ab.json"), &json)?;
    write(out.join("ab.md"), &page)?;
    print!("{page}");
    println!(
        "\n{} rounds in {:.0} s; written to {}",
        args.rounds,
        record.wall_s,
        out.display()
    );
    Ok(code)
}
