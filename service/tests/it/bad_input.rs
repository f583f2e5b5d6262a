//! Bad input gets a 4xx with `{"error":{"code","message"}}` and changes nothing. Each case is
//! its own test; each checks the code and that no saga, entry or transfer was written.

//! Valid requests are built from the contract's types; the bodies here that are built with
//! `json!` or by hand are wrong on purpose.

use crate::support::{Options, System};
use serde_json::{json, Value};
use service::contract::{routes, DebitRequest};
use service::knobs::FaultKnobs;
use service::money::AmountCents;

async fn assert_rejected(system: &System, status: u16, body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!((400..500).contains(&status), "{status} {body}");
    assert!(system.sagas().await.is_empty(), "a saga was written");
    let books = system.books().await;
    assert!(books.external.entries.is_empty());
    assert!(books.ledger.entries.is_empty());
    assert_eq!(books.total(), system.initial_total());
}

fn transfer(user: &str, account: &str, amount: Value) -> Value {
    json!({"user_id": user, "external_account_id": account, "amount_cents": amount})
}

async fn raw(system: &System, key: Option<&str>, body: Vec<u8>) -> (u16, Value) {
    let mut request = system
        .http
        .post(system.url(&system.coordinator, routes::TRANSFERS))
        .header("content-type", "application/json")
        .body(body);
    if let Some(key) = key {
        request = request.header(routes::IDEMPOTENCY_KEY_HEADER, key);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON error body"))
}

#[tokio::test]
async fn malformed_json_is_400() {
    let system = System::start(Options::default()).await;
    let (status, body) = raw(&system, Some("k"), b"{\"user_id\": ".to_vec()).await;
    assert_eq!(status, 400);
    assert_rejected(&system, status, &body, "malformed_json").await;
}

#[tokio::test]
async fn missing_field_is_400() {
    let system = System::start(Options::default()).await;
    let (status, body) = system
        .post_transfer(
            Some("k"),
            &json!({"user_id": "u-0", "external_account_id": "a-0"}),
        )
        .await;
    assert_eq!(status, 400);
    assert_rejected(&system, status, &body, "missing_field").await;
}

#[tokio::test]
async fn unknown_field_is_400() {
    let system = System::start(Options::default()).await;
    let mut request = transfer("u-0", "a-0", json!(5));
    request["amount"] = json!(5);
    let (status, body) = system.post_transfer(Some("k"), &request).await;
    assert_eq!(status, 400);
    assert_rejected(&system, status, &body, "unknown_field").await;
}

#[tokio::test]
async fn zero_amount_is_400() {
    let system = System::start(Options::default()).await;
    let (status, body) = system
        .post_transfer(Some("k"), &transfer("u-0", "a-0", json!(0)))
        .await;
    assert_rejected(&system, status, &body, "invalid_amount").await;
}

#[tokio::test]
async fn negative_amount_is_400() {
    let system = System::start(Options::default()).await;
    let (status, body) = system
        .post_transfer(Some("k"), &transfer("u-0", "a-0", json!(-10)))
        .await;
    assert_rejected(&system, status, &body, "invalid_amount").await;
}

#[tokio::test]
async fn fractional_amount_is_400() {
    let system = System::start(Options::default()).await;
    let (status, body) = system
        .post_transfer(Some("k"), &transfer("u-0", "a-0", json!(10.5)))
        .await;
    assert_rejected(&system, status, &body, "invalid_amount").await;
}

#[tokio::test]
async fn overflowing_amount_is_400() {
    let system = System::start(Options::default()).await;
    let body =
        br#"{"user_id":"u-0","external_account_id":"a-0","amount_cents":184467440737095516160}"#;
    let (status, answer) = raw(&system, Some("k"), body.to_vec()).await;
    assert_rejected(&system, status, &answer, "invalid_amount").await;
}

#[tokio::test]
async fn amount_as_string_is_400() {
    let system = System::start(Options::default()).await;
    let (status, body) = system
        .post_transfer(Some("k"), &transfer("u-0", "a-0", json!("10")))
        .await;
    assert_eq!(status, 400);
    assert_rejected(&system, status, &body, "invalid_field").await;
}

#[tokio::test]
async fn unknown_user_is_404() {
    let system = System::start(Options::default()).await;
    let (status, body) = system
        .post_transfer(Some("k"), &transfer("u-99", "a-0", json!(5)))
        .await;
    assert_eq!(status, 404);
    assert_rejected(&system, status, &body, "unknown_user").await;
}

#[tokio::test]
async fn unlinked_account_is_404() {
    let system = System::start(Options::default()).await;
    let (status, body) = system
        .post_transfer(Some("k"), &transfer("u-0", "a-1", json!(5)))
        .await;
    assert_eq!(status, 404);
    assert_rejected(&system, status, &body, "unknown_account").await;
}

#[tokio::test]
async fn oversized_body_is_413() {
    let system = System::start(Options::default()).await;
    let padding = "x".repeat(64 * 1024);
    let body = format!(
        r#"{{"user_id":"u-0","external_account_id":"a-0","amount_cents":5,"pad":"{padding}"}}"#
    );
    let (status, answer) = raw(&system, Some("k"), body.into_bytes()).await;
    assert_eq!(status, 413);
    assert_rejected(&system, status, &answer, "body_too_large").await;
}

#[tokio::test]
async fn missing_idempotency_key_is_400() {
    let system = System::start(Options::default()).await;
    let (status, body) = system
        .post_transfer(None, &transfer("u-0", "a-0", json!(5)))
        .await;
    assert_eq!(status, 400);
    assert_rejected(&system, status, &body, "missing_idempotency_key").await;
}

#[tokio::test]
async fn over_long_idempotency_key_is_400() {
    let system = System::start(Options::default()).await;
    let key = "k".repeat(129);
    let (status, body) = system
        .post_transfer(Some(&key), &transfer("u-0", "a-0", json!(5)))
        .await;
    assert_eq!(status, 400);
    assert_rejected(&system, status, &body, "invalid_idempotency_key").await;
}

#[tokio::test]
async fn reused_key_with_another_payload_is_409_and_changes_nothing() {
    let system = System::start(Options::default()).await;
    let (status, first) = system.transfer("k", 0, 500).await;
    assert_eq!(status, 200, "{first}");
    let before = system.books().await;
    let (status, body) = system.transfer("k", 0, 501).await;
    assert_eq!(status, 409);
    assert_eq!(body.error_code(), Some("idempotency_key_reused"));
    let after = system.books().await;
    assert_eq!(before.external, after.external);
    assert_eq!(before.ledger, after.ledger);
    assert_eq!(system.sagas().await.len(), 1);
}

#[tokio::test]
async fn institutions_reject_bad_input_without_effect() {
    let system = System::start(Options::default()).await;
    let cases = [
        (
            system.url(&system.external, routes::DEBITS),
            json!({"transfer_id": "t-1", "external_account_id": "a-0", "amount_cents": -1}),
            400,
            "invalid_amount",
        ),
        (
            system.url(&system.external, routes::DEBITS),
            json!({"transfer_id": "t-1", "external_account_id": "nobody", "amount_cents": 1}),
            404,
            "unknown_account",
        ),
        (
            system.url(&system.external, routes::DEBITS),
            json!({"transfer_id": "bad id", "external_account_id": "a-0", "amount_cents": 1}),
            400,
            "invalid_id",
        ),
        (
            system.url(&system.ledger, routes::CREDITS),
            json!({"transfer_id": "t-1", "user_id": "nobody", "amount_cents": 1}),
            404,
            "unknown_user",
        ),
        (
            system.url(&system.ledger, routes::CREDITS),
            json!({"transfer_id": "t-1", "user_id": "u-0"}),
            400,
            "missing_field",
        ),
    ];
    for (url, request, want_status, want_code) in cases {
        let response = system
            .http
            .post(&url)
            .json(&request)
            .send()
            .await
            .expect("post");
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("json");
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (want_status, Some(want_code)),
            "{url} {request}"
        );
    }
    // Same transfer id, another amount: 409, the first debit untouched.
    let debit = |amount: u64| DebitRequest {
        transfer_id: "t-2".into(),
        external_account_id: "a-0".into(),
        amount_cents: AmountCents::new(amount).into(),
    };
    let url = system.url(&system.external, routes::DEBITS);
    let first = system
        .http
        .post(&url)
        .json(&debit(10))
        .send()
        .await
        .expect("post");
    assert_eq!(first.status(), 200);
    let second = system
        .http
        .post(&url)
        .json(&debit(11))
        .send()
        .await
        .expect("post");
    assert_eq!(second.status(), 409);
    let books = system.books().await;
    assert_eq!(books.external_net_debit("t-2"), 10);
    assert_eq!(books.ledger.entries.len(), 0);
    // Knobs out of range are refused and leave the knobs as they were.
    let (status, body) = system
        .put_json(
            system.url(&system.ledger, routes::ADMIN_KNOBS),
            &json!({"error_before_rate": 1.5}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_knob"))
    );
    let knobs: FaultKnobs = system
        .get_json(system.url(&system.ledger, routes::ADMIN_KNOBS))
        .await;
    assert_eq!(knobs, FaultKnobs::default());
}

#[tokio::test]
async fn settings_patches_name_what_is_wrong_and_change_nothing() {
    use service::ledger_policy::LedgerPolicy;
    let system = System::start(Options::default()).await;
    let knobs_url = system.url(&system.external, routes::ADMIN_KNOBS);
    let policy_url = system.url(&system.ledger, routes::ADMIN_POLICY);
    let cases = [
        (&knobs_url, json!({"error_rate": 0.5}), "unknown_field"),
        (
            &knobs_url,
            json!({"service_time_ms": "slow"}),
            "invalid_field",
        ),
        (
            &knobs_url,
            json!({"service_time_ms": 600_000}),
            "invalid_knob",
        ),
        (&knobs_url, json!([0.5]), "invalid_field"),
        (
            &policy_url,
            json!({"rate_limit_per_user_per_s": 0}),
            "invalid_policy",
        ),
        (
            &policy_url,
            json!({"antifraud_refusal_rate": -0.1}),
            "invalid_policy",
        ),
        (&policy_url, json!({"antifraud": true}), "unknown_field"),
    ];
    for (url, patch, code) in cases {
        let (status, body) = system.put_json(url.clone(), &patch).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some(code)),
            "{url} {patch}: {body}"
        );
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{body}");
    }
    let knobs: FaultKnobs = system.get_json(knobs_url.clone()).await;
    assert_eq!(
        knobs,
        FaultKnobs::default(),
        "a refused patch changed nothing"
    );

    // A patch changes only what it names, and `null` turns an optional rule off.
    let (status, _) = system
        .put_json(policy_url.clone(), &json!({"rate_limit_per_user_per_s": 5}))
        .await;
    assert_eq!(status, 200);
    let (status, _) = system
        .put_json(policy_url.clone(), &json!({"antifraud_refusal_rate": 0.25}))
        .await;
    assert_eq!(status, 200);
    let policy: LedgerPolicy = system.get_json(policy_url.clone()).await;
    assert_eq!(policy.rate_limit_per_user_per_s, Some(5));
    assert_eq!(policy.antifraud_refusal_rate, 0.25);
    let (status, _) = system
        .put_json(
            policy_url.clone(),
            &json!({"rate_limit_per_user_per_s": null}),
        )
        .await;
    assert_eq!(status, 200);
    let policy: LedgerPolicy = system.get_json(policy_url).await;
    assert_eq!(policy.rate_limit_per_user_per_s, None);
}

#[tokio::test]
async fn an_unknown_path_or_method_is_a_json_error_on_every_service() {
    let system = System::start(Options::default()).await;
    for service in [&system.external, &system.ledger, &system.coordinator] {
        for (method, route, status, code) in [
            (reqwest::Method::GET, "/debits/", 404, "unknown_route"),
            (
                reqwest::Method::POST,
                "/no-such-route",
                404,
                "unknown_route",
            ),
            (
                reqwest::Method::DELETE,
                routes::HEALTHZ,
                405,
                "method_not_allowed",
            ),
        ] {
            let response = system
                .http
                .request(method, system.url(service, route))
                .send()
                .await
                .expect("request");
            let answered = response.status().as_u16();
            let body: Value = response.json().await.expect("a JSON error body");
            assert_eq!(answered, status, "{} {route}: {body}", service.name);
            assert_rejected(&system, answered, &body, code).await;
        }
    }
}
