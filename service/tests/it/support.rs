//! Starts the reference system as real processes on loopback and talks to it over HTTP.

use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

pub const OPENING_BALANCE: u64 = 100_000;

pub use service::launch::ServiceProcess;

fn spawn(role: &str, dir: &Path, db: &str, extra: &[String]) -> ServiceProcess {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bank-service"));
    command
        .arg(role)
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(dir.join(db))
        .args(extra);
    ServiceProcess::spawn(
        command,
        role,
        &dir.join(format!("{role}.log")),
        Duration::from_secs(20),
    )
    .expect("service starts")
}

pub fn pid_of(process: &ServiceProcess) -> i32 {
    i32::try_from(process.pid()).expect("pid")
}

/// The three services, seeded with `users` users `u-i` linked to external accounts `a-i`
/// holding [`OPENING_BALANCE`] each, and ledger accounts at zero.
pub struct System {
    pub dir: tempfile::TempDir,
    pub external: ServiceProcess,
    pub ledger: ServiceProcess,
    pub coordinator: ServiceProcess,
    pub coordinator_args: Vec<String>,
    pub users: usize,
    pub http: reqwest::Client,
}

pub struct Options {
    pub design: &'static str,
    pub users: usize,
    pub external_args: Vec<String>,
    pub ledger_args: Vec<String>,
    pub coordinator_args: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            design: "saga",
            users: 4,
            external_args: vec![],
            ledger_args: vec![],
            coordinator_args: vec![],
        }
    }
}

pub fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

impl System {
    pub async fn start(options: Options) -> System {
        let dir = tempfile::tempdir().expect("tempdir");
        let external = spawn(
            "external",
            dir.path(),
            "external.db",
            &options.external_args,
        );
        let ledger = spawn("ledger", dir.path(), "ledger.db", &options.ledger_args);
        let mut coordinator_args = args(&[
            "--external-url",
            &external.url,
            "--ledger-url",
            &ledger.url,
            "--design",
            options.design,
        ]);
        coordinator_args.extend(options.coordinator_args);
        let coordinator = spawn("coordinator", dir.path(), "saga.db", &coordinator_args);
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let system = System {
            dir,
            external,
            ledger,
            coordinator,
            coordinator_args,
            users: options.users,
            http,
        };
        system.seed().await;
        system
    }

    async fn seed(&self) {
        let n = self.users;
        let ext: Vec<Value> = (0..n)
            .map(|i| json!({"account_id": format!("a-{i}"), "balance_cents": OPENING_BALANCE}))
            .collect();
        let led: Vec<Value> = (0..n)
            .map(|i| json!({"account_id": format!("u-{i}"), "balance_cents": 0}))
            .collect();
        let links: Vec<Value> = (0..n)
            .map(|i| json!({"user_id": format!("u-{i}"), "external_account_id": format!("a-{i}")}))
            .collect();
        for (url, body) in [
            (
                format!("{}/admin/accounts", self.external.url),
                json!({ "accounts": ext }),
            ),
            (
                format!("{}/admin/accounts", self.ledger.url),
                json!({ "accounts": led }),
            ),
            (
                format!("{}/admin/users", self.coordinator.url),
                json!({ "users": links }),
            ),
        ] {
            let response = self.http.post(&url).json(&body).send().await.expect("seed");
            assert_eq!(response.status(), 201, "seeding {url}");
        }
    }

    pub fn initial_total(&self) -> u64 {
        OPENING_BALANCE * self.users as u64
    }

    /// Restarts the coordinator on the same saga file (after a kill).
    pub fn restart_coordinator(&mut self) {
        self.coordinator.kill();
        self.coordinator = spawn(
            "coordinator",
            self.dir.path(),
            "saga.db",
            &self.coordinator_args,
        );
    }

    /// `POST /transfers`; returns the status code and the JSON body.
    pub async fn transfer(&self, key: &str, user: usize, amount: u64) -> (u16, Value) {
        let body = json!({
            "user_id": format!("u-{user}"),
            "external_account_id": format!("a-{user}"),
            "amount_cents": amount,
        });
        self.post_transfer(Some(key), body).await
    }

