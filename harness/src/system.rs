//! The system under test: started by the harness as child processes (the harness binary
//! re-executes itself as `harness serve <role>`), or an existing one given by URL. Seeding
//! and the reads the reconciler needs (dumps, saga log) go through `docs/contract.md` only.

use crate::profile::fault_plan::ServiceRole;
use crate::profile::plan::RunPlan;
use serde_json::json;
use service::book::Dump;
use service::coordinator::SagaDump;
use service::launch::{LaunchError, ServiceProcess};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The environment variable a served child reads to die with the harness.
pub const PARENT_PID_ENV: &str = "BANK_HARNESS_PARENT_PID";

#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    #[error(transparent)]
    Launch(#[from] LaunchError),
    #[error("cannot find the harness binary to start services: {0}")]
    SelfExe(std::io::Error),
    #[error("the thread that starts services is gone")]
    Launcher,
    #[error("{what} at {url} failed: {detail}")]
    Http {
        what: &'static str,
        url: String,
        detail: String,
    },
}

/// Where the three services answer. The institutions are optional for a system given by
/// URL; without them the money checks are unknown.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Endpoints {
    /// The coordinator itself: admin routes (saga log, seeding) go here directly.
    pub coordinator: String,
    /// Where the load goes: the gateway hop's proxy, or the coordinator when there is none.
    pub gateway: String,
    pub external: Option<String>,
    pub ledger: Option<String>,
}

/// The three services started by the harness. Dropping it kills them.
pub struct Launched {
    pub external: ServiceProcess,
    pub ledger: ServiceProcess,
    pub coordinator: ServiceProcess,
    specs: BTreeMap<ServiceRole, ServiceSpec>,
}

impl Launched {
    pub fn endpoints(&self) -> Endpoints {
        Endpoints {
            coordinator: self.coordinator.url.clone(),
            gateway: self.coordinator.url.clone(),
            external: Some(self.external.url.clone()),
            ledger: Some(self.ledger.url.clone()),
        }
    }

    /// SIGTERM all three (coordinator first), then SIGKILL whatever is left.
    pub fn stop(&mut self) {
        for process in [&mut self.coordinator, &mut self.external, &mut self.ledger] {
            process.terminate(Duration::from_secs(3));
        }
    }

    pub fn process_mut(&mut self, role: ServiceRole) -> &mut ServiceProcess {
        match role {
            ServiceRole::Coordinator => &mut self.coordinator,
            ServiceRole::External => &mut self.external,
            ServiceRole::Ledger => &mut self.ledger,
        }
    }

    /// Starts `role` again on the address it had, with the same arguments and data files,
    /// in place of its (stopped) process.
    pub fn respawn(&mut self, role: ServiceRole) -> Result<(), SystemError> {
        let process = self.process_mut(role);
        let listen = process.url.trim_start_matches("http://").to_owned();
        let spec = self
            .specs
            .get(&role)
            .ok_or_else(|| SystemError::Http {
                what: "restarting",
                url: listen.clone(),
                detail: format!("no start command kept for {}", role.as_str()),
            })?
            .clone();
        // The port was free a moment ago; a connection's source port can take it in
        // between, so try a few times before giving up.
        let mut attempt = 0;
        let fresh = loop {
            match spec.spawn(&listen) {
                Ok(process) => break process,
                Err(err) if attempt >= 4 => return Err(err),
                Err(_) => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        };
        *self.process_mut(role) = fresh;
        Ok(())
    }

    /// `(role, pid)` of each service.
    pub fn pids(&self) -> Vec<(&'static str, u32)> {
        vec![
            ("coordinator", self.coordinator.pid()),
            ("external", self.external.pid()),
            ("ledger", self.ledger.pid()),
        ]
    }
}

fn knob_args(k: &service::knobs::FaultKnobs) -> Vec<String> {
    let mode = match k.error_after_mode {
        service::knobs::LostAnswer::Status500 => "status500",
        service::knobs::LostAnswer::Drop => "drop",
    };
    vec![
        format!("--error-before-rate={}", k.error_before_rate),
        format!("--error-after-rate={}", k.error_after_rate),
        format!("--error-after-mode={mode}"),
        format!("--service-time-ms={}", k.service_time_ms),
        format!("--service-jitter-ms={}", k.service_jitter_ms),
    ]
}

type LaunchJob = Box<dyn FnOnce() + Send>;

/// The thread every service is started from (see [`ServiceSpec::spawn`]).
fn launcher() -> &'static std::sync::Mutex<std::sync::mpsc::Sender<LaunchJob>> {
    static LAUNCHER: std::sync::OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<LaunchJob>>> =
        std::sync::OnceLock::new();
    LAUNCHER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<LaunchJob>();
        // If the thread cannot start, `rx` is dropped and every launch reports it.
        let _ = std::thread::Builder::new()
            .name("launcher".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
            });
        std::sync::Mutex::new(tx)
    })
}

