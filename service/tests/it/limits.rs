//! Every limit of the services at its edge (docs/limits.md): the largest input it takes is
//! served, one more is refused with the contract's error and changes nothing.

use crate::support::{Options, System};
use serde_json::{json, Value};
use service::contract::routes;
use service::ids::{IdempotencyKey, UserId};
use service::institution::MAX_SEED_ACCOUNTS;
use service::json_body::{MAX_ADMIN_BODY_BYTES, MAX_BODY_BYTES};
use service::knobs::{MAX_CPU_BURN_US, MAX_SERVICE_TIME_MS};
use service::money::AmountCents;

/// `value`'s JSON text padded with spaces after its last field to exactly `bytes` bytes.
fn padded(value: &Value, bytes: usize) -> Vec<u8> {
    let text = value.to_string();
    let (head, brace) = text.split_at(text.len() - 1);
    let pad = bytes - text.len();
    format!("{head}{}{brace}", " ".repeat(pad)).into_bytes()
}

async fn send(
    system: &System,
    method: reqwest::Method,
    url: String,
    key: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut request = system
        .http
        .request(method, url)
        .header("content-type", "application/json")
        .body(body);
    if let Some(key) = key {
        request = request.header(routes::IDEMPOTENCY_KEY_HEADER, key);
    }
    let response = request.send().await.expect("an answer");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON answer"))
}

fn code(answer: &Value) -> &str {
    answer["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_body_at_its_limit_is_read_and_one_byte_more_is_413() {
    let system = System::start(Options::default()).await;
    let transfers = system.url(&system.coordinator, routes::TRANSFERS);
    let request = json!({"user_id": "u-0", "external_account_id": "a-0", "amount_cents": 5});
    let over = padded(&request, MAX_BODY_BYTES + 1);
    let (status, answer) = send(
        &system,
        reqwest::Method::POST,
        transfers.clone(),
        Some("k"),
        over,
    )
    .await;
    assert_eq!((status, code(&answer)), (413, "body_too_large"), "{answer}");
    assert!(
        system.sagas().await.is_empty(),
        "a refused body wrote a saga"
    );
    let at = padded(&request, MAX_BODY_BYTES);
    let (status, answer) = send(&system, reqwest::Method::POST, transfers, Some("k"), at).await;
    assert_eq!(status, 200, "{answer}");

    // Admin routes take bigger bodies: seeding accounts.
    let accounts = system.url(&system.external, routes::ADMIN_ACCOUNTS);
    let seed = json!({"accounts": [{"account_id": "big-1", "balance_cents": 1}]});
    let over = padded(&seed, MAX_ADMIN_BODY_BYTES + 1);
    let (status, answer) = send(&system, reqwest::Method::POST, accounts.clone(), None, over).await;
    assert_eq!((status, code(&answer)), (413, "body_too_large"), "{answer}");
    let at = padded(&seed, MAX_ADMIN_BODY_BYTES);
    let (status, answer) = send(&system, reqwest::Method::POST, accounts, None, at).await;
    assert_eq!(
        (status, answer["created"].as_u64()),
        (201, Some(1)),
        "{answer}"
    );
}

#[tokio::test]
async fn one_seeding_call_creates_at_most_max_seed_accounts() {
    let system = System::start(Options::default()).await;
    let url = system.url(&system.ledger, routes::ADMIN_ACCOUNTS);
    let accounts = |n: usize| {
        let list: Vec<Value> = (0..n)
            .map(|i| json!({"account_id": format!("s-{i}"), "balance_cents": 0}))
            .collect();
        json!({ "accounts": list }).to_string().into_bytes()
    };
    let (status, answer) = send(
        &system,
        reqwest::Method::POST,
        url.clone(),
        None,
        accounts(MAX_SEED_ACCOUNTS + 1),
    )
    .await;
    assert_eq!(
        (status, code(&answer)),
        (400, "too_many_accounts"),
        "{answer}"
    );
    let totals: Value = system
        .get_json(system.url(&system.ledger, routes::ADMIN_TOTALS))
        .await;
    assert_eq!(
        totals["accounts"], system.users,
        "a refused call created accounts"
    );
    let (status, answer) = send(
        &system,
        reqwest::Method::POST,
        url,
        None,
        accounts(MAX_SEED_ACCOUNTS),
    )
    .await;
    assert_eq!(
        (status, answer["created"].as_u64()),
        (201, Some(MAX_SEED_ACCOUNTS as u64)),
        "{answer}"
    );
}

#[tokio::test]
async fn an_amount_at_the_ceiling_is_read_and_one_cent_more_is_400() {
    let system = System::start(Options::default()).await;
    let ceiling = AmountCents::MAX_TRANSFER.get();
    let over = json!({"user_id": "u-0", "external_account_id": "a-0", "amount_cents": ceiling + 1});
    let (status, answer) = system.post_transfer(Some("k-over"), &over).await;
    assert_eq!((status, code(&answer)), (400, "invalid_amount"), "{answer}");
    // The ceiling is a valid amount: the user's balance is what refuses it.
    let at = json!({"user_id": "u-0", "external_account_id": "a-0", "amount_cents": ceiling});
    let (status, answer) = system.post_transfer(Some("k-at"), &at).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (422, Some("failed")),
        "{answer}"
    );
    assert_eq!(answer["reason"], "insufficient_funds", "{answer}");
}

