//! The fault timeline: every kind applied at its time, read back, healed, and reported; a
//! fault a server only pretends to apply stops the run with exit 2.

use crate::support::{exclusive, profile, run, schema_errors, toxiproxy_server};

// The SLO and the error budget are out of reach on purpose: this test is about fault
// mechanics, which a busy machine must not fail; the verdict still rests on the money.
const FAULTS: &str = "slo:
  p99_ms: 10000
  error_budget: 0.5
faults:
  - kind: kill
    target: coordinator
    at_s: 1.2
    duration_s: 0.5
  - name: slow-external
    kind: toxic
    target: external
    at_s: 2.4
    duration_s: 1.5
    toxic: latency
    attributes: {latency: 300}
  - name: ledger-flap
    kind: down
    target: ledger
    at_s: 4
    duration_s: 0.5
    repeat: {every_s: 1.5, times: 2}
  - kind: pause
    target: ledger
    at_s: 7
    duration_s: 0.5
  - kind: knobs
    target: ledger
    at_s: 8
    duration_s: 1
    set: {error_after_rate: 0.3, antifraud_refusal_rate: 0.2}
  - kind: restart
    target: external
    at_s: 9.5
    duration_s: 0.3
";

#[test]
fn every_fault_kind_is_applied_on_time_read_back_healed_and_reported() {
    let _serial = exclusive();
    let run = run(&profile("faults", 200, 1, 12, FAULTS), &[]);
    assert_eq!(run.code(), Some(0), "{}", run.printed());
    let summary = run.summary();
    let errors = schema_errors("summary.schema.json", &summary);
    assert!(
        errors.is_empty(),
        "summary.json breaks the schema: {errors:?}"
    );
    assert_eq!(
        summary["verdict"], "pass",
        "{:#}",
        summary["verdict_reasons"]
    );
    for invariant in summary["invariants"].as_array().expect("invariants") {
        assert_eq!(invariant["holds"], true, "{invariant}");
    }

    let faults = summary["faults"].as_array().expect("faults");
    let names: Vec<&str> = faults.iter().filter_map(|f| f["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "kill-coordinator-0",
            "slow-external",
            "ledger-flap#1",
            "ledger-flap#2",
            "pause-ledger-3",
            "knobs-ledger-4",
            "restart-external-5",
        ]
    );
    for f in faults {
        let requested = f["requested_start_s"].as_f64().expect("start");
        let applied = f["applied_at_s"].as_f64().expect("applied and read back");
        let end = f["requested_end_s"].as_f64().expect("end");
        let healed = f["healed_at_s"].as_f64().expect("healed and read back");
        // Within seconds of the time asked, never before it: a restart on a busy machine
        // takes a while, a fault a timeline loses takes forever.
        assert!(
            (requested..requested + 2.0).contains(&applied),
            "{f}: applied late"
        );
        assert!((end..end + 5.0).contains(&healed), "{f}: healed off time");
        assert!(f["error"].is_null(), "{f}");
    }
    let flap: Vec<f64> = faults[2..4]
        .iter()
        .filter_map(|f| f["requested_start_s"].as_f64())
        .collect();
    assert_eq!(flap, [4.0, 5.5], "a repeat starts every every_s");

    // The faults really happened: the coordinator and the external institution started
    // twice, the down ledger cut connections (some answers pending), the kill cut some
    // requests (errors), and every saga still ended, read from a coordinator started again
    // early in the run and still alive at the end (a child started from a short-lived
    // thread would have died with it: PR_SET_PDEATHSIG follows the thread).
    // The external institution stops three times: the restart fault, the stop after the
    // run, and once more after it was started again to read its books a second time.
    for (service, word, times) in [
        ("coordinator", "coordinator starting", 2),
        ("external", "shutdown signal received", 3),
    ] {
        let log =
            std::fs::read_to_string(run.out().join(format!("{service}.log"))).expect("service log");
        let starts = log.matches(word).count();
        assert_eq!(starts, times, "{service}: {word:?} {starts} times:\n{log}");
    }
    assert!(summary["requests"]["pending"].as_u64() > Some(0));
    assert!(summary["requests"]["errors"].as_u64() > Some(0));
    assert!(summary["convergence_ms"].is_u64());

    let report = std::fs::read_to_string(run.out().join("report.md")).expect("report.md");
    assert!(
        report.contains("| `ledger-flap#2` | down | ledger |"),
        "{report}"
    );
    assert!(report.contains("kill-coordinator-0  |"), "{report}");

    // Each fault's window and recovery are measured apart from the steady state.
    let phases = &summary["phases"];
    let slow = phases["faults"]
        .as_array()
        .expect("phases of faults")
        .iter()
        .find(|p| p["fault"] == "slow-external")
        .expect("the slow-external phase");
    let during_p50 = slow["during"]["latency_ms"]["p50"].as_f64().expect("p50");
    let steady_p50 = phases["steady"]["latency_ms"]["p50"].as_f64().expect("p50");
    // Answers wait for the 300 ms toxic or the 150 ms deadline: a busy machine can only make
    // the phase slower, so the bound is a floor, and the steady phase is merely faster. The
    // toxic starts 0.7 s after the killed coordinator is started again: a coordinator still
    // starting refuses connections at once, which would make the phase look fast.
    assert!(
        during_p50 > 100.0 && during_p50 > steady_p50,
        "300 ms of latency on the external hop shows in its phase: {during_p50} ms against \
         {steady_p50} ms steady"
    );
    assert!(phases["during_faults"]["operations"].as_u64() > Some(0));
    assert!(phases["recovery"]["operations"].as_u64() > Some(0));
    crate::report::check_reports(&run.out(), "slow-external");
}

