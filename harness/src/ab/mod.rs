//! `harness ab`: two builds of the project run interleaved on one profile, and a paired
//! judgement of every figure. Round i runs both arms with the same seed (the profile's plus
//! i), A then B in even rounds and B then A in odd ones, so that drift on the machine (a
//! neighbour's compile, a warming disk) meets both arms alike. Each arm's runs use that
//! build's own harness and services. Writes `ab.json` and `ab.md` and every round's run
//! folder; `--from` judges such a folder again without running anything. Exit 1 a
//! regression, 2 the rounds cannot tell (or a run could not be made), 0 none.

pub mod builds;
pub mod judgement;

use crate::cli::AbArgs;
use crate::compare::load::Run;
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

/// Runs the profile once with `build` into `folder`; its summary and latency histogram.
fn run_once(
    build: &Build,
    args: &AbArgs,
    profile: &Path,
    seed: Option<u64>,
    folder: &Path,
) -> Result<Run, String> {
    let mut command = Command::new(&build.binary);
    command
        .arg("--profile")
        .arg(profile)
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
    crate::compare::load::run(folder).map_err(|e| e.to_string())
}

fn write(path: PathBuf, text: &str) -> Result<(), AbError> {
    std::fs::write(&path, text).map_err(|source| AbError::Output { path, source })
}

/// What the rounds measured: the pairs, every run's verdict, and how long they took.
struct Rounds {
    a: ArmRecord,
    b: ArmRecord,
    profile: String,
    seed: Option<u64>,
    pairs: Vec<(Run, Run)>,
    runs: Vec<ArmRun>,
    wall_s: f64,
}

/// Runs the rounds, A B then B A, into `out`.
fn measure(args: &AbArgs, out: &Path) -> Result<Rounds, AbError> {
    if args.rounds < crate::regression::paired::MIN_PAIRS {
        return Err(AbError::Input(format!(
            "--rounds {}: the paired test needs at least {} rounds",
            args.rounds,
            crate::regression::paired::MIN_PAIRS
        )));
    }
    let (Some(given_a), Some(given_b), Some(profile)) = (&args.a, &args.b, &args.profile) else {
        return Err(AbError::Input(
            "--a, --b and --profile are needed, unless --from judges rounds already run".into(),
        ));
    };
    crate::profile::load(profile).map_err(|e| AbError::Input(format!("--profile: {e}")))?;
    let a = builds::resolve(given_a)?;
    let b = builds::resolve(given_b)?;
    std::fs::create_dir_all(out).map_err(|source| AbError::Output {
        path: out.to_owned(),
        source,
    })?;
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
        let mut both: [Option<Run>; 2] = [None, None];
        for (arm, build) in order {
            let folder = out.join(round_folder(round, arm));
            let _ = std::fs::remove_dir_all(&folder);
            let run = run_once(build, args, profile, seed, &folder)
                .map_err(|detail| AbError::Run { round, arm, detail })?;
            eprintln!(
                "harness ab: round {}/{} arm {arm}: {} ({:.0} s so far)",
                round + 1,
                args.rounds,
                run.summary.verdict.as_str(),
                started.elapsed().as_secs_f64()
            );
            runs.push(arm_run(round, arm, &folder, &run));
            both[usize::from(arm == 'B')] = Some(run);
        }
        if let [Some(ra), Some(rb)] = both {
            pairs.push((ra, rb));
        }
    }
    Ok(Rounds {
        a: (&a).into(),
        b: (&b).into(),
        profile: profile.display().to_string(),
        seed: args.seed,
        pairs,
        runs,
        wall_s: started.elapsed().as_secs_f64(),
    })
}

fn round_folder(round: usize, arm: char) -> String {
    format!("round-{round:02}-{}", arm.to_ascii_lowercase())
}

