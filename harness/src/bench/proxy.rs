//! `harness bench-proxy`: requests/s with `wrk -t1 -c64` through one hop of the embedded
//! proxy with no toxic, through a plain relay (`tokio::io::copy_bidirectional` on the
//! proxy's link threads: what a hop with no toxic should cost), through HAProxy in TCP mode (a C proxy
//! built for speed: the reference for what any userspace TCP proxy reaches on this
//! machine), and direct, to a trivial loopback endpoint, all measured in one run. The hop,
//! the relay and HAProxy are measured in rounds, back to back in an order that turns each
//! round, and compared round by round: a shared machine's load changes over seconds, and a
//! ratio of two legs ten seconds apart measures that change as much as the proxies. wrk, nginx and HAProxy come from Debian's packages
//! and are installed with apt-get when missing.

use super::{ensure_installed, spawn_stub, tempdir};
use crate::cli::{Endpoint, ProxyBenchArgs};
use anyhow::{bail, Context};
use std::process::Command;
use std::time::Duration;

/// A helper server in the foreground on a loopback port, killed when dropped (each runs as
/// one process, so killing it leaves nothing behind).
struct Helper {
    child: std::process::Child,
    addr: String,
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_loopback_addr() -> anyhow::Result<String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    Ok(format!("127.0.0.1:{port}"))
}

/// Starts `command` (configured by a file in `dir`) and waits until it listens on `addr`.
fn start_helper(
    name: &str,
    mut command: Command,
    addr: String,
    log: &std::path::Path,
) -> anyhow::Result<Helper> {
    let child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let helper = Helper { child, addr };
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&helper.addr).is_err() {
        if std::time::Instant::now() > until {
            bail!(
                "{name} did not listen on {}; see {}",
                helper.addr,
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(helper)
}

/// nginx answering every request with 200 "ok", one process (`master_process off`).
fn start_nginx(dir: &std::path::Path) -> anyhow::Result<Helper> {
    let addr = free_loopback_addr()?;
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "worker_processes 1;\nmaster_process off;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log;\n\
             events {{ worker_connections 1024; }}\n\
             http {{ access_log off; server {{ listen {addr}; location / {{ return 200 \"ok\"; }} }} }}\n",
            d = dir.display()
        ),
    )?;
    let mut command = Command::new("nginx");
    command.arg("-c").arg(&conf).arg("-p").arg(dir);
    start_helper("nginx", command, addr, &dir.join("nginx-error.log"))
}

/// HAProxy in TCP mode with as many threads as the embedded proxy has link threads (one per
/// core), forwarding to `upstream`, in the foreground (`-db`).
fn start_haproxy(dir: &std::path::Path, upstream: &str) -> anyhow::Result<Helper> {
    let addr = free_loopback_addr()?;
    let conf = dir.join("haproxy.cfg");
    std::fs::write(
        &conf,
        format!(
            "global\n    nbthread {threads}\n    maxconn 4096\n\
             defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 60s\n    timeout server 60s\n\
             frontend hop\n    bind {addr}\n    default_backend endpoint\n\
             backend endpoint\n    server s1 {upstream}\n",
            threads = crate::proxy::threads::thread_count()
        ),
    )?;
    let mut command = Command::new("haproxy");
    command.arg("-db").arg("-f").arg(&conf);
    start_helper("haproxy", command, addr, &conf)
}

/// A plain relay on a free loopback port: each connection copied both ways by
/// `tokio::io::copy_bidirectional`, on the proxy's link threads, as the hop's are. Stops
/// accepting when the handle is aborted.
async fn start_relay(upstream: String) -> anyhow::Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let task = tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                continue;
            };
            let upstream = upstream.clone();
            let Ok(client) = client.into_std() else {
                continue;
            };
            crate::proxy::threads::spawn_link(async move {
                let Ok(mut client) = tokio::net::TcpStream::from_std(client) else {
                    return;
                };
                let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    Ok((addr, task))
}

fn available(command: &str, version_flag: &str) -> bool {
    Command::new(command).arg(version_flag).output().is_ok()
}

/// `wrk -t1 -cN -dD URL`, returning its Requests/sec.
fn wrk(url: &str, args: &ProxyBenchArgs) -> anyhow::Result<f64> {
    let output = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{}", args.connections),
            &format!("-d{}s", args.duration),
        ])
        .arg(url)
        .output()
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no Requests/sec in wrk's output: {text}"))
}

