//! `harness replay DIR`: a failed run run again from its folder alone shows the same
//! anomaly classes; a folder that lacks what a replay needs is refused, naming the file.
//! `harness shrink DIR`: a failed run cut down to a far smaller one that fails the same
//! way; a passing run is refused. The budgets and `--tries 1` keep these runs short (the
//! naive search ends in about 20 s here; the other is cut by its budget, and its first
//! kept cuts come within about 20 s).

use crate::support::{exclusive, HARNESS};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn summary(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("summary.json")).expect("summary.json");
    serde_json::from_str(&text).expect("summary.json is JSON")
}

fn classes(summary: &Value) -> Vec<String> {
    summary["anomalies"]
        .as_object()
        .expect("anomalies")
        .iter()
        .filter(|(_, n)| n.as_u64().unwrap_or(0) > 0)
        .map(|(class, _)| class.clone())
        .collect()
}

fn harness(args: &[&str], dirs: &[&Path]) -> std::process::Output {
    Command::new(HARNESS)
        .args(args)
        .args(dirs)
        .output()
        .expect("run harness")
}

fn library(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../chaos-profiles/{name}.yaml"))
}

/// The `shrunk/profile.yaml` of a shrink, parsed as a profile like any other.
fn shrunk_profile(out: &Path) -> harness::profile::Profile {
    let path = out.join("shrunk/profile.yaml");
    harness::profile::load(&path)
        .unwrap_or_else(|e| panic!("{e}"))
        .0
}

#[test]
fn a_failed_run_replays_to_its_classes_and_shrinks_to_one_fault_and_fewer_requests() {
    let _serial = exclusive();
    let dir = tempfile::tempdir().expect("tempdir");
    let original = dir.path().join("original");
    let profile = library("seed-naive");
    let run = Command::new(HARNESS)
        .arg("--profile")
        .arg(&profile)
        .args(["--duration", "6", "--quiet", "--out"])
        .arg(&original)
        .output()
        .expect("run harness");
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    let before = classes(&summary(&original));
    assert!(!before.is_empty(), "the naive design showed no anomaly");

    // The original profile file is not needed: the folder holds the profile as run.
    let replay = dir.path().join("replay");
    let output = Command::new(HARNESS)
        .arg("replay")
        .arg(&original)
        .arg("--out")
        .arg(&replay)
        .arg("--quiet")
        .output()
        .expect("run harness replay");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}{output:?}");
    assert!(stdout.contains("the same anomaly classes"), "{stdout}");
    let again = summary(&replay);
    assert_eq!(classes(&again), before);
    assert_eq!(again["seed"], summary(&original)["seed"]);
    assert_eq!(
        again["requests"]["scheduled"],
        summary(&original)["requests"]["scheduled"],
        "the same schedule"
    );
    let replayed: Value = serde_json::from_str(
        &std::fs::read_to_string(replay.join("replayed.json")).expect("replayed.json"),
    )
    .expect("JSON");
    assert_eq!(replayed["classes_before"], replayed["classes_after"]);

    // Shrunk: the naive design's money created by a credit whose answer was lost needs
    // one fault (the lost answers) and a short load of few transfers.
    let out = dir.path().join("shrink");
    let shrink = harness(
        &[
            "shrink", "--tries", "1", "--budget", "120s", "--quiet", "--out",
        ],
        &[&out, &original],
    );
    let printed = String::from_utf8_lossy(&shrink.stdout);
    assert_eq!(shrink.status.code(), Some(0), "{printed}{shrink:?}");
    let class = "reversal_after_credit";
    assert!(printed.contains(&format!("for `{class}`")), "{printed}");
    let p = shrunk_profile(&out);
    assert_eq!(harness::shrink::cuts::faults(&p).len(), 1, "{p:?}");
    assert!(p.duration_s + p.warmup_s <= 5, "{p:?}");
    let smallest = summary(&out.join("shrunk/run"));
    assert!(classes(&smallest).contains(&class.to_owned()), "{smallest}");
    let (before, after) = (
        summary(&original)["requests"]["scheduled"]
            .as_u64()
            .unwrap_or(0),
        smallest["requests"]["scheduled"]
            .as_u64()
            .unwrap_or(u64::MAX),
    );
    assert!(
        after * 4 <= before,
        "{before} requests shrunk to {after} only"
    );
    let md = std::fs::read_to_string(out.join("shrink.md")).expect("shrink.md");
    assert!(
        md.contains("| original |") && md.contains("| smallest |"),
        "{md}"
    );
    assert!(
        md.contains("kept: still fails") && md.contains("undone: passes"),
        "{md}"
    );
    assert!(md.contains("`t-"), "no transfer id listed: {md}");
    // The shrunk profile is a profile like any other: it runs and fails the same way.
    let rerun_dir = dir.path().join("rerun");
    let rerun = harness(
        &["--quiet", "--profile"],
        &[
            &out.join("shrunk/profile.yaml"),
            Path::new("--out"),
            &rerun_dir,
        ],
    );
    assert_eq!(rerun.status.code(), Some(1), "{rerun:?}");
    assert!(classes(&summary(&rerun_dir)).contains(&class.to_owned()));

    // A folder without system.json cannot say what it ran against.
    std::fs::remove_file(original.join("system.json")).expect("remove");
    let refused = Command::new(HARNESS)
        .arg("replay")
        .arg(&original)
        .arg("--out")
        .arg(dir.path().join("refused"))
        .output()
        .expect("run harness replay");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("system.json"), "{stderr}");
    assert!(!dir.path().join("refused").exists(), "nothing ran");
}

