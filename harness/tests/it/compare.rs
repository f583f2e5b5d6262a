//! `harness compare` on live runs: a run whose external institution got slower is a
//! regression of one that did not; a run compared with itself is not; a short run cannot
//! be judged.

use crate::support::{exclusive, finished, profile, run, HARNESS, LENIENT_SLO};
use std::path::Path;
use std::process::Command;

fn compare(baseline: &Path, current: &Path, args: &[&str]) -> (Option<i32>, String) {
    finished(
        Command::new(HARNESS)
            .arg("compare")
            .arg(baseline)
            .arg(current)
            .args(args),
    )
}

#[test]
fn a_slower_institution_is_a_regression_and_a_run_is_not_one_of_itself() {
    let _one_at_a_time = exclusive();
    // 1,200 measured requests: enough for a p99.
    // The slow run's every answer waits 250 ms at the external side: its p50 stays past
    // 1.5 times the baseline's even when the machine is busy enough to slow the baseline
    // tenfold.
    let service = "service:\n  coordinator: {design: saga, deadline_ms: 1000}\n";
    let baseline = run(
        &profile("cmp", 200, 1, 6, &format!("{service}{LENIENT_SLO}")),
        &[],
    );
    assert_eq!(baseline.code(), Some(0), "{}", baseline.printed());
    let slow = "service:\n  coordinator: {design: saga, deadline_ms: 1000}\n  external: {service_time_ms: 250}\n";
    let current = run(
        &profile("cmp", 200, 1, 6, &format!("{slow}{LENIENT_SLO}")),
        &[],
    );
    assert_eq!(current.code(), Some(0), "{}", current.printed());

    let (code, printed) = compare(&baseline.out(), &current.out(), &["--format", "markdown"]);
    assert_eq!(code, Some(1), "{printed}");
    assert!(printed.contains("| latency p50 |"), "{printed}");
    assert!(printed.contains("**REGRESSION**"), "{printed}");

    let (code, printed) = compare(&baseline.out(), &baseline.out(), &[]);
    assert_eq!(code, Some(0), "{printed}");
    let summary = baseline.out().join("summary.json");
    let (code, printed) = compare(&summary, &baseline.out(), &[]);
    assert_eq!(code, Some(0), "a summary file and its folder: {printed}");
}

#[test]
fn runs_too_short_for_a_p99_cannot_be_judged() {
    let _one_at_a_time = exclusive();
    let short = run(&profile("cmp-short", 50, 0, 2, LENIENT_SLO), &[]);
    // Its own verdict is unknown for the same reason (exit 1); the summary is there.
    assert_eq!(short.summary()["verdict"], "unknown", "{}", short.printed());
    let (code, printed) = compare(&short.out(), &short.out(), &[]);
    assert_eq!(code, Some(2), "{printed}");
    assert!(printed.contains("too few samples for p99"), "{printed}");
}

#[test]
fn an_unreadable_side_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("summary.json");
    std::fs::write(&bad, "{\"profile\": 1}").expect("write");
    let (code, printed) = compare(&bad, &bad, &[]);
    assert_eq!(code, Some(2), "{printed}");
    assert!(printed.contains("summary.json: not a summary"), "{printed}");
}
