//! `harness replay DIR`: a failed run run again from its folder alone shows the same
//! anomaly classes; a folder that lacks what a replay needs is refused, naming the file.

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

#[test]
fn a_replay_of_a_failed_run_shows_its_classes_again() {
    let _serial = exclusive();
    let dir = tempfile::tempdir().expect("tempdir");
    let original = dir.path().join("original");
    let profile = Path::new(env!("CARGO_MANIFEST_DIR")).join("../chaos-profiles/seed-naive.yaml");
    let run = Command::new(HARNESS)
        .arg("--profile")
        .arg(&profile)
        .args(["--duration", "3", "--quiet", "--out"])
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