#[tokio::test]
async fn ids_and_keys_at_their_longest_are_read_and_one_more_is_400() {
    let system = System::start(Options::default()).await;
    let key = "k".repeat(IdempotencyKey::MAX_LEN + 1);
    let (status, answer) = system.transfer(&key, 0, 5).await;
    assert_eq!(
        (status, answer.error_code()),
        (400, Some("invalid_idempotency_key"))
    );
    let key = "k".repeat(IdempotencyKey::MAX_LEN);
    let (status, answer) = system.transfer(&key, 0, 5).await;
    assert_eq!(status, 200, "{answer:?}");

    let url = system.url(&system.ledger, routes::ADMIN_ACCOUNTS);
    let seed = |id: String| {
        json!({"accounts": [{"account_id": id, "balance_cents": 0}]})
            .to_string()
            .into_bytes()
    };
    let (status, answer) = send(
        &system,
        reqwest::Method::POST,
        url.clone(),
        None,
        seed("u".repeat(UserId::MAX_LEN + 1)),
    )
    .await;
    assert_eq!((status, code(&answer)), (400, "invalid_id"), "{answer}");
    let (status, answer) = send(
        &system,
        reqwest::Method::POST,
        url,
        None,
        seed("u".repeat(UserId::MAX_LEN)),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
}

#[tokio::test]
async fn a_knob_at_its_ceiling_is_taken_and_one_more_is_400() {
    let system = System::start(Options::default()).await;
    let url = system.url(&system.external, routes::ADMIN_KNOBS);
    let (status, answer) = system
        .put_json(
            url.clone(),
            &json!({"service_time_ms": MAX_SERVICE_TIME_MS + 1}),
        )
        .await;
    assert_eq!((status, code(&answer)), (400, "invalid_knob"), "{answer}");
    let (status, answer) = system
        .put_json(
            url.clone(),
            &json!({"service_jitter_ms": MAX_SERVICE_TIME_MS}),
        )
        .await;
    assert_eq!(
        (status, answer["service_jitter_ms"].as_u64()),
        (200, Some(MAX_SERVICE_TIME_MS)),
        "{answer}"
    );
    let (status, answer) = system.put_json(url, &json!({"service_jitter_ms": 0})).await;
    assert_eq!(status, 200, "{answer}");
    // The coordinator's knobs, the CPU burn and the stall alike.
    let url = system.url(&system.coordinator, routes::ADMIN_KNOBS);
    let (status, answer) = system
        .put_json(url.clone(), &json!({"cpu_burn_us": MAX_CPU_BURN_US + 1}))
        .await;
    assert_eq!((status, code(&answer)), (400, "invalid_knob"), "{answer}");
    let (status, answer) = system
        .put_json(url.clone(), &json!({"stall_us": MAX_CPU_BURN_US + 1}))
        .await;
    assert_eq!((status, code(&answer)), (400, "invalid_knob"), "{answer}");
    let (status, answer) = system
        .put_json(url.clone(), &json!({"cpu_burn_us": MAX_CPU_BURN_US}))
        .await;
    assert_eq!(
        (status, answer["cpu_burn_us"].as_u64()),
        (200, Some(MAX_CPU_BURN_US)),
        "{answer}"
    );
    let (status, answer) = system.put_json(url, &json!({"cpu_burn_us": 0})).await;
    assert_eq!(
        (status, answer["cpu_burn_us"].as_u64()),
        (200, Some(0)),
        "{answer}"
    );
}