fn arm_run(round: usize, arm: char, folder: &Path, run: &Run) -> ArmRun {
    ArmRun {
        round,
        arm,
        folder: folder.display().to_string(),
        verdict: run.summary.verdict.as_str().to_owned(),
        reasons: run.summary.verdict_reasons.clone(),
        failed_invariants: run
            .summary
            .invariants
            .iter()
            .filter(|i| i.holds == Some(false))
            .map(|i| i.name.as_str().to_owned())
            .collect(),
    }
}

/// Reads the rounds an earlier `harness ab` left in `dir` (its `ab.json` and run folders).
fn reread(dir: &Path) -> Result<Rounds, AbError> {
    let input = |detail: String| AbError::Input(format!("--from {}: {detail}", dir.display()));
    let text = std::fs::read_to_string(dir.join(AB_FILE)).map_err(|e| input(e.to_string()))?;
    let earlier: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| input(format!("{AB_FILE}: {e}")))?;
    let arm_of = |key: &str| ArmRecord {
        given: earlier[key]["given"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        binary: earlier[key]["binary"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        commit: earlier[key]["commit"].as_str().map(str::to_owned),
    };
    let rounds = earlier["rounds"]
        .as_u64()
        .ok_or_else(|| input(format!("{AB_FILE} has no rounds")))? as usize;
    let mut pairs = Vec::new();
    let mut runs = Vec::new();
    for round in 0..rounds {
        let mut both = Vec::new();
        for arm in ['A', 'B'] {
            let folder = dir.join(round_folder(round, arm));
            let run = crate::compare::load::run(&folder).map_err(|e| input(e.to_string()))?;
            runs.push(arm_run(round, arm, &folder, &run));
            both.push(run);
        }
        if let (Some(rb), Some(ra)) = (both.pop(), both.pop()) {
            pairs.push((ra, rb));
        }
    }
    Ok(Rounds {
        a: arm_of("a"),
        b: arm_of("b"),
        profile: earlier["profile"].as_str().unwrap_or_default().to_owned(),
        seed: earlier["seed"].as_u64(),
        pairs,
        runs,
        wall_s: earlier["wall_s"].as_f64().unwrap_or(0.0),
    })
}

/// Where `harness ab` writes its JSON.
pub const AB_FILE: &str = "ab.json";

pub fn run(args: &AbArgs) -> Result<i32, AbError> {
    let out = args
        .out
        .clone()
        .or_else(|| args.from.clone())
        .unwrap_or_else(|| PathBuf::from("ab"));
    let rounds = match &args.from {
        Some(dir) => reread(dir)?,
        None => measure(args, &out)?,
    };
    let thresholds = Thresholds {
        cpu: args.cpu_threshold_pct / 100.0,
        latency: args.latency_threshold_pct / 100.0,
        throughput: args.throughput_threshold_pct / 100.0,
    };
    let judgement = judgement::judge(&rounds.pairs, &rounds.runs, thresholds, args.confidence, 1);
    let title = format!(
        "harness ab: {} (B) against {} (A), {} rounds of {}",
        rounds.b.given,
        rounds.a.given,
        rounds.pairs.len(),
        rounds.profile
    );
    let page = judgement::markdown(&judgement, &title);
    let code = judgement.exit_code;
    let record = AbRecord {
        profile: rounds.profile,
        seed: rounds.seed,
        rounds: rounds.pairs.len(),
        a: rounds.a,
        b: rounds.b,
        runs: rounds.runs,
        wall_s: rounds.wall_s,
        judgement,
    };
    std::fs::create_dir_all(&out).map_err(|source| AbError::Output {
        path: out.clone(),
        source,
    })?;
    let json = serde_json::to_string_pretty(&record).unwrap_or_default();
    write(out.join(AB_FILE), &json)?;
    write(out.join("ab.md"), &page)?;
    print!("{page}");
    println!(
        "\n{} rounds in {:.0} s; written to {}",
        record.rounds,
        record.wall_s,
        out.display()
    );
    Ok(code)
}
