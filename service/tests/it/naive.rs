//! The naive design (the seed's) in the same scenarios: it loses or creates money. These
//! tests pass only while the naive design stays broken and the books show it.

use crate::support::{Options, System};
use service::knobs::FaultKnobs;
use std::time::{Duration, Instant};

/// Knobs that apply every operation and then lose its answer.
fn lose_answers() -> FaultKnobs {
    FaultKnobs {
        error_after_rate: 1.0,
        ..FaultKnobs::default()
    }
}

fn naive() -> Options {
    Options {
        design: "naive",
        ..Options::default()
    }
}

#[tokio::test]
async fn naive_loses_money_when_a_debit_answer_is_lost() {
    let system = System::start(naive()).await;
    system.set_knobs(&system.external, lose_answers()).await;
    let (status, body) = system.transfer("k-1", 0, 4_000).await;
    assert_eq!(
        status, 422,
        "naive treats the lost answer as a failure: {body}"
    );
    let books = system.books().await;
    assert_eq!(
        books.total(),
        system.initial_total() - 4_000,
        "the debit applied, nothing credited, nothing reversed: money lost"
    );
}

#[tokio::test]
async fn naive_creates_money_when_a_credit_answer_is_lost() {
    let system = System::start(naive()).await;
    system.set_knobs(&system.ledger, lose_answers()).await;
    let (status, body) = system.transfer("k-1", 0, 4_000).await;
    assert_eq!(status, 422, "{body}");
    // The in-memory reversal worker gives the debit back although the credit applied.
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let books = system.books().await;
        if books.external_total() == system.initial_total() {
            assert_eq!(books.ledger_total(), 4_000);
            assert_eq!(
                books.total(),
                system.initial_total() + 4_000,
                "money created"
            );
            return;
        }
        assert!(Instant::now() < until, "the naive reversal never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn naive_double_debits_a_retried_request() {
    // An impatient user repeats the request with the same key: the naive design has no
    // idempotency and moves the money twice.
    let system = System::start(naive()).await;
    let first = system.transfer("same-key", 1, 1_000).await;
    let second = system.transfer("same-key", 1, 1_000).await;
    assert_eq!((first.0, second.0), (200, 200));
    assert_ne!(first.1.view().transfer_id, second.1.view().transfer_id);
    let books = system.books().await;
    assert_eq!(books.ledger_total(), 2_000, "one request, two transfers");
}
