//! The reports of a faulted run: `report.html` renders in a real browser with every chart
//! drawn, `harness report DIR` rebuilds both reports, and the browser check itself catches
//! an empty chart and a script error. Called by the faults test on its run (one run, two
//! concerns: a run on two cores is the expensive part).

use crate::browser::{assert_charts_drawn, render};
use crate::support::HARNESS;
use std::path::Path;
use std::process::Command;

pub const CHARTS: [&str; 6] = ["latency", "outcomes", "spectrum", "money", "memory", "cpu"];

/// Checks the reports of the finished run in `out`, whose faults include `fault`.
pub fn check_reports(out: &Path, fault: &str) {
    let html_path = out.join("report.html");
    let html = std::fs::read_to_string(&html_path).expect("report.html");
    assert!(html.contains(fault), "the fault is labelled in the report");
    assert!(
        !html.contains("http://") && !html.contains("https://") || only_svg_namespace(&html),
        "report.html fetches nothing"
    );
    assert_charts_drawn(&html_path, &CHARTS);

    let markdown = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    assert!(markdown.contains("## Latency by phase"), "{markdown}");
    assert!(
        markdown.contains(&format!("during `{fault}`")),
        "{markdown}"
    );

    // `harness report DIR` rebuilds both from the folder, the same as the run wrote them.
    std::fs::remove_file(&html_path).expect("remove report.html");
    std::fs::write(out.join("report.md"), "stale").expect("overwrite report.md");
    let rebuilt = Command::new(HARNESS)
        .arg("report")
        .arg(out)
        .output()
        .expect("harness report");
    assert!(rebuilt.status.success(), "{rebuilt:?}");
    assert_eq!(
        std::fs::read_to_string(out.join("report.md")).expect("report.md"),
        markdown
    );
    assert_eq!(
        std::fs::read_to_string(&html_path).expect("report.html"),
        html
    );

    // The check can fail: a chart with its series removed, and a page with a script error.
    let dir = tempfile::tempdir().expect("temp dir");
    let broken = dir.path().join("broken.html");
    let first_chart = html
        .find("<figure data-chart=\"latency\"")
        .expect("latency chart");
    let chart_end = first_chart + html[first_chart..].find("</figure>").expect("figure end");
    let emptied = format!(
        "{}{}{}",
        &html[..first_chart],
        html[first_chart..chart_end].replace("stroke-width=\"2\"", "stroke-width=\"1\""),
        &html[chart_end..]
    )
    .replacen("</body>", "<script>no_such_function();</script></body>", 1);
    std::fs::write(&broken, emptied).expect("write the broken page");
    let rendered = render(&broken);
    assert_eq!(rendered.script_errors.len(), 1, "{rendered:?}");
    let latency = rendered
        .charts
        .iter()
        .find(|c| c.name == "latency")
        .expect("latency chart");
    assert_eq!(latency.lines, 0, "{rendered:?}");
}

/// The only addresses in the page are the SVG namespace plotters writes.
fn only_svg_namespace(html: &str) -> bool {
    html.replace("http://www.w3.org/2000/svg", "")
        .find("http")
        .is_none()
}
