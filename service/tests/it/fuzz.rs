//! Property tests of the three services' inputs, over HTTP against real processes: every
//! route that takes a body, a header or an id, fed valid requests, near misses of them (a
//! field dropped, retyped or added, the JSON text spliced, a body past the limit) and
//! arbitrary bytes, with the idempotency key, the content type and the browser headers
//! varied too. Rules: never a 5xx (no fault is set while it runs, so a 5xx is a bug), every
//! 4xx that refuses the input is a JSON error body with a code and a message, and a refused
//! request changes nothing (the saga log, both books, the knobs, the policy and the disks
//! read the same before and after). An accepted request may change the state; an accepted
//! admin change is put back before the next case. At the end every service still answers.
//!
//! CI runs 256 cases; `FUZZ_CASES=N` runs more (as long runs by hand do). A case proptest
//! finds is kept in `tests/proptest-regressions/fuzz.txt` and run first from then on: the
//! first there is the first finding (a path no route serves, `GET /debits/`, answered 404
//! with no body; every service now answers `unknown_route` or `method_not_allowed`), the
//! second a body far past the admin limit, whose 413 the client may never read because the
//! server closes the connection while the client still writes (now written in the
//! contract, and checked here as a refusal that changed nothing).

use crate::support::{Options, System};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};
use service::contract::routes;
use service::json_body::{MAX_ADMIN_BODY_BYTES, MAX_BODY_BYTES};
use service::knobs::FaultKnobs;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Duration;

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256)
}

#[derive(Debug, Clone, Copy)]
enum Service {
    Coordinator,
    External,
    Ledger,
}

/// A route that takes input, with a valid body for it (`Null`: the route takes none).
#[derive(Debug, Clone)]
struct Route {
    service: Service,
    method: &'static str,
    route: &'static str,
    valid: Value,
}

impl Route {
    fn is_admin(&self) -> bool {
        self.route.starts_with("/admin/")
    }
}

fn user() -> impl Strategy<Value = usize> {
    // Mostly the four seeded users, sometimes one nobody knows.
    prop_oneof![4 => 0usize..4, 1 => 4usize..6]
}

fn amount() -> impl Strategy<Value = Value> {
    prop_oneof![
        8 => (1u64..5_000).prop_map(Value::from),
        1 => Just(json!(100_000_000_000u64)),
        1 => Just(json!(100_000_000_001u64)),
        1 => Just(json!(0)),
    ]
}

fn transfer_id() -> impl Strategy<Value = String> {
    "t-[a-z0-9]{1,8}"
}

/// Every route of the services that reads a body, a header or a path id.
fn route() -> impl Strategy<Value = Route> {
    let r = |service, method, route, valid: Value| Route {
        service,
        method,
        route,
        valid,
    };
    prop_oneof![
        4 => (user(), amount()).prop_map(move |(u, a)| r(
            Service::Coordinator,
            "POST",
            routes::TRANSFERS,
            json!({"user_id": format!("u-{u}"), "external_account_id": format!("a-{u}"),
                   "amount_cents": a})
        )),
        1 => Just(r(Service::Coordinator, "GET", routes::TRANSFER, Value::Null)),
        1 => user().prop_map(move |u| r(
            Service::Coordinator,
            "POST",
            routes::ADMIN_USERS,
            json!({"users": [{"user_id": format!("u-{u}"),
                              "external_account_id": format!("a-{u}")}]})
        )),
        1 => (transfer_id(), user(), amount()).prop_map(move |(t, u, a)| r(
            Service::External,
            "POST",
            routes::DEBITS,
            json!({"transfer_id": t, "external_account_id": format!("a-{u}"),
                   "amount_cents": a})
        )),
        1 => Just(r(Service::External, "POST", routes::REVERSE, Value::Null)),
        1 => Just(r(Service::External, "GET", routes::DEBIT, Value::Null)),
        1 => (transfer_id(), user(), amount()).prop_map(move |(t, u, a)| r(
            Service::Ledger,
            "POST",
            routes::CREDITS,
            json!({"transfer_id": t, "user_id": format!("u-{u}"), "amount_cents": a})
        )),
        1 => Just(r(Service::Ledger, "GET", routes::CREDIT, Value::Null)),
        1 => (0.0f64..1.5).prop_map(move |rate| r(
            Service::Ledger,
            "PUT",
            routes::ADMIN_POLICY,
            json!({"antifraud_refusal_rate": rate, "antifraud_max_amount_cents": 1000})
        )),
        1 => (prop_oneof![Just(Service::External), Just(Service::Ledger)], user(), amount())
            .prop_map(move |(s, u, a)| r(
                s,
                "POST",
                routes::ADMIN_ACCOUNTS,
                json!({"accounts": [{"account_id": format!("a-{u}"), "balance_cents": a}]})
            )),
        1 => (
            prop_oneof![Just(Service::External), Just(Service::Ledger)],
            0.0f64..1.5,
            0u64..70_000
        )
            .prop_map(move |(s, rate, ms)| r(
                s,
                "PUT",
                routes::ADMIN_KNOBS,
                json!({"error_before_rate": rate, "service_time_ms": ms,
                       "error_after_mode": "drop"})
            )),
        1 => (
            prop_oneof![
                Just(Service::Coordinator),
                Just(Service::External),
                Just(Service::Ledger)
            ],
            prop_oneof![Just("ok"), Just("full"), Just("read_only"), Just("fulll")]
        )
            .prop_map(move |(s, disk)| r(s, "PUT", routes::ADMIN_DISK, json!({ "disk": disk }))),
    ]
}

