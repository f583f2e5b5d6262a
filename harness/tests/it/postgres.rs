//! A real PostgreSQL for the tests, from Debian's package (`.ci/install-postgresql`): a
//! cluster of its own in a temporary folder, on a free loopback port, with a password
//! (scram-sha-256) for its one user. Started as the unprivileged `postgres` user when the
//! tests run as root (PostgreSQL refuses root), stopped (fast shutdown) when dropped.

use crate::support::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The cluster's user and its password (a test's, never a secret).
pub(crate) const USER: &str = "bank";
pub(crate) const PASSWORD: &str = "books-test-password";

pub(crate) struct Postgres {
    _dir: tempfile::TempDir,
    data: PathBuf,
    server: Child,
    pub port: u16,
    bin: PathBuf,
}

/// Debian's server binaries, the newest version installed.
fn bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .filter(|bin| bin.join("initdb").exists())
                .collect()
        })
        .unwrap_or_default();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop().unwrap_or_else(|| {
        panic!("PostgreSQL's server is not installed: run `bash .ci/install-postgresql`")
    })
}

/// Whether the tests run as root (`/proc/self` belongs to the process's effective user).
fn as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `program args` as the cluster's owner: the `postgres` user when root.
fn command(bin: &Path, program: &str) -> Command {
    let path = bin.join(program);
    if as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(path);
        command
    } else {
        Command::new(path)
    }
}

impl Postgres {
    pub(crate) fn start() -> Postgres {
        let bin = bin_dir();
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let password_file = dir.path().join("password");
        std::fs::write(&password_file, PASSWORD).expect("password file");
        if as_root() {
            use std::os::unix::fs::PermissionsExt;
            let open = std::fs::Permissions::from_mode(0o755);
            std::fs::set_permissions(dir.path(), open).expect("chmod");
            std::fs::create_dir(&data).expect("data dir");
            let status = Command::new("chown")
                .arg("-R")
                .arg("postgres")
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown to postgres");
        }
        let init = command(&bin, "initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", USER, "--auth=scram-sha-256", "--no-sync"])
            .arg(format!("--pwfile={}", password_file.display()))
            .output()
            .expect("initdb runs");
        assert!(
            init.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let port = free_port();
        let server = command(&bin, "postgres")
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.path().display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("postgres starts");
        let postgres = Postgres {
            _dir: dir,
            data,
            server,
            port,
            bin,
        };
        postgres.wait_ready();
        postgres
    }

    fn wait_ready(&self) {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            assert!(Instant::now() < until, "PostgreSQL did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Creates database `name`.
    pub(crate) fn create_database(&self, name: &str) {
        let status = Command::new(self.bin.join("createdb"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                USER,
                name,
            ])
            .env("PGPASSWORD", PASSWORD)
            .status()
            .expect("createdb runs");
        assert!(status.success(), "createdb {name}");
    }

    /// The URL of the cluster with no password and no database: `postgres://bank@127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT is PostgreSQL's fast shutdown; the postmaster's pid is in its data folder.
        crate::support::stop_server(
            &self.data.join("postmaster.pid"),
            nix::sys::signal::Signal::SIGINT,
            &mut self.server,
        );
    }
}
