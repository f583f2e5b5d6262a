//! `--target`: the harness drives a system it did not start, through the HTTP contract.

use crate::support::{exclusive, profile, run, HARNESS, LENIENT_SLO};
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
    let text = profile("target", 250, 0, 4, LENIENT_SLO);

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
    assert_eq!(full.code(), Some(0), "{}", full.printed());
    let summary = full.summary();
    assert_eq!(summary["verdict"], "pass");
    assert_eq!(summary["target"], coordinator.url.as_str());
    assert_eq!(summary["money"]["lost_cents"], 0);

    // Without them the money checks are unknown, not passed.
    let blind = run(
        &text.replace("seed: 11", "seed: 12"),
        &["--target", &coordinator.url],
    );
    assert_eq!(blind.code(), Some(1), "{}", blind.printed());
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

#[test]
fn an_existing_toxiproxy_server_carries_the_hops_and_is_left_clean() {
    let _serial = exclusive();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut command = Command::new(HARNESS);
    command.args([
        "toxiproxy",
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
    ]);
    let mut server = command
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("toxiproxy server");
    let api = format!("127.0.0.1:{port}");
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&api).is_err() {
        assert!(
            std::time::Instant::now() < until,
            "the toxiproxy server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let run = run(
        &profile("viaproxy", 250, 0, 4, LENIENT_SLO),
        &["--toxiproxy", &format!("http://{api}")],
    );
    let proxies_after = toxiproxy_rust::client::Client::new(api.as_str()).all();
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(run.code(), Some(0), "{}", run.printed());
    let services: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.out().join("services.json")).expect("services.json"),
    )
    .expect("json");
    assert_eq!(services["proxies"]["toxiproxy_api"], api.as_str());
    for hop in ["gateway", "external", "ledger"] {
        assert!(
            services["proxies"][hop].is_string(),
            "{hop} hop missing: {services}"
        );
    }
    assert!(
        proxies_after.expect("read proxies").is_empty(),
        "the run removed its proxies"
    );
}

#[test]
fn check_target_passes_the_reference_system_and_names_the_rules_naive_breaks() {
    let _serial = exclusive();
    let dir = tempfile::tempdir().expect("tempdir");
    let external = serve(dir.path(), "external", &[]);
    let ledger = serve(dir.path(), "ledger", &[]);
    let upstreams = [
        format!("--external-url={}", external.url),
        format!("--ledger-url={}", ledger.url),
    ];
    let saga = serve(dir.path(), "coordinator", &upstreams);
    let naive_dir = dir.path().join("naive");
    std::fs::create_dir_all(&naive_dir).expect("naive dir");
    let mut naive_flags = upstreams.to_vec();
    naive_flags.push("--design=naive".into());
    let naive = serve(&naive_dir, "coordinator", &naive_flags);
    let check = |coordinator: &str| {
        Command::new(HARNESS)
            .args(["check-target", "--target", coordinator])
            .args(["--external-url", &external.url, "--ledger-url", &ledger.url])
            .output()
            .expect("run check-target")
    };

    let conforming = check(&saga.url);
    let table = String::from_utf8_lossy(&conforming.stdout).to_string();
    assert_eq!(conforming.status.code(), Some(0), "{table}");
    assert!(
        table.contains("conforms: 22 rules checked, no violation"),
        "{table}"
    );
    assert!(!table.contains("VIOLATES"), "{table}");

    let broken = check(&naive.url);
    let table = String::from_utf8_lossy(&broken.stdout).to_string();
    assert_eq!(broken.status.code(), Some(1), "{table}");
    for rule in ["idempotent_replay", "key_reused_other_payload"] {
        assert!(
            table
                .lines()
                .any(|l| l.starts_with(rule) && l.contains("VIOLATES")),
            "{rule} not named:\n{table}"
        );
    }
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("malformed_json") && l.contains("conforms")),
        "{table}"
    );
}
