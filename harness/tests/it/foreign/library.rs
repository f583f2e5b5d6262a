//! The foreign system through faulted library profiles, on SQLite and on PostgreSQL, and its
//! two broken variants caught from its SQL books.

use super::{assert_passes, classes, Engine, Foreign, PASSWORD_VAR};
use crate::postgres::{self, Postgres};
use crate::support::exclusive;
use std::path::Path;

/// Each library profile's run here ends this many measured seconds after its start, not
/// the profile's own: every fault of it still lies inside (and the settle and convergence
/// after), and the suite is shorter.
const EXTERNAL_TIMEOUT_S: &str = "11";
const COORDINATOR_CRASH_S: &str = "17";
const BUTTON_MASH_S: &str = "12";

/// A library profile's text.
fn library(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../chaos-profiles")
        .join(format!("{name}.yaml"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// On SQLite, the crash profile alone (PostgreSQL's test below runs both): its run drives
/// users the system had already, by the names a CSV file lists (relative to the target
/// file), as a team's existing customers.
#[test]
fn the_foreign_system_passes_a_faulted_library_profile_on_sqlite() {
    let _serial = exclusive();
    let foreign = Foreign::start(&Engine::Sqlite, "");
    let crash_profile = library("coordinator-crash");
    let users = crash_profile
        .lines()
        .skip_while(|l| !l.starts_with("users:"))
        .find_map(|l| l.trim().strip_prefix("count: "))
        .and_then(|n| n.parse::<u32>().ok())
        .expect("the profile's user count");
    foreign.add_customers(users);
    let mut listed = String::from("user_id,external_account_id\n");
    for n in 0..users {
        listed.push_str(&format!("cust-{n},acct-{n}\n"));
    }
    std::fs::write(foreign.dir.path().join("users.csv"), listed).expect("the list");
    let reusing = foreign.with_users("  users:\n    reuse: users.csv\n");
    std::fs::write(&foreign.target, reusing).expect("write the target file");
    let crash = foreign.run(&crash_profile, &["--duration", COORDINATOR_CRASH_S]);
    assert_passes(&crash, &foreign);
    let summary = crash.summary();
    assert!(
        summary["requests"]["errors"].as_u64().unwrap_or(0) > 0,
        "the crashes cost answers: {summary}"
    );
    let history = crate::support::history_lines(&crash.out());
    let first = history.first().expect("a record");
    assert!(
        first["user_id"]
            .as_str()
            .is_some_and(|u| u.starts_with("cust-")),
        "the listed users were driven: {first}"
    );
    // The list travels with the run's folder, so that it replays.
    assert!(crash.out().join("users.csv").is_file());
}

#[test]
fn the_foreign_system_passes_faulted_library_profiles_on_postgresql() {
    let _serial = exclusive();
    let server = Postgres::start();
    for name in ["issuer", "psp"] {
        server.create_database(name);
    }
    let foreign = Foreign::start(&Engine::Postgres(&server), "");
    // The users are created by SQL statements in both databases; the second run finds them
    // there (a unique violation) and takes them as they are.
    let by_sql = foreign.with_users(&foreign.users_by_sql());
    std::fs::write(&foreign.target, by_sql).expect("write the target file");
    let timeout = foreign.run(
        &library("external-timeout"),
        &["--duration", EXTERNAL_TIMEOUT_S],
    );
    assert_passes(&timeout, &foreign);
    let crash = foreign.run(
        &library("coordinator-crash"),
        &["--duration", COORDINATOR_CRASH_S],
    );
    assert_passes(&crash, &foreign);
    // The password went only where it was asked: never into the run folder.
    for run in [&timeout, &crash] {
        for entry in std::fs::read_dir(run.out()).expect("run folder").flatten() {
            let text = std::fs::read(entry.path()).unwrap_or_default();
            let text = String::from_utf8_lossy(&text);
            assert!(
                !text.contains(postgres::PASSWORD),
                "{}",
                entry.path().display()
            );
        }
    }
}

#[test]
fn a_foreign_system_that_ignores_the_key_on_retries_is_caught_double_charging() {
    let _serial = exclusive();
    let foreign = Foreign::start(&Engine::Sqlite, "--ignore-key");
    // button-mash sets the reference ledger's antifraud, which this system has no route for.
    let mashed = foreign.run(
        &library("button-mash"),
        &["--ignore-service-settings", "--duration", BUTTON_MASH_S],
    );
    assert_eq!(mashed.code(), Some(1), "{}", mashed.printed());
    assert!(
        classes(&mashed).iter().any(|c| c == "double_charge"),
        "{:?}\n{}",
        classes(&mashed),
        mashed.printed()
    );
}

#[test]
fn a_foreign_system_that_answers_201_while_its_ledger_write_fails_is_caught() {
    let _serial = exclusive();
    let foreign = Foreign::start(&Engine::Sqlite, "--ledger-write-fails");
    let profile =
        crate::support::profile("ledger-write-fails", 100, 1, 4, crate::support::LENIENT_SLO);
    let broken = foreign.run(&profile, &[]);
    assert_eq!(broken.code(), Some(1), "{}", broken.printed());
    let found = classes(&broken);
    assert!(
        found.iter().any(|c| c == "lost_debit") && found.iter().any(|c| c == "contract_broken"),
        "{found:?}\n{}",
        broken.printed()
    );
    // Its folder replays through the mapping it keeps a copy of, and the bug shows again.
    let replay = foreign.dir.path().join("replay");
    let replayed = std::process::Command::new(crate::support::HARNESS)
        .arg("replay")
        .arg(broken.out())
        .arg("--out")
        .arg(&replay)
        .arg("--quiet")
        .env(PASSWORD_VAR, postgres::PASSWORD)
        .output()
        .expect("run harness replay");
    let said = String::from_utf8_lossy(&replayed.stdout);
    assert!(said.contains("anomaly classes"), "{said}{replayed:?}");
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(replay.join("summary.json")).expect("the replay's summary"),
    )
    .expect("JSON");
    // Which further classes the lost writes show can differ from run to run (whether an
    // answer came back before its lookup, say): the replay is held to the bug, the debit
    // no credit ever matched.
    assert!(
        summary["anomalies"]["lost_debit"].as_u64().unwrap_or(0) > 0,
        "{said}{summary}"
    );
}
