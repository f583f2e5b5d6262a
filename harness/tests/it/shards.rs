//! A run past one process: shard processes drive one reference system started by hand (as
//! a team's own system would be), each its part of one seeded schedule, shard 0 applying the
//! faults; `harness merge` makes one run of their folders, judged as one process's run is.

use crate::damaged;
use crate::support::{exclusive, free_port, run, toxiproxy_server, write_profile, HARNESS};
use crate::target_file::{invariants, serve_command, sh, target_file, wait_answering, ByPidFile};
use hdrhistogram::Histogram;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Debits slowed on the external hop, then the coordinator killed, under load.
const FAULTED: &str = "name: sharded
seed: 41
warmup_s: 1
duration_s: 6
arrival: {rate_per_s: 250}
users: {count: 60, opening_balance_cents: 100000000}
amounts: {min_cents: 100, max_cents: 5000}
client: {timeout_ms: 2000}
slo: {p99_ms: 10000, error_budget: 0.5}
convergence_window_s: 30
faults:
  - {name: slow-debits, kind: toxic, target: external, at_s: 1.5, duration_s: 2, toxic: latency, attributes: {latency: 300}}
  - {name: crash, kind: kill, target: coordinator, at_s: 4.5, duration_s: 1}
";

/// The reference system's three services started by shell commands, the coordinator
/// reaching its upstreams through two hops, and the target file that describes it.
struct HandStarted {
    target: PathBuf,
    _services: [ByPidFile; 3],
}

fn start_system(d: &Path, coordinator_extra: &str, stated: &str) -> HandStarted {
    let (coordinator, external, ledger) = (free_port(), free_port(), free_port());
    let (external_hop, ledger_hop) = (free_port(), free_port());
    let services = [
        ByPidFile(d.join("external.pid")),
        ByPidFile(d.join("ledger.pid")),
        ByPidFile(d.join("coordinator.pid")),
    ];
    sh(&serve_command(d, "external", external, ""));
    sh(&serve_command(d, "ledger", ledger, ""));
    let start_coordinator = serve_command(
        d,
        "coordinator",
        coordinator,
        &format!(
            "--external-url http://127.0.0.1:{external_hop} --ledger-url http://127.0.0.1:{ledger_hop} {coordinator_extra}"
        ),
    );
    sh(&start_coordinator);
    for port in [external, ledger, coordinator] {
        wait_answering(&format!("http://127.0.0.1:{port}"));
    }
    let target = target_file(
        d,
        &format!(
            "coordinator: http://127.0.0.1:{coordinator}
external: http://127.0.0.1:{external}
ledger: http://127.0.0.1:{ledger}
hops:
  external: {{listen: 127.0.0.1:{external_hop}}}
  ledger: {{listen: 127.0.0.1:{ledger_hop}}}
{stated}commands:
  coordinator:
    kill: kill -KILL \"$(cat {pid})\"
    start: '{start}'
",
            pid = d.join("coordinator.pid").display(),
            start = start_coordinator.replace('\'', "''"),
        ),
    );
    HandStarted {
        target,
        _services: services,
    }
}

/// Runs `count` shards of the profile at `profile` against `target`, all starting 15 s from
/// now, each into `d/shard-I`; returns their folders.
fn run_shards(d: &Path, profile: &Path, target: &Path, count: u32, extra: &[&str]) -> Vec<PathBuf> {
    // Far enough ahead for every shard to attach, seed and flush the disk on a busy machine.
    let start_at = SystemTime::now() + Duration::from_secs(15);
    let start_at = start_at
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch")
        .as_secs()
        .to_string();
    let children: Vec<_> = (0..count)
        .map(|i| {
            let out = d.join(format!("shard-{i}"));
            let child = Command::new(HARNESS)
                .arg("--profile")
                .arg(profile)
                .arg("--target-file")
                .arg(target)
                .args(["--shard", &format!("{i}/{count}"), "--start-at", &start_at])
                .arg("--out")
                .arg(&out)
                .arg("--quiet")
                .args(extra)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start a shard");
            (out, child)
        })
        .collect();
    children
        .into_iter()
        .map(|(out, child)| {
            let output = child.wait_with_output().expect("a shard ends");
            assert_eq!(output.status.code(), Some(0), "{}", printed(&output));
            out
        })
        .collect()
}