#[test]
fn a_missing_tombstone_shrinks_to_a_run_that_still_shows_a_late_original() {
    let _serial = exclusive();
    let dir = tempfile::tempdir().expect("tempdir");
    let original = dir.path().join("original");
    let run = harness(
        &[
            "--design",
            "no-tombstone",
            "--duration",
            "8",
            "--quiet",
            "--profile",
        ],
        &[
            &library("slow-reversal-race"),
            Path::new("--out"),
            &original,
        ],
    );
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    let class = "late_original";
    assert!(classes(&summary(&original)).contains(&class.to_owned()));
    let out = dir.path().join("shrink");
    let shrink = harness(
        &[
            "shrink", "--class", class, "--tries", "1", "--budget", "45s", "--quiet", "--out",
        ],
        &[&out, &original],
    );
    let printed = String::from_utf8_lossy(&shrink.stdout);
    assert_eq!(shrink.status.code(), Some(0), "{printed}{shrink:?}");
    let smallest = summary(&out.join("shrunk/run"));
    assert!(classes(&smallest).contains(&class.to_owned()), "{smallest}");
    let p = shrunk_profile(&out);
    let (profile, _) = harness::profile::load(&original.join("profile.yaml")).expect("profile");
    assert!(
        harness::shrink::cuts::faults(&p).len() < harness::shrink::cuts::faults(&profile).len()
            || p.duration_s < profile.duration_s,
        "nothing cut: {p:?}"
    );
}

#[test]
fn a_passing_run_has_nothing_to_shrink() {
    let _serial = exclusive();
    let dir = tempfile::tempdir().expect("tempdir");
    let text = crate::support::profile("passing", 400, 1, 3, crate::support::LENIENT_SLO);
    let run = crate::support::run(&text, &[]);
    assert_eq!(run.code(), Some(0), "{}", run.printed());
    let out = dir.path().join("shrink");
    let shrink = harness(&["shrink", "--out"], &[&out, &run.out()]);
    let stderr = String::from_utf8_lossy(&shrink.stderr);
    assert_eq!(shrink.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("nothing to shrink"), "{stderr}");
    assert!(!out.exists(), "a refused shrink wrote {}", out.display());
}
