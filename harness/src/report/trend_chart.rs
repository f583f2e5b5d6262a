//! The chart of one figure over a history of runs (`harness trend`'s page): the figure run by
//! run, each change point a vertical line at its first run, red when the figure got worse.

use super::charts::{frame, legend, line, svg, ChartError, Frame};
use plotters::prelude::*;

const VALUE: RGBColor = RGBColor(40, 100, 200);
const REGRESSION: RGBColor = RGBColor(200, 40, 40);
const CHANGE: RGBColor = RGBColor(120, 120, 120);

/// A change point on the chart: the index of its first run and whether it is a regression.
pub struct Marker {
    pub index: usize,
    pub regression: bool,
}

/// `values` by run, with `markers`; `caption` names the profile and figure.
pub fn history(caption: &str, values: &[f64], markers: &[Marker]) -> Result<String, ChartError> {
    let (low, high) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    if !low.is_finite() {
        return Err(ChartError::new("no values"));
    }
    let pad = ((high - low) * 0.15).max(high.abs() * 0.05).max(1e-9);
    let (bottom, top) = ((low - pad).max(0.0), high + pad);
    let last = values.len().saturating_sub(1).max(1) as f64;
    let frame_of = Frame {
        caption,
        x_desc: "run (in start order)",
        y_desc: "",
        y_labels_px: 64,
    };
    svg(|root| {
        let mut chart = frame(
            root,
            &frame_of,
            -0.5f64..last + 0.5,
            bottom..top,
            None,
            None,
        )?;
        let points = values
            .iter()
            .enumerate()
            .map(|(i, v)| (i as f64, *v))
            .collect();
        line(&mut chart, points, "value", VALUE)?;
        for m in markers {
            // Between the last run before the change and the first after it.
            let x = m.index as f64 - 0.5;
            let colour = if m.regression { REGRESSION } else { CHANGE };
            let name = if m.regression {
                format!("regression from run {}", m.index)
            } else {
                format!("change from run {}", m.index)
            };
            line(&mut chart, vec![(x, bottom), (x, top)], &name, colour)?;
        }
        legend(&mut chart)
    })
}
