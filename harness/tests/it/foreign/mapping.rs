//! The mapping itself: a broken one stops a run or check-target with exit 2, check-target
//! walks a good one, the contract described as a mapping earns what the native path earns,
//! and a capacity search and a comparison run through it.

use super::{coordinator_of, exchange, Engine, Foreign};
use crate::support::{exclusive, free_port, run};
use crate::target_file::{sh, wait_answering, ByPidFile};
use std::path::{Path, PathBuf};

#[test]
fn a_broken_mapping_stops_the_run_with_exit_2_before_any_user_exists() {
    let _serial = exclusive();
    let foreign = Foreign::start(&Engine::Sqlite, "");
    let text = std::fs::read_to_string(&foreign.target).expect("the target file");
    let profile = crate::support::profile("broken", 50, 0, 2, crate::support::LENIENT_SLO);
    let cases = [
        (
            text.replace("{{ amount }}", "{{ amout }}"),
            "api.submit.body.payment.amount.value: unknown variable `amout`",
        ),
        (
            text.replace("transfer_id: /payment/id", "transfer_id: payment/id"),
            "api.transfer_id: `payment/id` is not a JSON Pointer",
        ),
        (
            text.replace(
                "SELECT payment_id, account, amount_cents FROM ledger_lines",
                "SELECT payment_id, account, amount_cents, 0 FROM ledger_lines",
            ),
            "the entries query returns 4 columns; it must return 3",
        ),
    ];
    // Each broken file stops its run with exit 2, naming the fault, and judges nothing.
    let stops = |broken: &str, expected: &str| {
        assert_ne!(broken, text, "{expected}: the case changes the file");
        std::fs::write(&foreign.target, broken).expect("write the target file");
        let run = foreign.run(&profile, &[]);
        assert_eq!(run.code(), Some(2), "{expected}\n{}", run.printed());
        assert!(
            run.stderr().contains(expected),
            "{expected}\n{}",
            run.printed()
        );
        assert!(
            !run.out().join("summary.json").exists(),
            "{expected}: no verdict"
        );
    };
    for (broken, expected) in cases {
        stops(&broken, expected);
    }
    // Nothing reached the system: it does not know the run's first user.
    let coordinator = coordinator_of(&foreign);
    assert_eq!(
        exchange(&coordinator, "GET", "/v1/customers/u-0", ""),
        Some(404)
    );
    // What only answers show is judged on the run's first answers: the load stops, exit 2.
    let cases = [
        (
            text.replace("transfer_id: /payment/id", "transfer_id: /payment/ident"),
            "api.transfer_id: `/payment/ident` matches nothing in the first",
        ),
        (
            text.replace(
                "{status: 201, outcome: succeeded}",
                "{status: 299, outcome: succeeded}",
            )
            .replace(
                "{status: 202, outcome: pending}",
                "{status: 298, outcome: pending}",
            ),
            "api.outcome: no rule matches any of the first 20 answers",
        ),
    ];
    for (broken, expected) in cases {
        stops(&broken, expected);
    }
}

/// The reference system started by hand, fresh: its target file's first lines (addresses
/// and hops), and its processes.
fn reference_by_hand(dir: &Path) -> (String, Vec<ByPidFile>) {
    use crate::target_file::serve_command;
    let ports: Vec<u16> = (0..5).map(|_| free_port()).collect();
    let (coordinator, external, ledger, external_hop, ledger_hop) =
        (ports[0], ports[1], ports[2], ports[3], ports[4]);
    let guards = ["external", "ledger", "coordinator"]
        .iter()
        .map(|role| ByPidFile(dir.join(format!("{role}.pid"))))
        .collect();
    sh(&serve_command(dir, "external", external, ""));
    sh(&serve_command(dir, "ledger", ledger, ""));
    sh(&serve_command(
        dir,
        "coordinator",
        coordinator,
        &format!(
            "--external-url http://127.0.0.1:{external_hop} --ledger-url http://127.0.0.1:{ledger_hop}"
        ),
    ));
    for port in [external, ledger, coordinator] {
        wait_answering(&format!("http://127.0.0.1:{port}"));
    }
    let head = format!(
        "coordinator: http://127.0.0.1:{coordinator}
external: http://127.0.0.1:{external}
ledger: http://127.0.0.1:{ledger}
hops:
  external: {{listen: 127.0.0.1:{external_hop}}}
  ledger: {{listen: 127.0.0.1:{ledger_hop}}}
"
    );
    (head, guards)
}

/// The `api:` section of `docs/target-contract-as-api.yaml`: the contract described as a
/// mapping, to append to a target file of the reference system (the shards' and the
/// target's replay and shrink tests drive it through this too).
pub(crate) fn contract_as_api() -> String {
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/target-contract-as-api.yaml"),
    )
    .expect("docs/target-contract-as-api.yaml");
    example[example.find("\napi:").expect("an api: section") + 1..].to_owned()
}

#[test]
fn the_contract_described_as_a_mapping_earns_what_the_native_path_earns() {
    let _serial = exclusive();
    let api = contract_as_api();
    // Balances for five transfers of one amount each, and eleven asked per user on average: the
    // rest fail for want of funds, the same ones whatever order the system meets them in.
    // 1,200 answers, enough for a p99.
    let profile = "name: contract-as-api
seed: 36
warmup_s: 0
duration_s: 6
arrival: {rate_per_s: 200}
users: {count: 100, opening_balance_cents: 5000}
amounts: {min_cents: 1000, max_cents: 1000}
client: {timeout_ms: 5000}
slo: {p99_ms: 10000}
";
    let mut judged = Vec::new();
    for mapped in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (head, _guards) = reference_by_hand(dir.path());
        let text = match mapped {
            false => head,
            true => format!("{head}{api}"),
        };
        let target = dir.path().join("target.yaml");
        std::fs::write(&target, text).expect("write the target file");
        let done = run(profile, &["--target-file", &target.display().to_string()]);
        assert_eq!(done.code(), Some(0), "mapped: {mapped}\n{}", done.printed());
        let summary = done.summary();
        judged.push((
            summary["verdict"].clone(),
            summary["requests"].clone(),
            summary["anomalies"].clone(),
            summary["money"]["final_total_cents"].clone(),
        ));
    }
    assert_eq!(judged[0], judged[1], "native, then through the mapping");
    assert!(
        judged[0].1["failed"].as_u64().unwrap_or(0) > 0,
        "some transfers failed for want of funds: {:?}",
        judged[0]
    );
}

