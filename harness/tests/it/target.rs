//! `--target`: the harness drives a system it did not start, through the HTTP contract.

use crate::support::{exclusive, profile, run, HARNESS};
use service::launch::ServiceProcess;
use std::process::Command;
use std::time::Duration;

fn serve(dir: &std::path::Path, role: &str, extra: &[String]) -> ServiceProcess {
    let mut command = Command::new(HARNESS);
    command
        .args(["serve", role, "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.join(format!("{role}.db")))
        .args(extra);
    ServiceProcess::spawn(
        command,
        role,
        &dir.join(format!("{role}.log")),
        Duration::from_secs(20),
    )
    .expect("service starts")
}

#[test]
fn a_running_system_is_driven_and_reconciled_through_the_contract() {
    let _serial = exclusive();
    let dir = tempfile::tempdir().expect("tempdir");
    let external = serve(dir.path(), "external", &[]);
    let ledger = serve(dir.path(), "ledger", &[]);
    let coordinator = serve(
        dir.path(),
        "coordinator",
        &[
            format!("--external-url={}", external.url),
            format!("--ledger-url={}", ledger.url),
        ],
    );
    let text = profile("target", 250, 0, 4, "slo:\n  p99_ms: 200\n");

    // With both institutions' URLs the harness seeds them and checks the money.
    let full = run(
        &text,
        &[
            "--target",
            &coordinator.url,
            "--external-url",
            &external.url,
            "--ledger-url",
            &ledger.url,
        ],
    );
    assert_eq!(full.code(), Some(0), "stderr: {}", full.stderr());
    let summary = full.summary();
    assert_eq!(summary["verdict"], "pass");
    assert_eq!(summary["target"], coordinator.url.as_str());
    assert_eq!(summary["money"]["lost_cents"], 0);

    // Without them the money checks are unknown, not passed.
    let blind = run(
        &text.replace("seed: 11", "seed: 12"),
        &["--target", &coordinator.url],
    );
    assert_eq!(blind.code(), Some(1), "stderr: {}", blind.stderr());
    let summary = blind.summary();
    assert_eq!(summary["verdict"], "unknown");
    assert!(summary["money"]["initial_total_cents"].is_null());
    let conservation = summary["invariants"]
        .as_array()
        .expect("invariants")
        .iter()
        .find(|i| i["name"] == "conservation")
        .expect("conservation")
        .clone();
    assert!(conservation["holds"].is_null());
}