/// How to start one service: everything but the address it listens on, so that a process
/// fault can start it again on the same port with the same data files.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    role: &'static str,
    dir: PathBuf,
    args: Vec<String>,
}

impl ServiceSpec {
    fn new(dir: &Path, role: &'static str, seed: u64, extra: Vec<String>) -> ServiceSpec {
        let mut args = vec![
            "--db".to_owned(),
            dir.join(format!("{role}.db")).display().to_string(),
            format!("--seed={seed}"),
        ];
        args.extend(extra);
        ServiceSpec {
            role,
            dir: dir.to_owned(),
            args,
        }
    }

    /// Starts the service on `listen` (`127.0.0.1:0` for a free port) and waits for its
    /// address line. Its log is appended to `<role>.log` in the run folder.
    ///
    /// The child asks the kernel to kill it when its parent dies (`PR_SET_PDEATHSIG`), and
    /// the kernel means the parent *thread*: a child started from a short-lived thread (a
    /// tokio blocking thread, say) would die with that thread. So every start happens on
    /// one launcher thread that lives as long as the harness.
    pub fn spawn(&self, listen: &str) -> Result<ServiceProcess, SystemError> {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let (spec, listen) = (self.clone(), listen.to_owned());
        let job: LaunchJob = Box::new(move || {
            let _ = done_tx.send(spec.spawn_here(&listen));
        });
        let sent = match launcher().lock() {
            Ok(tx) => tx.send(job),
            Err(poisoned) => poisoned.into_inner().send(job),
        };
        sent.map_err(|_| SystemError::Launcher)?;
        done_rx.recv().map_err(|_| SystemError::Launcher)?
    }

    fn spawn_here(&self, listen: &str) -> Result<ServiceProcess, SystemError> {
        let exe = std::env::current_exe().map_err(SystemError::SelfExe)?;
        let mut command = Command::new(exe);
        command
            .args(["serve", self.role, "--listen", listen])
            .args(&self.args)
            .env(PARENT_PID_ENV, std::process::id().to_string());
        Ok(ServiceProcess::spawn(
            command,
            self.role,
            &self.dir.join(format!("{}.log", self.role)),
            Duration::from_secs(30),
        )?)
    }
}

fn serve(
    dir: &Path,
    role: &'static str,
    seed: u64,
    extra: Vec<String>,
) -> Result<(ServiceSpec, ServiceProcess), SystemError> {
    let spec = ServiceSpec::new(dir, role, seed, extra);
    let process = spec.spawn("127.0.0.1:0")?;
    Ok((spec, process))
}

/// The two institutions, started first so that their hops can be created before the
/// coordinator is told where they are.
pub struct Institutions {
    pub external: ServiceProcess,
    pub ledger: ServiceProcess,
    specs: Vec<(ServiceRole, ServiceSpec)>,
}

/// Starts the external institution and the ledger with fresh SQLite files under `dir`.
pub fn launch_institutions(plan: &RunPlan, dir: &Path) -> Result<Institutions, SystemError> {
    let (external_spec, external) =
        serve(dir, "external", plan.seed, knob_args(&plan.external_knobs))?;
    let mut ledger_args = knob_args(&plan.ledger_knobs);
    let policy = &plan.ledger_policy;
    if let Some(max) = policy.antifraud_max_amount_cents {
        ledger_args.push(format!("--antifraud-max-amount-cents={max}"));
    }
    ledger_args.push(format!(
        "--antifraud-refusal-rate={}",
        policy.antifraud_refusal_rate
    ));
    if let Some(limit) = policy.rate_limit_per_user_per_s {
        ledger_args.push(format!("--rate-limit-per-user-per-s={limit}"));
    }
    let (ledger_spec, ledger) = serve(dir, "ledger", plan.seed.wrapping_add(1), ledger_args)?;
    Ok(Institutions {
        external,
        ledger,
        specs: vec![
            (ServiceRole::External, external_spec),
            (ServiceRole::Ledger, ledger_spec),
        ],
    })
}

/// Starts the coordinator, reaching the institutions at `external_url` and `ledger_url`
/// (their hops' proxies).
pub fn launch_coordinator(
    plan: &RunPlan,
    dir: &Path,
    institutions: Institutions,
    external_url: &str,
    ledger_url: &str,
) -> Result<Launched, SystemError> {
    let design = match plan.design {
        service::coordinator::Design::Saga => "saga",
        service::coordinator::Design::Naive => "naive",
    };
    let (coordinator_spec, coordinator) = serve(
        dir,
        "coordinator",
        plan.seed.wrapping_add(2),
        vec![
            format!("--external-url={external_url}"),
            format!("--ledger-url={ledger_url}"),
            format!("--design={design}"),
            format!("--deadline-ms={}", plan.deadline_ms),
            format!("--max-in-flight={}", plan.service_max_in_flight),
        ],
    )?;
    let mut specs: BTreeMap<ServiceRole, ServiceSpec> = institutions.specs.into_iter().collect();
    specs.insert(ServiceRole::Coordinator, coordinator_spec);
    Ok(Launched {
        external: institutions.external,
        ledger: institutions.ledger,
        coordinator,
        specs,
    })
}

