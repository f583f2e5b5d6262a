//! Invalid profiles: exit 2 and a message naming the file, the line and the field.

use crate::support::{profile, run};

fn assert_rejected(text: &str, line: usize, field: &str, words: &str) {
    let run = run(text, &[]);
    assert_eq!(run.code(), Some(2), "{}", run.printed());
    let stderr = run.stderr();
    let location = format!("profile.yaml:{line}: {field}:");
    assert!(
        stderr.contains(&location),
        "wanted {location:?} in {stderr:?}"
    );
    assert!(stderr.contains(words), "wanted {words:?} in {stderr:?}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    assert!(!run.out().join("summary.json").exists(), "nothing ran");
}

#[test]
fn a_typo_in_a_field_name_is_refused() {
    let text =
        profile("typo", 10, 0, 1, "slo:\n  p99_ms: 200\n").replace("rate_per_s", "rat_per_s");
    assert_rejected(&text, 6, "arrival.rat_per_s", "unknown field `rat_per_s`");
}

#[test]
fn a_value_of_the_wrong_type_is_refused() {
    let text = profile("types", 10, 0, 1, "slo:\n  p99_ms: fast\n");
    assert_rejected(&text, 14, "slo.p99_ms", "invalid type");
}

#[test]
fn an_out_of_range_value_is_refused() {
    let text = profile("range", 10, 0, 1, "slo:\n  p99_ms: 200\n").replace("count: 20", "count: 0");
    assert_rejected(&text, 8, "users.count", "must be between 1 and 1000000");
}

#[test]
fn more_http2_connections_than_the_client_keeps_are_refused() {
    let text = profile(
        "h2",
        10,
        0,
        1,
        "client:\n  http2_connections: 65\nslo:\n  p99_ms: 200\n",
    );
    assert_rejected(
        &text,
        14,
        "client.http2_connections",
        "must be between 0 and 64",
    );
}

#[test]
fn an_unknown_percentile_is_refused() {
    let text = profile(
        "pct",
        10,
        0,
        1,
        "slo:\n  p99_ms: 200\n  percentiles_ms:\n    median: 5\n",
    );
    assert_rejected(
        &text,
        16,
        "slo.percentiles_ms.median",
        "a percentile is named",
    );
}

#[test]
fn a_missing_required_field_is_refused() {
    let text = profile("missing", 10, 0, 1, "");
    assert_rejected(&text, 1, "(profile)", "missing field `slo`");
}

#[test]
fn a_missing_profile_file_is_refused() {
    let output = std::process::Command::new(crate::support::HARNESS)
        .args(["--profile", "/nonexistent/profile.yaml", "--quiet"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/profile.yaml"), "{stderr}");
}

const SLO: &str = "slo:\n  p99_ms: 200\n";

#[test]
fn a_fault_with_an_unknown_toxic_attribute_is_refused() {
    let text = profile(
        "fa",
        10,
        0,
        5,
        &format!("{SLO}faults:\n  - kind: toxic\n    target: external\n    at_s: 1\n    toxic: latency\n    attributes:\n      latncy: 100\n"),
    );
    assert_rejected(
        &text,
        21,
        "faults[0].attributes.latncy",
        "latency has no attribute `latncy`; it takes latency, jitter",
    );
}

#[test]
fn a_fault_on_an_unknown_target_is_refused() {
    let text = profile(
        "fb",
        10,
        0,
        5,
        &format!("{SLO}faults:\n  - kind: kill\n    target: database\n    at_s: 1\n"),
    );
    assert_rejected(&text, 17, "faults[0].target", "`database` is not a service");
}

#[test]
fn a_toxic_field_on_a_process_fault_is_refused() {
    let text = profile(
        "fc",
        10,
        0,
        5,
        &format!(
            "{SLO}faults:\n  - kind: pause\n    target: ledger\n    at_s: 1\n    toxicity: 0.5\n"
        ),
    );
    assert_rejected(
        &text,
        19,
        "faults[0].toxicity",
        "only a fault of kind toxic",
    );
}

#[test]
fn overlapping_faults_on_one_process_are_refused() {
    let text = profile(
        "fd",
        10,
        0,
        5,
        &format!("{SLO}faults:\n  - kind: pause\n    target: ledger\n    at_s: 1\n    duration_s: 2\n  - kind: kill\n    target: ledger\n    at_s: 2\n    duration_s: 1\n"),
    );
    assert_rejected(
        &text,
        22,
        "faults[1].at_s",
        "overlaps `pause-ledger-0` on the process ledger",
    );
}

#[test]
fn a_fault_kind_with_a_typo_is_refused() {
    let text = profile(
        "fe",
        10,
        0,
        5,
        &format!("{SLO}faults:\n  - kind: kil\n    target: ledger\n    at_s: 1\n"),
    );
    assert_rejected(&text, 16, "faults[0].kind", "unknown variant `kil`");
}

#[test]
fn a_disk_fault_takes_full_or_read_only_and_nothing_else_takes_disk() {
    let text = profile(
        "ff",
        10,
        0,
        5,
        &format!("{SLO}faults:\n  - kind: disk\n    target: ledger\n    at_s: 1\n    disk: ok\n"),
    );
    assert_rejected(
        &text,
        19,
        "faults[0].disk",
        "a disk fault is full or read_only",
    );
    let text = profile(
        "fg",
        10,
        0,
        5,
        &format!("{SLO}faults:\n  - kind: kill\n    target: ledger\n    at_s: 1\n    disk: full\n"),
    );
    assert_rejected(
        &text,
        19,
        "faults[0].disk",
        "only a fault of kind disk takes this field",
    );
    let text = profile(
        "fh",
        10,
        0,
        5,
        &format!(
            "{SLO}faults:\n  - kind: disk\n    target: ledger\n    at_s: 1\n    disk: fulll\n"
        ),
    );
    assert_rejected(&text, 19, "faults[0].disk", "unknown variant `fulll`");
}
