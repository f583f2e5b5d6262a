//! A store under a disk fault (`PUT /admin/disk`): every write is refused with 503
//! `storage_unavailable` and leaves nothing behind, the service keeps serving reads, and
//! writes go through again once the disk is healthy.

use crate::support::{Options, System};
use serde_json::json;
use service::contract::{routes, ClientStatus, SagaState};
use service::disk_fault::{DiskFault, DiskState};
use std::time::Duration;

async fn set_disk(system: &System, service: &service::launch::ServiceProcess, disk: DiskState) {
    let (status, body) = system
        .put_json(system.url(service, routes::ADMIN_DISK), &DiskFault { disk })
        .await;
    assert_eq!(status, 200, "disk: {body}");
    let read: DiskFault = system
        .get_json(system.url(service, routes::ADMIN_DISK))
        .await;
    assert_eq!(read.disk, disk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_at_the_coordinator_refuses_the_transfer_before_any_call() {
    let system = System::start(Options::default()).await;
    set_disk(&system, &system.coordinator, DiskState::Full).await;
    let (status, answer) = system.transfer("k-full", 0, 100).await;
    assert_eq!(status, 503, "{answer:?}");
    assert_eq!(answer.error_code(), Some("storage_unavailable"));
    // Nothing written, nothing called: no saga, no entry on either side.
    assert!(system.sagas().await.is_empty());
    let books = system.books().await;
    assert_eq!(books.external.entries.len(), 0);
    assert_eq!(books.ledger.entries.len(), 0);
    // A read-only disk is refused the same way.
    set_disk(&system, &system.coordinator, DiskState::ReadOnly).await;
    let (status, answer) = system.transfer("k-full", 0, 100).await;
    assert_eq!(
        (status, answer.error_code()),
        (503, Some("storage_unavailable"))
    );
    // Space back: the same key goes through, once.
    set_disk(&system, &system.coordinator, DiskState::Ok).await;
    let (status, answer) = system.transfer("k-full", 0, 100).await;
    assert_eq!(status, 200, "{answer:?}");
    assert_eq!(answer.view().status, ClientStatus::Completed);
    let metrics = system
        .http
        .get(system.url(&system.coordinator, routes::METRICS))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    assert!(
        metrics.contains("bank_store_writes_refused_total{service=\"coordinator\"} 2"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_at_the_ledger_leaves_the_saga_pending_until_space_returns() {
    let system = System::start(Options::default()).await;
    set_disk(&system, &system.ledger, DiskState::Full).await;
    // The ledger refuses a credit directly: 503, nothing recorded.
    let credit = json!({"transfer_id": "t-direct", "user_id": "u-1", "amount_cents": 5});
    let response = system
        .http
        .post(system.url(&system.ledger, routes::CREDITS))
        .json(&credit)
        .send()
        .await
        .expect("credit");
    assert_eq!(response.status().as_u16(), 503);
    let body: serde_json::Value = response.json().await.expect("JSON error");
    assert_eq!(body["error"]["code"], "storage_unavailable", "{body}");
    // Through the coordinator: the debit applies, the credit cannot, so the answer is
    // pending (an unknown credit is retried, never reversed).
    let (status, answer) = system.transfer("k-ledger", 1, 700).await;
    assert_eq!(status, 202, "{answer:?}");
    let id = answer.view().transfer_id.to_string();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(system.saga_state(&id).await, Some(SagaState::Debited));
    let books = system.books().await;
    assert_eq!(
        books.ledger.entries.len(),
        0,
        "a refused write left an entry"
    );
    set_disk(&system, &system.ledger, DiskState::Ok).await;
    system
        .wait_state(&id, SagaState::Completed, Duration::from_secs(30))
        .await;
    let books = system.books().await;
    assert_eq!(books.ledger_net_credit(&id), 700);
    assert_eq!(books.external_net_debit(&id), 700);
    assert_eq!(books.total(), system.initial_total());
}