/// A JSON value in a field's place: the wrong type, out of range, or right.
fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        Just(json!(u64::MAX)),
        Just(json!(-1)),
        Just(json!(1.5)),
        "[a-z_-]{0,12}".prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        Just(json!("x".repeat(300))),
        Just(json!([])),
        Just(json!({})),
    ]
}

/// Text JSON and its readers find interesting, spliced into a valid body's text.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("\"".to_owned()),
        Just(",".to_owned()),
        Just("}".to_owned()),
        Just("{".to_owned()),
        Just("1e309".to_owned()),
        Just("-0".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("\\u0000".to_owned()),
        Just("\\ud800".to_owned()),
        "[0-9.eE+-]{1,8}",
        any::<String>(),
    ]
}

/// What is sent in place of the valid body.
#[derive(Debug, Clone)]
enum Body {
    Valid,
    DropField(prop::sample::Index),
    ReplaceField(prop::sample::Index, Value),
    AddField(String, Value),
    Splice(f64, usize, String),
    Bytes(Vec<u8>),
    Oversized,
    Empty,
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        5 => Just(Body::Valid),
        2 => any::<prop::sample::Index>().prop_map(Body::DropField),
        3 => (any::<prop::sample::Index>(), leaf()).prop_map(|(i, v)| Body::ReplaceField(i, v)),
        1 => ("[a-z_]{1,10}", leaf()).prop_map(|(k, v)| Body::AddField(k, v)),
        3 => (0.0f64..1.0, 0usize..6, fragment()).prop_map(|(a, c, f)| Body::Splice(a, c, f)),
        2 => proptest::collection::vec(any::<u8>(), 0..300).prop_map(Body::Bytes),
        1 => Just(Body::Oversized),
        1 => Just(Body::Empty),
    ]
}

/// The fields of `value` and of the objects in its arrays, as JSON pointers.
fn pointers(value: &Value, at: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let here = format!("{at}/{key}");
                out.push(here.clone());
                pointers(inner, &here, out);
            }
        }
        Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                pointers(inner, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn render(route: &Route, body: &Body) -> Option<Vec<u8>> {
    if route.valid.is_null() && matches!(body, Body::Valid | Body::Empty) {
        return None;
    }
    let mut value = route.valid.clone();
    let mut fields = Vec::new();
    pointers(&value, "", &mut fields);
    let text = match body {
        Body::Valid => value.to_string(),
        Body::DropField(i) if !fields.is_empty() => {
            let pointer: &String = i.get(&fields);
            let (parent, key) = pointer.rsplit_once('/').unwrap_or(("", pointer));
            if let Some(Value::Object(map)) = value.pointer_mut(parent) {
                map.remove(key);
            }
            value.to_string()
        }
        Body::ReplaceField(i, leaf) if !fields.is_empty() => {
            let pointer: &String = i.get(&fields);
            if let Some(slot) = value.pointer_mut(pointer) {
                *slot = leaf.clone();
            }
            value.to_string()
        }
        Body::AddField(key, leaf) => {
            if let Value::Object(map) = &mut value {
                map.insert(key.clone(), leaf.clone());
            }
            value.to_string()
        }
        Body::Splice(at, cut, piece) => {
            let chars: Vec<char> = value.to_string().chars().collect();
            let start = (((chars.len() as f64) * at) as usize).min(chars.len());
            let end = (start + cut).min(chars.len());
            chars[..start]
                .iter()
                .chain(piece.chars().collect::<Vec<_>>().iter())
                .chain(chars[end..].iter())
                .collect()
        }
        Body::Bytes(bytes) => return Some(bytes.clone()),
        Body::Oversized => {
            let limit = if route.is_admin() {
                MAX_ADMIN_BODY_BYTES
            } else {
                MAX_BODY_BYTES
            };
            return Some(format!("{{\"pad\":\"{}\"}}", "x".repeat(limit)).into_bytes());
        }
        Body::Empty | Body::DropField(_) | Body::ReplaceField(..) => String::new(),
    };
    Some(text.into_bytes())
}

/// The `Idempotency-Key` sent (the coordinator's transfers need one).
#[derive(Debug, Clone)]
enum Key {
    None,
    Fresh(String),
    /// One of a few keys used again and again: a reuse with another payload is a 409.
    Reused(u8),
    Raw(Vec<u8>),
    Long,
}

fn key() -> impl Strategy<Value = Key> {
    prop_oneof![
        1 => Just(Key::None),
        4 => "[A-Za-z0-9_.:-]{1,20}".prop_map(Key::Fresh),
        3 => (0u8..3).prop_map(Key::Reused),
        2 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Key::Raw),
        1 => Just(Key::Long),
    ]
}

