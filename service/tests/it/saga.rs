//! The saga design's scenarios: happy path, refusals, timeouts, lost answers, replays.

use crate::support::{args, assert_books_agree, Options, System};
use service::contract::{
    routes, ClientStatus, DebitRequest, EntryKind, InFlight, SagaState, TransferRecord,
    TransferStatus,
};
use service::knobs::{FaultKnobs, LostAnswer};
use service::money::AmountCents;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn happy_path_debits_and_credits_once() {
    let system = System::start(Options::default()).await;
    let (status, body) = system.transfer("k-1", 0, 2_500).await;
    assert_eq!(status, 200, "{body}");
    let view = body.view();
    assert_eq!(view.status, ClientStatus::Completed);
    let id = view.transfer_id.as_str();
    let books = system.books().await;
    assert_eq!(books.external_net_debit(id), 2_500);
    assert_eq!(books.ledger_net_credit(id), 2_500);
    assert_books_agree(&system.sagas().await, &books, system.initial_total());

    // Each institution answers for the transfer id, and 404 for one it has never seen.
    let debit = system.record(&system.external, routes::DEBIT, id).await;
    assert_eq!(debit.status, TransferStatus::Debited);
    let credit = system.record(&system.ledger, routes::CREDIT, id).await;
    assert_eq!(credit.status, TransferStatus::Credited);
    let unknown: serde_json::Value = system
        .get_json(system.url(
            &system.ledger,
            &routes::with_transfer_id(routes::CREDIT, "t-unknown"),
        ))
        .await;
    assert_eq!(unknown["error"]["code"], "unknown_transfer");
}

