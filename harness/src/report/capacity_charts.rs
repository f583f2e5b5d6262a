//! `capacity.html`'s charts: latency and goodput against offered load, one point per rate
//! in order of offered load, the knee marked, counts labelled `2,000`.

use super::charts::{drawn, frame, legend, line, log_range, slo_line, svg, ChartError, Frame};
use super::charts::{MAX, P50, P99, SLO};
use crate::history::Outcome;
use plotters::prelude::*;

/// One step of a capacity search, as the capacity charts need it.
pub struct RatePoint {
    pub offered_per_s: f64,
    pub goodput_per_s: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub meets: bool,
}

/// A count on an axis, in whole units with thousands grouped: `2,000`, not `2000.0`.
pub fn grouped(value: f64) -> String {
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    if value.round() < 0.0 {
        out.insert(0, '-');
    }
    out
}

/// What both charts' x axis holds.
const OFFERED: &str = "offered requests / s";

/// The points in order of offered load, whatever order the search ran them in, and the
/// right end of the offered-load axis (a tenth past the highest rate).
fn along_offered_load(points: &[RatePoint]) -> (Vec<&RatePoint>, f64) {
    let mut sorted: Vec<&RatePoint> = points.iter().collect();
    sorted.sort_by(|a, b| a.offered_per_s.total_cmp(&b.offered_per_s));
    let right = sorted.last().map_or(0.0, |p| p.offered_per_s).max(1.0) * 1.1;
    (sorted, right)
}

/// p50 and p99 against offered load, one point per rate, with the SLO's p99 bound and the
/// knee marked. Offered load, not goodput, is the x axis: past the knee goodput falls as
/// offered load rises, and a curve over goodput doubled back on itself.
pub fn latency_vs_offered(
    points: &[RatePoint],
    knee: Option<&RatePoint>,
    slo_p99_ms: f64,
) -> Result<String, ChartError> {
    let (points, right) = along_offered_load(points);
    let (low, top) = log_range(
        points.iter().filter_map(|p| p.p50_ms),
        points.iter().filter_map(|p| p.p99_ms),
        slo_p99_ms,
    );
    let frame_of = Frame {
        caption: "Latency against offered load (ms, log scale)",
        x_desc: OFFERED,
        y_desc: "ms",
        y_labels_px: 56,
    };
    let counts = |v: &f64| grouped(*v);
    svg(|root| {
        let mut chart = frame(
            root,
            &frame_of,
            0f64..right,
            (low..top).log_scale(),
            Some(&counts),
            None,
        )?;
        for (name, colour, pick) in [
            (
                "p99",
                P99,
                (|p: &RatePoint| p.p99_ms) as fn(&RatePoint) -> Option<f64>,
            ),
            ("p50", P50, |p: &RatePoint| p.p50_ms),
        ] {
            let curve: Vec<(f64, f64)> = points
                .iter()
                .filter_map(|p| pick(p).map(|v| (p.offered_per_s, v.max(low))))
                .collect();
            drawn(chart.draw_series(curve.iter().map(|xy| Circle::new(*xy, 3, colour.filled()))))?;
            line(&mut chart, curve, name, colour)?;
        }
        slo_line(&mut chart, 0.0, right, slo_p99_ms)?;
        if let Some(at) =
            knee.and_then(|k| k.p99_ms.map(|p99| (k, (k.offered_per_s, p99.max(low)))))
        {
            let (k, xy) = at;
            drawn(
                chart.draw_series([
                    Circle::new(xy, 7, SLO.stroke_width(2)).into_dyn(),
                    Text::new(
                        format!("knee {}/s", grouped(k.offered_per_s)),
                        xy,
                        ("sans-serif", 14).into_font(),
                    )
                    .into_dyn(),
                ]),
            )?;
        }
        legend(&mut chart)
    })
}

