//! Process faults on a system the harness did not start: its owner's shell commands (from
//! the target file) run with `sh -c` under a timeout, the way Jepsen drives a database it
//! does not own. Each command's output and exit status go to `commands/` in the run folder;
//! each step is read back through the service's `/healthz`: gone after `kill`, silent
//! after `pause`, answering after `start`, `resume` and `restart`.

use crate::system::target_file::{ProcessAction, RoleCommandSet};
use crate::system::Endpoints;
use crate::topology::ServiceRole;
use service::contract::routes;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("no `{action}` command for {role} in the target file")]
    Missing {
        role: &'static str,
        action: &'static str,
    },
    #[error("no URL for {0} in the target file: its process faults cannot be read back")]
    NoUrl(&'static str),
    #[error("cannot run the {action} command of {role}: {source}")]
    Spawn {
        role: &'static str,
        action: &'static str,
        source: std::io::Error,
    },
    #[error("the {action} command of {role} ran past {timeout:?} and was killed (output: {log})")]
    TimedOut {
        role: &'static str,
        action: &'static str,
        timeout: Duration,
        log: String,
    },
    #[error("the {action} command of {role} exited with {status} (output: {log})")]
    Failed {
        role: &'static str,
        action: &'static str,
        status: String,
        log: String,
    },
    #[error("after `{action}`, {role} at {url} {problem} within {timeout:?}")]
    ReadBack {
        role: &'static str,
        action: &'static str,
        url: String,
        problem: &'static str,
        timeout: Duration,
    },
    #[error("the command runner failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The owner's commands for each role, and what the harness needs to run and check them.
pub struct UserCommands {
    commands: RoleCommandSet,
    endpoints: Endpoints,
    timeout: Duration,
    /// `commands/` in the run folder.
    dir: PathBuf,
    /// Numbers the output files in the order the commands ran.
    sequence: AtomicU32,
    http: reqwest::Client,
}

/// How long one `/healthz` probe may take before the service counts as not answering.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

impl UserCommands {
    pub fn new(
        commands: RoleCommandSet,
        endpoints: Endpoints,
        timeout: Duration,
        run_dir: &Path,
        http: reqwest::Client,
    ) -> UserCommands {
        UserCommands {
            commands,
            endpoints,
            timeout,
            dir: run_dir.join("commands"),
            sequence: AtomicU32::new(0),
            http,
        }
    }

    /// Runs `action`'s command for `role`, then reads its effect back.
    pub async fn run(&self, role: ServiceRole, action: ProcessAction) -> Result<(), CommandError> {
        let command = self
            .commands
            .of(role)
            .get(action)
            .ok_or(CommandError::Missing {
                role: role.as_str(),
                action: action.as_str(),
            })?
            .to_owned();
        let url = self.url_of(role)?;
        let n = self.sequence.fetch_add(1, Ordering::Relaxed) + 1;
        let log = self
            .dir
            .join(format!("{n:03}-{}-{}.log", role.as_str(), action.as_str()));
        let (dir, timeout) = (self.dir.clone(), self.timeout);
        tokio::task::spawn_blocking(move || {
            run_shell(&command, &dir, &log, timeout)
                .map_err(|failure| failure.into_error(role, action))
        })
        .await??;
        match action {
            ProcessAction::Kill => self.read_back(role, action, &url, Health::Gone).await,
            ProcessAction::Pause => self.read_back(role, action, &url, Health::Silent).await,
            ProcessAction::Start | ProcessAction::Resume | ProcessAction::Restart => {
                self.read_back(role, action, &url, Health::Answering).await
            }
        }
    }

    /// Waits for `role` to answer `/healthz` again (the end of a `restart` fault, whose
    /// command both stopped and started it).
    pub async fn wait_answering(&self, role: ServiceRole) -> Result<(), CommandError> {
        let url = self.url_of(role)?;
        self.read_back(role, ProcessAction::Restart, &url, Health::Answering)
            .await
    }

    fn url_of(&self, role: ServiceRole) -> Result<String, CommandError> {
        self.endpoints
            .of(role)
            .map(str::to_owned)
            .ok_or(CommandError::NoUrl(role.as_str()))
    }

    /// Probes `/healthz` until it shows `wanted`, for at most the command timeout.
    async fn read_back(
        &self,
        role: ServiceRole,
        action: ProcessAction,
        url: &str,
        wanted: Health,
    ) -> Result<(), CommandError> {
        let probe_url = format!("{url}{}", routes::HEALTHZ);
        let until = Instant::now() + self.timeout;
        loop {
            let answer = self
                .http
                .get(&probe_url)
                .timeout(PROBE_TIMEOUT)
                .send()
                .await;
            let seen = match answer {
                Ok(r) if r.status().is_success() => Health::Answering,
                Err(e) if e.is_timeout() => Health::Silent,
                _ => Health::Gone,
            };
            let done = match wanted {
                Health::Answering => seen == Health::Answering,
                // A frozen service accepts connections (the kernel does) but answers nothing.
                Health::Silent => seen == Health::Silent,
                Health::Gone => seen != Health::Answering,
            };
            if done {
                return Ok(());
            }
            if Instant::now() >= until {
                return Err(CommandError::ReadBack {
                    role: role.as_str(),
                    action: action.as_str(),
                    url: url.to_owned(),
                    problem: wanted.problem(),
                    timeout: self.timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Answering,
    /// Connections accepted, no answer.
    Silent,
    /// Refused, reset, or an error status.
    Gone,
}

impl Health {
    fn problem(self) -> &'static str {
        match self {
            Health::Answering => "does not answer /healthz",
            Health::Silent => "still answers /healthz (not paused)",
            Health::Gone => "still answers /healthz (not killed)",
        }
    }
}

/// Why a command did not succeed, before it is named with its role and action.
enum ShellFailure {
    Spawn(std::io::Error),
    TimedOut(Duration, PathBuf),
    Failed(String, PathBuf),
}

impl ShellFailure {
    fn into_error(self, role: ServiceRole, action: ProcessAction) -> CommandError {
        let (role, action) = (role.as_str(), action.as_str());
        match self {
            ShellFailure::Spawn(source) => CommandError::Spawn {
                role,
                action,
                source,
            },
            ShellFailure::TimedOut(timeout, log) => CommandError::TimedOut {
                role,
                action,
                timeout,
                log: log.display().to_string(),
            },
            ShellFailure::Failed(status, log) => CommandError::Failed {
                role,
                action,
                status,
                log: log.display().to_string(),
            },
        }
    }
}

/// Runs `command` with `sh -c` in its own process group, its output into `log` (a file, not
/// a pipe: a service the command leaves running in the background must not hold the harness
/// up), killing the group after `timeout`. The log ends with the exit status and the time.
fn run_shell(command: &str, dir: &Path, log: &Path, timeout: Duration) -> Result<(), ShellFailure> {
    std::fs::create_dir_all(dir).map_err(ShellFailure::Spawn)?;
    let mut file = std::fs::File::create(log).map_err(ShellFailure::Spawn)?;
    writeln!(file, "$ {command}").map_err(ShellFailure::Spawn)?;
    let stderr = file.try_clone().map_err(ShellFailure::Spawn)?;
    let started = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(file.try_clone().map_err(ShellFailure::Spawn)?)
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .map_err(ShellFailure::Spawn)?;
    let status = loop {
        match child.try_wait().map_err(ShellFailure::Spawn)? {
            Some(status) => break Some(status),
            None if started.elapsed() > timeout => {
                let group = nix::unistd::Pid::from_raw(child.id() as i32);
                let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let elapsed_ms = started.elapsed().as_millis();
    let ending = match status {
        Some(status) => format!("# {status} after {elapsed_ms} ms"),
        None => format!("# killed after {elapsed_ms} ms (timeout {timeout:?})"),
    };
    let _ = writeln!(file, "{ending}");
    match status {
        Some(status) if status.success() => Ok(()),
        Some(status) => Err(ShellFailure::Failed(status.to_string(), log.to_owned())),
        None => Err(ShellFailure::TimedOut(timeout, log.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_and_status_are_kept_and_a_failure_names_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("1.log");
        run_shell(
            "echo hello; echo oops >&2",
            dir.path(),
            &log,
            Duration::from_secs(5),
        )
        .map_err(|_| "failed")
        .expect("a command that succeeds");
        let text = std::fs::read_to_string(&log).expect("log");
        assert!(text.starts_with("$ echo hello"), "{text}");
        assert!(
            text.contains("hello\n") && text.contains("oops\n"),
            "{text}"
        );
        assert!(text.contains("# exit status: 0 after"), "{text}");

        let log = dir.path().join("2.log");
        match run_shell("exit 3", dir.path(), &log, Duration::from_secs(5)) {
            Err(ShellFailure::Failed(status, path)) => {
                assert!(status.contains('3'), "{status}");
                assert_eq!(path, log);
            }
            _ => panic!("exit 3 is a failure"),
        }
    }

    #[test]
    fn a_command_past_its_timeout_is_killed_with_what_it_started() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("slow.log");
        let started = Instant::now();
        let outcome = run_shell(
            "sleep 30 & sleep 30",
            dir.path(),
            &log,
            Duration::from_millis(300),
        );
        assert!(matches!(outcome, Err(ShellFailure::TimedOut(..))));
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "killed long before the command's own end"
        );
        let text = std::fs::read_to_string(&log).expect("log");
        assert!(text.contains("# killed after"), "{text}");
    }

    #[test]
    fn a_background_service_left_running_does_not_hold_the_command_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("bg.log");
        let pid_file = dir.path().join("pid");
        let command = format!("sleep 30 & echo $! > {}", pid_file.display());
        let started = Instant::now();
        run_shell(&command, dir.path(), &log, Duration::from_secs(10))
            .map_err(|_| "failed")
            .expect("returns once sh exits");
        assert!(started.elapsed() < Duration::from_secs(10));
        if let Ok(pid) = std::fs::read_to_string(&pid_file) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}
