//! docs/limits.md states each limit as the code defines it, and the harness's own limits
//! hold at their edges: the largest value a profile may give is taken, one more refused;
//! the load generator never has more requests in flight than `client.max_in_flight`.

use crate::support::{exclusive, profile, run, LENIENT_SLO};
use std::path::Path;

/// `n` written as docs/limits.md writes figures: `16,384`.
fn with_commas(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[test]
fn the_limits_page_states_each_figure_the_code_defines() {
    use harness::profile::plan::{Shard, MAX_RATE_PER_S};
    use service::ids::{IdempotencyKey, TransferId};
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/limits.md");
    let page = std::fs::read_to_string(&path).expect("docs/limits.md");
    let limits: [(&str, u64); 21] = [
        (
            "json_body::MAX_BODY_BYTES",
            service::json_body::MAX_BODY_BYTES as u64,
        ),
        (
            "json_body::MAX_ADMIN_BODY_BYTES",
            service::json_body::MAX_ADMIN_BODY_BYTES as u64,
        ),
        (
            "institution::MAX_SEED_ACCOUNTS",
            service::institution::MAX_SEED_ACCOUNTS as u64,
        ),
        (
            "contract::DUMP_PAGE_MAX",
            u64::from(service::contract::DUMP_PAGE_MAX),
        ),
        (
            "money::AmountCents::MAX_TRANSFER",
            service::money::AmountCents::MAX_TRANSFER.get(),
        ),
        ("ids::TransferId::MAX_LEN", TransferId::MAX_LEN as u64),
        (
            "ids::IdempotencyKey::MAX_LEN",
            IdempotencyKey::MAX_LEN as u64,
        ),
        (
            "knobs::MAX_SERVICE_TIME_MS",
            service::knobs::MAX_SERVICE_TIME_MS,
        ),
        ("knobs::MAX_CPU_BURN_US", service::knobs::MAX_CPU_BURN_US),
        (
            "regression::paired::MIN_PAIRS",
            harness::regression::paired::MIN_PAIRS as u64,
        ),
        (
            "store::WRITE_QUEUE_CAPACITY",
            service::store::WRITE_QUEUE_CAPACITY as u64,
        ),
        (
            "store::SATURATED_BELOW_FREE_SLOTS",
            service::store::SATURATED_BELOW_FREE_SLOTS as u64,
        ),
        (
            "store::MAX_WRITES_PER_BATCH",
            service::store::MAX_WRITES_PER_BATCH as u64,
        ),
        (
            "multiplex::MAX_CONNECTIONS",
            service::multiplex::MAX_CONNECTIONS as u64,
        ),
        (
            "`--max-in-flight`",
            u64::from(service::coordinator::settings::CoordinatorSettings::DEFAULT.max_in_flight),
        ),
        (
            "proxy::MAX_LINKS_PER_PROXY",
            harness::proxy::MAX_LINKS_PER_PROXY as u64,
        ),
        ("profile::plan::MAX_RATE_PER_S", MAX_RATE_PER_S),
        (
            "mapping::MAX_CURRENCY_EXPONENT",
            u64::from(harness::mapping::MAX_CURRENCY_EXPONENT),
        ),
        (
            "client::UNMAPPED_EXAMPLE_BYTES",
            harness::client::UNMAPPED_EXAMPLE_BYTES as u64,
        ),
        (
            "system::books::READ_TIMEOUT",
            harness::system::books::READ_TIMEOUT.as_secs(),
        ),
        (
            "profile::plan::Shard::MAX_COUNT",
            u64::from(Shard::MAX_COUNT),
        ),
    ];
    for (name, value) in limits {
        let row = page
            .lines()
            .find(|line| line.starts_with('|') && line.contains(name))
            .unwrap_or_else(|| panic!("docs/limits.md has no row for {name}"));
        let figure = format!("| {} ", with_commas(value));
        assert!(
            row.contains(&figure),
            "{name} is {value} in the code: {row}"
        );
    }
}

fn parsed(extra: &str, rate: u32) -> Result<(), String> {
    let text = profile("edge", rate, 0, 1, &format!("{LENIENT_SLO}{extra}"));
    harness::profile::parse(Path::new("edge.yaml"), &text)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
fn a_profile_takes_each_load_limit_and_refuses_one_past() {
    use harness::profile::plan::MAX_RATE_PER_S;
    let top = u32::try_from(MAX_RATE_PER_S).expect("a u32 rate");
    assert_eq!(parsed("", top), Ok(()));
    let refused = parsed("", top + 1).expect_err("one past the rate");
    assert!(refused.contains("arrival.rate_per_s"), "{refused}");
    let retries = |max: u32| format!("client:\n  retries:\n    max: {max}\n");
    assert_eq!(parsed(&retries(10), 10), Ok(()));
    let refused = parsed(&retries(11), 10).expect_err("one past the retries");
    assert!(refused.contains("client.retries.max"), "{refused}");
    assert!(harness::profile::plan::Shard::parse("1023/1024").is_ok());
    assert!(harness::profile::plan::Shard::parse("0/1025").is_err());
}

/// The most requests a run's history shows in flight at one instant.
fn most_in_flight(dir: &Path) -> usize {
    let mut edges: Vec<(u64, i64)> = Vec::new();
    for r in crate::support::history_lines(dir) {
        if let (Some(sent), Some(answered)) = (r["sent_us"].as_u64(), r["answered_us"].as_u64()) {
            edges.push((sent, 1));
            // An answer at the instant another leaves frees its place first.
            edges.push((answered, -1));
        }
    }
    edges.sort_by_key(|&(at, change)| (at, change));
    let (mut now, mut most) = (0i64, 0i64);
    for (_, change) in edges {
        now += change;
        most = most.max(now);
    }
    usize::try_from(most).unwrap_or(0)
}

#[test]
fn the_load_generator_never_holds_more_than_client_max_in_flight() {
    let _serial = exclusive();
    // Answers held 300 ms by the external hop at 100 requests a second want some 30 in
    // flight; the client may hold 4.
    let extra = format!(
        "{LENIENT_SLO}client:\n  max_in_flight: 4\nservice:\n  coordinator: {{deadline_ms: 1000}}\n\
         faults:\n  - kind: toxic\n    target: external\n    at_s: 0\n    duration_s: 3\n    \
         toxic: latency\n    stream: downstream\n    attributes: {{latency: 300}}\n"
    );
    let run = run(&profile("in-flight", 100, 0, 3, &extra), &[]);
    let summary = run.summary();
    let overflow = summary["requests"]["overflow"].as_u64().unwrap_or(0);
    assert!(
        overflow > 0,
        "no request over the cap: {}",
        summary["requests"]
    );
    let most = most_in_flight(&run.out());
    assert!((1..=4).contains(&most), "{most} in flight at once");
}
