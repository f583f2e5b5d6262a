//! `--target-file`: the reference system started by hand as someone else's (its own
//! processes, its coordinator wired to its upstreams through the hops the file names, its
//! process faults given as shell commands) takes the same faults as the launched system and
//! earns the same verdict; with `seed: reuse` the same system is run again.

use crate::support::{exclusive, free_port, run, toxiproxy_server, Run, HARNESS};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A black hole on the way to the external institution, the ledger restarted, then the
/// coordinator killed, then frozen for half a second.
const FAULTED: &str = "name: hand-started
seed: 31
warmup_s: 1
duration_s: 10
arrival: {rate_per_s: 120}
users: {count: 50, opening_balance_cents: 100000000}
amounts: {min_cents: 100, max_cents: 5000}
client: {timeout_ms: 2000}
slo: {p99_ms: 10000, error_budget: 0.5}
convergence_window_s: 30
faults:
  - {name: black-hole, kind: toxic, target: external, at_s: 2, duration_s: 2, toxic: timeout, stream: upstream, attributes: {timeout: 0}}
  - {name: bounce, kind: restart, target: ledger, at_s: 4.5, duration_s: 1}
  - {name: crash, kind: kill, target: coordinator, at_s: 6, duration_s: 1}
  - {name: freeze, kind: pause, target: coordinator, at_s: 8.5, duration_s: 0.5}
";

/// A process started by a shell command, killed through its pid file when dropped.
pub(crate) struct ByPidFile(pub(crate) PathBuf);

impl Drop for ByPidFile {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.0) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// The shell command that starts `role` on `port` in the background, its data, log and pid
/// file in `dir`: how an owner's script might start a service.
pub(crate) fn serve_command(dir: &Path, role: &str, port: u16, extra: &str) -> String {
    format!(
        "{HARNESS} serve {role} --listen 127.0.0.1:{port} --db {db} {extra} >> {log} 2>&1 & echo $! > {pid}",
        db = dir.join(format!("{role}.db")).display(),
        log = dir.join(format!("{role}.log")).display(),
        pid = dir.join(format!("{role}.pid")).display(),
    )
}

pub(crate) fn sh(command: &str) {
    let status = Command::new("sh")
        .args(["-c", command])
        .status()
        .expect("sh runs");
    assert!(status.success(), "{command}: {status}");
}

/// `GET path` at `host:port` over plain HTTP/1.0: the body of a 200 answer.
fn get(address: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let ok = head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200");
    ok.then(|| body.to_owned())
}

pub(crate) fn wait_answering(url: &str) {
    let until = Instant::now() + Duration::from_secs(20);
    let address = url.trim_start_matches("http://").to_owned();
    loop {
        if get(&address, "/healthz").is_some() {
            return;
        }
        assert!(Instant::now() < until, "{url} does not answer");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The target file for a system at these addresses, with `seed`.
pub(crate) fn target_file(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join(format!("target-{}.yaml", text.len()));
    std::fs::write(&path, text).expect("write the target file");
    path
}

pub(crate) fn invariants(summary: &Value) -> Vec<(String, Value)> {
    summary["invariants"]
        .as_array()
        .expect("invariants")
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap_or("").to_owned(),
                i["holds"].clone(),
            )
        })
        .collect()
}

/// What the launched and the hand-started runs must agree on.
fn judged(run: &Run) -> (Value, Value, Vec<(String, Value)>, Value, Value) {
    let s = run.summary();
    (
        s["verdict"].clone(),
        s["anomalies"].clone(),
        invariants(&s),
        s["money"]["created_cents"].clone(),
        s["money"]["lost_cents"].clone(),
    )
}

