//! `harness trend` on folders of runs, as a CI keeps them: 30 copies of the committed smoke
//! baseline's summary, a run a day, each with its own commit and the coordinator's CPU per
//! transfer varied by ±5 %; in one history it steps up 15 % at run 15.

use crate::support::HARNESS;
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
    for i in 0..30_u32 {
        let mut run = base.clone();
        run["git_revision"] = Value::from(format!("{i:040x}"));
        run["started_at"] = Value::from(format!("2026-11-{:02}T06:00:00Z", i + 1));
        // A fixed, uneven spread of ±5 %: the same noise in both histories.
        let noise = 1.0 + 0.05 * (f64::from(i * 7919 % 101) / 50.0 - 1.0);
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
    let output = Command::new(HARNESS)
        .arg("trend")
        .arg(dir)
        .arg("--out")
        .arg(out)
        .output()
        .expect("run harness trend");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let json = std::fs::read_to_string(out.join("trend.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    (output.status.code(), printed, json)
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
    assert_eq!(
        changes(&json, "cpu_ms_per_transfer.coordinator"),
        [(15, format!("{:040x}", 15), true)],
        "{printed}"
    );
    assert!(printed.contains("30 runs read"), "{printed}");
    let md = std::fs::read_to_string(dir.path().join("out-stepped/trend.md")).expect("trend.md");
    assert!(
        md.contains("| smoke | cpu_ms_per_transfer.coordinator | 15"),
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
        html.contains("regression from run 15"),
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
