//! The benchmark commands, each printing its figures beside a reference measured in the
//! same run on the same machine.
//!
//! - `generator`: `harness bench-generator`, the load generator alone against `oha`.
//! - `proxy`: `harness bench-proxy`, `wrk` through one proxy hop, a plain relay, HAProxy, and direct.

mod generator;
mod proxy;
pub mod reconcile;

pub use generator::run;
pub use proxy::run_proxy;

use anyhow::{bail, Context};
use service::launch::ServiceProcess;
use std::process::Command;
use std::time::Duration;

/// Pins the calling thread (and every thread it starts later) to `core`.
pub fn pin_to_core(core: usize) -> anyhow::Result<()> {
    let mut set = nix::sched::CpuSet::new();
    set.set(core).context("core number")?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .with_context(|| format!("pinning to core {core}"))
}

/// Starts the stub endpoint (this binary, `serve stub`), pinned to `core` when given.
pub(crate) fn spawn_stub(
    dir: &std::path::Path,
    core: Option<usize>,
) -> anyhow::Result<ServiceProcess> {
    let exe = std::env::current_exe()?;
    let mut command = match core {
        Some(core) => {
            let mut taskset = Command::new("taskset");
            taskset.arg("-c").arg(core.to_string()).arg(&exe);
            taskset
        }
        None => Command::new(&exe),
    };
    command
        .args(["serve", "stub", "--listen", "127.0.0.1:0"])
        .env(
            crate::system::launch::PARENT_PID_ENV,
            std::process::id().to_string(),
        );
    Ok(ServiceProcess::spawn(
        command,
        "stub",
        &dir.join("stub.log"),
        Duration::from_secs(20),
    )?)
}

/// A new folder of the bench's own for its scratch files (configurations, logs), kept after
/// the bench so its logs can be read.
pub(crate) fn tempdir() -> anyhow::Result<std::path::PathBuf> {
    Ok(tempfile::Builder::new()
        .prefix("harness-bench-")
        .tempdir()?
        .keep())
}

/// Installs a Debian package when `probe` says its command is missing.
pub(crate) fn ensure_installed(package: &str, probe: impl Fn() -> bool) -> anyhow::Result<()> {
    if probe() {
        return Ok(());
    }
    println!("{package} not found: installing it with apt-get (Debian package {package})");
    let _ = Command::new("apt-get").args(["update", "-qq"]).status();
    let status = Command::new("apt-get")
        .args(["install", "-y", "-qq", package])
        .status()?;
    if !status.success() || !probe() {
        bail!("could not install {package}");
    }
    Ok(())
}
