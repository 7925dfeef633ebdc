//! `sluice bench scaling`: what the engine pays per transaction as the number of distinct live
//! subscriptions grows, and the memory each one adds. Identical queries share one dataflow
//! (what the server's fan-out then costs per subscriber is `sluice bench transfer
//! --subscribers`'s to measure); distinct ones each have their own, and every transaction
//! reaches each dataflow over the table it changes.

use super::workload::{Data, Sluice, GROUPS};
use super::Stats;
use crate::bench::resident_bytes;
use anyhow::{bail, Result};
use serde::Serialize;
use std::time::Instant;

/// The benchmark's settings.
#[derive(Clone, Debug, Serialize, clap::Args)]
pub struct Options {
    /// Rows per table.
    #[arg(long, default_value_t = 10_000)]
    pub rows: u64,
    /// Numbers of distinct live subscriptions to measure at, ascending.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 10, 100, 1000, 10000])]
    pub counts: Vec<usize>,
    /// 1-row transactions measured at each count.
    #[arg(long, default_value_t = 200)]
    pub transactions: usize,
    /// Write the results as an SVG plot to this file.
    #[arg(long)]
    pub plot: Option<std::path::PathBuf>,
}

/// The engine with a number of distinct subscriptions live.
#[derive(Debug, Serialize)]
pub struct Point {
    pub subscriptions: usize,
    /// Query dataflows running (one per distinct subscription).
    pub dataflows: usize,
    /// Mean time to add one of the subscriptions added since the previous point.
    pub subscribe_us: f64,
    /// Per-transaction cost with all of them live.
    pub transaction: Stats,
    /// Resident memory added per subscription since the previous point.
    pub bytes_per_subscription: f64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub options: Options,
    /// The k-th subscription's query, with {g} = k mod 1000 and {v} = k div 1000.
    pub query: String,
    pub points: Vec<Point>,
}

const QUERY: &str = "SELECT id, v FROM a WHERE g = {g} AND v >= {v}";

/// The k-th distinct query: a filter of its own.
fn query(k: usize) -> String {
    let k = k as u64;
    QUERY.replace("{g}", &(k % GROUPS).to_string()).replace("{v}", &(k / GROUPS).to_string())
}

/// Runs the benchmark; progress goes to stderr when `progress`.
pub fn run(options: Options, progress: bool) -> Result<Report> {
    if options.rows == 0 || options.transactions == 0 || options.counts.is_empty() {
        bail!("--rows, --transactions and --counts must be given and positive");
    }
    if options.counts[0] == 0 || options.counts.windows(2).any(|w| w[0] >= w[1]) {
        bail!("--counts must be positive and ascending");
    }
    let mut data = Data::new(options.rows);
    let mut sluice = Sluice::load(&data);
    let mut subscriptions = Vec::new();
    let mut points = Vec::new();
    for &count in &options.counts {
        let added = count - subscriptions.len();
        let before = resident_bytes();
        let started = Instant::now();
        while subscriptions.len() < count {
            let plan = sluice.plan(&query(subscriptions.len()));
            subscriptions.push(sluice.subscribe(&plan));
        }
        let subscribe_us = started.elapsed().as_secs_f64() * 1e6 / added as f64;
        let bytes_per_subscription = resident_bytes().saturating_sub(before) as f64 / added as f64;
        for _ in 0..(options.transactions / 10).max(1) {
            sluice.timed_update(&mut data, 1);
        }
        let times = (0..options.transactions).map(|_| sluice.timed_update(&mut data, 1)).collect();
        let point = Point {
            subscriptions: count,
            dataflows: sluice.engine.query_count(),
            subscribe_us,
            transaction: Stats::of(times),
            bytes_per_subscription,
        };
        if progress {
            eprintln!(
                "{count} subscriptions: {:.1} µs per transaction (p99 {:.1}), {:.0} µs and {:.0} bytes per subscription",
                point.transaction.median_us, point.transaction.p99_us, point.subscribe_us, point.bytes_per_subscription
            );
        }
        points.push(point);
    }
    let report = Report { options, query: QUERY.to_string(), points };
    if let Some(path) = &report.options.plot {
        super::plot::draw_scaling(&report, path)?;
    }
    Ok(report)
}

/// Prints the results as a table.
pub fn print(report: &Report) {
    println!("query k: {} (g = k mod 1000, v = k div 1000), {} rows", report.query, report.options.rows);
    println!(
        "{:>13} {:>9} {:>14} {:>14} {:>14} {:>16}",
        "subscriptions", "dataflows", "tx p50", "tx p99", "subscribe", "bytes/sub"
    );
    for p in &report.points {
        println!(
            "{:>13} {:>9} {:>11.1} µs {:>11.1} µs {:>11.0} µs {:>16.0}",
            p.subscriptions,
            p.dataflows,
            p.transaction.median_us,
            p.transaction.p99_us,
            p.subscribe_us,
            p.bytes_per_subscription
        );
    }
}
