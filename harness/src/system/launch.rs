//! The services the harness starts, as child processes: the harness binary re-executes
//! itself as `harness serve <role>` with the role's settings as flags (derived from the
//! settings, never spelled by hand), each child dies with the harness, and a service stopped
//! by a process fault starts again on its old port and data files.

use crate::profile::plan::RunPlan;
use crate::topology::ServiceRole;
use service::launch::{LaunchError, ServiceProcess};
use service::settings::Settings;
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The environment variable a served child reads to die with the harness.
pub const PARENT_PID_ENV: &str = "BANK_HARNESS_PARENT_PID";

#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    #[error(transparent)]
    Launch(#[from] LaunchError),
    #[error("the thread that starts services is gone")]
    Launcher,
    #[error("no start command kept for {0}")]
    NoSpec(&'static str),
    #[error("{path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The run folder's subfolder that holds the services' SQLite files: the run removes it
/// when it passes (the evidence holds what its verdict needs), unless asked to keep it.
pub const SERVICE_DATA_DIR: &str = "service-data";

/// The three services started by the harness. Dropping it kills them.
pub struct Launched {
    pub external: ServiceProcess,
    pub ledger: ServiceProcess,
    pub coordinator: ServiceProcess,
    specs: BTreeMap<ServiceRole, ServiceSpec>,
}

impl Launched {
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
            .ok_or(SystemError::NoSpec(role.as_str()))?
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

    pub fn process(&self, role: ServiceRole) -> &ServiceProcess {
        match role {
            ServiceRole::Coordinator => &self.coordinator,
            ServiceRole::External => &self.external,
            ServiceRole::Ledger => &self.ledger,
        }
    }

    /// Each service's process id, by role.
    pub fn pids(&self) -> BTreeMap<&'static str, u32> {
        ServiceRole::ALL
            .into_iter()
            .map(|role| (role.as_str(), self.process(role).pid()))
            .collect()
    }
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

/// The executable the harness is running, as the kernel holds it: the file it was started
/// from even after a build has replaced or removed that path (a `cargo build` during a long
/// run), so a service killed by a fault starts again from the same code. A child resolves
/// the link in its own `/proc/self`, which is the harness's image until the exec.
const RUNNING_EXECUTABLE: &str = "/proc/self/exe";

/// How to start one service: everything but the address it listens on, so that a process
/// fault can start it again on the same port with the same data files.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    role: ServiceRole,
    dir: PathBuf,
    args: Vec<String>,
}

impl ServiceSpec {
    fn new(dir: &Path, role: ServiceRole, seed: u64, settings: Vec<String>) -> ServiceSpec {
        let name = role.as_str();
        let mut args = vec![
            "--db".to_owned(),
            dir.join(SERVICE_DATA_DIR)
                .join(format!("{name}.db"))
                .display()
                .to_string(),
            format!("--seed={seed}"),
        ];
        args.extend(settings);
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
        let name = self.role.as_str();
        let mut command = Command::new(RUNNING_EXECUTABLE);
        // `ps` shows the harness's own name, not the link's.
        command.arg0(
            std::env::args_os()
                .next()
                .unwrap_or_else(|| "harness".into()),
        );
        command
            .args(["serve", name, "--listen", listen])
            .args(&self.args)
            .env(PARENT_PID_ENV, std::process::id().to_string());
        Ok(ServiceProcess::spawn(
            command,
            name,
            &self.dir.join(format!("{name}.log")),
            Duration::from_secs(30),
        )?)
    }
}

fn serve(
    dir: &Path,
    role: ServiceRole,
    seed: u64,
    settings: Vec<String>,
) -> Result<(ServiceSpec, ServiceProcess), SystemError> {
    let spec = ServiceSpec::new(dir, role, seed, settings);
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

/// Starts the external institution and the ledger with fresh SQLite files under `dir`'s
/// `service-data/`.
pub fn launch_institutions(plan: &RunPlan, dir: &Path) -> Result<Institutions, SystemError> {
    let data = dir.join(SERVICE_DATA_DIR);
    std::fs::create_dir_all(&data).map_err(|source| SystemError::DataDir { path: data, source })?;
    let mut external_flags = plan.external_knobs.to_flags();
    if !plan.coordinator.design.external_keeps_tombstones() {
        // The no-tombstone mutant lives at the external institution.
        external_flags.push("--no-tombstone".to_owned());
    }
    let (external_spec, external) = serve(dir, ServiceRole::External, plan.seed, external_flags)?;
    let mut ledger_flags = plan.ledger_knobs.to_flags();
    ledger_flags.extend(plan.ledger_policy.to_flags());
    let (ledger_spec, ledger) = serve(
        dir,
        ServiceRole::Ledger,
        plan.seed.wrapping_add(1),
        ledger_flags,
    )?;
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
    let mut flags = vec![
        format!("--external-url={external_url}"),
        format!("--ledger-url={ledger_url}"),
    ];
    flags.extend(plan.coordinator.to_flags());
    flags.extend(plan.coordinator_knobs.to_flags());
    let (coordinator_spec, coordinator) = serve(
        dir,
        ServiceRole::Coordinator,
        plan.seed.wrapping_add(2),
        flags,
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
