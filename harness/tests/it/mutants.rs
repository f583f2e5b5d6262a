//! Every checker is shown to catch the bug it exists for: the `bug-bait` profile against
//! `saga` (which must pass it, with no violation at all) and against each known-bad design
//! (which must fail it, with a class that shows its own bug); and `crash-loop`, which `saga`
//! survives and a reversal queue held in memory does not; and `disk-full`, which `saga`
//! survives and a store that answers before its commit does not; `reversal-backlog`, whose
//! refused credits a queue reverses after the final read; `shedding`, whose 503s must have
//! written nothing. Every run reconciled as it went is reconciled again whole from its folder
//! (`harness reconcile`), and both verdicts must name the same violations.

use crate::support::{exclusive, HARNESS};
use harness::mutants::telltale;
use serde_json::Value;
use service::coordinator::Design;
use std::process::Command;

/// Runs `chaos-profiles/bug-bait.yaml` with `design`; returns the exit code and summary.
fn bait(design: Design) -> (Option<i32>, Value, String) {
    library_run("bug-bait", design)
}

/// The crash loop's and the full disks' runs end this many seconds into their load, before
/// the profiles' own end: the kills and the disk faults that show each bug all lie inside
/// (the last disk fault heals at 20 s), and the suite is shorter.
const SHORTER: [(&str, &str); 2] = [("crash-loop", "20"), ("disk-full", "21")];

/// Runs the library's profile `name` with `design`; returns the exit code and summary.
fn library_run(name: &str, design: Design) -> (Option<i32>, Value, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    library_run_into(name, design, dir.path())
}

/// `library_run`, its run folder left in `dir` as `out/`.
fn library_run_into(
    name: &str,
    design: Design,
    dir: &std::path::Path,
) -> (Option<i32>, Value, String) {
    let profile = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../chaos-profiles/{name}.yaml"));
    // Only the run needs the machine to itself; the checks of its folder share it.
    let output = {
        let _serial = exclusive();
        let shorter = SHORTER.iter().find(|(profile, _)| *profile == name);
        Command::new(HARNESS)
            .arg("--profile")
            .arg(&profile)
            .args(shorter.iter().flat_map(|(_, s)| ["--duration", s]))
            .args(["--design", design.as_str(), "--quiet", "--out"])
            .arg(dir.join("out"))
            .output()
            .expect("run harness")
    };
    let printed = format!(
        "stderr: {}\nstdout: {}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    let summary = std::fs::read_to_string(dir.join("out/summary.json"))
        .map(|t| serde_json::from_str(&t).expect("summary.json is JSON"))
        .unwrap_or_else(|e| panic!("no summary.json ({e}); {printed}"));
    live_is_whole(&dir.join("out"), &format!("{name} {}", design.as_str()));
    (output.status.code(), summary, printed)
}

fn reconciliation_in(dir: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(dir.join("reconciliation.json")).expect("reconciliation");
    serde_json::from_str(&text).expect("reconciliation.json is JSON")
}

/// What a verdict says of each violation (class, transfer, key, effects), of the money and
/// of the indeterminate answers.
fn verdict_of(r: &Value) -> Value {
    let violations: Vec<Value> = r["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .map(|v| {
            serde_json::json!([
                v["class"],
                v["transfer_id"],
                v["key"],
                v["related"],
                v["external_net_debit_cents"],
                v["ledger_net_credit_cents"]
            ])
        })
        .collect();
    serde_json::json!({
        "violations": violations,
        "anomalies": r["anomalies"],
        "money": r["money"],
        "indeterminate": r["indeterminate"],
    })
}