#[tokio::test]
async fn insufficient_funds_fails_with_nothing_applied() {
    let system = System::start(Options::default()).await;
    let (status, body) = system.transfer("k-1", 1, 1_000_000).await;
    assert_eq!(status, 422, "{body}");
    let view = body.view();
    assert_eq!(view.status, ClientStatus::Failed);
    assert_eq!(view.reason.as_deref(), Some("insufficient_funds"));
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
    let view = body.view();
    assert_eq!(view.status, ClientStatus::Failed);
    assert_eq!(view.reason.as_deref(), Some("antifraud"));
    let id = view.transfer_id.as_str();
    system.wait_state(id, SagaState::Reversed, WAIT).await;
    let books = system.books().await;
    assert_eq!(books.entries(&books.external, id, EntryKind::Debit), 1);
    assert_eq!(books.entries(&books.external, id, EntryKind::Reversal), 1);
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
    let view = body.view();
    assert_eq!(view.status, ClientStatus::Pending);
    assert_eq!(view.state, Some(SagaState::Debited));
    let id = view.transfer_id.as_str();
    system.wait_state(id, SagaState::Completed, WAIT).await;
    let books = system.books().await;
    assert_eq!(
        books.entries(&books.ledger, id, EntryKind::Credit),
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
    system.set_knobs(&system.ledger, lose_answers()).await;
    let (status, body) = system.transfer("k-1", 0, 900).await;
    assert_eq!(status, 202, "{body}");
    let id = body.view().transfer_id.to_string();
    system
        .set_knobs(&system.ledger, FaultKnobs::default())
        .await;
    system.wait_state(&id, SagaState::Completed, WAIT).await;
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
    system.set_knobs(&system.external, fail_before_work()).await;
    let (status, body) = system.transfer("k-1", 2, 1_200).await;
    assert_eq!(status, 202, "{body}");
    let view = body.view();
    assert_eq!(view.state, Some(SagaState::Started));
    let id = view.transfer_id.to_string();
    system
        .set_knobs(&system.external, FaultKnobs::default())
        .await;
    system.wait_state(&id, SagaState::Failed, WAIT).await;
    let books = system.books().await;
    assert_eq!(
        books.transfer_status(&books.external, &id),
        Some(TransferStatus::Tombstone)
    );

    // The original debit, delayed in the network, arrives now: refused by the tombstone.
    let late = system
        .http
        .post(system.url(&system.external, routes::DEBITS))
        .json(&DebitRequest {
            transfer_id: id.clone(),
            external_account_id: "a-2".into(),
            amount_cents: AmountCents::new(1_200).into(),
        })
        .send()
        .await
        .expect("late debit");
    assert_eq!(late.status(), 422);
    let record: TransferRecord = late.json().await.expect("a transfer record");
    assert_eq!(record.status, TransferStatus::Tombstone);
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
    let drop_answers = FaultKnobs {
        error_after_mode: LostAnswer::Drop,
        ..lose_answers()
    };
    system.set_knobs(&system.external, drop_answers).await;
    let (status, body) = system.transfer("k-1", 3, 800).await;
    // The abort (a reversal) also loses its answer while the knob is on: pending.
    assert_eq!(status, 202, "{body}");
    let id = body.view().transfer_id.to_string();
    system
        .set_knobs(&system.external, FaultKnobs::default())
        .await;
    system.wait_state(&id, SagaState::Failed, WAIT).await;
    let books = system.books().await;
    assert_eq!(books.entries(&books.external, &id, EntryKind::Debit), 1);
    assert_eq!(books.entries(&books.external, &id, EntryKind::Reversal), 1);
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
        .map(|(_, body)| body.view().transfer_id)
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
    assert_eq!(
        books.entries(&books.external, id.as_str(), EntryKind::Debit),
        1
    );
    assert_eq!(
        books.entries(&books.ledger, id.as_str(), EntryKind::Credit),
        1
    );
    assert_books_agree(&sagas, &books, system.initial_total());
}

/// Knobs that apply every operation and then lose its answer (as a 500).
/// `GET /admin/in-flight` (kept in memory, not summed over the log) agrees with the saga
/// log while a saga is open, after the coordinator restarts, and once everything is final.
#[tokio::test]
async fn money_in_flight_follows_the_saga_log_across_a_restart() {
    let mut system = System::start(Options::default()).await;
    let (status, body) = system.transfer("k-1", 0, 1_000).await;
    assert_eq!(status, 200, "{body}");
    // Credits fail before any work: the second saga stays `debited`, retried in the background.
    system.set_knobs(&system.ledger, fail_before_work()).await;
    let (status, body) = system.transfer("k-2", 1, 2_500).await;
    assert_eq!(status, 202, "{body}");

    let expected = InFlight {
        sagas: 1,
        amount_cents: 2_500,
        begun_sagas: 2,
        begun_amount_cents: 3_500,
    };
    assert_eq!(in_flight(&system).await, expected);
    assert_eq!(in_flight_of_the_log(&system.sagas().await), expected);

    system.restart_coordinator();
    assert_eq!(in_flight(&system).await, expected, "read back from the log");

    system
        .set_knobs(&system.ledger, FaultKnobs::default())
        .await;
    let sagas = system.wait_all_final(WAIT).await;
    let after = InFlight {
        sagas: 0,
        amount_cents: 0,
        ..expected
    };
    assert_eq!(in_flight_of_the_log(&sagas), after);
    assert_eq!(in_flight(&system).await, after);
}

/// `GET /admin/in-flight` at the coordinator.
async fn in_flight(system: &System) -> InFlight {
    let url = system.url(&system.coordinator, routes::ADMIN_IN_FLIGHT);
    system.get_json(url).await
}

/// The money in flight as the saga log says it, summed row by row.
fn in_flight_of_the_log(sagas: &[service::contract::Saga]) -> InFlight {
    let open = sagas.iter().filter(|s| !s.state.is_final());
    InFlight {
        sagas: open.clone().count() as u64,
        amount_cents: open.map(|s| s.amount_cents.get()).sum(),
        begun_sagas: sagas.len() as u64,
        begun_amount_cents: sagas.iter().map(|s| s.amount_cents.get()).sum(),
    }
}

/// Every call answered 500 before any work is done.
fn fail_before_work() -> FaultKnobs {
    FaultKnobs {
        error_before_rate: 1.0,
        ..FaultKnobs::default()
    }
}

fn lose_answers() -> FaultKnobs {
    FaultKnobs {
        error_after_rate: 1.0,
        ..FaultKnobs::default()
    }
}

/// Runs futures concurrently on the current task and collects their outputs in order.
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    futures_util::future::join_all(futures).await
}
