//! `harness mutants`: runs a set of profiles against the `saga` design and every known-bad
//! design (the naive one and the single-bug mutants), and prints the matrix: for each design
//! and profile, the violation classes the run found. A check that cannot fail proves
//! nothing: every mutant must be caught by at least one profile, and `saga` must pass
//! every one. Exit 1 when a mutant survives every profile or `saga` fails anywhere.

use crate::cli::MutantsArgs;
use crate::reconcile::ViolationClass;
use crate::run::{self, RunOptions};
use crate::summary::Summary;
use crate::verdict::Verdict;
use service::coordinator::Design;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The classes that show each known-bad design's bug: a run that finds one of them has
/// caught it for the reason it exists.
pub fn telltale(design: Design) -> &'static [ViolationClass] {
    use ViolationClass::*;
    match design {
        Design::Saga => &[],
        Design::Naive => &[
            ReversalAfterCredit,
            LostDebit,
            DoubleCharge,
            MovedAfterFinalRead,
        ],
        Design::VolatileQueue => &[LostDebit, LostDuringRun, MovedAfterFinalRead],
        Design::NoTombstone => &[LateOriginal],
        Design::NoIdempotency => &[DoubleCharge, SplitKey],
        Design::TimeoutIsFailure => &[ReversalAfterCredit],
        Design::AckBeforeDurable => &[LostTransfer, ReversalAfterCredit, OrphanEntry, LostDebit],
        Design::LateShed => &[ShedWithEffect],
    }
}

/// The library's profiles, but the long one and the no-fault load ones.
fn library() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("chaos-profiles")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| {
            let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            !matches!(
                stem,
                "everything" | "steady" | "throughput" | "overload" | "regression"
            )
        })
        .collect();
    found.sort();
    found
}

/// The measured seconds a profile needs: its last fault's start plus 4 s (8 s at least), and
/// enough requests for its p99 to be known, with a fifth to spare; a profile whose arrival
/// has stages is not shortened (its stages fix its length).
fn shortened(profile: &Path) -> Option<u32> {
    let options = RunOptions {
        profile: profile.to_owned(),
        ..RunOptions::default()
    };
    let (written, plan) = run::options::plan(&options).ok()?;
    if written.arrival.stages.is_some() {
        return None;
    }
    let last_start = plan
        .faults
        .iter()
        .map(|f| f.start)
        .max()
        .unwrap_or_default();
    let for_faults = (last_start + Duration::from_secs(4))
        .saturating_sub(plan.warmup)
        .as_secs()
        .max(8);
    // Scheduled requests alone (retries not counted) give the p99 its samples.
    let rate = u64::from(written.arrival.rate_per_s.unwrap_or(1).max(1));
    let for_p99 = (crate::stats::min_samples_for(0.99) * 6 / 5).div_ceil(rate);
    let needed = for_faults.max(for_p99);
    let needed = u32::try_from(needed).unwrap_or(u32::MAX);
    (needed < written.duration_s).then_some(needed)
}

/// One cell of the matrix.
struct Cell {
    verdict: Verdict,
    classes: BTreeMap<ViolationClass, u64>,
    reasons: Vec<String>,
}

fn read_summary(dir: &Path) -> Option<Summary> {
    Summary::read_file(&dir.join(crate::summary::SUMMARY_FILE)).ok()
}

