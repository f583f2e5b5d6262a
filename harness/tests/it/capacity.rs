//! `harness capacity` on the reference system, kept short: a search that meets every rate up
//! to `--max` (the knee is then "at least"), one that misses its first step, and a fault that
//! the profile does not hold. The search's arithmetic is tested in `capacity/search.rs`; the
//! knee of the reference system is measured by hand (README).

use crate::browser::assert_charts_drawn;
use crate::support::{exclusive, profile, write_profile, HARNESS, LENIENT_SLO};
use std::process::{Command, Output};

fn capacity(text: &str, args: &[&str]) -> (tempfile::TempDir, Output) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write_profile(dir.path(), text);
    let output = Command::new(HARNESS)
        .arg("capacity")
        .arg("--profile")
        .arg(&file)
        .arg("--out")
        .arg(dir.path().join("capacity"))
        .args([
            "--warmup-s",
            "1",
            "--step-s",
            "2",
            "--convergence-window-s",
            "5",
        ])
        .args(args)
        .output()
        .expect("run harness capacity");
    (dir, output)
}

fn printed(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn a_search_that_meets_every_rate_reports_the_maximum_and_draws_its_curves() {
    let _serial = exclusive();
    // Budgets of a few %: a stall of a busy CI machine may shed or time out a handful of the
    // step's requests, which is not what this test is about.
    let slo = format!("{LENIENT_SLO}  error_budget: 0.05\n  shed_budget: 0.05\n");
    let (dir, output) = capacity(
        &profile("cap", 200, 1, 2, &slo),
        &["--start", "200", "--max", "400"],
    );
    let text = printed(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains("knee: 400/s or more (every step up to --max 400 met the SLO)"),
        "{text}"
    );
    let out = dir.path().join("capacity");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("capacity.json")).expect("capacity.json"))
            .expect("JSON");
    let rates: Vec<u64> = json["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["rate_per_s"].as_u64())
        .collect();
    assert_eq!(
        rates,
        [200, 400, 400],
        "search 200, 400, then the knee again"
    );
    assert_eq!(json["knee_rate_per_s"], 400);
    assert_eq!(json["headroom"], 2.0, "against the profile's 200/s");
    for step in json["steps"].as_array().expect("steps") {
        // 1,000 samples for a p99: 5 s at 200/s, 3 s at 400/s (more than --step-s 2).
        let rate = step["rate_per_s"].as_u64().expect("rate");
        assert_eq!(step["duration_s"].as_u64(), Some(1000_u64.div_ceil(rate)));
        assert!(step["concurrency"].as_f64() > Some(0.0), "{step}");
        // What a transfer cost at this rate, from the step's own run.
        let cpu = &step["cpu_ms_per_operation"];
        assert!(cpu["coordinator"].as_f64() > Some(0.0), "{step}");
        assert!(cpu["harness"].as_f64() > Some(0.0), "{step}");
    }
    let markdown = std::fs::read_to_string(out.join("capacity.md")).expect("capacity.md");
    assert!(markdown.contains("shared this machine"), "{markdown}");
    assert_charts_drawn(&out.join("capacity.html"), &["latency", "goodput"]);
}

#[test]
fn a_first_step_that_misses_means_no_knee_and_exit_1() {
    let _serial = exclusive();
    let (_dir, output) = capacity(
        &profile("cap", 200, 1, 2, "slo:\n  p99_ms: 1\n"),
        &["--start", "400", "--max", "800"],
    );
    let text = printed(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("no knee: even the first step (400/s)"),
        "{text}"
    );
}

#[test]
fn a_fault_the_profile_does_not_have_is_refused_naming_the_faults_it_has() {
    let extra = format!(
        "{LENIENT_SLO}faults:\n  - name: cut\n    kind: down\n    target: ledger\n    at_s: 1\n    duration_s: 1\n"
    );
    let (_dir, output) = capacity(&profile("cap", 200, 1, 2, &extra), &["--fault", "cutt"]);
    let text = printed(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.contains("no fault named `cutt`; the profile's faults are: cut"),
        "{text}"
    );
}