/// The other headers: the content type, and a browser's marks (refused on admin routes).
#[derive(Debug, Clone)]
struct Headers {
    content_type: Option<&'static str>,
    browser: bool,
}

fn headers() -> impl Strategy<Value = Headers> {
    (
        prop_oneof![
            4 => Just(Some("application/json")),
            1 => Just(Some("application/json; charset=utf-8")),
            1 => Just(Some("text/plain")),
            1 => Just(None),
        ],
        prop::bool::weighted(0.1),
    )
        .prop_map(|(content_type, browser)| Headers {
            content_type,
            browser,
        })
}

/// The id in a route's path: a plausible one or any string, percent-encoded.
fn path_id() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => transfer_id(),
        2 => any::<String>(),
        1 => Just("x".repeat(500)),
    ]
    .prop_map(|id| {
        id.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    })
}

#[derive(Debug, Clone)]
struct Case {
    route: Route,
    body: Body,
    key: Key,
    headers: Headers,
    id: String,
}

fn case() -> impl Strategy<Value = Case> {
    (route(), body(), key(), headers(), path_id()).prop_map(|(route, body, key, headers, id)| {
        Case {
            route,
            body,
            key,
            headers,
            id,
        }
    })
}

impl System {
    fn process(&self, service: Service) -> &crate::support::ServiceProcess {
        match service {
            Service::Coordinator => &self.coordinator,
            Service::External => &self.external,
            Service::Ledger => &self.ledger,
        }
    }

    async fn raw_json(&self, service: Service, route: &str) -> Value {
        self.get_json(self.url(self.process(service), route)).await
    }

    /// Everything a request could change: the saga log, both books, every knob, the policy
    /// and every disk.
    async fn state(&self) -> Value {
        json!({
            "sagas": self.raw_json(Service::Coordinator, routes::ADMIN_SAGAS).await,
            "external": self.raw_json(Service::External, routes::ADMIN_DUMP).await,
            "ledger": self.raw_json(Service::Ledger, routes::ADMIN_DUMP).await,
            "external_knobs": self.raw_json(Service::External, routes::ADMIN_KNOBS).await,
            "ledger_knobs": self.raw_json(Service::Ledger, routes::ADMIN_KNOBS).await,
            "policy": self.raw_json(Service::Ledger, routes::ADMIN_POLICY).await,
            "disks": [
                self.raw_json(Service::Coordinator, routes::ADMIN_DISK).await,
                self.raw_json(Service::External, routes::ADMIN_DISK).await,
                self.raw_json(Service::Ledger, routes::ADMIN_DISK).await,
            ],
        })
    }

    /// Puts back the knobs, the policy and the disks an accepted admin change set.
    async fn heal(&self, policy: &Value) {
        for service in [Service::External, Service::Ledger] {
            let url = self.url(self.process(service), routes::ADMIN_KNOBS);
            let (status, body) = self.put_json(url, &FaultKnobs::default()).await;
            assert_eq!(status, 200, "{body}");
        }
        let url = self.url(&self.ledger, routes::ADMIN_POLICY);
        let (status, body) = self.put_json(url, policy).await;
        assert_eq!(status, 200, "{body}");
        for service in [Service::Coordinator, Service::External, Service::Ledger] {
            let url = self.url(self.process(service), routes::ADMIN_DISK);
            let (status, body) = self.put_json(url, &json!({"disk": "ok"})).await;
            assert_eq!(status, 200, "{body}");
        }
    }