/// The run reconciled as it went finds what `harness reconcile` finds from its folder, the
/// whole run at once: the same violations, class by class and transfer by transfer.
fn live_is_whole(out: &std::path::Path, run: &str) {
    let live = reconciliation_in(out);
    let Some(how) = live.get("live") else {
        return;
    };
    let status = Command::new(HARNESS)
        .arg("reconcile")
        .arg(out)
        .output()
        .expect("harness reconcile");
    assert!(
        status.status.code().is_some_and(|c| c < 2),
        "{run}: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let whole = reconciliation_in(out);
    // The run's own verdict stays in the folder for the test's further checks.
    let text = serde_json::to_string(&live).expect("JSON");
    std::fs::write(out.join("reconciliation.json"), text).expect("reconciliation written back");
    assert_eq!(whole.get("live"), None, "{run}: reconciled whole");
    let (live, whole) = (verdict_of(&live), verdict_of(&whole));
    assert_eq!(
        live["anomalies"], whole["anomalies"],
        "{run}: the live verdict ({how}) finds other classes than the whole run's"
    );
    if live != whole {
        let listed = |v: &Value| -> Vec<String> {
            let all = v["violations"].as_array().cloned().unwrap_or_default();
            all.iter().map(Value::to_string).collect()
        };
        let (l, w) = (listed(&live), listed(&whole));
        let only_live: Vec<&String> = l.iter().filter(|v| !w.contains(v)).take(5).collect();
        let only_whole: Vec<&String> = w.iter().filter(|v| !l.contains(v)).take(5).collect();
        panic!(
            "{run}: the live verdict ({how}) differs from the whole run's: only live {only_live:?}, only whole {only_whole:?}, money {} vs {}, indeterminate {} vs {}",
            live["money"], whole["money"], live["indeterminate"], whole["indeterminate"]
        );
    }
}

/// `design` is caught by `bug-bait`, and its live verdict stood on its own (no fact came
/// late), having judged most requests while the load ran.
fn caught_live(design: Design) {
    let dir = tempfile::tempdir().expect("tempdir");
    caught_in("bug-bait", design, dir.path());
    let how = &reconciliation_in(&dir.path().join("out"))["live"];
    assert_eq!(how["whole_because"], Value::Null, "{how}");
    let (during, all) = (
        how["requests_closed_during_run"].as_u64().unwrap_or(0),
        how["requests"].as_u64().unwrap_or(0),
    );
    assert!(during * 2 > all, "{how}");
}

fn caught(design: Design) {
    caught_by("bug-bait", design);
}

fn caught_by(profile: &str, design: Design) {
    let dir = tempfile::tempdir().expect("tempdir");
    caught_in(profile, design, dir.path());
}

/// `caught_by`, the run folder left in `dir` as `out/`.
fn caught_in(profile: &str, design: Design, dir: &std::path::Path) {
    let (code, summary, printed) = library_run_into(profile, design, dir);
    assert_eq!(code, Some(1), "{}: {printed}", design.as_str());
    assert_eq!(summary["verdict"], "fail");
    let anomalies = summary["anomalies"].as_object().expect("anomalies");
    let telltales: Vec<&str> = telltale(design).iter().map(|c| c.as_str()).collect();
    assert!(
        telltales.iter().any(|c| anomalies.contains_key(*c)),
        "{} was not caught for its bug: found {anomalies:?}, expected one of {telltales:?}",
        design.as_str()
    );
}

#[test]
fn saga_passes_the_bait_with_no_violation() {
    let (code, summary, printed) = bait(Design::Saga);
    assert_eq!(code, Some(0), "{printed}");
    assert_eq!(summary["anomalies"], serde_json::json!({}), "{printed}");
    for invariant in summary["invariants"].as_array().expect("invariants") {
        assert_eq!(invariant["holds"], true, "{invariant}");
    }
}

#[test]
fn the_naive_design_is_caught() {
    caught(Design::Naive);
}

#[test]
fn a_reversal_queue_in_memory_is_caught() {
    caught_live(Design::VolatileQueue);
}

#[test]
fn a_missing_tombstone_is_caught() {
    caught_live(Design::NoTombstone);
}

#[test]
fn an_ignored_idempotency_key_is_caught() {
    caught_live(Design::NoIdempotency);
}

#[test]
fn a_timeout_taken_as_a_failure_is_caught() {
    caught(Design::TimeoutIsFailure);
}

#[test]
fn an_answer_before_the_commit_is_caught() {
    caught(Design::AckBeforeDurable);
}

#[test]
fn saga_moves_no_money_after_the_final_read() {
    let (code, summary, printed) = library_run("reversal-backlog", Design::Saga);
    assert_eq!(code, Some(0), "{printed}");
    assert_eq!(summary["anomalies"], serde_json::json!({}), "{printed}");
    let settled = summary["invariants"]
        .as_array()
        .expect("invariants")
        .iter()
        .find(|i| i["name"] == "books_settled")
        .expect("books_settled")
        .clone();
    assert_eq!(settled["holds"], true, "{settled}");
    assert!(
        settled["detail"]
            .as_str()
            .is_some_and(|d| d.contains("once the services stopped equal the final read")),
        "{settled}"
    );
    // The trap was set: half the transfers were refused and reversed.
    assert!(
        summary["requests"]["failed"].as_u64().unwrap_or(0) > 200,
        "{}",
        summary["requests"]
    );
}

#[test]
fn a_reversal_queue_still_working_after_the_final_read_is_caught() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, summary, printed) =
        library_run_into("reversal-backlog", Design::VolatileQueue, dir.path());
    assert_eq!(code, Some(1), "{printed}");
    let moved = summary["anomalies"]["moved_after_final_read"]
        .as_u64()
        .unwrap_or(0);
    assert!(moved > 0, "{printed}");
    // The folder holds the second read: `harness reconcile` finds the same transfers.
    let out = dir.path().join("out");
    let reconciliation = |out: &std::path::Path| -> Vec<Value> {
        let text = std::fs::read_to_string(out.join("reconciliation.json")).expect("read");
        let r: Value = serde_json::from_str(&text).expect("JSON");
        r["violations"]
            .as_array()
            .expect("violations")
            .iter()
            .filter(|v| v["class"] == "moved_after_final_read")
            .cloned()
            .collect()
    };
    let before = reconciliation(&out);
    assert!(
        before.iter().all(|v| v["transfer_id"].is_string()),
        "each names its transfer: {before:?}"
    );
    let again = Command::new(HARNESS)
        .arg("reconcile")
        .arg(&out)
        .output()
        .expect("run harness reconcile");
    assert_eq!(again.status.code(), Some(1), "{again:?}");
    assert_eq!(reconciliation(&out), before);
}

