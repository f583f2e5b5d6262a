//! Starts the reference system as real processes on loopback and talks to it over HTTP.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use service::contract::{
    routes, Dump, EntryKind, Saga, SagaDump, SagaState, SeedAccount, SeedAccounts, TransferRecord,
    TransferRequest, TransferStatus, TransferView, UserLink, UserLinks,
};
use service::knobs::FaultKnobs;
use service::money::AmountCents;
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
        let accounts = |prefix: &str, balance: u64| SeedAccounts {
            accounts: (0..self.users)
                .map(|i| SeedAccount {
                    account_id: format!("{prefix}-{i}"),
                    balance_cents: AmountCents::new(balance).into(),
                })
                .collect(),
        };
        let links = UserLinks {
            users: (0..self.users)
                .map(|i| UserLink {
                    user_id: format!("u-{i}"),
                    external_account_id: format!("a-{i}"),
                })
                .collect(),
        };
        let seeds = [
            (
                self.url(&self.external, routes::ADMIN_ACCOUNTS),
                serde_json::to_value(accounts("a", OPENING_BALANCE)),
            ),
            (
                self.url(&self.ledger, routes::ADMIN_ACCOUNTS),
                serde_json::to_value(accounts("u", 0)),
            ),
            (
                self.url(&self.coordinator, routes::ADMIN_USERS),
                serde_json::to_value(links),
            ),
        ];
        for (url, body) in seeds {
            let body = body.expect("a seeding body");
            let response = self.http.post(&url).json(&body).send().await.expect("seed");
            assert_eq!(response.status(), 201, "seeding {url}");
        }
    }

    /// `route` (with `{transfer_id}` already filled in, if any) at `service`.
    pub fn url(&self, service: &ServiceProcess, route: &str) -> String {
        format!("{}{route}", service.url)
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

    /// User `user`'s transfer of `amount` cents, in the contract's shape.
    pub fn request(user: usize, amount: u64) -> TransferRequest {
        TransferRequest {
            user_id: format!("u-{user}"),
            external_account_id: format!("a-{user}"),
            amount_cents: AmountCents::new(amount).into(),
        }
    }

    /// `POST /transfers` of a valid request; returns the status code and the answer, a
    /// transfer answer or an error body.
    pub async fn transfer(&self, key: &str, user: usize, amount: u64) -> (u16, Answer) {
        let (status, body) = self
            .post_transfer(Some(key), &Self::request(user, amount))
            .await;
        (status, Answer(body))
    }

    /// `POST /transfers` of any body (bad input included): the status and the JSON answer.
    pub async fn post_transfer(&self, key: Option<&str>, body: &impl Serialize) -> (u16, Value) {
        let mut request = self
            .http
            .post(self.url(&self.coordinator, routes::TRANSFERS))
            .json(body);
        if let Some(key) = key {
            request = request.header(routes::IDEMPOTENCY_KEY_HEADER, key);
        }
        let response = request.send().await.expect("transfer request");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON answer"))
    }

    pub async fn get_json<T: DeserializeOwned>(&self, url: String) -> T {
        self.http
            .get(&url)
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("JSON of the expected shape")
    }

    pub async fn put_json(&self, url: String, body: &impl Serialize) -> (u16, Value) {
        let response = self.http.put(&url).json(body).send().await.expect("PUT");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON"))
    }

    /// Sets every fault knob of `service` to `knobs`.
    pub async fn set_knobs(&self, service: &ServiceProcess, knobs: FaultKnobs) {
        let (status, body) = self
            .put_json(self.url(service, routes::ADMIN_KNOBS), &knobs)
            .await;
        assert_eq!(status, 200, "knobs: {body}");
    }

    /// What the external institution (`DEBIT`) or the ledger (`CREDIT`) recorded for an id.
    pub async fn record(&self, service: &ServiceProcess, route: &str, id: &str) -> TransferRecord {
        self.get_json(self.url(service, &routes::with_transfer_id(route, id)))
            .await
    }

    pub async fn sagas(&self) -> Vec<Saga> {
        let dump: SagaDump = self
            .get_json(self.url(&self.coordinator, routes::ADMIN_SAGAS))
            .await;
        dump.sagas
    }

    pub async fn saga_state(&self, transfer_id: &str) -> Option<SagaState> {
        let route = routes::with_transfer_id(routes::TRANSFER, transfer_id);
        let view: TransferView = self.get_json(self.url(&self.coordinator, &route)).await;
        view.state
    }

    /// Polls until every saga is final; panics after `limit`.
    pub async fn wait_all_final(&self, limit: Duration) -> Vec<Saga> {
        let until = Instant::now() + limit;
        loop {
            let sagas = self.sagas().await;
            let open = sagas.iter().filter(|s| !s.state.is_final()).count();
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
    pub async fn wait_state(&self, transfer_id: &str, state: SagaState, limit: Duration) {
        let until = Instant::now() + limit;
        loop {
            let now = self.saga_state(transfer_id).await;
            if now == Some(state) {
                return;
            }
            assert!(
                Instant::now() < until,
                "{transfer_id} is {now:?}, wanted {state:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn books(&self) -> Books {
        // The ledger first: every credit seen then has its debit already applied.
        let ledger = self
            .get_json(self.url(&self.ledger, routes::ADMIN_DUMP))
            .await;
        let external = self
            .get_json(self.url(&self.external, routes::ADMIN_DUMP))
            .await;
        Books { external, ledger }
    }
}

/// A coordinator's answer to `POST /transfers`, read as the contract says it may be.
#[derive(Debug)]
pub struct Answer(pub Value);

impl Answer {
    /// The transfer answer; panics on an error body.
    pub fn view(&self) -> TransferView {
        serde_json::from_value(self.0.clone())
            .unwrap_or_else(|e| panic!("not a transfer answer ({e}): {}", self.0))
    }

    /// The error code of an error body.
    pub fn error_code(&self) -> Option<&str> {
        self.0["error"]["code"].as_str()
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Both institutions' dumps.
pub struct Books {
    pub external: Dump,
    pub ledger: Dump,
}

impl Books {
    fn sum(dump: &Dump) -> u64 {
        dump.accounts.iter().map(|a| a.balance_cents.get()).sum()
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

    pub fn entries(&self, side: &Dump, transfer_id: &str, kind: EntryKind) -> usize {
        side.entries
            .iter()
            .filter(|e| e.transfer_id == transfer_id && e.kind == kind)
            .count()
    }

    fn net(dump: &Dump, transfer_id: &str) -> i64 {
        dump.entries
            .iter()
            .filter(|e| e.transfer_id == transfer_id)
            .map(|e| {
                let amount = i64::try_from(e.amount_cents.get()).expect("amount");
                match e.kind {
                    EntryKind::Reversal => -amount,
                    EntryKind::Debit | EntryKind::Credit => amount,
                }
            })
            .sum()
    }

    pub fn transfer_status(&self, side: &Dump, transfer_id: &str) -> Option<TransferStatus> {
        side.transfers
            .iter()
            .find(|t| t.transfer_id == transfer_id)
            .map(|t| t.status)
    }
}

/// Checks, for every saga, that its final state matches both books, and that money is
/// conserved. Returns nothing; panics with the transfer that disagrees.
pub fn assert_books_agree(sagas: &[Saga], books: &Books, initial_total: u64) {
    for saga in sagas {
        let id = saga.transfer_id.as_str();
        let amount = i64::try_from(saga.amount_cents.get()).expect("amount");
        let (debit, credit) = (books.external_net_debit(id), books.ledger_net_credit(id));
        match saga.state {
            SagaState::Completed => {
                assert_eq!((debit, credit), (amount, amount), "{id} completed")
            }
            SagaState::Failed | SagaState::Reversed => {
                assert_eq!((debit, credit), (0, 0), "{id} {saga:?}")
            }
            other => panic!("{id} is not final: {other:?}"),
        }
    }
    assert_eq!(books.total(), initial_total, "money created or lost");
}
