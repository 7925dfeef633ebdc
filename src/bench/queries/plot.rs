//! The benchmarks' results as SVG line charts, both axes logarithmic: for the query classes,
//! one panel per class (time per transaction against rows per table, one line per system);
//! for scaling, time per transaction against distinct subscriptions.

use super::{scaling, Measured, Report, Stats};
use anyhow::{anyhow, Result};
use plotters::coord::Shift;
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

/// A named line of (x, y) points.
type Line = (&'static str, RGBColor, Vec<(f64, f64)>);

/// The query classes, a panel each.
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
        let series: Vec<Line> = SERIES
            .iter()
            .map(|(name, color, get)| (*name, *color, ms.iter().map(|m| (m.rows as f64, get(m).median_us)).collect()))
            .collect();
        chart(panel, class, "rows per table", &series)?;
    }
    root.present()?;
    Ok(())
}

/// Scaling: time per transaction against distinct live subscriptions.
pub fn draw_scaling(report: &scaling::Report, path: &Path) -> Result<()> {
    let root = SVGBackend::new(path, (640, 400)).into_drawing_area();
    root.fill(&WHITE)?;
    let at = |f: fn(&scaling::Point) -> f64| report.points.iter().map(|p| (p.subscriptions as f64, f(p))).collect();
    let series: Vec<Line> = vec![
        ("p50", RGBColor(0, 114, 178), at(|p| p.transaction.median_us)),
        ("p99", RGBColor(213, 94, 0), at(|p| p.transaction.p99_us)),
    ];
    let title = format!("distinct subscriptions, {} rows", report.options.rows);
    chart(&root, &title, "distinct live subscriptions", &series)?;
    root.present()?;
    Ok(())
}

/// One log-log chart of `series` in `area`.
fn chart(area: &DrawingArea<SVGBackend, Shift>, title: &str, x_desc: &str, series: &[Line]) -> Result<()> {
    let points = || series.iter().flat_map(|(_, _, ps)| ps.iter().copied());
    let (x0, x1) = points().fold((f64::MAX, f64::MIN), |(lo, hi), (x, _)| (lo.min(x), hi.max(x)));
    let (y0, y1) = points().fold((f64::MAX, f64::MIN), |(lo, hi), (_, y)| (lo.min(y), hi.max(y)));
    if x0 > x1 {
        return Err(anyhow!("nothing to plot in {title}"));
    }
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(38)
        .y_label_area_size(64)
        .build_cartesian_2d((x0 / 2.0..x1 * 2.0).log_scale(), (y0 / 2.0..y1 * 2.0).log_scale())?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("µs per transaction")
        .x_label_formatter(&|x| count_label(*x))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    for (name, color, ps) in series {
        let color = *color;
        chart
            .draw_series(LineSeries::new(ps.clone(), color.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
        chart.draw_series(ps.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// 10000 as "10k", 1000000 as "1M".
fn count_label(x: f64) -> String {
    if x >= 1e6 {
        format!("{}M", (x / 1e6).round())
    } else if x >= 1e3 {
        format!("{}k", (x / 1e3).round())
    } else {
        format!("{x:.0}")
    }
}