pub fn user_id(n: u32) -> String {
    format!("u-{n}")
}

pub fn account_id(n: u32) -> String {
    format!("a-{n}")
}

async fn post_admin(
    http: &reqwest::Client,
    what: &'static str,
    url: String,
    body: serde_json::Value,
) -> Result<(), SystemError> {
    let failed = |detail: String| SystemError::Http {
        what,
        url: url.clone(),
        detail,
    };
    let response = http
        .post(&url)
        .json(&body)
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .map_err(|e| failed(e.to_string()))?;
    if !response.status().is_success() {
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        return Err(failed(format!("{status}: {text}")));
    }
    Ok(())
}

/// Creates the plan's users: external accounts `a-N` with the opening balance, ledger
/// accounts `u-N` at zero, and the links between them at the coordinator.
pub async fn seed(
    http: &reqwest::Client,
    endpoints: &Endpoints,
    plan: &RunPlan,
) -> Result<(), SystemError> {
    let users = 0..plan.users;
    if let Some(external) = &endpoints.external {
        let accounts: Vec<_> = users
            .clone()
            .map(|n| json!({"account_id": account_id(n), "balance_cents": plan.opening_balance}))
            .collect();
        post_admin(
            http,
            "seeding external accounts",
            format!("{external}/admin/accounts"),
            json!({ "accounts": accounts }),
        )
        .await?;
    }
    if let Some(ledger) = &endpoints.ledger {
        let accounts: Vec<_> = users
            .clone()
            .map(|n| json!({"account_id": user_id(n), "balance_cents": 0}))
            .collect();
        post_admin(
            http,
            "seeding ledger accounts",
            format!("{ledger}/admin/accounts"),
            json!({ "accounts": accounts }),
        )
        .await?;
    }
    let links: Vec<_> = users
        .map(|n| json!({"user_id": user_id(n), "external_account_id": account_id(n)}))
        .collect();
    post_admin(
        http,
        "linking users",
        format!("{}/admin/users", endpoints.coordinator),
        json!({ "users": links }),
    )
    .await
}

async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    what: &'static str,
    url: String,
) -> Result<T, SystemError> {
    let failed = |detail: String| SystemError::Http {
        what,
        url: url.clone(),
        detail,
    };
    let response = http
        .get(&url)
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .map_err(|e| failed(e.to_string()))?;
    if !response.status().is_success() {
        return Err(failed(response.status().to_string()));
    }
    response.json().await.map_err(|e| failed(e.to_string()))
}

pub async fn dump(http: &reqwest::Client, base: &str) -> Result<Dump, SystemError> {
    get_json(http, "reading the dump", format!("{base}/admin/dump")).await
}

pub async fn sagas(http: &reqwest::Client, coordinator: &str) -> Result<SagaDump, SystemError> {
    get_json(
        http,
        "reading the saga log",
        format!("{coordinator}/admin/sagas"),
    )
    .await
}

/// Saves each service's `/metrics` (Prometheus text: operations by outcome, the store's
/// commits) as `<role>.metrics` in `out`. Counters run from the service's last start. A
/// service that does not answer is skipped: the figures are evidence, not a check.
pub async fn save_metrics(http: &reqwest::Client, endpoints: &Endpoints, out: &std::path::Path) {
    let services = [
        ("coordinator", Some(&endpoints.coordinator)),
        ("external", endpoints.external.as_ref()),
        ("ledger", endpoints.ledger.as_ref()),
    ];
    for (role, base) in services {
        let Some(base) = base else { continue };
        let text = match http
            .get(format!("{base}/metrics"))
            .timeout(std::time::Duration::from_secs(5))
            .send()
            .await
        {
            Ok(response) if response.status().is_success() => response.text().await,
            Ok(response) => {
                tracing::debug!(role, status = %response.status(), "no metrics");
                continue;
            }
            Err(err) => Err(err),
        };
        match text {
            Ok(text) => {
                if let Err(err) = std::fs::write(out.join(format!("{role}.metrics")), text) {
                    tracing::warn!(role, %err, "cannot save metrics");
                }
            }
            Err(err) => tracing::debug!(role, %err, "metrics not readable"),
        }
    }
}