/// wrk off the async runtime (it blocks for the whole measurement).
async fn measure(url: String, args: &ProxyBenchArgs) -> anyhow::Result<f64> {
    let args = args.clone();
    tokio::task::spawn_blocking(move || wrk(&url, &args)).await?
}

pub async fn run_proxy(args: ProxyBenchArgs) -> anyhow::Result<i32> {
    ensure_installed("wrk", || available("wrk", "--version"))?;
    if !args.no_haproxy {
        ensure_installed("haproxy", || available("haproxy", "-v"))?;
    }
    let dir = tempdir()?;
    // The endpoint stays alive (and is stopped) with these guards.
    let (_nginx, _stub, endpoint) = match args.endpoint {
        Endpoint::Nginx => {
            ensure_installed("nginx-light", || available("nginx", "-v"))?;
            let nginx = start_nginx(&dir)?;
            let addr = nginx.addr.clone();
            (Some(nginx), None, addr)
        }
        Endpoint::Stub => {
            let stub = spawn_stub(&dir, None)?;
            let addr = stub.url.trim_start_matches("http://").to_owned();
            (None, Some(stub), addr)
        }
    };
    let registry = crate::proxy::Registry::new(1);
    let proxy = registry
        .create(crate::proxy::ProxyConfig {
            name: "hop".into(),
            listen: "127.0.0.1:0".into(),
            upstream: endpoint.clone(),
            enabled: true,
        })
        .await
        .map_err(|e| anyhow::anyhow!("creating the proxy: {e:?}"))?;
    println!(
        "bench-proxy: wrk -t1 -c{} -d{}s against {:?} at {endpoint}: {} rounds through one proxy hop, a plain relay and HAProxy, then direct",
        args.connections, args.duration, args.endpoint, args.rounds
    );
    let (relay_addr, relay) = start_relay(endpoint.clone()).await?;
    let haproxy = match args.no_haproxy {
        true => None,
        false => Some(start_haproxy(&dir, &endpoint)?),
    };
    let mut legs = vec![
        (Leg::Hop, format!("http://{}/", proxy.config().listen)),
        (Leg::Relay, format!("http://{relay_addr}/")),
    ];
    if let Some(h) = &haproxy {
        legs.push((Leg::HaProxy, format!("http://{}/", h.addr)));
    }
    let mut rounds: Vec<Round> = Vec::new();
    for n in 0..args.rounds as usize {
        let mut round = Round::default();
        // Each round starts with the next leg, so that none always follows another.
        for i in 0..legs.len() {
            let (leg, url) = &legs[(n + i) % legs.len()];
            let rate = measure(url.clone(), &args).await?;
            match leg {
                Leg::Hop => round.hop = rate,
                Leg::Relay => round.relay = rate,
                Leg::HaProxy => round.haproxy = Some(rate),
            }
        }
        println!("round {}: {}", n + 1, round.line());
        rounds.push(round);
    }
    drop(haproxy);
    relay.abort();
    let direct = measure(format!("http://{endpoint}/"), &args).await?;
    let hop = median(rounds.iter().map(|r| r.hop));
    println!(
        "through the hop:      {hop:.0} requests/s (median of {} rounds)",
        rounds.len()
    );
    println!(
        "through a relay:      {:.0} requests/s (median)",
        median(rounds.iter().map(|r| r.relay))
    );
    if !args.no_haproxy {
        let haproxy = median(rounds.iter().filter_map(|r| r.haproxy));
        println!("through HAProxy:      {haproxy:.0} requests/s (median)");
    }
    println!("direct:               {direct:.0} requests/s");
    println!(
        "ratio hop/direct:     {:.2}",
        hop / direct.max(f64::EPSILON)
    );
    let mut code = 0;
    let to_relay: Vec<f64> = rounds.iter().map(Round::to_relay).collect();
    code |= judged("hop/relay", &to_relay, args.min_relay_ratio);
    let to_haproxy: Vec<f64> = rounds.iter().filter_map(Round::to_haproxy).collect();
    if !to_haproxy.is_empty() {
        code |= judged("hop/HAProxy", &to_haproxy, args.min_ratio);
    }
    registry.stop_all();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(code)
}

