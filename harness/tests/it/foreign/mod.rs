//! A system that does not speak `docs/contract.md` (`foreign-bank`, in the tests' tree), driven
//! and reconciled through a target file's `api:` and `books:` sections alone: its own paths,
//! amounts as decimal strings, the key in the body, statuses 201/202/409/422, its id nested
//! in the answer, its ledger as double-entry rows in SQL. It passes faulted library profiles,
//! and each of its two broken variants is caught from its SQL books.

mod library;
mod mapping;

pub(crate) use mapping::contract_as_api;

use crate::postgres::{self, Postgres};
use crate::support::{free_port, run_with_env, Run};
use crate::target_file::{sh, wait_answering, ByPidFile};
use std::path::PathBuf;

pub(crate) const FOREIGN_BANK: &str = env!("CARGO_BIN_EXE_foreign-bank");

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
{API}{USERS_OVER_HTTP}
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

/// The payment service's API, as its target file describes it, but for its users.
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
"#;

/// The users' part of the API (after `API` in the target file): created over HTTP.
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
            // One transaction each: one sync of each file, not one per row.
            let mut bank = bank.begin().await.expect("a transaction");
            let mut psp = psp.begin().await.expect("a transaction");
            for n in 0..count {
                sqlx::query("INSERT INTO accounts (id, balance_cents) VALUES ($1, $2)")
                    .bind(format!("acct-{n}"))
                    .bind(100_000_000_i64)
                    .execute(&mut *bank)
                    .await
                    .expect("an account");
                sqlx::query("INSERT INTO customers (id, bank_account) VALUES ($1, $2)")
                    .bind(format!("cust-{n}"))
                    .bind(format!("acct-{n}"))
                    .execute(&mut *psp)
                    .await
                    .expect("a customer");
            }
            bank.commit().await.expect("committed");
            psp.commit().await.expect("committed");
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