#[test]
fn a_system_started_by_hand_takes_the_same_faults_through_its_target_file() {
    let _serial = exclusive();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (coordinator_port, external_hop, ledger_hop) = (free_port(), free_port(), free_port());
    let serve = |role: &str, port: u16, extra: &str| serve_command(d, role, port, extra);
    let (external_port, ledger_port) = (free_port(), free_port());
    let _external = ByPidFile(d.join("external.pid"));
    let _ledger = ByPidFile(d.join("ledger.pid"));
    let _coordinator = ByPidFile(d.join("coordinator.pid"));
    sh(&serve("external", external_port, ""));
    let start_ledger = serve("ledger", ledger_port, "");
    sh(&start_ledger);
    let start_coordinator = serve(
        "coordinator",
        coordinator_port,
        &format!(
            "--external-url http://127.0.0.1:{external_hop} --ledger-url http://127.0.0.1:{ledger_hop}"
        ),
    );
    sh(&start_coordinator);
    for port in [external_port, ledger_port, coordinator_port] {
        wait_answering(&format!("http://127.0.0.1:{port}"));
    }
    let file = |seed: &str, commands: bool| {
        let commands = if commands {
            format!(
                "commands:\n  coordinator:\n    kill: kill -KILL \"$(cat {pid})\"\n    start: '{start}'\n    pause: kill -STOP \"$(cat {pid})\"\n    resume: kill -CONT \"$(cat {pid})\"\n  ledger:\n    restart: '{restart}'\n",
                pid = d.join("coordinator.pid").display(),
                start = start_coordinator.replace('\'', "''"),
                restart = format!(
                    // SIGTERM, wait for the process to be gone (or a zombie), start it again.
                    "p=$(cat {ledger_pid}); kill -TERM \"$p\"; while [ -e /proc/$p ] && ! grep -q \") Z\" /proc/$p/stat; do sleep 0.05; done; {start_ledger}",
                    ledger_pid = d.join("ledger.pid").display(),
                )
                .replace('\'', "''"),
            )
        } else {
            String::new()
        };
        target_file(
            d,
            &format!(
                "coordinator: http://127.0.0.1:{coordinator_port}
external: http://127.0.0.1:{external_port}
ledger: http://127.0.0.1:{ledger_port}
hops:
  external: {{listen: 127.0.0.1:{external_hop}}}
  ledger: {{listen: 127.0.0.1:{ledger_hop}}}
seed: {seed}
{commands}"
            ),
        )
    };
    let path = |p: &PathBuf| p.display().to_string();

    // Without the commands the profile's kill needs, nothing starts, and the message says
    // what is missing.
    let lacking = run(FAULTED, &["--target-file", &path(&file("create", false))]);
    assert_eq!(lacking.code(), Some(2), "{}", lacking.printed());
    for needed in [
        "commands.coordinator.kill: needed by fault `crash`",
        "commands.coordinator.start: needed by fault `crash`",
    ] {
        assert!(lacking.stderr().contains(needed), "{}", lacking.stderr());
    }

    // The contract walked against it, through the hops the file names.
    let checked = Command::new(HARNESS)
        .args([
            "check-target",
            "--target-file",
            &path(&file("create", true)),
        ])
        .output()
        .expect("run check-target");
    let table = String::from_utf8_lossy(&checked.stdout);
    assert_eq!(checked.status.code(), Some(0), "{table}");
    assert!(table.contains("no violation"), "{table}");

    let launched = run(FAULTED, &[]);
    assert_eq!(launched.code(), Some(0), "{}", launched.printed());
    let created = run(FAULTED, &["--target-file", &path(&file("create", true))]);
    assert_eq!(created.code(), Some(0), "{}", created.printed());
    assert_eq!(judged(&created), judged(&launched), "{}", created.printed());
    let summary = created.summary();
    for fault in summary["faults"].as_array().expect("faults") {
        assert!(
            fault["applied_at_s"].is_number() && fault["healed_at_s"].is_number(),
            "{fault}"
        );
    }
    assert!(
        summary["requests"]["pending"].as_u64() > Some(0),
        "the black hole on the external hop held the coordinator's debits: {}",
        summary["requests"]
    );
    assert!(
        summary["requests"]["errors"].as_u64() > Some(0),
        "the kill cut requests in flight: {}",
        summary["requests"]
    );
    // The owner's commands ran, their output and status kept in the run folder.
    let logs: Vec<String> = std::fs::read_dir(created.out().join("commands"))
        .expect("commands/ in the run folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "001-ledger-restart.log",
        "002-coordinator-kill.log",
        "003-coordinator-start.log",
        "004-coordinator-pause.log",
        "005-coordinator-resume.log",
    ] {
        assert!(logs.iter().any(|l| l == expected), "{expected}: {logs:?}");
    }
    let restart = std::fs::read_to_string(created.out().join("commands/001-ledger-restart.log"))
        .expect("the restart's log");
    assert!(restart.contains("# exit status: 0 after"), "{restart}");

    // A second run on the same system: `create` stops on the accounts the first made;
    // `reuse` takes them and is judged alike.
    let again = run(FAULTED, &["--target-file", &path(&file("create", true))]);
    assert_eq!(again.code(), Some(2), "{}", again.printed());
    assert!(
        again.stderr().contains("account_exists"),
        "{}",
        again.stderr()
    );
    let reused = run(FAULTED, &["--target-file", &path(&file("reuse", true))]);
    assert_eq!(reused.code(), Some(0), "{}", reused.printed());
    assert_eq!(judged(&reused), judged(&launched), "{}", reused.printed());

    // Its folder keeps the target file, so that it replays on the same system
    // (`a_target_seeded_by_its_run_replays_and_shrinks…` replays one).
    assert!(reused.out().join("target.yaml").exists());

    // And again, its hops in a Toxiproxy server of the user's, left clean afterwards.
    let (mut server, api) = toxiproxy_server();
    let plain = FAULTED[..FAULTED.find("faults:").unwrap_or(FAULTED.len())].replace(
        "duration_s: 10\narrival: {rate_per_s: 120}",
        "duration_s: 2\narrival: {rate_per_s: 500}",
    );
    let third = run(
        &plain,
        &[
            "--target-file",
            &path(&file("reuse", true)),
            "--toxiproxy",
            &api,
        ],
    );
    let left = toxiproxy_rust::client::Client::new(api.as_str()).all();
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(third.code(), Some(0), "{}", third.printed());
    let services: Value = serde_json::from_str(
        &std::fs::read_to_string(third.out().join("services.json")).expect("services.json"),
    )
    .expect("json");
    assert_eq!(services["proxies"]["toxiproxy_api"], api.as_str());
    assert_eq!(
        services["proxies"]["external"],
        format!("127.0.0.1:{external_hop}").as_str()
    );
    assert!(
        left.expect("read proxies").is_empty(),
        "the run removed its proxies"
    );
}