/// Prints the median of the rounds' `ratios` with their range, and whether it reaches
/// `min`; 1 when it misses.
fn judged(name: &str, ratios: &[f64], min: Option<f64>) -> i32 {
    let ratio = median(ratios.iter().copied());
    let (low, high) = ratios
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), r| (l.min(*r), h.max(*r)));
    println!("ratio {name}: {ratio:.2} (median of the rounds' ratios; {low:.2}–{high:.2})");
    let Some(min) = min else {
        return 0;
    };
    let holds = ratio >= min;
    println!(
        "target {name} ≥ {min}: {}",
        if holds { "holds" } else { "MISSED" }
    );
    i32::from(!holds)
}

/// The legs measured in each round.
#[derive(Clone, Copy)]
enum Leg {
    Hop,
    Relay,
    HaProxy,
}

/// One round: the hop, the relay and, unless skipped, HAProxy, measured back to back.
#[derive(Default)]
struct Round {
    hop: f64,
    relay: f64,
    haproxy: Option<f64>,
}

impl Round {
    fn to_relay(&self) -> f64 {
        self.hop / self.relay.max(f64::EPSILON)
    }

    fn to_haproxy(&self) -> Option<f64> {
        self.haproxy.map(|h| self.hop / h.max(f64::EPSILON))
    }

    fn line(&self) -> String {
        let mut line = format!(
            "hop {:.0}/s, relay {:.0}/s (hop/relay {:.2})",
            self.hop,
            self.relay,
            self.to_relay()
        );
        if let (Some(h), Some(r)) = (self.haproxy, self.to_haproxy()) {
            line.push_str(&format!(", HAProxy {h:.0}/s (hop/HAProxy {r:.2})"));
        }
        line
    }
}

/// The median of `values` (the mean of the middle two for an even count); 0 for none.
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ratio_is_the_median_rounds_not_a_ratio_of_medians() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([4.0, 1.0, 2.0, 3.0].into_iter()), 2.5);
        assert_eq!(median(std::iter::empty()), 0.0);
        // The machine slows between rounds: each round's ratio still compares like with like.
        let round = |hop, relay, haproxy| Round {
            hop,
            relay,
            haproxy: Some(haproxy),
        };
        let rounds = [
            round(60.0, 50.0, 50.0),
            round(30.0, 30.0, 25.0),
            round(45.0, 50.0, 50.0),
        ];
        let ratios: Vec<f64> = rounds.iter().filter_map(Round::to_haproxy).collect();
        assert_eq!(median(ratios.into_iter()), 1.2);
        let ratios: Vec<f64> = rounds.iter().map(Round::to_relay).collect();
        assert_eq!(median(ratios.into_iter()), 1.0);
        assert_eq!(
            rounds[0].line(),
            "hop 60/s, relay 50/s (hop/relay 1.20), HAProxy 50/s (hop/HAProxy 1.20)"
        );
        assert_eq!(judged("hop/relay", &[0.9, 1.0, 0.96], Some(0.95)), 0);
        assert_eq!(judged("hop/relay", &[0.9, 0.94, 0.96], Some(0.95)), 1);
    }
}
