//! Holds `docs/contract.md` to the contract's types: every example marked
//! `<!-- contract: Type -->` is a complete instance of `Type` (it reads into the type and
//! writes back as the same JSON: every field, no other, the same spelling), every body type
//! has an example, and the error codes with their statuses, the transfer answer's statuses,
//! the state and status names and the routes are the same in the page and in the code.

use super::*;
use crate::disk_fault::DiskFault;
use crate::knobs::{FaultKnobs, LostAnswer};
use crate::ledger_policy::LedgerPolicy;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

fn page() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/contract.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An example read into `T` and written back: equal to the example when it is complete.
fn round_trip<T: Serialize + DeserializeOwned>(example: &Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(example.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(typed).map_err(|e| e.to_string())
}

type RoundTrip = fn(&Value) -> Result<Value, String>;

/// Every body type of the contract, by the name the page marks its example with.
fn body_types() -> BTreeMap<&'static str, RoundTrip> {
    BTreeMap::from([
        (
            "TransferRequest",
            round_trip::<TransferRequest> as RoundTrip,
        ),
        ("TransferView", round_trip::<TransferView>),
        ("SagaDump", round_trip::<SagaDump>),
        ("SagaPage", round_trip::<SagaPage>),
        ("UserLinks", round_trip::<UserLinks>),
        ("Created", round_trip::<Created>),
        ("DebitRequest", round_trip::<DebitRequest>),
        ("CreditRequest", round_trip::<CreditRequest>),
        ("TransferRecord", round_trip::<TransferRecord>),
        ("Dump", round_trip::<Dump>),
        ("DumpPage", round_trip::<DumpPage>),
        ("SeedAccounts", round_trip::<SeedAccounts>),
        ("ErrorBody", round_trip::<ErrorBody>),
        ("FaultKnobs", round_trip::<FaultKnobs>),
        ("LedgerPolicy", round_trip::<LedgerPolicy>),
        ("Totals", round_trip::<Totals>),
        ("InFlight", round_trip::<InFlight>),
        ("DiskFault", round_trip::<DiskFault>),
    ])
}

/// The marked examples: (type name, JSON text).
fn examples(page: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut lines = page.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .trim()
            .strip_prefix("<!-- contract:")
            .and_then(|rest| rest.strip_suffix("-->"))
        else {
            continue;
        };
        let opening = lines.next().map(str::trim);
        assert_eq!(
            opening,
            Some("```json"),
            "{name}: the example must follow its mark"
        );
        let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
        found.push((name.trim().to_owned(), body.join("\n")));
    }
    found
}

/// The backquoted words of the page.
fn quoted(page: &str) -> BTreeSet<String> {
    page.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The rows of the table whose header starts with `header`: each row's cells.
fn table(page: &str, header: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut inside = false;
    for line in page.lines() {
        if line.starts_with(header) {
            inside = true;
            continue;
        }
        if !inside || line.starts_with("|---") {
            continue;
        }
        if !line.starts_with('|') {
            break;
        }
        let cells = line
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().trim_matches('`').to_owned())
            .collect();
        rows.push(cells);
    }
    rows
}

#[test]
fn every_body_in_the_page_is_a_complete_instance_of_its_type() {
    let page = page();
    let types = body_types();
    let mut seen = BTreeSet::new();
    for (name, text) in examples(&page) {
        let check = types.get(name.as_str()).unwrap_or_else(|| {
            panic!("the page marks an example of `{name}`, not a contract type")
        });
        let example: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: not JSON: {e}"));
        let back = check(&example).unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
        assert_eq!(
            back, example,
            "{name}: the example and the type differ (a field missing, extra or renamed)"
        );
        seen.insert(name);
    }
    for name in types.keys() {
        assert!(seen.contains(*name), "the page has no example of `{name}`");
    }
}

#[test]
fn the_error_codes_and_their_statuses_are_the_pages() {
    let page = page();
    let in_page: BTreeSet<(String, u16)> = table(&page, "| code | status |")
        .into_iter()
        .map(|row| {
            let status = row[1]
                .parse()
                .unwrap_or_else(|_| panic!("status of {row:?}"));
            (row[0].clone(), status)
        })
        .collect();
    let in_code: BTreeSet<(String, u16)> = ErrorCode::ALL
        .into_iter()
        .map(|c| (c.as_str().to_owned(), c.http_status()))
        .collect();
    assert_eq!(
        in_page, in_code,
        "error codes: page (left) and code (right) differ"
    );
}

#[test]
fn the_transfer_answers_statuses_are_the_pages() {
    let page = page();
    let in_page: BTreeSet<(String, u16)> = table(&page, "| HTTP | `status` |")
        .into_iter()
        .filter(|row| row[1] != "(error body)")
        .map(|row| (row[1].clone(), row[0].parse().expect("an HTTP status")))
        .collect();
    let in_code: BTreeSet<(String, u16)> = ClientStatus::ALL
        .into_iter()
        .map(|s| (s.as_str().to_owned(), s.http_status()))
        .collect();
    assert_eq!(in_page, in_code);
}

#[test]
fn every_state_status_and_reason_name_is_in_the_page() {
    let quoted = quoted(&page());
    let names = SagaState::ALL
        .map(SagaState::as_str)
        .into_iter()
        .chain(TransferStatus::ALL.map(TransferStatus::as_str))
        .chain(EntryKind::ALL.map(EntryKind::as_str))
        .chain(reasons::ALL)
        .chain(["status500", "drop"]);
    for name in names {
        assert!(quoted.contains(name), "`{name}` is not in the page");
    }
    // The lost-answer modes the page names are the code's.
    for mode in [LostAnswer::Status500, LostAnswer::Drop] {
        let wire = serde_json::to_value(mode).expect("serializes");
        assert!(
            quoted.contains(wire.as_str().unwrap_or_default()),
            "{mode:?}"
        );
    }
}

#[test]
fn the_routes_are_the_pages() {
    let quoted = quoted(&page());
    let in_page: BTreeSet<String> = quoted
        .iter()
        .filter_map(|q| {
            let path = q
                .trim_start_matches("GET|PUT ")
                .trim_start_matches("GET ")
                .trim_start_matches("POST ")
                .trim_start_matches("PUT ");
            let is_route = path.starts_with('/')
                && !path.contains('*')
                && path
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || "/_-{}".contains(c));
            is_route.then(|| path.to_owned())
        })
        .collect();
    let in_code: BTreeSet<String> = routes::ALL.iter().map(|r| (*r).to_owned()).collect();
    assert_eq!(
        in_page, in_code,
        "routes: page (left) and code (right) differ"
    );
}
