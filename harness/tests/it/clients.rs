//! Toxiproxy's official clients against `harness toxiproxy`, as a team's scripts use them:
//! toxiproxy-python and chaostoolkit-toxiproxy (`clients/python_flow.py`) and
//! toxiproxy-node-client (`clients/node_flow.js`), each documented call in turn, with its
//! effect on a real connection through the proxy. The clients are installed from the
//! registries by `.ci/install-toxiproxy-clients` when missing. (Go's client is not on any
//! registry this project reaches; `proxy::toxic`'s tests send its bodies.)

use crate::support::toxiproxy_server;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::OnceLock;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where the clients are, installed once per test run when missing.
fn clients() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = repo().join("target/toxiproxy-clients");
        if !dir.join("ready").exists() {
            let script = repo().join(".ci/install-toxiproxy-clients");
            let status = Command::new("bash")
                .arg(&script)
                .arg(&dir)
                .status()
                .expect("run .ci/install-toxiproxy-clients");
            assert!(status.success(), "{} failed: {status}", script.display());
        }
        dir
    })
}

/// An echo server on loopback, for the life of the test binary; its address.
fn echo() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind echo");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut conn = conn;
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 || conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// Stops the server when the test ends, passed or not.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `script` with `program`, given the API's and an echo server's addresses and `extra`,
/// against a `harness toxiproxy` of its own; it must exit 0.
fn flow(program: &Path, script: &str, extra: &[&Path]) {
    let (server, api) = toxiproxy_server();
    let _server = Server(server);
    let output = Command::new(program)
        .arg(repo().join("harness/tests/it/clients").join(script))
        .arg(&api)
        .arg(echo())
        .args(extra)
        .output()
        .expect("run the client's flow");
    assert!(
        output.status.success(),
        "{script}: {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_python_clients_drive_harness_toxiproxy() {
    let python = clients().join("venv/bin/python");
    flow(&python, "python_flow.py", &[]);
}

#[test]
fn the_node_client_drives_harness_toxiproxy() {
    let module = clients().join("node/node_modules/toxiproxy-node-client");
    flow(Path::new("node"), "node_flow.js", &[&module]);
}