    pub async fn post_transfer(&self, key: Option<&str>, body: Value) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}/transfers", self.coordinator.url))
            .json(&body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.expect("transfer request");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON answer"))
    }

    pub async fn get_json(&self, url: String) -> Value {
        self.http
            .get(&url)
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("JSON")
    }

    pub async fn put_json(&self, url: String, body: Value) -> (u16, Value) {
        let response = self.http.put(&url).json(&body).send().await.expect("PUT");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON"))
    }

    pub async fn set_knobs(&self, service: &ServiceProcess, knobs: Value) {
        let (status, body) = self
            .put_json(format!("{}/admin/knobs", service.url), knobs)
            .await;
        assert_eq!(status, 200, "knobs: {body}");
    }

    pub async fn sagas(&self) -> Vec<Value> {
        let dump = self
            .get_json(format!("{}/admin/sagas", self.coordinator.url))
            .await;
        dump["sagas"].as_array().cloned().unwrap_or_default()
    }

    pub async fn saga_state(&self, transfer_id: &str) -> String {
        let view = self
            .get_json(format!("{}/transfers/{transfer_id}", self.coordinator.url))
            .await;
        view["state"].as_str().unwrap_or("missing").to_owned()
    }

    /// Polls until every saga is final; panics after `limit`.
    pub async fn wait_all_final(&self, limit: Duration) -> Vec<Value> {
        let until = Instant::now() + limit;
        loop {
            let sagas = self.sagas().await;
            let open = sagas
                .iter()
                .filter(|s| {
                    !matches!(
                        s["state"].as_str(),
                        Some("completed" | "failed" | "reversed")
                    )
                })
                .count();
            if open == 0 {
                return sagas;
            }
            assert!(
                Instant::now() < until,
                "{open} sagas still open after {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls until `transfer_id` reaches `state`; panics after `limit`.
    pub async fn wait_state(&self, transfer_id: &str, state: &str, limit: Duration) {
        let until = Instant::now() + limit;
        loop {
            let now = self.saga_state(transfer_id).await;
            if now == state {
                return;
            }
            assert!(
                Instant::now() < until,
                "{transfer_id} is {now}, wanted {state}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn books(&self) -> Books {
        // The ledger first: every credit seen then has its debit already applied.
        let ledger = self
            .get_json(format!("{}/admin/dump", self.ledger.url))
            .await;
        let external = self
            .get_json(format!("{}/admin/dump", self.external.url))
            .await;
        Books { external, ledger }
    }
}

/// Both institutions' dumps.
pub struct Books {
    pub external: Value,
    pub ledger: Value,
}

impl Books {
    fn sum(dump: &Value) -> u64 {
        dump["accounts"]
            .as_array()
            .expect("accounts")
            .iter()
            .map(|a| a["balance_cents"].as_u64().expect("balance"))
            .sum()
    }

    pub fn external_total(&self) -> u64 {
        Self::sum(&self.external)
    }

    pub fn ledger_total(&self) -> u64 {
        Self::sum(&self.ledger)
    }

    pub fn total(&self) -> u64 {
        self.external_total() + self.ledger_total()
    }

    /// Net amount debited at the external side for `transfer_id` (debits minus reversals).
    pub fn external_net_debit(&self, transfer_id: &str) -> i64 {
        Self::net(&self.external, transfer_id)
    }

    /// Net amount credited in the ledger for `transfer_id`.
    pub fn ledger_net_credit(&self, transfer_id: &str) -> i64 {
        Self::net(&self.ledger, transfer_id)
    }

    pub fn entries(&self, side: &Value, transfer_id: &str, kind: &str) -> usize {
        side["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .filter(|e| e["transfer_id"] == transfer_id && e["kind"] == kind)
            .count()
    }

    fn net(dump: &Value, transfer_id: &str) -> i64 {
        dump["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .filter(|e| e["transfer_id"] == transfer_id)
            .map(|e| {
                let amount = e["amount_cents"].as_i64().expect("amount");
                match e["kind"].as_str() {
                    Some("reversal") => -amount,
                    _ => amount,
                }
            })
            .sum()
    }

    pub fn transfer_status(&self, side: &Value, transfer_id: &str) -> Option<String> {
        side["transfers"]
            .as_array()
            .expect("transfers")
            .iter()
            .find(|t| t["transfer_id"] == transfer_id)
            .and_then(|t| t["status"].as_str().map(str::to_owned))
    }
}

/// Checks, for every saga, that its final state matches both books, and that money is
/// conserved. Returns nothing; panics with the transfer that disagrees.
pub fn assert_books_agree(sagas: &[Value], books: &Books, initial_total: u64) {
    for saga in sagas {
        let id = saga["transfer_id"].as_str().expect("id");
        let amount = saga["amount_cents"].as_i64().expect("amount");
        let (debit, credit) = (books.external_net_debit(id), books.ledger_net_credit(id));
        match saga["state"].as_str() {
            Some("completed") => assert_eq!((debit, credit), (amount, amount), "{id} completed"),
            Some("failed" | "reversed") => assert_eq!((debit, credit), (0, 0), "{id} {saga}"),
            other => panic!("{id} is not final: {other:?}"),
        }
    }
    assert_eq!(books.total(), initial_total, "money created or lost");
}