fn printed(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn merge(dirs: &[PathBuf], out: &Path) -> Output {
    Command::new(HARNESS)
        .arg("merge")
        .args(dirs)
        .arg("--out")
        .arg(out)
        .output()
        .expect("run harness merge")
}

fn summary(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("summary.json")).expect("summary.json");
    serde_json::from_str(&text).expect("summary.json is JSON")
}

/// The measured latencies of a run folder's history, in µs.
fn measured_samples(dir: &Path) -> Vec<u64> {
    crate::support::history_lines(dir)
        .into_iter()
        .filter(|r| r["measured"] == true)
        .filter_map(|r| r["latency_us"].as_u64())
        .collect()
}

/// How many samples an interval log holds in all.
fn hlog_count(dir: &Path) -> u64 {
    use base64::Engine;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    let bytes = std::fs::read(dir.join("latency.hlog")).expect("latency.hlog");
    let mut deserializer = hdrhistogram::serialization::Deserializer::new();
    IntervalLogIterator::new(&bytes)
        .filter_map(|entry| match entry.expect("a log entry") {
            LogEntry::Interval(interval) => Some(interval.encoded_histogram().to_owned()),
            _ => None,
        })
        .map(|encoded| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .expect("base64");
            let h: Histogram<u64> = deserializer
                .deserialize(&mut bytes.as_slice())
                .expect("a histogram");
            h.len()
        })
        .sum()
}

/// What the merged and the single-process runs must agree on.
fn judged(s: &Value) -> (Value, Value, Vec<(String, Value)>, Value, Value) {
    (
        s["verdict"].clone(),
        s["anomalies"].clone(),
        invariants(s),
        s["money"]["created_cents"].clone(),
        s["money"]["lost_cents"].clone(),
    )
}

