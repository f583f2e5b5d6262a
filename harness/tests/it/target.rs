//! `--target`: the harness drives a system it did not start, through the HTTP contract.

use crate::support::{exclusive, profile, run, toxiproxy_server, HARNESS, LENIENT_SLO};
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

/// The reference system started by hand, as someone else's: both institutions, then a
/// coordinator wired to them. `external` and `coordinator` are extra flags of each.
fn start_by_hand(
    dir: &std::path::Path,
    external: &[String],
    coordinator: &[String],
) -> (ServiceProcess, ServiceProcess, ServiceProcess) {
    let ext = serve(dir, "external", external);
    let ledger = serve(dir, "ledger", &[]);
    let mut flags = vec![
        format!("--external-url={}", ext.url),
        format!("--ledger-url={}", ledger.url),
    ];
    flags.extend_from_slice(coordinator);
    let coord = serve(dir, "coordinator", &flags);
    (ext, ledger, coord)
}

#[test]
fn a_running_system_is_driven_and_reconciled_through_the_contract() {
    let _serial = exclusive();
    let dir = tempfile::tempdir().expect("tempdir");
    let (external, ledger, coordinator) = start_by_hand(dir.path(), &[], &[]);
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
    let (mut server, api) = toxiproxy_server();
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

/// A coordinator in front of `upstream` that keeps no saga log of its own to show: it
/// forwards every request but `/admin/sagas` and `/admin/in-flight`, which answer 404, as a
/// system built from the contract alone may. Runs until the process ends.
fn without_saga_log(upstream: &str) -> String {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    use axum::response::IntoResponse;

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    listener.set_nonblocking(true).expect("nonblocking");
    let upstream = upstream.trim_end_matches('/').to_owned();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async move {
            let http = reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client");
            let forward = move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (http, upstream) = (http.clone(), upstream.clone());
                async move {
                    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
                    if path.starts_with("/admin/sagas") || path.starts_with("/admin/in-flight") {
                        return (
                            StatusCode::NOT_FOUND,
                            "{\"error\":{\"code\":\"not_found\",\"message\":\"no saga log\"}}",
                        )
                            .into_response();
                    }
                    let mut request = http.request(method, format!("{upstream}{path}")).body(body);
                    for (name, value) in &headers {
                        if name != "host" && name != "content-length" {
                            request = request.header(name, value);
                        }
                    }
                    match request.send().await {
                        Ok(answer) => {
                            let status = StatusCode::from_u16(answer.status().as_u16())
                                .unwrap_or(StatusCode::BAD_GATEWAY);
                            let body = answer.bytes().await.unwrap_or_default();
                            (status, [("content-type", "application/json")], body).into_response()
                        }
                        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
                    }
                }
            };
            let app = axum::Router::new().fallback(forward);
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let _ = axum::serve(listener, app).await;
        });
    });
    format!("http://{addr}")
}

#[test]
fn without_a_saga_log_convergence_is_followed_through_get_transfers() {
    let _serial = exclusive();
    let dir = tempfile::tempdir().expect("tempdir");
    // Debits slower than the deadline: every answer is `pending`, finished in the background.
    let (external, ledger, coordinator) = start_by_hand(
        dir.path(),
        &["--service-time-ms=150".to_owned()],
        &["--deadline-ms=60".to_owned()],
    );
    let front = without_saga_log(&coordinator.url);
    let text = profile("no-saga-log", 50, 0, 3, LENIENT_SLO);
    let ran = run(
        &text,
        &[
            "--target",
            &front,
            "--external-url",
            &external.url,
            "--ledger-url",
            &ledger.url,
        ],
    );
    let summary = ran.summary();
    assert_eq!(summary["design"], "not reported", "{}", ran.printed());
    assert_eq!(summary["requests"]["pending"], 150, "{}", ran.printed());
    let convergence = summary["invariants"]
        .as_array()
        .expect("invariants")
        .iter()
        .find(|i| i["name"] == "convergence")
        .expect("convergence")
        .clone();
    assert_eq!(
        convergence["holds"],
        true,
        "{convergence} {}",
        ran.printed()
    );
    let detail = convergence["detail"].as_str().expect("detail");
    assert!(
        detail.starts_with("no saga log: 150 transfers answered pending or unanswered, all final"),
        "{detail}"
    );
    assert_eq!(summary["money"]["lost_cents"], 0);
    assert_eq!(summary["money"]["created_cents"], 0);

    // The same system with its saga log (no institutions' URLs: nothing seeded again): the
    // design is the one the log names.
    let direct = run(
        &text.replace("seed: 11", "seed: 12"),
        &["--target", &coordinator.url],
    );
    assert_eq!(direct.summary()["design"], "saga", "{}", direct.printed());
}
