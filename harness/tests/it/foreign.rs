//! A system that does not speak `docs/contract.md` (`foreign-bank`, in the tests' tree), driven
//! and reconciled through a target file's `api:` and `books:` sections alone: its own paths,
//! amounts as decimal strings, the key in the body, statuses 201/202/409/422, its id nested
//! in the answer, its ledger as double-entry rows in SQL. It passes faulted library profiles,
//! and each of its two broken variants is caught from its SQL books.

use crate::postgres::{self, Postgres};
use crate::support::{exclusive, free_port, run, run_with_env, Run};
use crate::target_file::{sh, wait_answering, ByPidFile};
use std::path::{Path, PathBuf};

pub(crate) const FOREIGN_BANK: &str = env!("CARGO_BIN_EXE_foreign-bank");

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

/// Where the foreign system keeps its two databases.
pub(crate) enum Engine<'a> {
    /// A SQLite file per service in the system's folder.
    Sqlite,
    /// A database per service in a running PostgreSQL; the harness reads the books with
    /// the password from `BOOKS_PASSWORD`.
    Postgres(&'a Postgres),
}

/// The variable the target file names for the books' password.
const PASSWORD_VAR: &str = "BOOKS_PASSWORD";

/// The foreign system, started by hand as its owner would: the bank, the payment service
/// reaching it through the external hop, and the target file that describes both.
pub(crate) struct Foreign {
    // Fields drop in order: the processes are killed through their pid files before the
    // folder holding those files goes.
    _psp: ByPidFile,
    _issuer: ByPidFile,
    pub target: PathBuf,
    /// The DSNs the system writes with, the bank's and the payment service's, and the
    /// line that names the password's variable (empty on SQLite).
    pub databases: [String; 2],
    pub password_env: String,
    pub dir: tempfile::TempDir,
}

impl Foreign {
    /// Starts the system on `engine`; `psp_flags` break the payment service on purpose.
    pub(crate) fn start(engine: &Engine<'_>, psp_flags: &str) -> Foreign {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let (psp_port, issuer_port, hop_port) = (free_port(), free_port(), free_port());
        // The system's own connections, and the harness's (read-only for SQLite; a
        // password from the environment for PostgreSQL).
        let dsn = |name: &str, books: bool| match engine {
            Engine::Sqlite => format!(
                "sqlite://{}?mode={}",
                d.join(format!("{name}.db")).display(),
                if books { "ro" } else { "rwc" }
            ),
            Engine::Postgres(server) => format!("{}/{name}", server.url()),
        };
        // The system reads its password from a file; the harness from its variable.
        let password_file = d.join("db-password");
        let db_password = match engine {
            Engine::Sqlite => String::new(),
            Engine::Postgres(_) => {
                std::fs::write(&password_file, postgres::PASSWORD).expect("password file");
                format!(" --db-password-file {}", password_file.display())
            }
        };
        let password_env = match engine {
            Engine::Sqlite => String::new(),
            Engine::Postgres(_) => format!("\n      password_env: {PASSWORD_VAR}"),
        };
        let start = |role: &str, args: String| {
            format!(
                "{FOREIGN_BANK} {role} {args} >> {log} 2>&1 & echo $! > {pid}",
                log = d.join(format!("{role}.log")).display(),
                pid = d.join(format!("{role}.pid")).display(),
            )
        };
        let issuer = ByPidFile(d.join("issuer.pid"));
        sh(&start(
            "issuer",
            format!(
                "--db '{}'{db_password} --listen 127.0.0.1:{issuer_port}",
                dsn("issuer", false)
            ),
        ));
        wait_answering(&format!("http://127.0.0.1:{issuer_port}"));
        let start_psp = start(
            "psp",
            format!(
                "--db '{}'{db_password} --listen 127.0.0.1:{psp_port} --issuer http://127.0.0.1:{hop_port} {psp_flags}",
                dsn("psp", false)
            ),
        );
        let psp = ByPidFile(d.join("psp.pid"));
        sh(&start_psp);
        wait_answering(&format!("http://127.0.0.1:{psp_port}"));
        let text = format!(
            r#"coordinator: http://127.0.0.1:{psp_port}
hops:
  external: {{listen: 127.0.0.1:{hop_port}, upstream: 127.0.0.1:{issuer_port}}}
coordinator_settings: {{design: saga, deadline_ms: 150}}
settle_s: 1
commands:
  coordinator:
    kill: kill -9 $(cat {pid})
    start: {start_psp}
{API}
books:
  external:
{external_books}
  ledger:
    sql:
      dsn: "{psp_books}"{password_env}
      balances: >-
        SELECT c.id, CAST(COALESCE(SUM(l.amount_cents), 0) AS BIGINT)
        FROM customers c LEFT JOIN ledger_lines l ON l.account = c.id
        GROUP BY c.id ORDER BY c.id
      entries: >-
        SELECT payment_id, account, amount_cents FROM ledger_lines
        WHERE account <> 'clearing' ORDER BY n
"#,
            pid = d.join("psp.pid").display(),
            external_books = match engine {
                // On SQLite the bank's books come from its statement export, over HTTP.
                Engine::Sqlite => format!(
                    "    http:
      url: http://127.0.0.1:{issuer_port}/export
      accounts: /statement/accounts
      account_id: /id
      balance_cents: /balance_minor
      entries: /statement/postings
      reference: /payment_ref
      entry_account_id: /account
      amount_cents: /amount_minor"
                ),
                Engine::Postgres(_) => format!(
                    "    sql:
      dsn: \"{}\"{password_env}
      balances: SELECT id, balance_cents FROM accounts ORDER BY id
      entries: SELECT ref, account, amount_cents FROM postings ORDER BY n",
                    dsn("issuer", true)
                ),
            },
            psp_books = dsn("psp", true),
        );
        let target = d.join("target.yaml");
        std::fs::write(&target, text).expect("write the target file");
        Foreign {
            _psp: psp,
            _issuer: issuer,
            target,
            databases: [dsn("issuer", false), dsn("psp", false)],
            password_env,
            dir,
        }
    }