/// `harness check-target --target-file target`.
fn check_target(target: &Path) -> std::process::Output {
    std::process::Command::new(crate::support::HARNESS)
        .arg("check-target")
        .arg("--target-file")
        .arg(target)
        .output()
        .expect("run check-target")
}

#[test]
fn check_target_walks_the_mapping_and_names_each_broken_one() {
    let _serial = exclusive();
    let foreign = Foreign::start(&Engine::Sqlite, "");
    let text = std::fs::read_to_string(&foreign.target).expect("the target file");
    let check = |text: &str| {
        std::fs::write(&foreign.target, text).expect("write the target file");
        check_target(&foreign.target)
    };
    let conforming = check(&text);
    let printed = String::from_utf8_lossy(&conforming.stdout).into_owned();
    assert_eq!(
        conforming.status.code(),
        Some(0),
        "{printed}\n{}",
        foreign.logs()
    );
    for rule in [
        "books readable",
        "user created",
        "transfer",
        "idempotent replay",
        "key reused with another payload",
        "status lookup",
        "exact amounts",
    ] {
        assert!(
            printed
                .lines()
                .any(|l| l.starts_with(rule) && l.contains("conforms")),
            "{rule}: {printed}"
        );
    }
    let cases = [
        (
            text.replace("{{ amount }}", "{{ amout }}"),
            "api.submit.body.payment.amount.value: unknown variable `amout`",
        ),
        (
            text.replace("transfer_id: /payment/id", "transfer_id: /payment/ident"),
            "api.transfer_id matches nothing in the first answer",
        ),
        (
            text.replace(
                "SELECT c.id, CAST(COALESCE(SUM(l.amount_cents), 0) AS BIGINT)",
                "SELECT c.id",
            ),
            "the balances query returns 1 columns; it must return 2",
        ),
    ];
    for (broken, expected) in cases {
        assert_ne!(broken, text, "{expected}: the case changes the file");
        let output = check(&broken);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{expected}\n{stderr}");
        assert!(stderr.contains(expected), "{expected}\n{stderr}");
    }
    // A system that ignores the key is told so.
    drop(foreign);
    let careless = Foreign::start(&Engine::Sqlite, "--ignore-key");
    let output = check_target(&careless.target);
    let printed = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{printed}");
    assert!(
        printed
            .lines()
            .any(|l| l.starts_with("idempotent replay") && l.contains("VIOLATES")),
        "{printed}"
    );
}

#[test]
fn a_capacity_search_and_a_comparison_run_through_the_mapping() {
    let _serial = exclusive();
    let foreign = Foreign::start(&Engine::Sqlite, "");
    // Budgets of a few %, as the capacity tests of the reference system have: a stall of a
    // busy CI machine may time out a handful of a step's requests, which is not what this
    // test is about.
    let slo = format!(
        "{}  error_budget: 0.05\n  shed_budget: 0.05\n",
        crate::support::LENIENT_SLO
    );
    let profile = crate::support::profile("cap-foreign", 400, 1, 2, &slo);
    let file = crate::support::write_profile(foreign.dir.path(), &profile);
    let out = foreign.dir.path().join("capacity");
    let output = std::process::Command::new(crate::support::HARNESS)
        .arg("capacity")
        .arg("--profile")
        .arg(&file)
        .arg("--target-file")
        .arg(&foreign.target)
        .arg("--out")
        .arg(&out)
        .args([
            "--start",
            "400",
            "--max",
            "400",
            "--warmup-s",
            "1",
            "--step-s",
            "2",
        ])
        .args(["--convergence-window-s", "5"])
        .output()
        .expect("run harness capacity");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(0), "{text}\n{}", foreign.logs());
    assert!(text.contains("knee: 400/s or more"), "{text}");
    // Each step is a run through the mapping, reconciled from the system's own books.
    let steps: Vec<PathBuf> = std::fs::read_dir(out.join("steps"))
        .expect("the steps' folders")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(steps.len(), 2, "the search's step and the knee again");
    for step in &steps {
        let summary: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(step.join("summary.json")).expect("a step's summary"),
        )
        .expect("JSON");
        assert_eq!(summary["verdict"], "pass", "{summary}");
        assert!(
            summary["requests"]["completed"].as_u64() > Some(0),
            "{summary}"
        );
    }
    // Two runs through the mapping compare as any two runs do. Whether the repeat is
    // judged slower is the machine's business (a stall of a busy machine can raise one
    // step's p99): the comparison must read both runs and judge every figure.
    let compared = std::process::Command::new(crate::support::HARNESS)
        .arg("compare")
        .args(&steps)
        .output()
        .expect("run harness compare");
    let said = String::from_utf8_lossy(&compared.stdout);
    assert!(
        matches!(compared.status.code(), Some(0..=2)),
        "{said}{compared:?}"
    );
    for figure in ["latency p99", "throughput", "error rate"] {
        assert!(
            said.lines().any(|l| l.starts_with(figure)),
            "{figure}: {said}"
        );
    }
}
