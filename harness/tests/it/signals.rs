//! The harness never leaves a service behind: not on Ctrl-C, not when it is SIGKILLed.

use crate::support::{exclusive, profile, service_pids, spawn, wait_gone};
use std::time::Duration;

fn long_profile(name: &str) -> String {
    profile(name, 50, 0, 60, "slo:\n  p99_ms: 200\n")
}

#[test]
fn ctrl_c_stops_every_service() {
    let _serial = exclusive();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut harness = spawn(dir.path(), &long_profile("ctrlc"));
    let pids = service_pids(&dir.path().join("out"));
    assert_eq!(pids.len(), 3);
    let harness_pid = nix::unistd::Pid::from_raw(i32::try_from(harness.id()).expect("pid"));
    nix::sys::signal::kill(harness_pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let status = harness.wait().expect("harness exits");
    assert_eq!(status.code(), Some(2), "interrupted runs exit 2");
    wait_gone(&pids, Duration::from_secs(10));
}

#[test]
fn a_killed_harness_takes_its_services_with_it() {
    let _serial = exclusive();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut harness = spawn(dir.path(), &long_profile("sigkill"));
    let pids = service_pids(&dir.path().join("out"));
    harness.kill().expect("SIGKILL");
    let _ = harness.wait();
    wait_gone(&pids, Duration::from_secs(10));
}
