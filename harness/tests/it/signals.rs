//! The harness never leaves a service behind: not on Ctrl-C, not when it is SIGKILLed; and
//! a run asked to end (SIGTERM, Ctrl-C) heals every fault it applied, on the user's
//! Toxiproxy too, and writes its partial folder, marked interrupted (exit 3).

use crate::support::{
    exclusive, profile, service_pids, spawn, toxiproxy_server, wait_gone, write_profile, HARNESS,
};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
    assert_eq!(status.code(), Some(3), "interrupted runs exit 3");
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

#[test]
fn sigterm_mid_run_heals_every_fault_and_writes_the_partial_run() {
    let _serial = exclusive();
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut server, api) = toxiproxy_server();
    let faults = "faults:
  - {name: slow, kind: toxic, target: external, at_s: 1, duration_s: 50, toxic: latency, attributes: {latency: 100}}
  - {name: frozen, kind: pause, target: ledger, at_s: 1.5, duration_s: 40}
  - {name: later, kind: kill, target: coordinator, at_s: 45, duration_s: 1}
";
    let text = profile(
        "sigterm",
        50,
        0,
        60,
        &format!("slo:\n  p99_ms: 10000\n{faults}"),
    );
    let path = write_profile(dir.path(), &text);
    let out = dir.path().join("out");
    let harness = Command::new(HARNESS)
        .arg("--profile")
        .arg(&path)
        .arg("--out")
        .arg(&out)
        .args(["--quiet", "--toxiproxy", &api])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn harness");
    let pids = service_pids(&out);
    // Both faults applied: the toxic reads back from the server, the ledger is stopped.
    let client = toxiproxy_rust::client::Client::new(api.as_str());
    let until = Instant::now() + Duration::from_secs(30);
    let ledger = pids
        .iter()
        .find(|(role, _)| role == "ledger")
        .map(|(_, pid)| *pid);
    let stopped = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('T'))
        })
    };
    loop {
        let toxic = client
            .find_proxy("external")
            .ok()
            .and_then(|p| p.toxics().ok())
            .is_some_and(|toxics| !toxics.is_empty());
        if toxic && ledger.is_some_and(stopped) {
            break;
        }
        assert!(Instant::now() < until, "the faults were not applied");
        std::thread::sleep(Duration::from_millis(50));
    }
    let harness_pid = nix::unistd::Pid::from_raw(i32::try_from(harness.id()).expect("pid"));
    nix::sys::signal::kill(harness_pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    let output = harness.wait_with_output().expect("harness exits");
    let left = client.all();
    let _ = server.kill();
    let _ = server.wait();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        left.expect("read the proxies").is_empty(),
        "proxies left on the user's server"
    );
    wait_gone(&pids, Duration::from_secs(10));

    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("summary.json")).expect("the partial summary"),
    )
    .expect("JSON");
    let at = summary["interrupted_at_s"]
        .as_f64()
        .expect("marked interrupted");
    assert!((1.0..45.0).contains(&at), "{at}");
    assert_eq!(summary["verdict"], "unknown", "{summary}");
    let reasons = summary["verdict_reasons"].to_string();
    assert!(reasons.contains("interrupted"), "{reasons}");
    for fault in summary["faults"].as_array().expect("faults") {
        if fault["name"] == "later" {
            assert!(fault["applied_at_s"].is_null(), "{fault}");
        } else {
            assert!(
                fault["applied_at_s"].is_number() && fault["healed_at_s"].is_number(),
                "every applied fault healed: {fault}"
            );
        }
    }
    assert!(out.join("report.md").exists() && out.join("history.jsonl.zst").exists());
}