    /// Runs `profile` against the system.
    pub(crate) fn run(&self, profile: &str, extra: &[&str]) -> Run {
        let target = self.target.display().to_string();
        let mut args = vec!["--target-file", target.as_str()];
        args.extend_from_slice(extra);
        run_with_env(profile, &args, &[(PASSWORD_VAR, postgres::PASSWORD)])
    }

    /// The system's own logs, for a failure message.
    pub(crate) fn logs(&self) -> String {
        ["issuer.log", "psp.log"]
            .iter()
            .map(|name| {
                let text = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
                let tail: String = text.lines().rev().take(20).collect::<Vec<_>>().join("\n");
                format!("{name} (last lines, newest first):\n{tail}")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The payment service's API, as its target file describes it.
const API: &str = r#"api:
  submit:
    path: /v1/payments
    body:
      payment:
        customer: "{{ user_id }}"
        source: {account: "{{ external_account_id }}"}
        amount: {value: "{{ amount }}", currency: "{{ currency }}"}
        reference: "{{ idempotency_key }}"
  outcome:
    - {status: 201, outcome: succeeded}
    - {status: 202, outcome: pending}
    - {status: 422, pointer: /payment/state, equals: declined, outcome: failed}
    - {status: [400, 409], outcome: rejected}
    - {status: 503, outcome: shed}
  transfer_id: /payment/id
  status:
    path: "/v1/payments?customer={{ user_id | urlencode }}&reference={{ idempotency_key | urlencode }}"
    outcome:
      - {status: 200, pointer: /payment/state, equals: settled, outcome: succeeded}
      - {status: 200, pointer: /payment/state, equals: declined, outcome: failed}
      - {status: 200, pointer: /payment/state, equals: processing, outcome: pending}
      - {status: 404, outcome: not_found}
  users:
    create:
      path: /v1/customers
      body:
        customer_id: "{{ user_id }}"
        bank_account: "{{ external_account_id }}"
        opening_balance: "{{ opening_balance }}"
"#;

/// The users' part of `API`.
const USERS_OVER_HTTP: &str = r#"  users:
    create:
      path: /v1/customers
      body:
        customer_id: "{{ user_id }}"
        bank_account: "{{ external_account_id }}"
        opening_balance: "{{ opening_balance }}"
"#;

impl Foreign {
    /// The target file with `users` in place of the users' HTTP creation.
    fn with_users(&self, users: &str) -> String {
        let text = std::fs::read_to_string(&self.target).expect("the target file");
        assert!(text.contains(USERS_OVER_HTTP), "{text}");
        text.replace(USERS_OVER_HTTP, users)
    }

    /// Customers `cust-N` with accounts `acct-N` (N below `count`), written straight into
    /// the system's tables as its own back office would, each account holding 1,000,000.00.
    fn add_customers(&self, count: u32) {
        use sqlx::Connection;
        let [bank, psp] = &self.databases;
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        runtime.block_on(async {
            sqlx::any::install_default_drivers();
            let mut bank = sqlx::AnyConnection::connect(bank)
                .await
                .expect("the bank's db");
            let mut psp = sqlx::AnyConnection::connect(psp)
                .await
                .expect("the psp's db");
            for n in 0..count {
                sqlx::query("INSERT INTO accounts (id, balance_cents) VALUES ($1, $2)")
                    .bind(format!("acct-{n}"))
                    .bind(100_000_000_i64)
                    .execute(&mut bank)
                    .await
                    .expect("an account");
                sqlx::query("INSERT INTO customers (id, bank_account) VALUES ($1, $2)")
                    .bind(format!("cust-{n}"))
                    .bind(format!("acct-{n}"))
                    .execute(&mut psp)
                    .await
                    .expect("a customer");
            }
        });
    }

    /// The users created by SQL statements, in the bank's database and then the payment
    /// service's.
    fn users_by_sql(&self) -> String {
        let [bank, psp] = &self.databases;
        format!(
            r#"  users:
    create_sql:
      - dsn: "{bank}"{password_env}
        statements:
          - sql: INSERT INTO accounts (id, balance_cents) VALUES ($1, $2)
            binds: [external_account_id, opening_balance_cents]
      - dsn: "{psp}"{password_env}
        statements:
          - sql: INSERT INTO customers (id, bank_account) VALUES ($1, $2)
            binds: [user_id, external_account_id]
"#,
            password_env = self.password_env.replace("\n      ", "\n        ")
        )
    }
}

/// Every invariant of money and of the client's answers holds, none is left unknown, and
/// the books were read. Latency is the machine's (two cores shared with the other tests):
/// `slo_latency` is left out.
pub(crate) fn assert_passes(run: &Run, foreign: &Foreign) {
    let summary = run.summary();
    let context = || format!("{}\n{}", run.printed(), foreign.logs());
    let not_holding: Vec<&serde_json::Value> = summary["invariants"]
        .as_array()
        .expect("invariants")
        .iter()
        .filter(|i| i["name"] != "slo_latency" && i["holds"] != serde_json::Value::Bool(true))
        .collect();
    assert!(not_holding.is_empty(), "{not_holding:?}\n{}", context());
    assert_eq!(summary["anomalies"], serde_json::json!({}), "{}", context());
    assert_eq!(summary["money"]["lost_cents"], 0, "{summary}");
    assert!(
        summary["money"]["final_total_cents"].as_u64().unwrap_or(0) > 0,
        "the books were read: {summary}"
    );
}

/// The classes of `run`'s anomalies.
fn classes(run: &Run) -> Vec<String> {
    let summary = run.summary();
    summary["anomalies"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn the_foreign_system_passes_faulted_library_profiles_on_sqlite() {
    let _serial = exclusive();
    let foreign = Foreign::start(&Engine::Sqlite, "");
    let timeout = foreign.run(
        &library("external-timeout"),
        &["--duration", EXTERNAL_TIMEOUT_S],
    );
    assert_passes(&timeout, &foreign);
    // The second run drives users the system had already, by the names a CSV file lists
    // (relative to the target file), as a team's existing customers.
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
    let history = std::fs::read_to_string(crash.out().join("history.jsonl")).expect("history");
    let first: serde_json::Value =
        serde_json::from_str(history.lines().next().expect("a record")).expect("json");
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
    assert!(said.contains("lost_debit"), "{said}{replayed:?}");
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(replay.join("summary.json")).expect("the replay's summary"),
    )
    .expect("JSON");
    assert!(
        summary["anomalies"]["lost_debit"].as_u64().unwrap_or(0) > 0,
        "{summary}"
    );
}

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

/// The payment service's `host:port`, from the target file.
fn coordinator_of(foreign: &Foreign) -> String {
    let text = std::fs::read_to_string(&foreign.target).expect("the target file");
    text.lines()
        .find_map(|l| l.strip_prefix("coordinator: http://"))
        .expect("the coordinator's address")
        .to_owned()
}

/// `METHOD path` with a JSON `body` at `host:port` over HTTP/1.0: the answer's status.
fn exchange(address: &str, method: &str, path: &str, body: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.split_whitespace().nth(1)?.parse().ok()
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

#[test]
fn the_contract_described_as_a_mapping_earns_what_the_native_path_earns() {
    let _serial = exclusive();
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/target-contract-as-api.yaml"),
    )
    .expect("docs/target-contract-as-api.yaml");
    let api = &example[example.find("\napi:").expect("an api: section") + 1..];
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

#[test]
fn check_target_walks_the_mapping_and_names_each_broken_one() {
    let _serial = exclusive();
    let foreign = Foreign::start(&Engine::Sqlite, "");
    let text = std::fs::read_to_string(&foreign.target).expect("the target file");
    let check = |text: &str| {
        std::fs::write(&foreign.target, text).expect("write the target file");
        std::process::Command::new(crate::support::HARNESS)
            .arg("check-target")
            .arg("--target-file")
            .arg(&foreign.target)
            .output()
            .expect("run check-target")
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
    let output = std::process::Command::new(crate::support::HARNESS)
        .arg("check-target")
        .arg("--target-file")
        .arg(&careless.target)
        .output()
        .expect("run check-target");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{printed}");
    assert!(
        printed
            .lines()
            .any(|l| l.starts_with("idempotent replay") && l.contains("VIOLATES")),
        "{printed}"
    );
}
