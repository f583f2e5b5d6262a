//! A real MySQL-protocol server for the tests: Debian's MariaDB (`.ci/install-mariadb`), a
//! server of its own in a temporary folder, on a free loopback port, with a password for its
//! one user. Started as the unprivileged `mysql` user when the tests run as root, stopped
//! when dropped. The books are read from it by SQL and users are created in it by
//! `create_sql`'s statements, in MySQL's own syntax (`?` parameters, its snapshot statement).

use crate::support::{exclusive, free_port, HARNESS};
use harness::mapping::template::{var, Vars};
use harness::mapping::users::{UserSource, UsersSpec};
use harness::system::sql::{self, Created};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const USER: &str = "bank";
const PASSWORD: &str = "books-test-password";
const DATABASE: &str = "bank";
/// The variable the harness reads the password from.
const PASSWORD_VAR: &str = "MYSQL_BOOKS_PASSWORD";

struct MariaDb {
    dir: tempfile::TempDir,
    server: Child,
    port: u16,
}

fn as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `program` as the server's owner: the `mysql` user when root.
fn command(program: &str) -> Command {
    if as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "mysql", "--", program]);
        command
    } else {
        Command::new(program)
    }
}

impl MariaDb {
    fn start() -> MariaDb {
        assert!(
            std::path::Path::new("/usr/sbin/mariadbd").exists(),
            "MariaDB's server is not installed: run `bash .ci/install-mariadb`"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("data dir");
        if as_root() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
            let status = Command::new("chown")
                .arg("-R")
                .arg("mysql")
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown to mysql");
        }
        let init = command("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .output()
            .expect("mariadb-install-db runs");
        assert!(
            init.status.success(),
            "mariadb-install-db: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let port = free_port();
        let server = command("/usr/sbin/mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", dir.path().join("socket").display()))
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .arg(format!("--port={port}"))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=32M",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd starts");
        let server = MariaDb { dir, server, port };
        server.wait_ready();
        server.as_root_user(&format!(
            "CREATE DATABASE {DATABASE}; \
             CREATE USER '{USER}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'; \
             GRANT ALL ON {DATABASE}.* TO '{USER}'@'127.0.0.1';"
        ));
        server
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("socket")
    }

    /// Runs `statements` as the server's root, over its socket.
    fn as_root_user(&self, statements: &str) {
        let output = Command::new("mariadb")
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket().display()))
            .args(["-u", "root", "-e", statements])
            .output()
            .expect("the mariadb client runs");
        assert!(
            output.status.success(),
            "{statements}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn wait_ready(&self) {
        let until = Instant::now() + Duration::from_secs(30);
        while !self.socket().exists()
            || std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err()
        {
            assert!(Instant::now() < until, "MariaDB did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The DSN with no password in it.
    fn dsn(&self) -> String {
        format!("mysql://{USER}@127.0.0.1:{}/{DATABASE}", self.port)
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        // SIGTERM is a clean shutdown.
        crate::support::stop_server(
            &self.dir.path().join("pid"),
            nix::sys::signal::Signal::SIGTERM,
            &mut self.server,
        );
    }
}

#[test]
fn books_are_read_from_a_real_mariadb_and_users_created_in_it_by_sql() {
    let _serial = exclusive();
    let server = MariaDb::start();
    // Books written into its tables and read back in one snapshot (MySQL's own statement),
    // then reconciled: every violation class planted in them is found.
    let bench = Command::new(HARNESS)
        .args(["bench-reconcile", "--transfers", "2000", "--books-dsn"])
        .arg(server.dsn())
        .args(["--books-password-env", PASSWORD_VAR])
        .env(PASSWORD_VAR, PASSWORD)
        .output()
        .expect("bench-reconcile runs");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&bench.stdout),
        String::from_utf8_lossy(&bench.stderr)
    );
    assert_eq!(bench.status.code(), Some(0), "{printed}");
    assert!(
        printed.contains("books read back by SQL")
            && printed.contains("every violation class planted was found"),
        "{printed}"
    );

    // Users created by statements with MySQL's `?` parameters; a second creation of the same
    // user breaks the key and is taken as the user being there.
    server.as_root_user(&format!(
        "CREATE TABLE {DATABASE}.accounts (id VARCHAR(64) PRIMARY KEY, owner VARCHAR(64), cents BIGINT)"
    ));
    let text = format!(
        "create_sql:\n  - dsn: {}\n    password_env: {PASSWORD_VAR}\n    statements:\n      - sql: INSERT INTO accounts (id, owner, cents) VALUES (?, ?, ?)\n        binds: [external_account_id, user_id, opening_balance_cents]\n",
        server.dsn()
    );
    let users: UsersSpec = serde_yaml::from_str(&text).expect("a users section");
    let Ok(Some(UserSource::Sql(mut databases))) = users.compile() else {
        panic!("create_sql compiles");
    };
    // A run reads the password from its variable (as bench-reconcile did above); this
    // process's own environment is shared by the other tests, so the password goes in the
    // DSN here.
    let database = &mut databases[0];
    database.dsn = database
        .dsn
        .replace(&format!("{USER}@"), &format!("{USER}:{PASSWORD}@"));
    database.password_env = None;
    let user = |n: u64| {
        let vars = Vars::default()
            .with(var::USER_ID, format!("c-{n}"))
            .with(var::EXTERNAL_ACCOUNT_ID, format!("acct-{n}"))
            .with(var::OPENING_BALANCE_CENTS, 1_000 * n);
        (format!("c-{n}"), vars)
    };
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let created = runtime
        .block_on(sql::create_users(&databases[0], [1, 2, 1].map(user)))
        .expect("created");
    assert_eq!(
        created,
        [Created::Created, Created::Created, Created::Existed]
    );
    let total = Command::new("mariadb")
        .arg("--no-defaults")
        .arg(format!("--socket={}", server.socket().display()))
        .args(["-u", "root", "-N", "-e"])
        .arg(format!("SELECT SUM(cents) FROM {DATABASE}.accounts"))
        .output()
        .expect("the mariadb client runs");
    assert_eq!(String::from_utf8_lossy(&total.stdout).trim(), "3000");
}
