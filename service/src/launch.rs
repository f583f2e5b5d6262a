//! Starting services as child processes: waits for the `listening on http://ADDR` line,
//! sends their logs to a file, and kills them when dropped, so no child outlives its owner.

use crate::server::LISTENING_PREFIX;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot open log file {path}: {source}")]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start {name}: {source}")]
    Spawn {
        name: String,
        source: std::io::Error,
    },
    #[error("{name} did not report its address within {waited:?} (exit: {status}); see {log}")]
    NotListening {
        name: String,
        waited: Duration,
        status: String,
        log: PathBuf,
    },
}

/// A running child service. SIGKILLed and reaped when dropped.
pub struct ServiceProcess {
    child: Child,
    pub name: String,
    /// `http://ADDR` the service reported.
    pub url: String,
}

impl ServiceProcess {
    /// Runs `command` with stdout piped (for the address line) and stderr appended to `log`.
    pub fn spawn(
        mut command: Command,
        name: &str,
        log: &Path,
        start_timeout: Duration,
    ) -> Result<ServiceProcess, LaunchError> {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|source| LaunchError::Log {
                path: log.to_owned(),
                source,
            })?;
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .map_err(|source| LaunchError::Spawn {
                name: name.to_owned(),
                source,
            })?;
        let (tx, rx) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some(addr) = line.strip_prefix(LISTENING_PREFIX) {
                        let _ = tx.send(format!("http://{addr}"));
                    }
                }
            });
        }
        let started = Instant::now();
        let url = loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(url) => break url,
                Err(_) => {
                    let exited = child.try_wait().ok().flatten();
                    if exited.is_some() || started.elapsed() > start_timeout {
                        let _ = child.kill();
                        let status = child
                            .wait()
                            .map(|s| s.to_string())
                            .unwrap_or_else(|e| e.to_string());
                        return Err(LaunchError::NotListening {
                            name: name.to_owned(),
                            waited: started.elapsed(),
                            status,
                            log: log.to_owned(),
                        });
                    }
                }
            }
        };
        Ok(ServiceProcess {
            child,
            name: name.to_owned(),
            url,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (SIGSTOP, SIGCONT, ...) to the process.
    pub fn signal(&self, signal: nix::sys::signal::Signal) -> nix::Result<()> {
        let pid = i32::try_from(self.child.id()).map_err(|_| nix::errno::Errno::ESRCH)?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal)
    }

    /// Whether the process has exited (and been reaped).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, wait up to `grace` for a clean exit, then SIGKILL. A process already reaped
    /// is left alone: its pid may be another process's by now.
    pub fn terminate(&mut self, grace: Duration) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let until = Instant::now() + grace;
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill();
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The path of a binary built beside the running one (`target/<profile>/NAME`), also from a
/// test binary under `target/<profile>/deps/`.
pub fn sibling_binary(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let mut dir = exe.parent()?.to_owned();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let candidate = dir.join(name);
    candidate.exists().then_some(candidate)
}
