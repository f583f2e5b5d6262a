//! Renders a report in headless Chromium (Debian's, installed by `.ci/install-chromium` when
//! missing) and reads back what the browser laid out: every chart's size and the lines it
//! drew, and any script error on the page.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the browser saw of one chart.
#[derive(Debug)]
pub struct Chart {
    pub name: String,
    pub width: f64,
    pub height: f64,
    /// Plotted series: polylines of the series' stroke width with at least two points (the
    /// axes and ticks are thinner polylines).
    pub lines: u64,
}

#[derive(Debug)]
pub struct Rendered {
    pub charts: Vec<Chart>,
    /// Charts the report could not draw (`data-chart-error`).
    pub missing: Vec<String>,
    pub script_errors: Vec<String>,
}

const PROBE_HEAD: &str = "<script>window.__errors=[];\
window.addEventListener('error',function(e){window.__errors.push(String(e.message));});</script>";

const PROBE_BODY: &str = "<script>(function(){var out={charts:[],missing:[],errors:window.__errors};\
document.querySelectorAll('figure[data-chart]').forEach(function(f){var s=f.querySelector('svg');\
var r=s?s.getBoundingClientRect():{width:0,height:0};var lines=0;\
if(s){s.querySelectorAll('polyline').forEach(function(p){\
if(p.getAttribute('stroke-width')==='2'&&p.getAttribute('points').trim().split(/\\s+/).length>=2){lines++;}});}\
out.charts.push({name:f.getAttribute('data-chart'),width:r.width,height:r.height,lines:lines});});\
document.querySelectorAll('[data-chart-error]').forEach(function(e){out.missing.push(e.textContent);});\
var pre=document.createElement('pre');pre.id='__probe';pre.textContent=JSON.stringify(out);\
document.body.appendChild(pre);})();</script>";

/// The browser, installed by the project's own script when missing.
pub fn chromium() -> PathBuf {
    let found = |p: &str| Path::new(p).exists().then(|| PathBuf::from(p));
    if let Some(path) = found("/usr/bin/chromium") {
        return path;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/install-chromium");
    let status = Command::new("bash")
        .arg(&script)
        .status()
        .expect("run .ci/install-chromium");
    assert!(status.success(), "{} failed: {status}", script.display());
    found("/usr/bin/chromium").expect("chromium installed by .ci/install-chromium")
}

fn headless(dir: &Path) -> Command {
    let mut command = Command::new(chromium());
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--window-size=1280,800",
    ]);
    command.arg(format!("--user-data-dir={}", dir.join("profile").display()));
    command
}

/// Loads `page` with the probe added and returns what the browser laid out.
pub fn render(page: &Path) -> Rendered {
    let dir = tempfile::tempdir().expect("temp dir");
    let html = std::fs::read_to_string(page).expect("the page");
    let probed = html
        .replacen("<head>", &format!("<head>{PROBE_HEAD}"), 1)
        .replacen("</body>", &format!("{PROBE_BODY}</body>"), 1);
    let copy = dir.path().join("page.html");
    std::fs::write(&copy, probed).expect("write the probed page");
    let output = headless(dir.path())
        .arg("--dump-dom")
        .arg(format!("file://{}", copy.display()))
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&output.stdout);
    let start = dom.find("<pre id=\"__probe\">").unwrap_or_else(|| {
        panic!(
            "the probe did not run:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let rest = &dom[start + "<pre id=\"__probe\">".len()..];
    let text = &rest[..rest.find("</pre>").expect("end of the probe")];
    let text = text
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let value: Value = serde_json::from_str(&text).expect("the probe's JSON");
    let strings = |key: &str| -> Vec<String> {
        value[key]
            .as_array()
            .expect("a list")
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect()
    };
    Rendered {
        charts: value["charts"]
            .as_array()
            .expect("charts")
            .iter()
            .map(|c| Chart {
                name: c["name"].as_str().unwrap_or_default().to_owned(),
                width: c["width"].as_f64().unwrap_or(0.0),
                height: c["height"].as_f64().unwrap_or(0.0),
                lines: c["lines"].as_u64().unwrap_or(0),
            })
            .collect(),
        missing: strings("missing"),
        script_errors: strings("errors"),
    }
}

/// Asserts that `page` renders with no script error and that each chart of `expected` is
/// laid out at a visible size with at least one plotted line.
pub fn assert_charts_drawn(page: &Path, expected: &[&str]) {
    let rendered = render(page);
    assert!(
        rendered.script_errors.is_empty(),
        "script errors: {:?}",
        rendered.script_errors
    );
    assert!(
        rendered.missing.is_empty(),
        "charts not drawn: {:?}",
        rendered.missing
    );
    let names: Vec<&str> = rendered.charts.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, expected, "{rendered:?}");
    for chart in &rendered.charts {
        assert!(
            chart.width > 300.0 && chart.height > 100.0,
            "{}: laid out at {}×{}",
            chart.name,
            chart.width,
            chart.height
        );
        assert!(chart.lines > 0, "{}: an empty chart", chart.name);
    }
}
