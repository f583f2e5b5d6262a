//! Following the books and the saga log by pages (`GET /admin/dump?after_seq=…`,
//! `GET /admin/sagas?after_change=…`): every entry once, every record and saga as it is now
//! after each change, and a bad query refused with a JSON body.

use crate::support::{args, Options, System};
use service::contract::{
    routes, DumpPage, EntryKind, SagaPage, SagaState, TransferStatus, DUMP_PAGE_MAX,
};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// Follows the external institution's dump one entry and one record a page, to the end.
async fn follow_dump(system: &System, cursor: (i64, i64)) -> (Vec<DumpPage>, (i64, i64)) {
    let mut pages = Vec::new();
    let (mut seq, mut change) = cursor;
    loop {
        let url = system.url(&system.external, routes::ADMIN_DUMP)
            + &format!("?after_seq={seq}&after_change={change}&limit=1");
        let page: DumpPage = system.get_json(url).await;
        (seq, change) = (page.next.after_seq, page.next.after_change);
        let more = page.more;
        pages.push(page);
        if !more {
            return (pages, (seq, change));
        }
    }
}

#[tokio::test]
async fn pages_give_each_entry_once_and_each_record_again_after_it_changes() {
    // The ledger refuses every credit: each transfer is debited, then reversed.
    let system = System::start(Options {
        ledger_args: args(&["--antifraud-max-amount-cents", "1"]),
        ..Options::default()
    })
    .await;
    let (status, body) = system.transfer("k-1", 0, 500).await;
    assert_eq!(status, 422, "{body}");
    let first = body.view().transfer_id;
    system
        .wait_state(first.as_str(), SagaState::Reversed, WAIT)
        .await;
    let (pages, cursor) = follow_dump(&system, (0, 0)).await;
    let entries: Vec<_> = pages.iter().flat_map(|p| &p.entries).collect();
    let kinds: Vec<_> = entries.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [EntryKind::Debit, EntryKind::Reversal]);
    assert!(entries.windows(2).all(|w| w[0].seq < w[1].seq));
    // The record was written twice (debited, then reversed) and is given as it is now.
    let records: Vec<_> = pages.iter().flat_map(|p| &p.transfers).collect();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].status, TransferStatus::Reversed);

    // Nothing new: an empty page, the same cursor.
    let (pages, again) = follow_dump(&system, cursor).await;
    assert_eq!(again, cursor);
    assert!(pages
        .iter()
        .all(|p| p.entries.is_empty() && p.transfers.is_empty()));

    // A second transfer: only its own entries and record come after the cursor.
    let (status, body) = system.transfer("k-2", 1, 700).await;
    assert_eq!(status, 422, "{body}");
    let second = body.view().transfer_id;
    system
        .wait_state(second.as_str(), SagaState::Reversed, WAIT)
        .await;
    let (pages, _) = follow_dump(&system, cursor).await;
    let ids: Vec<_> = pages
        .iter()
        .flat_map(|p| p.entries.iter().map(|e| e.transfer_id.clone()))
        .chain(
            pages
                .iter()
                .flat_map(|p| p.transfers.iter().map(|t| t.transfer_id.clone())),
        )
        .collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert!(ids.iter().all(|id| id == second.as_str()), "{ids:?}");

    // The saga log by pages: each saga once, in its final state, in the order of its last
    // write; then nothing after the last change.
    let url = |after: i64| {
        system.url(&system.coordinator, routes::ADMIN_SAGAS) + &format!("?after_change={after}")
    };
    let page: SagaPage = system.get_json(url(0)).await;
    let states: Vec<_> = page
        .sagas
        .iter()
        .map(|s| (s.transfer_id.as_str().to_owned(), s.state))
        .collect();
    assert_eq!(
        states,
        [
            (first.as_str().to_owned(), SagaState::Reversed),
            (second.as_str().to_owned(), SagaState::Reversed)
        ]
    );
    assert!(!page.more);
    let rest: SagaPage = system.get_json(url(page.next_change)).await;
    assert!(rest.sagas.is_empty() && rest.next_change == page.next_change);
}

#[tokio::test]
async fn a_bad_page_query_is_a_400_with_a_json_body() {
    let system = System::start(Options::default()).await;
    let dump = system.url(&system.external, routes::ADMIN_DUMP);
    let sagas = system.url(&system.coordinator, routes::ADMIN_SAGAS);
    let at_limit = format!("{dump}?limit={DUMP_PAGE_MAX}");
    let page: DumpPage = system.get_json(at_limit).await;
    assert!(!page.more);
    for url in [
        format!("{dump}?limit=0"),
        format!("{dump}?limit={}", DUMP_PAGE_MAX + 1),
        format!("{dump}?after_seq=x"),
        format!("{dump}?after=3"),
        format!("{sagas}?limit={}", DUMP_PAGE_MAX + 1),
        format!("{sagas}?after_change=-"),
    ] {
        let answer = system.http.get(&url).send().await.expect("answer");
        assert_eq!(answer.status().as_u16(), 400, "{url}");
        let body: serde_json::Value = answer.json().await.expect("a JSON body");
        assert_eq!(body["error"]["code"], "invalid_query", "{url}: {body}");
    }
}
