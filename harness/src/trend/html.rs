//! `trend.html`: one self-contained page, the change points in a table with the regressions
//! first, then every figure of every profile drawn over the runs with its change points
//! marked (`report::trend_chart`).

use super::Series;
use crate::report::html::{escape, figure, STYLE};
use crate::report::trend_chart::{self, Marker};
use std::fmt::Write as _;

pub const FILE: &str = "trend.html";

pub fn page(series: &[Series], significance: f64) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Trend</title><style>{STYLE}</style></head><body>\n<h1>Trend</h1>\n\
         <p>Change points by E-Divisive means (Matteson and James 2014), each kept by a \
         permutation test at p &lt; {significance}. A change that makes a figure worse is a \
         regression, named with the first commit after it.</p>\n"
    );
    let mut changes: Vec<(&Series, &super::Change)> = series
        .iter()
        .flat_map(|s| s.changes.iter().map(move |c| (s, c)))
        .collect();
    changes.sort_by_key(|(_, c)| !c.regression);
    if changes.is_empty() {
        out.push_str("<p>No change point.</p>\n");
    } else {
        out.push_str(
            "<table><tr><th>profile</th><th>figure</th><th>from run</th><th>commit</th>\
             <th>change</th><th>p</th><th>regression</th></tr>\n",
        );
        for (s, c) in &changes {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{} ({})</td><td><code>{}</code></td>\
                 <td>{:+.1} %</td><td>{:.3}</td><td>{}</td></tr>",
                escape(&s.profile),
                escape(&s.metric),
                c.index,
                escape(&c.started_at),
                escape(&c.git_revision.chars().take(12).collect::<String>()),
                (c.mean_ratio - 1.0) * 100.0,
                c.p_value,
                if c.regression { "<b>yes</b>" } else { "no" }
            );
        }
        out.push_str("</table>\n");
    }
    for s in series {
        let values: Vec<f64> = s.points.iter().map(|p| p.value).collect();
        let markers: Vec<Marker> = s
            .changes
            .iter()
            .map(|c| Marker {
                index: c.index,
                regression: c.regression,
            })
            .collect();
        let caption = format!("{}: {}", s.profile, s.metric);
        let name = format!("{}/{}", s.profile, s.metric);
        out.push_str(&figure(
            &escape(&name),
            trend_chart::history(&caption, &values, &markers),
        ));
    }
    out.push_str("</body></html>\n");
    out
}
