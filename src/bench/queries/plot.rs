//! The query benchmark's results as an SVG: one panel per query class, time per transaction
//! against rows per table (both logarithmic), one line per system.

use super::{Measured, Report, Stats};
use anyhow::{anyhow, Result};
use plotters::prelude::*;
use std::path::Path;

/// Where a system's times are in a measurement.
type Times = fn(&Measured) -> &Stats;

/// The systems plotted: name, colour, and where its times are.
const SERIES: [(&str, RGBColor, Times); 4] = [
    ("Sluice", RGBColor(0, 114, 178), |m| &m.sluice),
    ("hand-written DD", RGBColor(0, 158, 115), |m| &m.handwritten),
    ("recompute", RGBColor(230, 159, 0), |m| &m.recompute),
    ("SQLite polling", RGBColor(204, 121, 167), |m| &m.sqlite),
];

pub fn draw(report: &Report, path: &Path) -> Result<()> {
    let mut classes: Vec<&str> = Vec::new();
    for m in &report.results {
        if !classes.contains(&m.class.as_str()) {
            classes.push(&m.class);
        }
    }
    if classes.is_empty() {
        return Err(anyhow!("nothing was measured"));
    }
    let columns = classes.len().min(2);
    let lines = classes.len().div_ceil(columns);
    let root = SVGBackend::new(path, (540 * columns as u32, 340 * lines as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    for (panel, class) in root.split_evenly((lines, columns)).iter().zip(classes) {
        let ms: Vec<&Measured> = report.results.iter().filter(|m| m.class == class).collect();
        let xs = ms.iter().map(|m| m.rows as f64);
        let (x0, x1) = xs.fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
        let ys = ms.iter().flat_map(|m| SERIES.iter().map(move |(_, _, get)| get(m).median_us));
        let (y0, y1) = ys.fold((f64::MAX, f64::MIN), |(lo, hi), y| (lo.min(y), hi.max(y)));
        let mut chart = ChartBuilder::on(panel)
            .caption(class, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(38)
            .y_label_area_size(64)
            .build_cartesian_2d((x0 / 2.0..x1 * 2.0).log_scale(), (y0 / 2.0..y1 * 2.0).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("rows per table")
            .y_desc("µs per transaction")
            .x_label_formatter(&|x| rows_label(*x))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()?;
        for (name, color, get) in SERIES {
            let points: Vec<(f64, f64)> = ms.iter().map(|m| (m.rows as f64, get(m).median_us)).collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
                .label(name)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
            chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// 10000 as "10k", 1000000 as "1M".
fn rows_label(x: f64) -> String {
    if x >= 1e6 {
        format!("{}M", (x / 1e6).round())
    } else if x >= 1e3 {
        format!("{}k", (x / 1e3).round())
    } else {
        format!("{x:.0}")
    }
}
