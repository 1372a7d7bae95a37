//! The report's chart: completions per second (top) and p99 latency per second (bottom, log
//! scale) over the run, one line per scenario (claims and checkouts alike). Bitmap backend, text drawn with a font that a
//! crate ships (`epaint_default_fonts`), so no fontconfig or freetype is needed.
// Chart coordinates are floats; nothing here is money.
#![allow(clippy::float_arithmetic, clippy::cast_precision_loss)]

use crate::stats::Summary;
use anyhow::{anyhow, Result};
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::path::Path;
use std::sync::OnceLock;

/// The font family name the chart registers.
const FONT: &str = "sans-serif";

fn register_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, epaint_default_fonts::UBUNTU_LIGHT)
            .is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(anyhow!("the chart font did not load"))
    }
}

const COLOURS: [RGBColor; 7] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
];

/// One line of the chart: a run's name, its headline (e.g. `4017 claims/s`) and its
/// measurements.
pub struct Series<'a> {
    /// The scenario's name.
    pub name: &'a str,
    /// What the legend says after the name.
    pub headline: String,
    /// Its measurements.
    pub summary: &'a Summary,
}

/// Draws the chart of `runs` into `path` (PNG).
///
/// # Errors
/// The font or the file could not be used.
pub fn draw(path: &Path, runs: &[Series<'_>]) -> Result<()> {
    register_font()?;
    let root = BitMapBackend::new(path, (1200, 900)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("chart: {e}"))?;
    let (top, bottom) = root.split_vertically(450);
    let seconds = runs
        .iter()
        .map(|r| r.summary.timeline.len())
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let max_rate = runs
        .iter()
        .flat_map(|r| r.summary.timeline.iter().map(|s| s.completions))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let max_p99 = runs
        .iter()
        .flat_map(|r| r.summary.timeline.iter().map(|s| s.p99_us))
        .max()
        .unwrap_or(1000)
        .max(1000) as f64
        / 1000.0;

    let mut chart = ChartBuilder::on(&top)
        .caption("completed requests per second", (FONT, 22))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..seconds, 0f64..max_rate * 1.1)
        .map_err(|e| anyhow!("chart: {e}"))?;
    chart
        .configure_mesh()
        .x_desc("seconds since start")
        .y_desc("requests/s")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style((FONT, 14))
        .draw()
        .map_err(|e| anyhow!("chart: {e}"))?;
    for (i, run) in runs.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points = run
            .summary
            .timeline
            .iter()
            .map(|s| (s.second as f64 + 0.5, s.completions as f64));
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))
            .map_err(|e| anyhow!("chart: {e}"))?
            .label(format!("{} ({})", run.name, run.headline))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font((FONT, 14))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| anyhow!("chart: {e}"))?;

    let mut chart = ChartBuilder::on(&bottom)
        .caption("p99 latency per second (ms, log scale)", (FONT, 22))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..seconds, (0.05f64..max_p99 * 2.0).log_scale())
        .map_err(|e| anyhow!("chart: {e}"))?;
    chart
        .configure_mesh()
        .x_desc("seconds since start")
        .y_desc("p99 ms")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .label_style((FONT, 14))
        .draw()
        .map_err(|e| anyhow!("chart: {e}"))?;
    for (i, run) in runs.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points = run
            .summary
            .timeline
            .iter()
            .map(|s| (s.second as f64 + 0.5, (s.p99_us as f64 / 1000.0).max(0.05)));
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))
            .map_err(|e| anyhow!("chart: {e}"))?
            .label(run.name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font((FONT, 14))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| anyhow!("chart: {e}"))?;
    root.present()
        .map_err(|e| anyhow!("writing {}: {e}", path.display()))?;
    Ok(())
}
