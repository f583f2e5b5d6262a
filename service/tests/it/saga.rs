//! The saga design's scenarios: happy path, refusals, timeouts, lost answers, replays.

use crate::support::{args, assert_books_agree, Options, System};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn happy_path_debits_and_credits_once() {
    let system = System::start(Options::default()).await;
    let (status, body) = system.transfer("k-1", 0, 2_500).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "completed");
    let id = body["transfer_id"].as_str().expect("id");
    let books = system.books().await;
    assert_eq!(books.external_net_debit(id), 2_500);
    assert_eq!(books.ledger_net_credit(id), 2_500);
    assert_books_agree(&system.sagas().await, &books, system.initial_total());

    // Each institution answers for the transfer id, and 404 for one it has never seen.
    let debit = system
        .get_json(format!("{}/debits/{id}", system.external.url))
        .await;
    assert_eq!(debit["status"], "debited");
    let credit = system
        .get_json(format!("{}/credits/{id}", system.ledger.url))
        .await;
    assert_eq!(credit["status"], "credited");
    let unknown = system
        .get_json(format!("{}/credits/t-unknown", system.ledger.url))
        .await;
    assert_eq!(unknown["error"]["code"], "unknown_transfer");
}

#[tokio::test]
async fn insufficient_funds_fails_with_nothing_applied() {
    let system = System::start(Options::default()).await;
    let (status, body) = system.transfer("k-1", 1, 1_000_000).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["status"], "failed");
    assert_eq!(body["reason"], "insufficient_funds");
    assert_books_agree(
        &system.sagas().await,
        &system.books().await,
        system.initial_total(),
    );
}

#[tokio::test]
async fn internal_refusal_reverses_the_debit() {
    let system = System::start(Options {
        ledger_args: args(&["--antifraud-max-amount-cents", "1000"]),
        ..Options::default()
    })
    .await;
    let (status, body) = system.transfer("k-1", 0, 5_000).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["status"], "failed");
    assert_eq!(body["reason"], "antifraud");
    let id = body["transfer_id"].as_str().expect("id");
    system.wait_state(id, "reversed", WAIT).await;
    let books = system.books().await;
    assert_eq!(books.entries(&books.external, id, "debit"), 1);
    assert_eq!(books.entries(&books.external, id, "reversal"), 1);
    assert_eq!(books.ledger_net_credit(id), 0);
    assert_books_agree(&system.sagas().await, &books, system.initial_total());
}

#[tokio::test]
async fn credit_timeout_is_retried_until_completed() {
    let system = System::start(Options {
        ledger_args: args(&["--service-time-ms", "400"]),
        coordinator_args: args(&["--deadline-ms", "150"]),
        ..Options::default()
    })
    .await;
    let (status, body) = system.transfer("k-1", 0, 700).await;
    assert_eq!(
        status, 202,
        "a credit slower than the deadline answers pending: {body}"
    );
    assert_eq!(body["status"], "pending");
    assert_eq!(body["state"], "debited");
    let id = body["transfer_id"].as_str().expect("id");
    system.wait_state(id, "completed", WAIT).await;
    let books = system.books().await;
    assert_eq!(
        books.entries(&books.ledger, id, "credit"),
        1,
        "retries never credit twice"
    );
    assert_books_agree(&system.sagas().await, &books, system.initial_total());
}

#[tokio::test]
async fn unheard_credit_is_not_reversed() {
    // The ledger applies the credit, then answers 500: the coordinator must retry the
    // credit (and be told "credited" by the replay), never reverse the debit.
    let system = System::start(Options::default()).await;
    system
        .set_knobs(&system.ledger, json!({"error_after_rate": 1.0}))
        .await;
    let (status, body) = system.transfer("k-1", 0, 900).await;
    assert_eq!(status, 202, "{body}");
    let id = body["transfer_id"].as_str().expect("id").to_owned();
    system
        .set_knobs(&system.ledger, json!({"error_after_rate": 0.0}))
        .await;
    system.wait_state(&id, "completed", WAIT).await;
    assert_books_agree(
        &system.sagas().await,
        &system.books().await,
        system.initial_total(),
    );
}

#[tokio::test]
async fn debit_timeout_is_aborted_and_the_late_debit_refused() {
    let system = System::start(Options::default()).await;
    // Nothing reaches the external side in time: its answer (for the debit and for the
    // abort) is an error, and whether the debit happened is unknown.
    system
        .set_knobs(&system.external, json!({"error_before_rate": 1.0}))
        .await;
    let (status, body) = system.transfer("k-1", 2, 1_200).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["state"], "started");
    let id = body["transfer_id"].as_str().expect("id").to_owned();
    system
        .set_knobs(&system.external, json!({"error_before_rate": 0.0}))
        .await;
    system.wait_state(&id, "failed", WAIT).await;
    let books = system.books().await;
    assert_eq!(
        books.transfer_status(&books.external, &id).as_deref(),
        Some("tombstone")
    );

    // The original debit, delayed in the network, arrives now: refused by the tombstone.
    let late = system
        .http
        .post(format!("{}/debits", system.external.url))
        .json(&json!({"transfer_id": id, "external_account_id": "a-2", "amount_cents": 1_200}))
        .send()
        .await
        .expect("late debit");
    assert_eq!(late.status(), 422);
    let record: serde_json::Value = late.json().await.expect("json");
    assert_eq!(record["status"], "tombstone");
    assert_books_agree(
        &system.sagas().await,
        &system.books().await,
        system.initial_total(),
    );
}

#[tokio::test]
async fn unheard_debit_is_aborted_by_reversal() {
    // The debit is applied but its answer is lost: the abort must reverse it.
    let system = System::start(Options::default()).await;
    system
        .set_knobs(
            &system.external,
            json!({"error_after_rate": 1.0, "error_after_mode": "drop"}),
        )
        .await;
    let (status, body) = system.transfer("k-1", 3, 800).await;
    let id = body["transfer_id"].as_str().expect("id").to_owned();
    // The abort (a reversal) also loses its answer while the knob is on: pending.
    assert_eq!(status, 202, "{body}");
    system
        .set_knobs(&system.external, json!({"error_after_rate": 0.0}))
        .await;
    system.wait_state(&id, "failed", WAIT).await;
    let books = system.books().await;
    assert_eq!(books.entries(&books.external, &id, "debit"), 1);
    assert_eq!(books.entries(&books.external, &id, "reversal"), 1);
    assert_books_agree(&system.sagas().await, &books, system.initial_total());
}

#[tokio::test]
async fn one_key_replayed_concurrently_moves_money_once() {
    let system = System::start(Options {
        ledger_args: args(&["--service-time-ms", "30"]),
        ..Options::default()
    })
    .await;
    let answers = futures_join_all((0..10).map(|_| system.transfer("same-key", 1, 333))).await;
    let ids: std::collections::HashSet<_> = answers
        .iter()
        .map(|(_, body)| body["transfer_id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(
        ids.len(),
        1,
        "every replay names the same transfer: {answers:?}"
    );
    for (status, body) in &answers {
        assert!(
            *status == 200 || *status == 202,
            "replay answered {status}: {body}"
        );
    }
    let sagas = system.wait_all_final(WAIT).await;
    assert_eq!(sagas.len(), 1);
    let id = ids.into_iter().next().expect("id");
    let books = system.books().await;
    assert_eq!(books.entries(&books.external, &id, "debit"), 1);
    assert_eq!(books.entries(&books.ledger, &id, "credit"), 1);
    assert_books_agree(&sagas, &books, system.initial_total());
}

/// Runs futures concurrently on the current task and collects their outputs in order.
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    futures_util::future::join_all(futures).await
}
