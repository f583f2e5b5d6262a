//! The report's charts, drawn with plotters as SVG text to inline in `report.html` (and in
//! `capacity.html`): every time chart shades and labels the fault windows.

use super::timeline::{FaultWindow, Second};
use crate::history::Outcome;
use crate::reconcile::Sample;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

pub const WIDTH: u32 = 1100;
pub const HEIGHT: u32 = 340;

/// Why a chart could not be drawn (the report then says so in its place).
#[derive(Debug, thiserror::Error)]
#[error("chart not drawn: {0}")]
pub struct ChartError(String);

impl ChartError {
    pub(super) fn new(why: &str) -> Self {
        ChartError(why.to_owned())
    }
}

pub(super) fn drawn<T, E: std::fmt::Debug>(result: Result<T, E>) -> Result<T, ChartError> {
    result.map_err(|e| ChartError(format!("{e:?}")))
}

const FAULT_FILL: RGBColor = RGBColor(230, 120, 30);
pub(super) const P50: RGBColor = RGBColor(40, 100, 200);
pub(super) const P99: RGBColor = RGBColor(200, 40, 40);
pub(super) const MAX: RGBColor = RGBColor(120, 120, 120);
pub(super) const SLO: RGBColor = RGBColor(0, 0, 0);

/// The colour of each outcome, in the order of `Outcome::ALL`.
pub(super) fn outcome_colour(outcome: Outcome) -> RGBColor {
    match outcome {
        Outcome::Completed => RGBColor(40, 150, 60),
        Outcome::Failed => RGBColor(150, 90, 200),
        Outcome::Pending => RGBColor(230, 160, 0),
        Outcome::Shed => RGBColor(40, 100, 200),
        Outcome::Error => RGBColor(210, 30, 30),
        Outcome::Overflow => RGBColor(90, 90, 90),
    }
}

/// Draws into an SVG string of the report's size.
pub(super) fn svg(
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Result<(), ChartError>,
) -> Result<String, ChartError> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, HEIGHT)).into_drawing_area();
        drawn(root.fill(&WHITE))?;
        draw(&root)?;
        drawn(root.present())?;
    }
    Ok(out)
}

/// Shades each fault window from `low` to `high` and writes its name at the top.
pub(super) fn shade<DB: DrawingBackend, Y: Ranged>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, Y>>,
    faults: &[FaultWindow],
    low: Y::ValueType,
    high: Y::ValueType,
) -> Result<(), ChartError>
where
    Y::ValueType: Clone + 'static,
{
    for (i, f) in faults.iter().enumerate() {
        drawn(chart.draw_series(std::iter::once(Rectangle::new(
            [(f.from_s, low.clone()), (f.to_s, high.clone())],
            FAULT_FILL.mix(0.18).filled(),
        ))))?;
        let label = Text::new(
            f.name.clone(),
            (f.from_s, high.clone()),
            ("sans-serif", 12)
                .into_font()
                .color(&FAULT_FILL.mix(1.0))
                .pos(plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Left,
                    if i % 2 == 0 {
                        plotters::style::text_anchor::VPos::Top
                    } else {
                        plotters::style::text_anchor::VPos::Center
                    },
                )),
        );
        drawn(chart.draw_series(std::iter::once(label)))?;
    }
    Ok(())
}

pub(super) fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> Result<(), ChartError> {
    drawn(
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(("sans-serif", 13))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .draw(),
    )
}

/// What a chart's frame says: its caption and what each axis holds.
pub(super) struct Frame<'t> {
    pub(super) caption: &'t str,
    pub(super) x_desc: &'t str,
    pub(super) y_desc: &'t str,
    /// Room for the y axis's labels, in pixels (wider for large numbers).
    pub(super) y_labels_px: u32,
}

pub(super) type Chart<'a, 'b, X, Y> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<<X as AsRangedCoord>::CoordDescType, <Y as AsRangedCoord>::CoordDescType>,
>;

/// How the labels of an axis over `X` are written.
pub(super) type LabelFormat<X> =
    dyn Fn(&<<X as AsRangedCoord>::CoordDescType as Ranged>::ValueType) -> String;