/// Goodput against offered load, with the line where every request completes and the knee.
pub fn goodput_vs_offered(
    points: &[RatePoint],
    knee: Option<&RatePoint>,
) -> Result<String, ChartError> {
    let (points, right) = along_offered_load(points);
    let frame_of = Frame {
        caption: "Goodput against offered load",
        x_desc: OFFERED,
        y_desc: "completed / s",
        y_labels_px: 64,
    };
    let counts = |v: &f64| grouped(*v);
    svg(|root| {
        let mut chart = frame(
            root,
            &frame_of,
            0f64..right,
            0f64..right,
            Some(&counts),
            Some(&counts),
        )?;
        drawn(chart.draw_series(DashedLineSeries::new(
            [(0.0, 0.0), (right, right)],
            6,
            4,
            MAX.stroke_width(1),
        )))?
        .label("every request completed")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], MAX));
        let green = super::charts::outcome_colour(Outcome::Completed);
        let curve = points
            .iter()
            .map(|p| (p.offered_per_s, p.goodput_per_s))
            .collect();
        line(&mut chart, curve, "goodput", green)?;
        drawn(chart.draw_series(points.iter().map(|p| {
            let style = if p.meets {
                green.filled()
            } else {
                P99.filled()
            };
            Circle::new((p.offered_per_s, p.goodput_per_s), 4, style)
        })))?;
        if let Some(k) = knee {
            drawn(chart.draw_series(DashedLineSeries::new(
                [(k.offered_per_s, 0.0), (k.offered_per_s, right)],
                6,
                4,
                SLO.stroke_width(1),
            )))?
            .label(format!("knee {}/s", grouped(k.offered_per_s)))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], SLO));
        }
        legend(&mut chart)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(grouped(0.0), "0");
        assert_eq!(grouped(999.4), "999");
        assert_eq!(grouped(2000.0), "2,000");
        assert_eq!(grouped(16_000.0), "16,000");
        assert_eq!(grouped(1_234_567.4), "1,234,567");
        assert_eq!(grouped(-2500.0), "-2,500");
    }

    /// The x coordinates of every polyline in `svg`, one list per line.
    fn polylines(svg: &str) -> Vec<Vec<f64>> {
        svg.split("<polyline")
            .skip(1)
            .filter_map(|element| {
                let points = element.split("points=\"").nth(1)?.split('"').next()?;
                Some(
                    points
                        .split_whitespace()
                        .filter_map(|xy| xy.split(',').next()?.parse().ok())
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn capacity_curves_follow_offered_load_with_counts_grouped() {
        let point = |offered_per_s, goodput_per_s, p99| RatePoint {
            offered_per_s,
            goodput_per_s,
            p50_ms: Some(p99 / 4.0),
            p99_ms: Some(p99),
            meets: p99 < 200.0,
        };
        // In the order a search runs: up, past the knee, back between.
        let points = [
            point(4000.0, 4000.0, 20.0),
            point(16000.0, 3000.0, 900.0),
            point(8000.0, 7900.0, 30.0),
            point(12000.0, 6000.0, 400.0),
            point(2000.0, 2000.0, 10.0),
        ];
        let knee = Some(&points[2]);
        for svg in [
            latency_vs_offered(&points, knee, 200.0).expect("latency chart"),
            goodput_vs_offered(&points, knee).expect("goodput chart"),
        ] {
            let lines = polylines(&svg);
            assert!(lines.iter().any(|xs| xs.len() >= points.len()), "{svg}");
            for xs in lines {
                assert!(
                    xs.windows(2).all(|w| w[0] <= w[1]),
                    "a curve turns back: {xs:?}"
                );
            }
            let labels: Vec<&str> = svg.lines().map(str::trim).collect();
            assert!(labels.contains(&"4,000"), "{svg}");
            assert!(
                !labels.contains(&"4000") && !svg.contains("4000.0"),
                "{svg}"
            );
            assert!(svg.contains("knee 8,000/s"), "{svg}");
        }
    }
}