pub async fn run(args: MutantsArgs) -> i32 {
    let started = Instant::now();
    let profiles = if args.profiles.is_empty() {
        library()
    } else {
        args.profiles.clone()
    };
    let designs = if args.designs.is_empty() {
        Design::ALL.to_vec()
    } else {
        args.designs.clone()
    };
    let out = args.out.clone().unwrap_or_else(|| {
        let when = crate::provenance::compact(std::time::SystemTime::now());
        PathBuf::from("results").join(format!("{when}-mutants"))
    });
    let mut cells: BTreeMap<(Design, String), Cell> = BTreeMap::new();
    for profile in &profiles {
        let name = profile
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("profile")
            .to_owned();
        let duration_s = shortened(profile);
        for &design in &designs {
            let dir = out.join(design.as_str()).join(&name);
            let options = RunOptions {
                profile: profile.clone(),
                out: Some(dir.clone()),
                duration_s,
                design: Some(design),
                quiet: true,
                ..RunOptions::default()
            };
            println!("mutants: {} on {name}...", design.as_str());
            let cell = match run::run(options).await {
                Ok(_) => match read_summary(&dir) {
                    Some(summary) => Cell {
                        verdict: summary.verdict,
                        classes: summary.anomalies,
                        reasons: summary.verdict_reasons,
                    },
                    None => Cell {
                        verdict: Verdict::Unusable,
                        classes: BTreeMap::new(),
                        reasons: vec!["no summary.json".into()],
                    },
                },
                Err(e) => Cell {
                    verdict: Verdict::Unusable,
                    classes: BTreeMap::new(),
                    reasons: vec![e.to_string()],
                },
            };
            cells.insert((design, name.clone()), cell);
        }
    }
    let names: Vec<String> = profiles
        .iter()
        .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(str::to_owned))
        .collect();
    print_matrix(&designs, &names, &cells);
    let code = judge(&designs, &names, &cells);
    println!(
        "mutants: {} runs in {:.0} s; folders under {}",
        cells.len(),
        started.elapsed().as_secs_f64(),
        out.display()
    );
    code
}

/// A cell as a few words: `pass`, or the classes found (the telltale ones marked `*`).
fn shown(design: Design, cell: &Cell) -> String {
    if cell.verdict == Verdict::Pass {
        return "pass".into();
    }
    if cell.classes.is_empty() {
        return format!("{} ({})", cell.verdict.as_str(), cell.reasons.join("; "));
    }
    cell.classes
        .iter()
        .map(|(class, n)| {
            let mark = if telltale(design).contains(class) {
                "*"
            } else {
                ""
            };
            format!("{mark}{class} {n}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_matrix(designs: &[Design], names: &[String], cells: &BTreeMap<(Design, String), Cell>) {
    println!("\n{:<20} {:<20} result", "design", "profile");
    for &design in designs {
        for name in names {
            if let Some(cell) = cells.get(&(design, name.clone())) {
                println!(
                    "{:<20} {:<20} {}",
                    design.as_str(),
                    name,
                    shown(design, cell)
                );
            }
        }
    }
    println!("(* a class that shows the design's own bug)\n");
}

/// 1 when `saga` fails a profile or a known-bad design passes every one.
fn judge(designs: &[Design], names: &[String], cells: &BTreeMap<(Design, String), Cell>) -> i32 {
    let mut code = 0;
    for &design in designs {
        let row: Vec<(&String, &Cell)> = names
            .iter()
            .filter_map(|n| cells.get(&(design, n.clone())).map(|c| (n, c)))
            .collect();
        if design.is_correct() {
            let failed: Vec<&str> = row
                .iter()
                .filter(|(_, c)| c.verdict != Verdict::Pass)
                .map(|(n, _)| n.as_str())
                .collect();
            if failed.is_empty() {
                println!("saga: clean on every profile");
            } else {
                println!("saga: NOT clean on {}", failed.join(", "));
                code = 1;
            }
            continue;
        }
        let caught: Vec<String> = row
            .iter()
            .filter(|(_, c)| c.classes.keys().any(|k| telltale(design).contains(k)))
            .map(|(n, _)| n.to_string())
            .collect();
        if caught.is_empty() {
            println!("{}: SURVIVED every profile", design.as_str());
            code = 1;
        } else {
            println!("{}: caught by {}", design.as_str(), caught.join(", "));
        }
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn library_profile(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../chaos-profiles")
            .join(format!("{name}.yaml"))
    }

    #[test]
    fn a_slow_profile_keeps_enough_requests_for_its_p99() {
        // seed-naive sends 100 requests/s for 10 s: 8 s would leave its p99 unknown.
        assert_eq!(shortened(&library_profile("seed-naive")), None);
    }

    #[test]
    fn a_long_profile_is_cut_to_its_last_fault_and_a_few_seconds() {
        let flapping = library_profile("flapping");
        let cut = shortened(&flapping).unwrap_or(u32::MAX);
        assert!((8..60).contains(&cut), "flapping shortened to {cut} s");
    }
}
