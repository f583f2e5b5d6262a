//! `harness baseline`: a passing run is kept as its profile's baseline, with the machine that
//! recorded it, and `harness compare` takes the folder; a failing run is not kept.

use crate::support::{exclusive, profile, write_profile, HARNESS, LENIENT_SLO};
use std::process::Command;

fn baseline(text: &str) -> (tempfile::TempDir, Option<i32>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_profile(dir.path(), text);
    let output = Command::new(HARNESS)
        .args(["baseline", "--quiet", "--profile"])
        .arg(&path)
        .arg("--dir")
        .arg(dir.path().join("baselines"))
        // The run's folder goes under the system's temporary folder and is kept (its summary
        // names it): here, inside this test's own, which is removed with it.
        .env("TMPDIR", dir.path())
        .output()
        .expect("run harness baseline");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (dir, output.status.code(), printed)
}

#[test]
fn a_passing_run_is_kept_with_its_machine_and_compares_with_itself() {
    let _one_at_a_time = exclusive();
    // 1,200 requests: a pass needs a known p99.
    let (dir, code, printed) = baseline(&profile("kept", 200, 0, 6, LENIENT_SLO));
    assert_eq!(code, Some(0), "{printed}");
    let kept = dir.path().join("baselines").join("kept");
    for file in ["summary.json", "latency.hlog", "machine.json"] {
        assert!(kept.join(file).is_file(), "{file} missing: {printed}");
    }
    let machine: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(kept.join("machine.json")).expect("machine.json"),
    )
    .expect("machine.json is JSON");
    assert!(machine["cpus"].as_u64().unwrap_or(0) >= 1, "{machine}");
    let output = Command::new(HARNESS)
        .arg("compare")
        .arg(&kept)
        .arg(&kept)
        .output()
        .expect("run harness compare");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn a_failing_run_is_not_kept() {
    let _one_at_a_time = exclusive();
    let text = profile(
        "not-kept",
        50,
        0,
        1,
        "slo:\n  p99_ms: 1\n  percentiles_ms:\n    p50: 1\n",
    );
    let (dir, code, printed) = baseline(&text);
    assert_eq!(code, Some(1), "{printed}");
    assert!(printed.contains("a baseline must"), "{printed}");
    assert!(!dir.path().join("baselines").join("not-kept").exists());
}
