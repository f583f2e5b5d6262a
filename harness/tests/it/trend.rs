//! `harness trend` on folders of runs, as a CI keeps them: 30 copies of the committed smoke
//! baseline's summary, a run a day, each with its own commit and the coordinator's CPU per
//! transfer varied by draws from the spread of real runs (`data/coordinator-cpu-spread.json`:
//! 56 runs of one build, sd 6.5 %, 0.83 to 1.12 of their session's median); in one history
//! it steps up 15 % at run 15.

use crate::support::{finished, HARNESS};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// Writes the history into `dir/run-NN/summary.json`; `step` multiplies the coordinator's
/// CPU per transfer from run 15 on.
fn history(dir: &Path, step: f64) {
    let baseline =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/baselines/smoke/summary.json");
    let text = std::fs::read_to_string(&baseline).expect("the smoke baseline");
    let base: Value = serde_json::from_str(&text).expect("JSON");
    let cpu = base["cpu"]["ms_per_operation"]["coordinator"]
        .as_f64()
        .expect("the coordinator's CPU per transfer");
    let spread_file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/data/coordinator-cpu-spread.json");
    let spread: Vec<f64> = serde_json::from_str::<Value>(
        &std::fs::read_to_string(&spread_file).expect("the real runs' spread"),
    )
    .expect("JSON")["factors"]
        .as_array()
        .expect("factors")
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    assert!(spread.len() >= 30, "{spread:?}");
    let mut draws = StdRng::seed_from_u64(1);
    for i in 0..30_u32 {
        let mut run = base.clone();
        run["git_revision"] = Value::from(format!("{i:040x}"));
        run["started_at"] = Value::from(format!("2026-11-{:02}T06:00:00Z", i + 1));
        // Drawn from the real runs' spread, the same draws in both histories.
        let noise = spread[draws.gen_range(0..spread.len())];
        let level = if i < 15 { cpu } else { cpu * step };
        run["cpu"]["ms_per_operation"]["coordinator"] = Value::from(level * noise);
        let folder = dir.join(format!("run-{i:02}"));
        std::fs::create_dir_all(&folder).expect("a run folder");
        std::fs::write(
            folder.join("summary.json"),
            serde_json::to_string(&run).expect("JSON"),
        )
        .expect("a summary");
    }
}

fn trend(dir: &Path, out: &Path) -> (Option<i32>, String, Value) {
    let (code, printed) = finished(
        Command::new(HARNESS)
            .arg("trend")
            .arg(dir)
            .arg("--out")
            .arg(out),
    );
    let json = std::fs::read_to_string(out.join("trend.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    (code, printed, json)
}

/// The change points of `metric` in `json`: (index, commit, regression).
fn changes(json: &Value, metric: &str) -> Vec<(u64, String, bool)> {
    json.as_array()
        .expect("series")
        .iter()
        .filter(|s| s["metric"] == metric)
        .flat_map(|s| s["changes"].as_array().cloned().unwrap_or_default())
        .map(|c| {
            (
                c["index"].as_u64().unwrap_or(u64::MAX),
                c["git_revision"].as_str().unwrap_or("").to_owned(),
                c["regression"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

#[test]
fn a_fifteen_percent_step_is_found_at_its_commit_and_a_flat_history_has_none() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stepped = dir.path().join("stepped");
    history(&stepped, 1.15);
    let (code, printed, json) = trend(&stepped, &dir.path().join("out-stepped"));
    assert_eq!(code, Some(0), "{printed}");
    // One regression, named with its run's commit, at the step or a run beside it: with real
    // runs' noise a run next to the step can sit on the other side's level.
    let found = changes(&json, "cpu_ms_per_transfer.coordinator");
    let [(at, commit, regression)] = found.as_slice() else {
        panic!("{printed}");
    };
    assert!((14..=16).contains(at) && *regression, "{printed}");
    assert_eq!(*commit, format!("{at:040x}"), "{printed}");
    assert!(printed.contains("30 runs read"), "{printed}");
    let md = std::fs::read_to_string(dir.path().join("out-stepped/trend.md")).expect("trend.md");
    assert!(
        md.contains(&format!("| smoke | cpu_ms_per_transfer.coordinator | {at}")),
        "{md}"
    );
    // The page, as a browser lays it out: every figure drawn, and only the coordinator's
    // with a second line, its change point's marker.
    let page = dir.path().join("out-stepped/trend.html");
    let rendered = crate::browser::render(&page);
    assert!(rendered.script_errors.is_empty(), "{rendered:?}");
    assert!(rendered.missing.is_empty(), "{rendered:?}");
    let series = json.as_array().map_or(0, Vec::len);
    assert_eq!(rendered.charts.len(), series, "{rendered:?}");
    for chart in &rendered.charts {
        assert!(chart.width > 300.0 && chart.height > 100.0, "{chart:?}");
        let marked = chart.name == "smoke/cpu_ms_per_transfer.coordinator";
        assert_eq!(chart.lines, if marked { 2 } else { 1 }, "{chart:?}");
    }
    let html = std::fs::read_to_string(&page).expect("trend.html");
    assert!(
        html.contains(&format!("regression from run {at}")),
        "the marker's legend"
    );

    let flat = dir.path().join("flat");
    history(&flat, 1.0);
    let (code, printed, json) = trend(&flat, &dir.path().join("out-flat"));
    assert_eq!(code, Some(0), "{printed}");
    let all: usize = json
        .as_array()
        .expect("series")
        .iter()
        .map(|s| s["changes"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(all, 0, "{printed}");
}

#[test]
fn folders_with_no_run_are_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, printed, _) = trend(dir.path(), &dir.path().join("out"));
    assert_eq!(code, Some(2), "{printed}");
    assert!(printed.contains("no summary.json under"), "{printed}");
}