#[test]
fn three_shards_merged_are_judged_as_one_process_run_of_the_same_profile() {
    let serial = exclusive();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let system = start_system(d, "", "");
    let profile = write_profile(d, FAULTED);
    let shards = run_shards(d, &profile, &system.target, 3, &[]);

    // Each shard drove its own users only, and only shard 0 applied the faults.
    for (i, shard) in shards.iter().enumerate() {
        let s = summary(shard);
        assert_eq!(s["shard"]["index"], i, "{s}");
        assert_eq!(s["verdict"], "unknown", "{s}");
        let applied = s["faults"]
            .as_array()
            .expect("faults")
            .iter()
            .all(|f| f["applied_at_s"].is_number() && f["healed_at_s"].is_number());
        assert_eq!(applied, i == 0, "shard {i}: {}", s["faults"]);
        let users: std::collections::BTreeSet<u64> = crate::support::history_lines(shard)
            .into_iter()
            .filter_map(|r| r["user_id"].as_str()?.strip_prefix("u-")?.parse().ok())
            .collect();
        assert!(
            !users.is_empty() && users.iter().all(|u| u % 3 == i as u64),
            "shard {i} sent for users {users:?}"
        );
    }

    let merged_dir = d.join("merged");
    let merged = merge(&shards, &merged_dir);
    assert_eq!(merged.status.code(), Some(0), "{}", printed(&merged));
    let m = summary(&merged_dir);
    assert_eq!(m["shards"], 3, "{m}");

    // The same run in one process, on a system the harness starts.
    let single = run(FAULTED, &[]);
    // The runs are over: what follows reads their folders and shares the machine.
    drop(serial);
    drop(system);
    assert_eq!(single.code(), Some(0), "{}", single.printed());
    let one = single.summary();
    assert_eq!(judged(&m), judged(&one), "merged {m}\nsingle {one}");
    assert_eq!(
        m["requests"]["scheduled"], one["requests"]["scheduled"],
        "the shards' schedules together are the one schedule"
    );
    assert_eq!(m["faults"], summary(&shards[0])["faults"]);

    // Lossless: the merged log holds every shard's samples, and the merged p99 is the p99
    // of all the shards' measured samples together.
    let shard_counts: u64 = shards.iter().map(|s| hlog_count(s)).sum();
    assert_eq!(hlog_count(&merged_dir), shard_counts);
    let mut all =
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("bounds");
    for us in shards.iter().flat_map(|s| measured_samples(s)) {
        all.record(us).expect("record");
    }
    assert_eq!(m["latency_ms"]["samples"], all.len());
    let p99_ms = all.value_at_quantile(0.99) as f64 / 1000.0;
    assert_eq!(
        m["latency_ms"]["p99"].as_f64(),
        Some(p99_ms),
        "{}",
        m["latency_ms"]
    );

    // A merged run is a run like any other to `harness compare`: set against the
    // one-process run, its latency is judged from its interval log.
    let compared = Command::new(HARNESS)
        .arg("compare")
        .arg(single.out())
        .arg(&merged_dir)
        .output()
        .expect("run harness compare");
    let table = printed(&compared);
    assert!(!table.contains("harness compare: error"), "{table}");
    assert!(table.contains("p99"), "{table}");

    // A folder missing or given twice is refused, naming it.
    let incomplete = merge(&shards[..2], &d.join("incomplete"));
    assert_eq!(incomplete.status.code(), Some(2));
    assert!(
        printed(&incomplete).contains("shard 2/3 is missing"),
        "{}",
        printed(&incomplete)
    );

    // A shard's folder damaged (a file missing, cut or garbage): never a panic; a merge that
    // needs the file refuses naming it.
    let mut refused = 0;
    for file in damaged::FILES {
        if !shards[1].join(file).exists() {
            continue;
        }
        for (damage, content) in damaged::damages(&shards[1], file) {
            let folder = d.join(format!("shard-1-{file}-{damage}"));
            damaged::damaged_copy(&shards[1], &folder, file, &content);
            let mut args = vec!["merge".to_owned()];
            args.extend(
                [&shards[0], &folder, &shards[2]]
                    .iter()
                    .map(|p| p.display().to_string()),
            );
            args.extend([
                "--out".to_owned(),
                d.join(format!("merged-{file}-{damage}"))
                    .display()
                    .to_string(),
            ]);
            refused += usize::from(damaged::judge(&args, file, damage, false));
        }
    }
    assert!(
        refused >= 12,
        "only {refused} damaged merges refused naming their file"
    );
}

/// Through a Toxiproxy server both shards share (shard 0's upstream hops, each shard's
/// gateway), which the shards leave as they found it, and through a mapping (`api:`).
#[test]
fn a_mutant_is_caught_in_a_sharded_run_through_a_shared_toxiproxy() {
    let _serial = exclusive();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    // Through the contract described as a mapping: sharded runs and their merge work
    // through a mapping as they do on the native client.
    let system = start_system(
        d,
        "--design no-idempotency --deadline-ms 150",
        &format!(
            "coordinator_settings: {{design: no-idempotency, deadline_ms: 150}}\n{}",
            crate::foreign::contract_as_api()
        ),
    );
    let profile =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../chaos-profiles/button-mash.yaml");
    let (mut server, api) = toxiproxy_server();
    let shards = run_shards(
        d,
        &profile,
        &system.target,
        2,
        &[
            "--design",
            "no-idempotency",
            "--duration",
            "8",
            "--toxiproxy",
            &api,
        ],
    );
    let left = toxiproxy_rust::client::Client::new(api.as_str()).all();
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        left.expect("read the proxies").is_empty(),
        "the shards removed their proxies"
    );
    for shard in &shards {
        let services = std::fs::read_to_string(shard.join("services.json")).expect("services.json");
        assert!(services.contains(&api), "{services}");
    }
    let merged_dir = d.join("merged");
    let merged = merge(&shards, &merged_dir);
    assert_eq!(merged.status.code(), Some(1), "{}", printed(&merged));
    let m = summary(&merged_dir);
    let anomalies = m["anomalies"].as_object().expect("anomalies");
    assert!(
        anomalies.contains_key("double_charge") || anomalies.contains_key("split_key"),
        "no-idempotency's telltale classes: {anomalies:?}"
    );
}
