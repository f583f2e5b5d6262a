//! Shedding: past its limit on transfers in flight the coordinator refuses with 503
//! `overloaded` before writing anything, and what it admitted still finishes.

use crate::support::{args, assert_books_agree, Options, System};
use service::contract::ClientStatus;
use std::time::Duration;

#[tokio::test]
async fn past_the_limit_a_transfer_is_shed_with_nothing_written() {
    // Four places, and debits that take three seconds: every place stays taken while the
    // burst arrives, however slow the machine is at sending it.
    let system = System::start(Options {
        users: 12,
        coordinator_args: args(&["--max-in-flight", "4", "--deadline-ms", "8000"]),
        external_args: args(&["--service-time-ms", "3000"]),
        ..Options::default()
    })
    .await;
    let burst = (0..12).map(|user| {
        let system = &system;
        async move { system.transfer(&format!("k-{user}"), user, 1_000).await }
    });
    let answers = futures_util::future::join_all(burst).await;

    let admitted: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status != 503)
        .collect();
    let shed: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status == 503)
        .collect();
    assert_eq!(admitted.len(), 4, "{answers:?}");
    assert_eq!(shed.len(), 8, "{answers:?}");
    for (_, body) in &shed {
        assert_eq!(body.error_code(), Some("overloaded"), "{body}");
    }
    for (status, body) in &admitted {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body.view().status, ClientStatus::Completed);
    }
    // Nothing of the shed requests reached the saga log or the books.
    let sagas = system.wait_all_final(Duration::from_secs(20)).await;
    assert_eq!(
        sagas.len(),
        4,
        "one saga per admitted transfer, none for a shed one"
    );
    assert_books_agree(&sagas, &system.books().await, system.initial_total());

    // A shed request is safe to retry: the places are free again.
    let (status, body) = system.transfer("k-retry", 11, 1_000).await;
    assert_eq!(status, 200, "{body}");
}