#[test]
fn service_settings_are_applied_put_back_or_named() {
    let _serial = exclusive();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (external_port, ledger_port, coordinator_port) = (free_port(), free_port(), free_port());
    let serve = |role: &str, port: u16, extra: String| serve_command(d, role, port, &extra);
    let _external = ByPidFile(d.join("external.pid"));
    let _ledger = ByPidFile(d.join("ledger.pid"));
    let _coordinator = ByPidFile(d.join("coordinator.pid"));
    sh(&serve("external", external_port, String::new()));
    sh(&serve("ledger", ledger_port, String::new()));
    sh(&serve(
        "coordinator",
        coordinator_port,
        format!(
            "--external-url http://127.0.0.1:{external_port} --ledger-url http://127.0.0.1:{ledger_port} --deadline-ms 150"
        ),
    ));
    for port in [external_port, ledger_port, coordinator_port] {
        wait_answering(&format!("http://127.0.0.1:{port}"));
    }
    let target = |seed: &str| {
        let file = target_file(
            d,
            &format!(
                "coordinator: http://127.0.0.1:{coordinator_port}
external: http://127.0.0.1:{external_port}
ledger: http://127.0.0.1:{ledger_port}
coordinator_settings: {{deadline_ms: 150}}
seed: {seed}
"
            ),
        );
        file.display().to_string()
    };
    let (create, reuse) = (target("create"), target("reuse"));
    let profile = |service: &str| {
        format!(
            "name: settings
seed: 5
duration_s: 5
arrival: {{rate_per_s: 250}}
users: {{count: 10, opening_balance_cents: 100000000}}
amounts: {{min_cents: 100, max_cents: 5000}}
slo: {{p99_ms: 10000}}
service:
{service}"
        )
    };
    let policy = || -> Value {
        get(&format!("127.0.0.1:{ledger_port}"), "/admin/policy")
            .and_then(|body| serde_json::from_str(&body).ok())
            .unwrap_or(Value::Null)
    };
    let before = policy();
    assert!(before.is_object(), "the ledger's policy reads: {before}");

    // A coordinator setting the file does not state is refused before anything is written.
    let unstated =
        profile("  coordinator: {deadline_ms: 90}\n  ledger: {antifraud_refusal_rate: 1.0}\n");
    let refused = run(&unstated, &["--target-file", &create]);
    assert_eq!(refused.code(), Some(2), "{}", refused.printed());
    assert!(
        refused
            .stderr()
            .contains("service.coordinator.deadline_ms: 90: no route sets it"),
        "{}",
        refused.stderr()
    );
    assert_eq!(
        policy(),
        before,
        "the refused run put the ledger's policy back"
    );

    // A stated one is accepted; the ledger's policy is set for the run (half the transfers
    // refused by antifraud) and put back after it.
    let stated =
        profile("  coordinator: {deadline_ms: 150}\n  ledger: {antifraud_refusal_rate: 0.5}\n");
    let ran = run(&stated, &["--target-file", &create]);
    assert_eq!(ran.code(), Some(0), "{}", ran.printed());
    let summary = ran.summary();
    let (completed, failed) = (
        summary["requests"]["completed"].as_u64().unwrap_or(0),
        summary["requests"]["failed"].as_u64().unwrap_or(0),
    );
    assert!(
        failed > completed / 2 && completed > failed / 2,
        "about half refused by antifraud: {}",
        summary["requests"]
    );
    assert_eq!(summary["settings_not_applied"], serde_json::json!([]));
    assert_eq!(policy(), before, "the run put the ledger's policy back");

    // With --ignore-service-settings the unstated one is listed in the summary and reports.
    let ignored = run(
        &unstated.replace("antifraud_refusal_rate: 1.0", "antifraud_refusal_rate: 0.0"),
        &["--target-file", &reuse, "--ignore-service-settings"],
    );
    assert_eq!(ignored.code(), Some(0), "{}", ignored.printed());
    let listed = ignored.summary()["settings_not_applied"].clone();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert!(listed[0]
        .as_str()
        .is_some_and(|s| s.starts_with("service.coordinator.deadline_ms: 90")));
    for report in ["report.md", "report.html"] {
        let text = std::fs::read_to_string(ignored.out().join(report)).expect("report");
        assert!(
            text.contains("service.coordinator.deadline_ms: 90"),
            "{report}"
        );
    }
}