/// A chart on `root` over `x` and `y`, its mesh drawn (with `x_labels` and `y_labels`
/// formatting each axis's labels, when given).
pub(super) fn frame<'a, 'b, X, Y>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    f: &Frame<'_>,
    x: X,
    y: Y,
    x_labels: Option<&LabelFormat<X>>,
    y_labels: Option<&LabelFormat<Y>>,
) -> Result<Chart<'a, 'b, X, Y>, ChartError>
where
    X: AsRangedCoord,
    Y: AsRangedCoord,
    X::CoordDescType: ValueFormatter<<X::CoordDescType as Ranged>::ValueType>,
    Y::CoordDescType: ValueFormatter<<Y::CoordDescType as Ranged>::ValueType>,
{
    let mut chart = drawn(
        ChartBuilder::on(root)
            .caption(f.caption, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(f.y_labels_px)
            .build_cartesian_2d(x, y),
    )?;
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(f.x_desc)
        .y_desc(f.y_desc)
        .label_style(("sans-serif", 14));
    if let Some(format) = x_labels {
        mesh.x_label_formatter(format);
    }
    if let Some(format) = y_labels {
        mesh.y_label_formatter(format);
    }
    drawn(mesh.draw())?;
    Ok(chart)
}

/// A named series: a line of the series' width, in the legend.
pub(super) fn line<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    points: Vec<(X::ValueType, Y::ValueType)>,
    name: &str,
    colour: RGBColor,
) -> Result<(), ChartError>
where
    DB: DrawingBackend + 'a,
    X: Ranged,
    Y: Ranged,
    X::ValueType: Clone + 'static,
    Y::ValueType: Clone + 'static,
{
    drawn(chart.draw_series(LineSeries::new(points, colour.stroke_width(2))))?
        .label(name)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour));
    Ok(())
}

/// A dashed horizontal line at the SLO's p99 bound, from `from_x` to `to_x`.
pub(super) fn slo_line<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    from_x: f64,
    to_x: f64,
    slo_p99_ms: f64,
) -> Result<(), ChartError>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    drawn(chart.draw_series(DashedLineSeries::new(
        [(from_x, slo_p99_ms), (to_x, slo_p99_ms)],
        6,
        4,
        SLO.stroke_width(1),
    )))?
    .label(format!("SLO p99 {slo_p99_ms} ms"))
    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], SLO));
    Ok(())
}

/// The lowest and highest latency a log axis shows: half the lowest value (at least 0.1 ms)
/// and half again above the highest, the SLO's bound always inside.
pub(super) fn log_range(
    lows: impl Iterator<Item = f64>,
    highs: impl Iterator<Item = f64>,
    slo: f64,
) -> (f64, f64) {
    let low = lows.fold(slo, f64::min).max(0.2) / 2.0;
    let high = highs.fold(slo, f64::max) * 1.5;
    (low, high)
}

const BY_SCHEDULED_SECOND: &str = "seconds from the start of the load (by scheduled send time)";

/// p50, p99 and max latency per second on a log scale, with the SLO's p99 bound.
pub fn latency_per_second(
    seconds: &[Second],
    faults: &[FaultWindow],
    slo_p99_ms: f64,
    end_s: f64,
) -> Result<String, ChartError> {
    let (low, top) = log_range(
        seconds.iter().filter_map(|s| s.p50_ms),
        seconds.iter().filter_map(|s| s.max_ms),
        slo_p99_ms,
    );
    let frame_of = Frame {
        caption: "Latency per second (ms, log scale)",
        x_desc: BY_SCHEDULED_SECOND,
        y_desc: "ms",
        y_labels_px: 56,
    };
    svg(|root| {
        let mut chart = frame(
            root,
            &frame_of,
            0f64..end_s.max(1.0),
            (low..top).log_scale(),
            None,
            None,
        )?;
        shade(&mut chart, faults, low, top)?;
        let series = |pick: fn(&Second) -> Option<f64>| -> Vec<(f64, f64)> {
            seconds
                .iter()
                .filter_map(|s| pick(s).map(|v| (s.at_s as f64 + 0.5, v.max(low))))
                .collect()
        };
        line(&mut chart, series(|s| s.max_ms), "max", MAX)?;
        line(&mut chart, series(|s| s.p99_ms), "p99", P99)?;
        line(&mut chart, series(|s| s.p50_ms), "p50", P50)?;
        slo_line(&mut chart, 0.0, end_s, slo_p99_ms)?;
        legend(&mut chart)
    })
}

