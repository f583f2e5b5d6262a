//! Whole runs: the verdict, the files, the schema, reproducibility, a failing design, and
//! the open-loop accuracy under a stall.

use crate::support::{
    exclusive, profile, run, schema_errors, service_pids, spawn, wait_for_size, LENIENT_SLO,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

fn history(out: &std::path::Path) -> Vec<Value> {
    crate::support::history_lines(out)
}

#[test]
fn a_profile_runs_end_to_end_and_its_files_match_their_schemas() {
    let _serial = exclusive();
    // 250/s for 4 measured seconds: the 1,000 samples a p99 needs.
    let run = run(&profile("e2e", 250, 1, 4, LENIENT_SLO), &[]);
    assert_eq!(run.code(), Some(0), "{}", run.printed());
    let summary = run.summary();
    let errors = schema_errors("summary.schema.json", &summary);
    assert!(
        errors.is_empty(),
        "summary.json breaks its schema: {errors:?}"
    );
    let reconciliation: Value = serde_json::from_str(
        &std::fs::read_to_string(run.out().join("reconciliation.json")).expect("reconciliation"),
    )
    .expect("reconciliation.json is JSON");
    let errors = schema_errors("reconciliation.schema.json", &reconciliation);
    assert!(
        errors.is_empty(),
        "reconciliation.json breaks its schema: {errors:?}"
    );
    assert_eq!(summary["verdict"], "pass");
    assert_eq!(summary["requests"]["scheduled"], 1000);
    assert_eq!(summary["money"]["created_cents"], 0);
    assert_eq!(summary["money"]["lost_cents"], 0);

    // One history line per scheduled request (warm-up included), each index once.
    let lines = history(&run.out());
    for line in &lines {
        let errors = schema_errors("history-line.schema.json", line);
        assert!(errors.is_empty(), "{line} breaks its schema: {errors:?}");
    }
    let mut seen = BTreeMap::new();
    for line in lines.iter().filter(|l| l["attempt"] == 0) {
        *seen.entry(line["op"].as_u64().expect("op")).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 1250, "250/s over 1 + 4 s");
    assert!(seen.values().all(|n| *n == 1));
    // Nothing failed; on a loaded machine a warm-up request may answer pending (202),
    // which the contract allows.
    assert!(lines
        .iter()
        .all(|l| l["outcome"] == "completed" || l["outcome"] == "pending"));

    // The CPU each process used over the load, per operation: every process of the run
    // reports it, each figure of the order of one transfer's cost (above a microsecond,
    // below a second, whatever else the machine is doing).
    let cpu = &summary["cpu"];
    assert_eq!(
        cpu["operations"].as_u64(),
        Some(lines.len() as u64),
        "{cpu}"
    );
    for process in ["coordinator", "external", "ledger", "harness"] {
        let ms = cpu["ms_per_operation"][process]
            .as_f64()
            .unwrap_or_else(|| panic!("{process} not measured: {cpu}"));
        assert!(
            ms > 0.001 && ms < 1000.0,
            "{process}: {ms} ms per operation"
        );
    }
    // The host's CPU over the same window: the load kept it busy, and busy, idle and stolen
    // are shares of the same time.
    let host = &cpu["host"];
    let share = |name: &str| {
        host[name]
            .as_f64()
            .unwrap_or_else(|| panic!("{name} not recorded: {cpu}"))
    };
    let (busy, idle, steal) = (share("busy_pct"), share("idle_pct"), share("steal_pct"));
    assert!(busy > 0.0, "{host}");
    assert!(
        (busy + idle + steal - 100.0).abs() < 0.5,
        "the shares add up: {host}"
    );

    // Every hop carried the load over connections it kept: each proxy accepted some, and far
    // fewer than there were requests. One per request would be as many; a few dozen is
    // usual; a quarter leaves room for a stalled machine, where every waiting request opens
    // a connection of its own.
    let by_hop = &summary["connections_by_hop"];
    for hop in ["gateway", "external", "ledger"] {
        let accepted = by_hop[hop]
            .as_u64()
            .unwrap_or_else(|| panic!("{hop} not counted: {by_hop}"));
        assert!(
            accepted >= 1 && accepted * 4 < lines.len() as u64,
            "{hop}: {accepted} connections for {} requests",
            lines.len()
        );
    }

    // The interval log is a standard HdrHistogram log.
    let log = std::fs::read(run.out().join("latency.hlog")).expect("latency.hlog");
    let intervals: Vec<_> =
        hdrhistogram::serialization::interval_log::IntervalLogIterator::new(&log)
            .filter_map(|entry| match entry {
                Ok(hdrhistogram::serialization::interval_log::LogEntry::Interval(h)) => {
                    Some(h.duration())
                }
                _ => None,
            })
            .collect();
    assert!(
        intervals.len() >= 5,
        "one interval per second: {}",
        intervals.len()
    );
    for file in [
        "report.md",
        "profile.yaml",
        "reconciliation.json",
        "coordinator.log",
        "external.log",
        "ledger.log",
    ] {
        assert!(run.out().join(file).exists(), "{file} missing");
    }
    // A pass removes the services' data files; the evidence is kept once, compressed.
    assert!(!run.out().join("service-data").exists());
    assert!(!run.out().join("books.json").exists() && run.out().join("books.json.zst").exists());

    // Each process's memory and CPU over the run: the services' from their /metrics, the
    // harness's own; drawn in report.html.
    let usage: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(run.out().join("usage.json")).expect("usage.json"),
    )
    .expect("JSON");
    assert!(usage.len() >= 5, "a sample a second: {}", usage.len());
    for process in ["harness", "coordinator", "external", "ledger"] {
        let reported = usage
            .iter()
            .filter(|s| s["processes"][process]["resident_bytes"].as_u64() > Some(1_000_000))
            .filter(|s| s["processes"][process]["cpu_s"].as_f64().is_some())
            .count();
        // The load lasts 5 s and each process reports in most of its seconds; after it the
        // services are stopped to read the books again, for as long as a busy machine takes.
        assert!(reported >= 3, "{process}: {reported} of {}", usage.len());
    }
    let html = std::fs::read_to_string(run.out().join("report.html")).expect("report.html");
    assert!(html.contains("Resident memory per process") && html.contains("CPU per process"));
}

