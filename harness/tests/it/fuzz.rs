//! Property tests that feed the harness's parsers of outside input arbitrary bytes and near
//! misses of valid input: the profile and target-file parsers, and the Toxiproxy-compatible
//! REST API. Rules: no panic; a bad file is an error naming the file and a field; a bad
//! request is a 4xx, never a 5xx, but for a listen address the machine cannot bind, which
//! Toxiproxy itself answers 500 (`listen tcp ADDR: …`, or `listen tcp: address …` for one it
//! cannot read). CI runs a few hundred cases of
//! each; `FUZZ_CASES=N` runs
//! more (as long runs by hand do). A case proptest finds is kept in
//! `tests/proptest-regressions/fuzz.txt` and run first from then on: the three there are
//! the first findings (a key with no name, `: 1`, named no field; a listen address with no
//! port answered 500 without Toxiproxy's words).

use axum::body::Body;
use axum::extract::ConnectInfo;
use harness::proxy::{api, Registry};
use proptest::prelude::*;
use std::net::SocketAddr;
use std::path::Path;
use tower::ServiceExt;

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256)
}

fn library() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../chaos-profiles");
    let mut texts: Vec<String> = std::fs::read_dir(dir)
        .expect("the library")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| std::fs::read_to_string(p).expect("a profile"))
        .collect();
    texts.sort();
    texts
}

const TARGET: &str = "coordinator: http://127.0.0.1:1
external: http://127.0.0.1:2
ledger: http://127.0.0.1:3
hops:
  external: {listen: 127.0.0.1:4}
  ledger: {listen: 127.0.0.1:5}
seed: reuse
command_timeout_s: 10
admin_token_env: BANK_TOKEN
coordinator_settings: {deadline_ms: 150}
commands:
  coordinator: {kill: 'kill -9 1', start: 'true'}
";

/// Text that YAML and the parsers find interesting, spliced into valid input.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(":".to_owned()),
        Just("\n".to_owned()),
        Just("  ".to_owned()),
        Just("- ".to_owned()),
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("[".to_owned()),
        Just("&a *a".to_owned()),
        Just("!!binary".to_owned()),
        Just("~".to_owned()),
        Just("-1".to_owned()),
        Just("0".to_owned()),
        Just("1e309".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("NaN".to_owned()),
        Just("\"\\u0000\"".to_owned()),
        "[a-z_]{1,12}",
        "[0-9.]{1,8}",
        any::<String>(),
    ]
}

/// `text` with `fragment` put in at `at` (a share of its length) in place of `cut` chars.
fn splice(text: &str, at: f64, cut: usize, fragment: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let start = ((chars.len() as f64) * at) as usize;
    let start = start.min(chars.len());
    let end = (start + cut).min(chars.len());
    chars[..start]
        .iter()
        .chain(fragment.chars().collect::<Vec<_>>().iter())
        .chain(chars[end..].iter())
        .collect()
}

/// A parser's verdict on `text`: accepted, or an error that names the file and a field.
fn profile_holds(text: &str) -> Result<(), TestCaseError> {
    let file = Path::new("fuzzed.yaml");
    if let Err(e) = harness::profile::parse(file, text) {
        prop_assert_eq!(&e.file, file);
        prop_assert!(!e.field.is_empty(), "no field: {}", e);
        prop_assert!(e.to_string().contains("fuzzed.yaml"), "{}", e);
    }
    Ok(())
}

fn target_holds(text: &str) -> Result<(), TestCaseError> {
    let file = Path::new("fuzzed-target.yaml");
    if let Err(e) = harness::system::target_file::parse(file, text) {
        prop_assert_eq!(&e.file, file);
        prop_assert!(!e.field.is_empty(), "no field: {}", e);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn a_profile_of_arbitrary_bytes_is_refused_with_its_file_and_field(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        profile_holds(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn a_library_profile_spliced_is_parsed_or_refused_with_its_field(
        which in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((0.0f64..1.0, 0usize..6, fragment()), 1..4),
    ) {
        let texts = library();
        let mut text = which.get(&texts).clone();
        for (at, cut, piece) in &edits {
            text = splice(&text, *at, *cut, piece);
        }
        profile_holds(&text)?;
    }

    #[test]
    fn a_target_file_spliced_is_parsed_or_refused_with_its_field(
        edits in proptest::collection::vec((0.0f64..1.0, 0usize..6, fragment()), 1..4),
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut text = TARGET.to_owned();
        for (at, cut, piece) in &edits {
            text = splice(&text, *at, *cut, piece);
        }
        target_holds(&text)?;
        target_holds(&String::from_utf8_lossy(&bytes))?;
    }
}

/// JSON a Toxiproxy client might send, right or nearly.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{json, Value};
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        Just(json!(u64::MAX)),
        "[a-z_]{0,10}".prop_map(Value::from),
        Just(Value::from("127.0.0.1:0")),
        Just(Value::from("latency")),
        Just(Value::from("upstream")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("name".to_owned()),
                    Just("listen".to_owned()),
                    Just("upstream".to_owned()),
                    Just("enabled".to_owned()),
                    Just("type".to_owned()),
                    Just("stream".to_owned()),
                    Just("toxicity".to_owned()),
                    Just("attributes".to_owned()),
                    Just("latency".to_owned()),
                    Just("rate".to_owned()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Sends `body` to `method path` on a fresh API with one proxy `p` (no toxic); returns the
/// status and the body of the answer.
fn api_answer(method: &str, path: &str, body: Vec<u8>) -> (u16, String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let registry = Registry::new(1);
        let send = |method: &str, path: &str, body: Vec<u8>| {
            let mut request = axum::http::Request::builder()
                .method(method)
                .uri(path)
                .body(Body::from(body))
                .expect("a request");
            request
                .extensions_mut()
                .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40_000))));
            api::app(registry.clone(), api::Access::default()).oneshot(request)
        };
        let created = send(
            "POST",
            "/proxies",
            br#"{"name":"p","listen":"127.0.0.1:0","upstream":"127.0.0.1:9"}"#.to_vec(),
        )
        .await
        .expect("an answer");
        assert_eq!(created.status(), 201);
        let answer = send(method, path, body).await.expect("an answer");
        let status = answer.status().as_u16();
        let bytes = axum::body::to_bytes(answer.into_body(), 1 << 20)
            .await
            .expect("the answer's body");
        registry.stop_all();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn the_toxiproxy_api_answers_any_body_without_a_5xx(
        route in prop_oneof![
            Just(("POST", "/proxies")),
            Just(("POST", "/populate")),
            Just(("POST", "/proxies/p")),
            Just(("POST", "/proxies/p/toxics")),
            Just(("POST", "/proxies/p/toxics/t")),
            Just(("POST", "/proxies/nope/toxics")),
        ],
        body in prop_oneof![
            json_value().prop_map(|v| v.to_string().into_bytes()),
            proptest::collection::vec(any::<u8>(), 0..200),
        ],
    ) {
        let (status, answer) = api_answer(route.0, route.1, body.clone());
        let cannot_bind = status == 500
            && ["{\"error\":\"listen tcp ", "{\"error\":\"listen tcp: "]
                .iter()
                .any(|words| answer.starts_with(words));
        prop_assert!(
            status < 500 || cannot_bind,
            "{} {} answered {} {} to {}",
            route.0,
            route.1,
            status,
            answer,
            String::from_utf8_lossy(&body)
        );
    }
}