/// How the operations scheduled in each second ended, one line per outcome that occurred.
pub fn outcomes_per_second(
    seconds: &[Second],
    faults: &[FaultWindow],
    end_s: f64,
) -> Result<String, ChartError> {
    let top = seconds
        .iter()
        .flat_map(|s| s.outcomes.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1)
        * 5
        / 4;
    let frame_of = Frame {
        caption: "Throughput and outcomes per second (operations)",
        x_desc: BY_SCHEDULED_SECOND,
        y_desc: "operations / s",
        y_labels_px: 56,
    };
    svg(|root| {
        let mut chart = frame(root, &frame_of, 0f64..end_s.max(1.0), 0u64..top, None, None)?;
        shade(&mut chart, faults, 0, top)?;
        for (i, outcome) in Outcome::ALL.iter().enumerate() {
            if seconds.iter().all(|s| s.outcomes[i] == 0) {
                continue;
            }
            let points = seconds
                .iter()
                .map(|s| (s.at_s as f64 + 0.5, s.outcomes[i]))
                .collect();
            line(
                &mut chart,
                points,
                outcome.as_str(),
                outcome_colour(*outcome),
            )?;
        }
        legend(&mut chart)
    })
}

/// The latency distribution of the measured window, percentile against ms, both on log
/// scales: the x axis is 1 / (1 - q), so 90 %, 99 %, 99.9 % are evenly spaced.
pub fn spectrum(points: &[(f64, f64)], slo_p99_ms: f64) -> Result<String, ChartError> {
    let last_x = points
        .iter()
        .filter(|(q, _)| *q < 1.0)
        .map(|(q, _)| 1.0 / (1.0 - q))
        .fold(100.0, f64::max)
        * 2.0;
    let (low, top) = log_range(
        points.iter().map(|(_, v)| *v),
        points.iter().map(|(_, v)| *v),
        slo_p99_ms,
    );
    let x_of = move |q: f64| if q >= 1.0 { last_x } else { 1.0 / (1.0 - q) };
    let percentile = |x: &f64| {
        let q = 100.0 * (1.0 - 1.0 / x);
        if q < 99.0 {
            format!("{q:.0}%")
        } else {
            format!("{q:.2}%")
        }
    };
    let frame_of = Frame {
        caption: "Percentile spectrum of the measured window (ms, log scales)",
        x_desc: "percentile",
        y_desc: "ms",
        y_labels_px: 56,
    };
    svg(|root| {
        let mut chart = frame(
            root,
            &frame_of,
            (1f64..last_x).log_scale(),
            (low..top).log_scale(),
            Some(&percentile),
            None,
        )?;
        let curve = points.iter().map(|(q, v)| (x_of(*q), v.max(low))).collect();
        line(&mut chart, curve, "latency", P99)?;
        slo_line(&mut chart, 1.0, last_x, slo_p99_ms)?;
        drawn(chart.draw_series(std::iter::once(Circle::new(
            (100.0, slo_p99_ms),
            4,
            SLO.filled(),
        ))))?;
        legend(&mut chart)
    })
}

/// The most money that can have been in flight at each sample (cents), from the sampler.
pub fn money_in_flight(
    samples: &[Sample],
    faults: &[FaultWindow],
    end_s: f64,
) -> Result<String, ChartError> {
    let top = samples
        .iter()
        .filter_map(|s| s.in_flight_bound_cents)
        .max()
        .unwrap_or(0)
        .max(1)
        .saturating_mul(5)
        / 4;
    let end_s = samples.iter().map(|s| s.at_s).fold(end_s, f64::max);
    let frame_of = Frame {
        caption: "Money in flight (cents, bound read by the sampler)",
        x_desc: "seconds from the start of the load",
        y_desc: "cents",
        y_labels_px: 90,
    };
    svg(|root| {
        let mut chart = frame(root, &frame_of, 0f64..end_s.max(1.0), 0u64..top, None, None)?;
        shade(&mut chart, faults, 0, top)?;
        let points = samples
            .iter()
            .filter_map(|s| s.in_flight_bound_cents.map(|c| (s.at_s, c)))
            .collect();
        line(&mut chart, points, "in flight (bound)", P50)?;
        legend(&mut chart)
    })
}