#[test]
fn a_profile_sends_its_load_over_http2_when_it_says_so() {
    let _serial = exclusive();
    // Every answer held 40 ms on the gateway hop: at 250/s about ten requests are on their
    // way at any time, so HTTP/1.1 needs about ten connections, and HTTP/2 keeps to its two.
    let extra = format!(
        "client:\n  http2_connections: 2\n{LENIENT_SLO}faults:\n  - name: slow-answers\n    \
         kind: toxic\n    target: gateway\n    at_s: 0\n    duration_s: 5\n    \
         toxic: latency\n    stream: downstream\n    attributes: {{latency: 40}}\n"
    );
    // 250/s for 4 measured seconds: the 1,000 samples a p99 needs.
    let text = profile("h2", 250, 1, 4, &extra);
    let gateway_connections = |run: &crate::support::Run| {
        assert_eq!(run.code(), Some(0), "{}", run.printed());
        let summary = run.summary();
        assert_eq!(summary["verdict"], "pass");
        assert_eq!(summary["money"]["created_cents"], 0);
        assert_eq!(summary["money"]["lost_cents"], 0);
        summary["connections_by_hop"]["gateway"]
            .as_u64()
            .unwrap_or_else(|| panic!("gateway not counted: {summary}"))
    };
    let h2 = run(&text, &[]);
    let over_h2 = gateway_connections(&h2);
    assert_eq!(h2.summary()["requests"]["scheduled"], 1000);
    let lines = history(&h2.out());
    assert_eq!(lines.len(), 1250, "250/s over 1 + 4 s");
    assert!(lines
        .iter()
        .all(|l| l["outcome"] == "completed" || l["outcome"] == "pending"));
    let as_run = std::fs::read_to_string(h2.out().join("profile.yaml")).expect("profile.yaml");
    assert!(as_run.contains("http2_connections: 2"), "{as_run}");

    // The same run over HTTP/1.1: the count that shows the HTTP/2 run kept to its two. A
    // request given up on retires its HTTP/2 connection, so a stalled machine may add one or
    // two; HTTP/1.1 needs about ten at once, whatever the machine.
    let h1 = run(&text, &["--client-http2-connections", "0"]);
    let over_h1 = gateway_connections(&h1);
    assert!(
        (1..=4).contains(&over_h2) && over_h1 > 2 * over_h2,
        "gateway connections: {over_h2} over HTTP/2, {over_h1} over HTTP/1.1"
    );
}

