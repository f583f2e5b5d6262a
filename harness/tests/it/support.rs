//! Runs the `harness` binary on a profile written to a temporary folder.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const HARNESS: &str = env!("CARGO_BIN_EXE_harness");

/// Held by every test that runs whole systems: on two cores, several at once would measure
/// each other rather than the system (the stall test's catch-up time, above all).
pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    match LOCK.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// An SLO no test misses for reasons outside it. Tests about mechanics (faults, the
/// pipeline, reproducibility, targets) judge those; a latency bound would make them judge how
/// busy the machine is (two cores shared with the other tests, or with a build).
pub const LENIENT_SLO: &str = "slo:\n  p99_ms: 10000\n";

/// Validates `value` against the committed schema `file` (under `harness/schema/`).
pub fn schema_errors(file: &str, value: &Value) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schema")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("valid schema");
    validator
        .iter_errors(value)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

/// A profile with every required field; `extra` is appended (later keys must not repeat).
pub fn profile(name: &str, rate: u32, warmup_s: u32, duration_s: u32, extra: &str) -> String {
    format!(
        "name: {name}
seed: 11
warmup_s: {warmup_s}
duration_s: {duration_s}
arrival:
  rate_per_s: {rate}
users:
  count: 20
  opening_balance_cents: 100000000
amounts:
  min_cents: 100
  max_cents: 5000
{extra}"
    )
}

pub struct Run {
    pub dir: tempfile::TempDir,
    pub output: Output,
}

impl Run {
    pub fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    pub fn summary(&self) -> Value {
        let text = std::fs::read_to_string(self.out().join("summary.json")).unwrap_or_else(|e| {
            panic!(
                "no summary.json ({e}); stderr: {}",
                String::from_utf8_lossy(&self.output.stderr)
            )
        });
        serde_json::from_str(&text).expect("summary.json is JSON")
    }

    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Both streams, for failure messages: the verdict and its reasons are on stdout.
    pub fn printed(&self) -> String {
        format!(
            "stderr: {}\nstdout: {}",
            String::from_utf8_lossy(&self.output.stderr),
            String::from_utf8_lossy(&self.output.stdout)
        )
    }
}

/// Runs `command` to its end: its exit code, and what it printed on both streams.
pub fn finished(command: &mut std::process::Command) -> (Option<i32>, String) {
    let output = command.output().expect("run the command");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), printed)
}

pub fn write_profile(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("profile.yaml");
    std::fs::write(&path, text).expect("write profile");
    path
}

/// Runs the harness to completion on `text` with extra command-line arguments.
pub fn run(text: &str, args: &[&str]) -> Run {
    run_with_env(text, args, &[])
}

/// [`run`] with variables set in the harness's environment (a password it reads from one).
pub fn run_with_env(text: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_profile(dir.path(), text);
    let output = Command::new(HARNESS)
        .arg("--profile")
        .arg(&path)
        .arg("--out")
        .arg(dir.path().join("out"))
        .arg("--quiet")
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run harness");
    Run { dir, output }
}

/// Starts the harness without waiting for it.
pub fn spawn(dir: &Path, text: &str) -> Child {
    let path = write_profile(dir, text);
    Command::new(HARNESS)
        .arg("--profile")
        .arg(&path)
        .arg("--out")
        .arg(dir.join("out"))
        .arg("--quiet")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn harness")
}

/// Polls until `path` exists and `ready` holds for its text, up to `limit`.
pub fn wait_for_file(path: &Path, limit: Duration, ready: impl Fn(&str) -> bool) -> String {
    let until = Instant::now() + limit;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if ready(&text) {
                return text;
            }
        }
        assert!(
            Instant::now() < until,
            "{} not ready in {limit:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The services' pids from `services.json`.
pub fn service_pids(out: &Path) -> Vec<(String, i32)> {
    let text = wait_for_file(&out.join("services.json"), Duration::from_secs(30), |t| {
        t.contains("pids")
    });
    let json: Value = serde_json::from_str(&text).expect("services.json");
    json["pids"]
        .as_object()
        .expect("pids")
        .iter()
        .map(|(role, pid)| {
            (
                role.clone(),
                i32::try_from(pid.as_i64().expect("pid")).expect("pid"),
            )
        })
        .collect()
}

pub fn alive(pid: i32) -> bool {
    // A zombie still answers kill(0); look at its state too.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let zombie = stat.split(' ').nth(2) == Some("Z");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok() && !zombie
}

pub fn wait_gone(pids: &[(String, i32)], limit: Duration) {
    let until = Instant::now() + limit;
    loop {
        let left: Vec<_> = pids.iter().filter(|(_, pid)| alive(*pid)).collect();
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < until,
            "orphaned services still running: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `harness toxiproxy` on a free port, answering; its API as `host:port`.
pub fn toxiproxy_server() -> (Child, String) {
    let port = free_port();
    let server = Command::new(HARNESS)
        .args([
            "toxiproxy",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("toxiproxy server");
    let api = format!("127.0.0.1:{port}");
    let until = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&api).is_err() {
        assert!(Instant::now() < until, "the toxiproxy server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (server, api)
}

/// Stops a database server: `signal` to the pid its pid file holds (the server's own, not a
/// `runuser` in between), then up to 10 s for `server` to end, then SIGKILL.
pub fn stop_server(pid_file: &Path, signal: nix::sys::signal::Signal, server: &mut Child) {
    let pid = std::fs::read_to_string(pid_file).ok().and_then(|text| {
        text.lines()
            .next()
            .and_then(|l| l.trim().parse::<i32>().ok())
    });
    if let Some(pid) = pid {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
    }
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        if matches!(server.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = server.kill();
    let _ = server.wait();
}

/// A run folder's history, one JSON value a record (`history.jsonl.zst`).
pub fn history_lines(out: &Path) -> Vec<Value> {
    let path = out.join(harness::history::HISTORY_FILE);
    let bytes = harness::compressed::read_bytes(&path).expect("history.jsonl.zst");
    String::from_utf8(bytes)
        .expect("UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a history line is JSON"))
        .collect()
}

/// Polls until `path` holds at least `bytes` bytes, up to `limit`.
pub fn wait_for_size(path: &Path, limit: Duration, bytes: u64) {
    let until = Instant::now() + limit;
    while std::fs::metadata(path).map_or(0, |m| m.len()) < bytes {
        assert!(
            Instant::now() < until,
            "{} not {bytes} bytes in {limit:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
