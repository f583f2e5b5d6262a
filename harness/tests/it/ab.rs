//! `harness ab` on two builds: the test's own harness as A, and as B the same binary behind a
//! script that gives every profile it runs a coordinator burning 250 µs of CPU per transfer
//! (the `cpu_burn_us` knob baked in, as a slower release would be). Six short rounds tell a
//! regression that size; A/A and the power at 10 % are measured by `harness ab` itself (see
//! docs/regression-ci.md), not here, where the machine is also running other tests.

use crate::support::{exclusive, finished, HARNESS};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn regression_profile() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../chaos-profiles/regression.yaml")
}

/// A build folder whose `harness` runs the real one with the coordinator's `knobs` (a YAML
/// flow mapping) appended to the profile it is given.
fn slower_build(dir: &Path, knobs: &str) -> PathBuf {
    let build = dir.join("slower");
    std::fs::create_dir_all(&build).expect("a build folder");
    let script = format!(
        r#"#!/bin/sh
profile=""
prev=""
for a in "$@"; do
  [ "$prev" = "--profile" ] && profile="$a"
  prev="$a"
done
tmp="{dir}/profile-$$.yaml"
cat "$profile" > "$tmp"
printf 'service:\n  coordinator: {knobs}\n' >> "$tmp"
for a in "$@"; do
  if [ "$a" = "$profile" ]; then set -- "$@" "$tmp"; else set -- "$@" "$a"; fi
  shift
done
exec "{harness}" "$@"
"#,
        dir = dir.display(),
        harness = HARNESS,
    );
    let path = build.join("harness");
    std::fs::write(&path, script).expect("the script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    build
}

fn ab(args: &[&str]) -> (Option<i32>, String) {
    finished(Command::new(HARNESS).arg("ab").args(args))
}

/// B's coordinator burns 250 µs of CPU and waits 10 ms (asleep, no CPU) on every transfer:
/// its CPU per transfer and its p99 regress, the ledger's CPU does not. p99 is judged on
/// each arm's latencies pooled over the rounds (runs of 2 s are too short for their own).
#[test]
fn a_build_whose_coordinator_burns_cpu_and_waits_is_flagged_the_coordinator_and_p99_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Path::new(HARNESS).parent().expect("the build folder");
    let b = slower_build(dir.path(), "{cpu_burn_us: 250, service_time_ms: 10}");
    let out = dir.path().join("ab");
    let (code, printed) = ab(&[
        "--a",
        &a.display().to_string(),
        "--b",
        &b.display().to_string(),
        "--profile",
        &regression_profile().display().to_string(),
        "--rounds",
        "6",
        "--duration",
        "2",
        "--out",
        &out.display().to_string(),
    ]);
    assert_eq!(code, Some(1), "{printed}");
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("ab.json")).expect("ab.json"))
            .expect("JSON");
    assert_eq!(json["decision"], "regression", "{json}");
    assert_eq!(json["runs"].as_array().map(Vec::len), Some(12), "{json}");
    // A B, then B A.
    let arms: Vec<&str> = json["runs"]
        .as_array()
        .into_iter()
        .flatten()
        .take(4)
        .filter_map(|r| r["arm"].as_str())
        .collect();
    assert_eq!(arms, ["A", "B", "B", "A"], "{json}");
    let figure = |name: &str| {
        json["figures"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["figure"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let coordinator = figure("cpu_ms_per_transfer.coordinator");
    assert_eq!(coordinator["decision"], "regression", "{json}");
    assert!(
        coordinator["interval"][0]
            .as_f64()
            .is_some_and(|low| low > 1.0),
        "{coordinator}"
    );
    assert_eq!(
        figure("cpu_ms_per_transfer.ledger")["decision"],
        "no_regression"
    );
    let p99 = figure("p99_ms");
    assert_eq!(
        (&p99["method"], &p99["decision"]),
        (&Value::from("pooled_quantile"), &Value::from("regression")),
        "{p99}"
    );
    let page = std::fs::read_to_string(out.join("ab.md")).expect("ab.md");
    let regressed = page.find("### Regressed").expect("a regressed section");
    let table = page.find("| figure |").expect("a table");
    for named in ["cpu_ms_per_transfer.coordinator", "p99_ms"] {
        assert!(page[regressed..table].contains(named), "{page}");
    }
}

#[test]
fn too_few_rounds_or_an_unknown_build_exit_2_before_any_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Path::new(HARNESS).parent().expect("the build folder");
    let profile = regression_profile().display().to_string();
    let out = dir.path().join("ab");
    let (code, printed) = ab(&[
        "--a",
        &a.display().to_string(),
        "--b",
        &a.display().to_string(),
        "--profile",
        &profile,
        "--rounds",
        "3",
        "--out",
        &out.display().to_string(),
    ]);
    assert_eq!(code, Some(2), "{printed}");
    assert!(printed.contains("at least 6 rounds"), "{printed}");
    let (code, printed) = ab(&[
        "--a",
        &a.display().to_string(),
        "--b",
        "no-such-revision-or-folder",
        "--profile",
        &profile,
        "--out",
        &out.display().to_string(),
    ]);
    assert_eq!(code, Some(2), "{printed}");
    assert!(printed.contains("neither a harness binary"), "{printed}");
    assert!(!out.exists(), "nothing was run");
}

/// `.ci/regression-check` as CI runs it when no parent build fits in the time: against the
/// committed baseline. A build whose coordinator costs 25 % more a transfer fails it, in
/// both runs. (That an unchanged tree passes is what every CI run shows: `.ci/run` ends with
/// this check on the build under test, on a machine no longer running tests.)
#[test]
fn the_ci_check_against_the_baseline_fails_a_coordinator_a_quarter_costlier() {
    // One run against a baseline, unpaired: beside another test's system its CPU figures
    // would measure that test as well (it failed once so at two tests at a time).
    let _whole_machine = exclusive();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let baseline = root.join("results/baselines/regression/summary.json");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(&baseline).expect("the baseline"))
            .expect("JSON");
    let coordinator_ms = summary["cpu"]["ms_per_operation"]["coordinator"]
        .as_f64()
        .expect("the coordinator's CPU per transfer");
    let burn_us = (coordinator_ms * 1000.0 * 0.25).round() as u32;
    let dir = tempfile::tempdir().expect("tempdir");
    let slower = slower_build(dir.path(), &format!("{{cpu_burn_us: {burn_us}}}"));
    let (code, printed) = finished(
        Command::new("bash")
            .arg(root.join(".ci/regression-check"))
            .arg(&slower)
            .arg("--baseline"),
    );
    assert_eq!(code, Some(1), "{printed}");
    assert!(
        printed.contains("against the committed baseline"),
        "{printed}"
    );
    assert!(
        printed.contains("coordinator's CPU per operation grew beyond the machine's drift"),
        "{printed}"
    );
    assert!(printed.contains("in two runs"), "{printed}");
}