#[test]
fn a_finished_run_is_checked_again_from_its_folder() {
    let _serial = exclusive();
    // 250/s for 4 s: the 1,000 samples a p99 needs.
    let run = run(&profile("recheck", 250, 0, 4, LENIENT_SLO), &[]);
    assert_eq!(run.code(), Some(0), "{}", run.printed());
    let out = run.out();
    let reconciliation = |out: &std::path::Path| -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(out.join("reconciliation.json")).expect("reconciliation"),
        )
        .expect("JSON")
    };
    let mut first = reconciliation(&out);
    // The run reconciled as it went; the check again reconciles the folder whole.
    let live = first.as_object_mut().and_then(|r| r.remove("live"));
    assert!(
        live.is_some_and(|l| l["whole_because"].is_null()),
        "the reference system is followed as it goes"
    );
    let again = std::process::Command::new(crate::support::HARNESS)
        .arg("reconcile")
        .arg(&out)
        .output()
        .expect("harness reconcile");
    assert_eq!(again.status.code(), Some(0), "{again:?}");
    assert_eq!(
        reconciliation(&out),
        first,
        "the same evidence, the same reconciliation"
    );

    // Evidence that shows money lost: an external entry the ledger never matched, in the
    // entries the run followed as it went.
    let path = out.join("external-entries.jsonl.zst");
    let mut entries: Vec<Value> = Vec::new();
    harness::compressed::each_line(&path, |entry: Value| {
        entries.push(entry);
        Ok(())
    })
    .expect("the followed entries");
    let mut forged = entries.last().expect("an entry").clone();
    forged["seq"] = Value::from(forged["seq"].as_i64().expect("seq") + 1);
    forged["transfer_id"] = Value::from("t-forged");
    entries.push(forged);
    let mut lines = harness::compressed::LinesWriter::create(&path).expect("rewrite entries");
    for entry in &entries {
        lines.write(entry).expect("an entry written");
    }
    lines.finish().expect("entries written");
    let tampered = std::process::Command::new(crate::support::HARNESS)
        .arg("reconcile")
        .arg(&out)
        .output()
        .expect("harness reconcile");
    assert_eq!(tampered.status.code(), Some(1), "{tampered:?}");
    let summary = run.summary();
    assert_eq!(summary["verdict"], "fail");
    assert!(
        summary["anomalies"]["orphan_entry"].as_u64() > Some(0),
        "{summary:#}"
    );
}

