//! Each process's resident memory and CPU over the run (`usage.json`), with the fault
//! windows shaded: a leak is a line that climbs, the system's or the harness's.

use super::charts::{frame, legend, line, shade, svg, ChartError, Frame};
use super::timeline::FaultWindow;
use crate::usage::{self, UsageSample};
use plotters::style::RGBColor;

/// A colour per process, the harness's first.
const COLOURS: [RGBColor; 5] = [
    RGBColor(90, 90, 90),
    RGBColor(200, 40, 40),
    RGBColor(40, 100, 200),
    RGBColor(40, 150, 60),
    RGBColor(150, 90, 200),
];

/// The processes in drawing order (the harness first), each with its colour.
fn named(samples: &[UsageSample]) -> Vec<(String, RGBColor)> {
    let mut names = usage::processes(samples);
    names.sort_by_key(|n| (n != crate::cpu::HARNESS, n.clone()));
    names
        .into_iter()
        .zip(COLOURS.iter().cycle().copied())
        .collect()
}

/// A series over the run: (seconds, value) points.
type Points = Vec<(f64, f64)>;

/// The series a chart draws for one process of the samples.
type Series = fn(&[UsageSample], &str) -> Points;

/// One line per process of `series` over the run, on an axis from 0 to a little over the
/// highest point.
fn per_process(
    samples: &[UsageSample],
    faults: &[FaultWindow],
    end_s: f64,
    frame_of: &Frame<'_>,
    series: Series,
) -> Result<String, ChartError> {
    let lines: Vec<(String, RGBColor, Points)> = named(samples)
        .into_iter()
        .map(|(name, colour)| {
            let points = series(samples, &name);
            (name, colour, points)
        })
        .filter(|(_, _, points)| !points.is_empty())
        .collect();
    if lines.is_empty() {
        return Err(ChartError::new("no process reported the figure"));
    }
    let top = lines
        .iter()
        .flat_map(|(_, _, points)| points.iter().map(|p| p.1))
        .fold(1.0f64, f64::max)
        * 1.15;
    let end_s = samples.iter().map(|s| s.at_s).fold(end_s, f64::max);
    svg(|root| {
        let mut chart = frame(root, frame_of, 0f64..end_s.max(1.0), 0f64..top, None, None)?;
        shade(&mut chart, faults, 0.0, top)?;
        for (name, colour, points) in lines {
            line(&mut chart, points, &name, colour)?;
        }
        legend(&mut chart)
    })
}

/// What a chart of `Figure` draws: its caption, its y axis and its series.
pub enum Figure {
    /// Resident memory, MB.
    Memory,
    /// CPU, percent of one core.
    Cpu,
}

/// The chart of `figure`, one line per process.
pub fn chart(
    figure: Figure,
    samples: &[UsageSample],
    faults: &[FaultWindow],
    end_s: f64,
) -> Result<String, ChartError> {
    let (caption, y_desc, series): (&str, &str, Series) = match figure {
        Figure::Memory => ("Resident memory per process (MB)", "MB", usage::resident_mb),
        Figure::Cpu => (
            "CPU per process (% of one core)",
            "% of a core",
            usage::cpu_percent,
        ),
    };
    let frame_of = Frame {
        caption,
        x_desc: "seconds from the start of the load",
        y_desc,
        y_labels_px: 70,
    };
    per_process(samples, faults, end_s, &frame_of, series)
}
