//! Process faults on the services the harness started: real signals (SIGKILL, SIGSTOP and
//! SIGCONT, SIGTERM) and a fresh start on the same port and data files. Each step is read
//! back: the process gone, stopped (`T` in `/proc/PID/stat`), running, or answering
//! `/healthz` again. On a system the harness did not start, the same faults run its
//! owner's commands (`commands`); `ProcessControl` is either.

use super::commands::UserCommands;
use super::FaultError;
use crate::system::launch::{Launched, SystemError};
use crate::system::target_file::ProcessAction;
use crate::topology::ServiceRole;
use nix::sys::signal::Signal;
use service::contract::routes;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub type SharedSystem = Arc<Mutex<Launched>>;

/// What process faults act on: the services the harness started, or the owner's commands.
#[derive(Clone)]
pub enum ProcessControl {
    Launched(SharedSystem),
    Commands(Arc<UserCommands>),
}

/// A process fault's two ends, whichever way the processes are controlled.
impl ProcessControl {
    /// The start of a `kill` fault.
    pub async fn kill(&self, role: ServiceRole) -> Result<(), FaultError> {
        match self {
            ProcessControl::Launched(system) => Ok(kill(system, role).await?),
            ProcessControl::Commands(c) => Ok(c.run(role, ProcessAction::Kill).await?),
        }
    }

    /// The start of a `restart` fault: a graceful stop (the owner's `restart` command
    /// starts the service again at once; the harness's own waits for the fault's end).
    pub async fn restart(&self, role: ServiceRole) -> Result<(), FaultError> {
        match self {
            ProcessControl::Launched(system) => Ok(terminate(system, role).await?),
            ProcessControl::Commands(c) => Ok(c.run(role, ProcessAction::Restart).await?),
        }
    }

    /// The end of a `kill` (`killed`) or `restart` fault: the service answering again.
    pub async fn start_again(
        &self,
        role: ServiceRole,
        killed: bool,
        http: &reqwest::Client,
    ) -> Result<(), FaultError> {
        match self {
            ProcessControl::Launched(system) => Ok(start_again(system, role, http).await?),
            ProcessControl::Commands(c) if killed => Ok(c.run(role, ProcessAction::Start).await?),
            ProcessControl::Commands(c) => Ok(c.wait_answering(role).await?),
        }
    }

    /// Both ends of a `pause` fault.
    pub async fn pause(&self, role: ServiceRole, pause_it: bool) -> Result<(), FaultError> {
        match self {
            ProcessControl::Launched(system) => Ok(pause(system, role, pause_it).await?),
            ProcessControl::Commands(c) => {
                let action = if pause_it {
                    ProcessAction::Pause
                } else {
                    ProcessAction::Resume
                };
                Ok(c.run(role, action).await?)
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("{role} is still running after {signal}")]
    StillRunning {
        role: &'static str,
        signal: &'static str,
    },
    #[error("cannot send {signal:?} to {role}: {source}")]
    Signal {
        role: &'static str,
        signal: Signal,
        source: nix::errno::Errno,
    },
    #[error("{role} (process {pid}) is in state {state:?}, expected {expected}")]
    State {
        role: &'static str,
        pid: u32,
        state: Option<char>,
        expected: &'static str,
    },
    #[error("starting {role} again: {source}")]
    Respawn {
        role: &'static str,
        source: SystemError,
    },
    #[error("{role} started again at {url} but /healthz does not answer 200")]
    NotHealthy { role: &'static str, url: String },
    #[error("process control failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Runs `f` on the launched system off the async runtime (signals and starts block).
async fn with_system<T: Send + 'static>(
    system: &SharedSystem,
    f: impl FnOnce(&mut Launched) -> Result<T, ProcessError> + Send + 'static,
) -> Result<T, ProcessError> {
    let system = system.clone();
    tokio::task::spawn_blocking(move || {
        let mut guard = match system.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    })
    .await?
}

/// The state letter of a process (`R`, `S`, `T`, `Z`, ...) from `/proc/PID/stat`.
fn state_of(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: the state follows the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    after.trim_start().chars().next()
}

/// Waits up to a second for `pid` to be (`stopped` = true) or not be in state `T`.
fn wait_stopped(role: ServiceRole, pid: u32, stopped: bool) -> Result<(), ProcessError> {
    let until = Instant::now() + Duration::from_secs(1);
    loop {
        let state = state_of(pid);
        if (state == Some('T')) == stopped {
            return Ok(());
        }
        if Instant::now() > until {
            return Err(ProcessError::State {
                role: role.as_str(),
                pid,
                state,
                expected: if stopped { "stopped (T)" } else { "running" },
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// SIGKILL; read back that the process is gone.
pub async fn kill(system: &SharedSystem, role: ServiceRole) -> Result<(), ProcessError> {
    with_system(system, move |s| {
        let process = s.process_mut(role);
        process.kill();
        if !process.exited() {
            return Err(ProcessError::StillRunning {
                role: role.as_str(),
                signal: "SIGKILL",
            });
        }
        Ok(())
    })
    .await
}

/// SIGTERM and up to 5 s for a clean exit (then SIGKILL); read back that it is gone.
pub async fn terminate(system: &SharedSystem, role: ServiceRole) -> Result<(), ProcessError> {
    with_system(system, move |s| {
        let process = s.process_mut(role);
        process.terminate(Duration::from_secs(5));
        if !process.exited() {
            return Err(ProcessError::StillRunning {
                role: role.as_str(),
                signal: "SIGTERM",
            });
        }
        Ok(())
    })
    .await
}

/// SIGSTOP (`pause` = true) or SIGCONT; read back the process state.
pub async fn pause(
    system: &SharedSystem,
    role: ServiceRole,
    pause: bool,
) -> Result<(), ProcessError> {
    with_system(system, move |s| {
        let process = s.process_mut(role);
        let signal = if pause {
            Signal::SIGSTOP
        } else {
            Signal::SIGCONT
        };
        process
            .signal(signal)
            .map_err(|source| ProcessError::Signal {
                role: role.as_str(),
                signal,
                source,
            })?;
        wait_stopped(role, process.pid(), pause)
    })
    .await
}

/// Starts `role` again on its old address and data files; read back `/healthz`.
pub async fn start_again(
    system: &SharedSystem,
    role: ServiceRole,
    http: &reqwest::Client,
) -> Result<(), ProcessError> {
    let url = with_system(system, move |s| {
        s.respawn(role).map_err(|source| ProcessError::Respawn {
            role: role.as_str(),
            source,
        })?;
        Ok(s.process_mut(role).url.clone())
    })
    .await?;
    let healthy = http
        .get(format!("{url}{}", routes::HEALTHZ))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success());
    if !healthy {
        return Err(ProcessError::NotHealthy {
            role: role.as_str(),
            url,
        });
    }
    Ok(())
}