#[test]
fn the_same_seed_replays_the_same_schedule() {
    let _serial = exclusive();
    let text = profile("replay", 100, 0, 2, LENIENT_SLO);
    let schedule = |run: &crate::support::Run| -> Vec<(u64, u64, String, u64)> {
        history(&run.out())
            .iter()
            .filter(|l| l["attempt"] == 0)
            .map(|l| {
                (
                    l["op"].as_u64().expect("op"),
                    l["scheduled_us"].as_u64().expect("scheduled"),
                    l["user_id"].as_str().expect("user").to_owned(),
                    l["amount_cents"].as_u64().expect("amount"),
                )
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    let (a, b) = (run(&text, &[]), run(&text, &[]));
    let c = run(&text, &["--seed", "12"]);
    assert_eq!(schedule(&a), schedule(&b), "same seed, same requests");
    assert_ne!(schedule(&a), schedule(&c), "another seed, other requests");
    assert_eq!(a.summary()["seed"], 11);
    assert_eq!(c.summary()["seed"], 12);
}

#[test]
fn the_naive_design_is_caught_creating_money() {
    let _serial = exclusive();
    // A deadline no call misses on a busy machine: the only fault is the lost credit
    // answers, which the naive design reverses although the credit applied.
    let extra = format!(
        "{LENIENT_SLO}service:\n  coordinator: {{design: naive, deadline_ms: 5000}}\n  ledger:\n    error_after_rate: 0.1\n"
    );
    let run = run(&profile("naive", 100, 0, 3, &extra), &[]);
    assert_eq!(run.code(), Some(1), "{}", run.printed());
    let summary = run.summary();
    assert_eq!(summary["verdict"], "fail");
    let created = summary["money"]["created_cents"].as_u64().expect("created");
    assert!(created > 0, "{}", run.printed());
    assert!(
        summary["anomalies"]["reversal_after_credit"]
            .as_u64()
            .expect("class")
            > 0,
        "{}",
        run.printed()
    );
    let conservation = summary["invariants"]
        .as_array()
        .expect("invariants")
        .iter()
        .find(|i| i["name"] == "conservation")
        .expect("conservation")
        .clone();
    assert_eq!(conservation["holds"], false);
}

#[test]
fn a_stall_shows_in_p99_as_the_open_loop_schedule_implies() {
    let _serial = exclusive();
    // 200/s for 10 measured seconds; the coordinator is frozen (SIGSTOP) for 1 s in the
    // middle. Requests scheduled during the stall wait for its end: the one due x ms into
    // the stall answers after about 1000 - x ms. 1 % of the 2,000 samples is 20 requests,
    // 0.1 s of schedule, so the schedule implies p99 ≈ 1000 - 100 = 900 ms. A closed-loop
    // tool would record only one stalled sample per connection and report far less.
    let dir = tempfile::tempdir().expect("tempdir");
    let extra = "client:\n  timeout_ms: 5000\nslo:\n  p99_ms: 5000\n";
    let mut harness = spawn(dir.path(), &profile("stall", 200, 1, 10, extra));
    let out = dir.path().join("out");
    let pids = service_pids(&out);
    // Wait for the load to be under way, then a little into the measured window.
    // A frame of history a second: two frames at 200/s are about 20 kB.
    wait_for_size(
        &out.join("history.jsonl.zst"),
        Duration::from_secs(30),
        20_000,
    );
    let coordinator = pids
        .iter()
        .find(|(r, _)| r == "coordinator")
        .expect("coordinator")
        .1;
    let pid = nix::unistd::Pid::from_raw(coordinator);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).expect("SIGSTOP");
    std::thread::sleep(Duration::from_millis(1000));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).expect("SIGCONT");
    let status = harness.wait().expect("harness exits");
    assert_eq!(status.code(), Some(0));
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).expect("summary"))
            .expect("json");
    let p99 = summary["latency_ms"]["p99"].as_f64().expect("p99 known");
    let p50 = summary["latency_ms"]["p50"].as_f64().expect("p50 known");
    // The schedule implies 900 ms, plus the time the coordinator needs after SIGCONT to
    // clear the second of requests that queued up behind the stall (longer on a busy
    // machine). The lower bound is the point: a closed-loop tool reports far less.
    assert!(
        (800.0..=3000.0).contains(&p99),
        "p99 {p99} ms should be near the 900 ms the schedule implies"
    );
    assert!(
        p50 < 250.0,
        "most requests never met the stall: p50 {p50} ms, a quarter of it at most"
    );
    // Requests due in the first half of the stall waited over 500 ms: 0.5 s × 200/s = 100
    // of them, plus those caught in the catch-up. A closed-loop client would hold at most
    // one stalled request per connection.
    let slow = history(&out)
        .iter()
        .filter(|l| l["measured"] == true && l["latency_us"].as_u64().unwrap_or(0) >= 500_000)
        .count();
    assert!(
        (60..=1000).contains(&slow),
        "{slow} requests over 500 ms; the schedule implies about 100 (and under half of all)"
    );
}