/// A Toxiproxy API that answers 200 to a new toxic without adding it (and passes every
/// other call to the real server at `real`): the harness must see through it.
fn start_lying_toxiproxy(real: String) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let http = reqwest::Client::new();
            let app = axum::Router::new().fallback(
                move |method: axum::http::Method, uri: axum::http::Uri, body: axum::body::Bytes| {
                    let (http, real) = (http.clone(), real.clone());
                    async move {
                        let path = uri.path().to_owned();
                        if method == axum::http::Method::POST && path.ends_with("/toxics") {
                            return (axum::http::StatusCode::OK, body.to_vec());
                        }
                        let answer = http
                            .request(method, format!("http://{real}{path}"))
                            .body(body)
                            .send()
                            .await
                            .expect("real toxiproxy answers");
                        let status = axum::http::StatusCode::from_u16(answer.status().as_u16())
                            .expect("status");
                        (status, answer.bytes().await.expect("body").to_vec())
                    }
                },
            );
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            axum::serve(listener, app).await.expect("serve");
        });
    });
    addr
}

#[test]
fn a_fault_that_does_not_read_back_stops_the_run_with_exit_2() {
    let _serial = exclusive();
    let (mut server, real) = toxiproxy_server();
    let liar = start_lying_toxiproxy(real);
    let text = profile(
        "liar",
        100,
        0,
        6,
        "slo:\n  p99_ms: 10000\nfaults:\n  - name: never-there\n    kind: toxic\n    target: external\n    at_s: 1\n    toxic: latency\n    attributes: {latency: 100}\n",
    );
    let run = run(&text, &["--toxiproxy", &format!("http://{liar}")]);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(run.code(), Some(2), "{}", run.printed());
    let stderr = run.stderr();
    assert!(
        stderr.contains("fault never-there") && stderr.contains("not there when read back"),
        "{stderr}"
    );
    assert!(
        !run.out().join("summary.json").exists(),
        "no verdict from a run that could not run"
    );
}

/// A build that replaces the harness's executable during a run (`cargo build` beside a long
/// run) does not change what a process fault starts again: the services come back from the
/// file the run started with, not from whatever now sits at its path.
#[test]
fn a_run_whose_executable_is_replaced_still_restarts_the_services_it_kills() {
    use std::os::unix::fs::PermissionsExt;
    let _serial = exclusive();
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = dir.path().join("harness");
    std::fs::copy(crate::support::HARNESS, &exe).expect("copy the harness");
    let text = profile(
        "replaced",
        300,
        0,
        5,
        "slo:\n  p99_ms: 10000\n  error_budget: 0.5\nfaults:\n  - {kind: kill, target: coordinator, at_s: 2, duration_s: 0.5}\n  - {kind: kill, target: external, at_s: 3.5, duration_s: 0.5}\n",
    );
    let path = crate::support::write_profile(dir.path(), &text);
    let out = dir.path().join("out");
    let child = std::process::Command::new(&exe)
        .arg("--profile")
        .arg(&path)
        .arg("--out")
        .arg(&out)
        .arg("--quiet")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the copied harness");
    // The services are up (their pids written) before the load and its first kill.
    crate::support::service_pids(&out);
    std::fs::remove_file(&exe).expect("remove the executable");
    std::fs::write(&exe, "#!/bin/sh\nexit 97\n").expect("a new 'build' at its path");
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let output = child.wait_with_output().expect("the run ends");
    let printed = format!(
        "stderr: {}\nstdout: {}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(output.status.code(), Some(0), "{printed}");
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("summary.json")).expect("summary.json"),
    )
    .expect("JSON");
    let faults = summary["faults"].as_array().expect("faults");
    assert_eq!(faults.len(), 2, "{faults:?}");
    for fault in faults {
        assert!(
            fault["healed_at_s"].is_number() && fault["error"].is_null(),
            "{fault}"
        );
    }
    let log = std::fs::read_to_string(out.join("coordinator.log")).expect("coordinator.log");
    assert_eq!(log.matches("coordinator starting").count(), 2, "{log}");
}