#[test]
fn saga_sheds_at_the_door() {
    let (code, summary, printed) = library_run("shedding", Design::Saga);
    assert_eq!(code, Some(0), "{printed}");
    assert_eq!(summary["anomalies"], serde_json::json!({}), "{printed}");
    // The trap was set: requests were shed, some of them on every try.
    assert!(
        summary["requests"]["shed"].as_u64().unwrap_or(0) > 100,
        "{}",
        summary["requests"]
    );
    let contract = summary["invariants"]
        .as_array()
        .expect("invariants")
        .iter()
        .find(|i| i["name"] == "client_contract")
        .expect("client_contract")
        .clone();
    let only_shed: u64 = contract["detail"]
        .as_str()
        .and_then(|d| d.split("; ").nth(1))
        .and_then(|d| d.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(only_shed > 10, "few requests answered only 503: {contract}");
}

#[test]
fn a_shed_decided_after_the_work_is_caught() {
    caught_by("shedding", Design::LateShed);
}

#[test]
fn every_known_bad_design_has_a_test_here() {
    // A new mutant needs a test above and a telltale class.
    assert_eq!(Design::ALL.len(), 8);
    for design in Design::ALL {
        assert_eq!(
            telltale(design).is_empty(),
            design.is_correct(),
            "{design:?}"
        );
    }
}

#[test]
fn saga_survives_the_crash_loop() {
    let (code, summary, printed) = library_run("crash-loop", Design::Saga);
    assert_eq!(code, Some(0), "{printed}");
    assert_eq!(summary["anomalies"], serde_json::json!({}), "{printed}");
    let faults = summary["faults"].as_array().expect("faults");
    assert!(faults.len() >= 24, "{} kills", faults.len());
    for fault in faults {
        assert_eq!(fault["kind"], "kill", "{fault}");
        assert!(
            fault["applied_at_s"].is_number() && fault["healed_at_s"].is_number(),
            "{fault}"
        );
    }
    for role in ["coordinator", "external", "ledger"] {
        assert!(
            faults.iter().any(|f| f["target"] == role),
            "{role} never killed"
        );
    }
    // Some kills come less than a second after the coordinator's last restart, while its
    // recovery worker is still resuming what the previous crash left.
    let coordinator: Vec<&Value> = faults
        .iter()
        .filter(|f| f["target"] == "coordinator")
        .collect();
    let soon = coordinator
        .windows(2)
        .filter(|w| {
            let restarted = w[0]["healed_at_s"].as_f64().unwrap_or(f64::MAX);
            let killed = w[1]["applied_at_s"].as_f64().unwrap_or(0.0);
            killed - restarted < 1.0
        })
        .count();
    assert!(
        soon > 0,
        "no kill within a second of a restart: {coordinator:?}"
    );
}

#[test]
fn a_reversal_queue_held_in_memory_dies_in_the_crash_loop() {
    caught_by("crash-loop", Design::VolatileQueue);
}

#[test]
fn saga_survives_full_and_read_only_disks() {
    let (code, summary, printed) = library_run("disk-full", Design::Saga);
    assert_eq!(code, Some(0), "{printed}");
    assert_eq!(summary["anomalies"], serde_json::json!({}), "{printed}");
    let faults = summary["faults"].as_array().expect("faults");
    for role in ["coordinator", "external", "ledger"] {
        let fault = faults
            .iter()
            .find(|f| f["target"] == role)
            .unwrap_or_else(|| panic!("no disk fault on {role}: {faults:?}"));
        assert_eq!(fault["kind"], "disk", "{fault}");
        assert!(
            fault["applied_at_s"].is_number() && fault["healed_at_s"].is_number(),
            "{fault}"
        );
    }
    // The coordinator's full disk refused transfers before any call: shed, not errors.
    assert!(
        summary["requests"]["shed"].as_u64().unwrap_or(0) > 0,
        "{}",
        summary["requests"]
    );
}

#[test]
fn an_answer_before_the_commit_loses_what_a_full_disk_refused() {
    caught_by("disk-full", Design::AckBeforeDurable);
}