/// Impatient users on a coordinator that ignores their keys, with the external hop slow
/// past the deadline for a while: same-key retries become second transfers.
const KEY_IGNORED: &str = "name: key-ignored
seed: 41
warmup_s: 1
duration_s: 4
arrival: {rate_per_s: 60}
users: {count: 30, opening_balance_cents: 100000000}
amounts: {min_cents: 100, max_cents: 5000}
client:
  timeout_ms: 2000
  retries: {max: 2, after_ms: 50, key: same, on: [pending, error]}
slo: {p99_ms: 10000, error_budget: 0.5}
convergence_window_s: 30
faults:
  - {name: slow-external, kind: toxic, target: external, at_s: 1, duration_s: 3, toxic: latency, stream: downstream, attributes: {latency: 300}}
  - {name: lost-credit-answers, kind: knobs, target: ledger, at_s: 2, duration_s: 1, set: {error_after_rate: 0.2}}
";

/// A target whose file says `seed: create` still replays and shrinks: its accounts, made by
/// the original run, are taken as they are (creating them again would be refused). A shrink
/// whose candidates cannot run says so and exits 2, never "no cut kept the class". The
/// target is driven through the contract described as a mapping (`api:`), so replay and
/// shrink are shown to work through a mapping; the native client earns the same
/// (`foreign::the_contract_described_as_a_mapping_earns_what_the_native_path_earns`).
#[test]
fn a_target_seeded_by_its_run_replays_and_shrinks_and_a_search_that_cannot_run_exits_2() {
    let _serial = exclusive();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (external_port, ledger_port, coordinator_port, external_hop) =
        (free_port(), free_port(), free_port(), free_port());
    let _external = ByPidFile(d.join("external.pid"));
    let _ledger = ByPidFile(d.join("ledger.pid"));
    let coordinator = ByPidFile(d.join("coordinator.pid"));
    sh(&serve_command(d, "external", external_port, ""));
    sh(&serve_command(d, "ledger", ledger_port, ""));
    sh(&serve_command(
        d,
        "coordinator",
        coordinator_port,
        &format!(
            "--design no-idempotency --external-url http://127.0.0.1:{external_hop} --ledger-url http://127.0.0.1:{ledger_port}"
        ),
    ));
    for port in [external_port, ledger_port, coordinator_port] {
        wait_answering(&format!("http://127.0.0.1:{port}"));
    }
    let file = target_file(
        d,
        &format!(
            "coordinator: http://127.0.0.1:{coordinator_port}
external: http://127.0.0.1:{external_port}
ledger: http://127.0.0.1:{ledger_port}
hops:
  external: {{listen: 127.0.0.1:{external_hop}}}
seed: create
settle_s: 1
{}",
            crate::foreign::contract_as_api()
        ),
    );
    let original = run(KEY_IGNORED, &["--target-file", &file.display().to_string()]);
    assert_eq!(original.code(), Some(1), "{}", original.printed());
    let summary = original.summary();
    let anomalies = summary["anomalies"].as_object().expect("anomalies");
    assert!(
        anomalies.contains_key("split_key") || anomalies.contains_key("double_charge"),
        "the ignored key made second transfers: {anomalies:?}"
    );
    let scheduled = summary["requests"]["scheduled"].as_u64().unwrap_or(0);

    // The replay takes the accounts the original run created.
    let replay = d.join("replay");
    let replayed = Command::new(HARNESS)
        .arg("replay")
        .arg(original.out())
        .args(["--quiet", "--out"])
        .arg(&replay)
        .output()
        .expect("run harness replay");
    let said = String::from_utf8_lossy(&replayed.stdout);
    // The replay ran (a target seeded by its run is not refused: exit 2) and met the same
    // bug. Which of its two classes a timing-bound bug shows can differ from run to run
    // (one in eight replays here found double_charge beside split_key or not), so the
    // classes are held to the bug, not to the original's exact set.
    assert!(
        matches!(replayed.status.code(), Some(0 | 1)),
        "{said}{replayed:?}"
    );
    assert!(said.contains("anomaly classes"), "{said}");
    let again: Value = serde_json::from_str(
        &std::fs::read_to_string(replay.join("summary.json")).expect("the replay's summary"),
    )
    .expect("JSON");
    assert_eq!(again["requests"]["scheduled"].as_u64(), Some(scheduled));
    let found = again["anomalies"].as_object().expect("anomalies");
    assert!(
        found.contains_key("split_key") || found.contains_key("double_charge"),
        "the replay met the ignored key: {found:?}"
    );

    // The shrink runs its candidates on the same system, and finds a smaller run.
    let shrink_into = |out: &Path| {
        Command::new(HARNESS)
            .args([
                "shrink", "--tries", "1", "--budget", "30s", "--quiet", "--out",
            ])
            .arg(out)
            .arg(original.out())
            .output()
            .expect("run harness shrink")
    };
    let shrunk = d.join("shrink");
    let shrink = shrink_into(&shrunk);
    let printed = String::from_utf8_lossy(&shrink.stdout);
    let md = std::fs::read_to_string(shrunk.join("shrink.md")).unwrap_or_default();
    assert_eq!(shrink.status.code(), Some(0), "{printed}{shrink:?}\n{md}");
    assert!(md.contains("kept: still fails"), "{md}");
    assert!(!md.contains("could not run"), "{md}");
    let smallest: Value = serde_json::from_str(
        &std::fs::read_to_string(shrunk.join("shrunk/run/summary.json")).expect("summary"),
    )
    .expect("JSON");
    let fewer = smallest["requests"]["scheduled"]
        .as_u64()
        .unwrap_or(u64::MAX);
    assert!(fewer < scheduled, "{scheduled} requests shrunk to {fewer}");
    let class = printed
        .split('`')
        .nth(1)
        .expect("the class kept, as printed");
    assert!(
        smallest["anomalies"][class].as_u64() > Some(0),
        "{class}: {smallest}"
    );

    // With the coordinator gone, no candidate can run: the search says so and exits 2.
    drop(coordinator);
    let stopped = d.join("shrink-stopped");
    let shrink = shrink_into(&stopped);
    let printed = String::from_utf8_lossy(&shrink.stdout);
    assert_eq!(shrink.status.code(), Some(2), "{printed}{shrink:?}");
    assert!(
        printed.contains("incomplete: step 1 could not run"),
        "{printed}"
    );
    let md = std::fs::read_to_string(stopped.join("shrink.md")).expect("shrink.md");
    assert!(md.contains("**Incomplete:**"), "{md}");
    assert!(!md.contains("No cut kept the class"), "{md}");
    assert!(!stopped.join("shrunk").exists(), "no smaller run was found");
}
