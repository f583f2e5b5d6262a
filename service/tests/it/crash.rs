//! SIGKILL of the coordinator in the middle of sagas, restart on the same file: every saga
//! reaches a final state and the books agree.

use crate::support::{args, assert_books_agree, Options, System};
use service::contract::routes;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_killed_mid_saga_recovers_on_restart() {
    let mut system = System::start(Options {
        users: 20,
        // Slow credits keep many sagas between debit and credit when the kill lands.
        ledger_args: args(&["--service-time-ms", "40", "--service-jitter-ms", "40"]),
        ..Options::default()
    })
    .await;
    let shared = Arc::new(system.http.clone());
    let url = system.url(&system.coordinator, routes::TRANSFERS);
    let mut sent = Vec::new();
    for i in 0..200u64 {
        let http = shared.clone();
        let url = url.clone();
        sent.push(tokio::spawn(async move {
            let user = usize::try_from(i % 20).expect("user");
            let _ = http
                .post(url)
                .header(routes::IDEMPOTENCY_KEY_HEADER, format!("crash-{i}"))
                .json(&System::request(user, 100 + i))
                .timeout(Duration::from_secs(5))
                .send()
                .await;
        }));
    }
    // Kill once a good share of the sagas exist, whatever their state.
    let until = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let count = system.sagas().await.len();
        if count >= 60 {
            break;
        }
        assert!(std::time::Instant::now() < until, "sagas never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(crate::support::pid_of(&system.coordinator)),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("SIGKILL");
    for handle in sent {
        let _ = handle.await;
    }
    // The kill must have caught sagas mid-way, or this test proves nothing about recovery.
    let log = rusqlite::Connection::open(system.dir.path().join("saga.db")).expect("saga.db");
    let open: i64 = log
        .query_row(
            "SELECT COUNT(*) FROM sagas WHERE state IN ('started', 'debited', 'reversing')",
            [],
            |r| r.get(0),
        )
        .expect("count open sagas");
    drop(log);
    assert!(open > 0, "no saga was open when the coordinator was killed");
    eprintln!("{open} sagas open at the kill");
    system.restart_coordinator();
    let sagas = system.wait_all_final(Duration::from_secs(30)).await;
    assert!(sagas.len() >= 60, "only {} sagas", sagas.len());
    let books = system.books().await;
    assert_books_agree(&sagas, &books, system.initial_total());
    // No debit at the external side belongs to a transfer the coordinator does not know.
    let known: std::collections::HashSet<_> =
        sagas.iter().map(|s| s.transfer_id.as_str()).collect();
    for entry in &books.external.entries {
        let id = entry.transfer_id.as_str();
        assert!(known.contains(id), "orphan debit {id}");
    }
}