    /// The answer's status and body; an error when the connection broke before an answer.
    async fn send(&self, case: &Case) -> Result<(u16, Vec<u8>), reqwest::Error> {
        let route = routes::with_transfer_id(case.route.route, &case.id);
        let url = self.url(self.process(case.route.service), &route);
        let method = reqwest::Method::from_bytes(case.route.method.as_bytes()).expect("a method");
        let mut request = self.http.request(method, url);
        if let Some(content_type) = case.headers.content_type {
            request = request.header("content-type", content_type);
        }
        if case.headers.browser {
            request = request
                .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64)")
                .header("origin", "https://example.com");
        }
        let key = match &case.key {
            Key::None => None,
            Key::Fresh(k) => Some(k.clone().into_bytes()),
            Key::Reused(n) => Some(format!("reused-{n}").into_bytes()),
            Key::Raw(bytes) => Some(bytes.clone()),
            Key::Long => Some(vec![b'k'; 129]),
        };
        if let Some(value) = key.and_then(|k| reqwest::header::HeaderValue::from_bytes(&k).ok()) {
            request = request.header(routes::IDEMPOTENCY_KEY_HEADER, value);
        }
        if let Some(body) = render(&case.route, &case.body) {
            request = request.body(body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await?.to_vec();
        Ok((status, bytes))
    }
}

/// One case: its answer obeys the rules, and `before` is the state after it.
async fn check(
    system: &System,
    case: &Case,
    before: &mut Value,
    policy: &Value,
    tally: &RefCell<BTreeMap<String, usize>>,
) -> Result<(), TestCaseError> {
    let (status, bytes) = match system.send(case).await {
        Ok(answer) => answer,
        Err(e) => {
            // A body far past the limit is answered 413 and the connection closed while the
            // client still writes: the client may see the connection break before it reads
            // the answer (as the contract says). Nothing else may break a connection.
            prop_assert!(
                matches!(case.body, Body::Oversized) && e.is_request(),
                "no answer: {}",
                e
            );
            *tally
                .borrow_mut()
                .entry("413 connection closed".to_owned())
                .or_default() += 1;
            prop_assert!(
                &system.state().await == before,
                "an oversized body changed the state"
            );
            return Ok(());
        }
    };
    let seen = |what: String| *tally.borrow_mut().entry(what).or_default() += 1;
    let text = String::from_utf8_lossy(&bytes);
    prop_assert!(status < 500, "answered {}: {}", status, text);
    let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let refused = (400..500).contains(&status) && answer.get("error").is_some();
    if refused {
        let code = answer["error"]["code"].as_str().unwrap_or_default();
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        prop_assert!(!code.is_empty() && !message.is_empty(), "{}", text);
        seen(format!("{status} {code}"));
        let after = system.state().await;
        prop_assert!(
            &after == before,
            "a refused request ({} {}) changed the state",
            status,
            code
        );
        return Ok(());
    }
    prop_assert!(
        status < 400 || answer.get("status").is_some(),
        "a {} that is neither an error body nor a record: {}",
        status,
        text
    );
    seen(format!(
        "{status} {}",
        answer["status"].as_str().unwrap_or("accepted")
    ));
    // Accepted (or a recorded refusal): the state moved on; let every saga finish and put
    // back what an admin change set.
    system.wait_all_final(Duration::from_secs(30)).await;
    if case.route.is_admin() {
        system.heal(policy).await;
    }
    *before = system.state().await;
    Ok(())
}

#[test]
fn the_services_refuse_any_bad_input_with_a_4xx_and_change_nothing() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let system = runtime.block_on(System::start(Options::default()));
    let policy = runtime.block_on(system.raw_json(Service::Ledger, routes::ADMIN_POLICY));
    let before = RefCell::new(runtime.block_on(system.state()));
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        source_file: Some(file!()),
        ..Config::default()
    });
    let tally = RefCell::new(BTreeMap::new());
    let outcome = runner.run(&case(), |case| {
        let before = &mut before.borrow_mut();
        runtime.block_on(check(&system, &case, before, &policy, &tally))
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
    // The cases reached both sides of every rule: many refusals of many kinds, and requests
    // that went through.
    let tally = tally.into_inner();
    eprintln!("answers: {tally:?}");
    let refusal_codes = tally.keys().filter(|k| k.starts_with('4')).count();
    let accepted: usize = tally
        .iter()
        .filter(|(k, _)| k.starts_with('2'))
        .map(|(_, n)| n)
        .sum();
    assert!(refusal_codes >= 8, "only {refusal_codes} kinds of refusal");
    assert!(accepted >= 10, "only {accepted} requests went through");
    for service in [Service::Coordinator, Service::External, Service::Ledger] {
        let url = system.url(system.process(service), routes::HEALTHZ);
        let alive = runtime.block_on(async { system.http.get(&url).send().await });
        assert!(
            alive.is_ok_and(|r| r.status() == 200),
            "{service:?} stopped answering"
        );
    }
}
