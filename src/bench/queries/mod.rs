//! `sluice bench queries`: the cost of one transaction to each query class's result, at
//! several table sizes, for the engine's maintained subscription and, in the same run and on
//! the same data, three baselines: the query hand-written in differential dataflow over typed
//! tuples, the engine recomputing the query from scratch, and SQLite re-running it (what a
//! dashboard polling after each transaction pays). One thread; no network.

pub mod handwritten;
mod plot;
pub mod scaling;
mod sqlite;
pub mod workload;

use anyhow::{bail, Context, Result};
use handwritten::Handwritten;
use serde::{Deserialize, Serialize};
use sqlite::Sqlite;
use std::time::{Duration, Instant};
use workload::{Data, Sluice, A, CLASSES};

/// The benchmark's settings.
#[derive(Clone, Debug, Serialize, Deserialize, clap::Args)]
pub struct Options {
    /// Rows per table, one run per size.
    #[arg(long, value_delimiter = ',', default_values_t = [10_000u64, 100_000, 1_000_000, 10_000_000])]
    pub rows: Vec<u64>,
    /// Query classes to measure (default: all).
    #[arg(long, value_delimiter = ',')]
    pub classes: Vec<String>,
    /// Transactions measured for the engine and for the hand-written dataflow.
    #[arg(long, default_value_t = 1000)]
    pub transactions: usize,
    /// Rows of table a each transaction updates.
    #[arg(long, default_value_t = 1)]
    pub tx_rows: usize,
    /// Transactions the engine and the hand-written dataflow take per step, each still at its
    /// own offset with its own delta (as a busy server applies the calls that queued while it
    /// worked); times are per transaction. SQLite and recomputation still run per transaction.
    #[arg(long, default_value_t = 1)]
    #[serde(default = "one")]
    pub batch: usize,
    /// Seconds each slow baseline (recompute, SQLite) may take per class and size; it runs
    /// at least once and at most --transactions times.
    #[arg(long, default_value_t = 3.0)]
    pub budget: f64,
    /// Write the results as an SVG plot to this file.
    #[arg(long)]
    pub plot: Option<std::path::PathBuf>,
    /// Measure nothing: read the results of earlier `--json` runs from these files (their
    /// results in order), to print them together and plot them.
    #[arg(long, value_delimiter = ',')]
    #[serde(skip)]
    pub from: Vec<std::path::PathBuf>,
}

fn one() -> usize {
    1
}

/// Per-transaction times of one system.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Stats {
    pub runs: usize,
    pub median_us: f64,
    pub p99_us: f64,
}

impl Stats {
    fn of(mut times: Vec<Duration>) -> Stats {
        times.sort_unstable();
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e6;
        Stats { runs: times.len(), median_us: at(0.5), p99_us: at(0.99) }
    }
}

/// One query class at one table size.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Measured {
    pub class: String,
    pub sql: String,
    pub rows: u64,
    pub sluice: Stats,
    pub handwritten: Stats,
    pub recompute: Stats,
    pub sqlite: Stats,
}

impl Measured {
    /// Engine time over hand-written time (median).
    pub fn vs_handwritten(&self) -> f64 {
        self.sluice.median_us / self.handwritten.median_us
    }
    /// SQLite polling time over engine time (median): how many times faster the engine is.
    pub fn vs_sqlite(&self) -> f64 {
        self.sqlite.median_us / self.sluice.median_us
    }
    /// Recompute time over engine time (median).
    pub fn vs_recompute(&self) -> f64 {
        self.recompute.median_us / self.sluice.median_us
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Report {
    pub options: Options,
    pub results: Vec<Measured>,
}

/// The engine, SQLite and the data, kept at one state: every transaction drawn goes to all
/// three (untimed but for the system being measured).
struct Bed {
    data: Data,
    sluice: Sluice,
    sqlite: Sqlite,
    tx_rows: usize,
}

impl Bed {
    /// Draws the next transaction; SQLite takes it.
    fn draw(&mut self) -> Result<Vec<(A, A)>> {
        let updates = self.data.updates(self.tx_rows);
        self.sqlite.apply(&updates)?;
        Ok(updates)
    }

    /// Draws the next transaction; SQLite and the engine take it; returns the engine's time.
    fn step(&mut self) -> Result<Duration> {
        self.step_batch(1)
    }

    /// Draws the next `batch` transactions; SQLite takes each, the engine all of them in one
    /// step; returns the engine's time per transaction.
    fn step_batch(&mut self, batch: usize) -> Result<Duration> {
        let mut txs = Vec::with_capacity(batch);
        for _ in 0..batch {
            let updates = self.draw()?;
            txs.push(self.sluice.tx(&updates));
        }
        Ok(self.sluice.apply(txs) / batch as u32)
    }
}

/// Runs the benchmark (or reads earlier results, with `--from`); progress goes to stderr when
/// `progress`.
pub fn run(options: Options, progress: bool) -> Result<Report> {
    if !options.from.is_empty() {
        return combine(options);
    }
    let classes: Vec<(&str, &str)> = if options.classes.is_empty() {
        CLASSES.to_vec()
    } else {
        let mut chosen = Vec::new();
        for c in &options.classes {
            let Some(&found) = CLASSES.iter().find(|(name, _)| name == c) else {
                let known: Vec<&str> = CLASSES.iter().map(|(n, _)| *n).collect();
                bail!("unknown query class {c:?}; the classes are {}", known.join(", "));
            };
            chosen.push(found);
        }
        chosen
    };
    if options.rows.contains(&0) || options.transactions == 0 || options.tx_rows == 0 || options.batch == 0 {
        bail!("--rows, --transactions, --tx-rows and --batch must be positive");
    }
    if options.batch > options.transactions || options.batch > u32::MAX as usize {
        bail!("--batch must be at most --transactions");
    }
    if !(options.budget.is_finite() && (0.0..1e6).contains(&options.budget)) {
        bail!("--budget must be 0 or more seconds (under a million)");
    }
    let say = |s: String| {
        if progress {
            eprintln!("{s}");
        }
    };
    let budget = Duration::from_secs_f64(options.budget);
    let mut results = Vec::new();
    for &n in &options.rows {
        say(format!("loading {n} rows per table into the engine and SQLite"));
        let data = Data::new(n);
        let sluice = Sluice::load(&data);
        let sqlite = Sqlite::load(&data)?;
        let mut bed = Bed { data, sluice, sqlite, tx_rows: options.tx_rows };
        for &(class, sql) in &classes {
            say(format!("{class} at {n} rows: {sql}"));
            let m = measure(&mut bed, class, sql, options.transactions, options.batch, budget)?;
            say(format!(
                "  sluice {:.1} µs, hand-written {:.1} µs ({:.2}x), recompute {:.0} µs, SQLite {:.0} µs ({:.0}x)",
                m.sluice.median_us,
                m.handwritten.median_us,
                m.vs_handwritten(),
                m.recompute.median_us,
                m.sqlite.median_us,
                m.vs_sqlite()
            ));
            results.push(m);
        }
    }
    let report = Report { options, results };
    if let Some(path) = &report.options.plot {
        plot::draw(&report, path)?;
        say(format!("plot written to {}", path.display()));
    }
    Ok(report)
}

/// The results of earlier runs, read from `options.from` and plotted as `options.plot` asks;
/// the settings are the first run's, with every run's table sizes.
fn combine(options: Options) -> Result<Report> {
    let mut combined: Option<Report> = None;
    for path in &options.from {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let earlier: Report =
            serde_json::from_str(&text).with_context(|| format!("{} is not a `--json` report", path.display()))?;
        match &mut combined {
            None => combined = Some(earlier),
            Some(c) => {
                c.options.rows.extend(earlier.options.rows);
                c.results.extend(earlier.results);
            }
        }
    }
    let mut report = combined.expect("--from names at least one file");
    report.options.plot = options.plot;
    report.options.from = options.from;
    if let Some(path) = &report.options.plot {
        plot::draw(&report, path)?;
    }
    Ok(report)
}

/// One class at the bed's size: the engine's subscription, then the baselines. The engine
/// and the hand-written dataflow take `batch` transactions a step.
fn measure(
    bed: &mut Bed,
    class: &str,
    sql: &str,
    transactions: usize,
    batch: usize,
    budget: Duration,
) -> Result<Measured> {
    let plan = bed.sluice.plan(sql);
    let sub = bed.sluice.subscribe(&plan);
    let steps = transactions / batch;
    let warm = (steps / 10).max(1);
    for _ in 0..warm {
        bed.step_batch(batch)?;
    }
    let sluice = (0..steps).map(|_| bed.step_batch(batch)).collect::<Result<Vec<_>>>()?;
    bed.sluice.engine.unsubscribe(sub.id).expect("a live subscription");

    let mut recompute = Vec::new();
    let started = Instant::now();
    while recompute.is_empty() || (started.elapsed() < budget && recompute.len() < transactions) {
        bed.step()?;
        recompute.push(bed.sluice.timed_recompute(&plan));
    }

    let mut polls = Vec::new();
    let started = Instant::now();
    while polls.is_empty() || (started.elapsed() < budget && polls.len() < transactions) {
        bed.step()?;
        polls.push(bed.sqlite.timed_query(sql)?);
    }

    let mut h = Handwritten::new(class, &bed.data).expect("every class is hand-written");
    let mut handwritten = Vec::with_capacity(steps);
    for i in 0..warm + steps {
        let updates = (0..batch).map(|_| bed.draw()).collect::<Result<Vec<_>>>()?;
        let t = Instant::now();
        h.apply_all(updates.iter().map(Vec::as_slice));
        let spent = t.elapsed() / batch as u32;
        if i >= warm {
            handwritten.push(spent);
        }
        let txs = updates.iter().map(|u| bed.sluice.tx(u)).collect();
        bed.sluice.apply(txs);
    }
    Ok(Measured {
        class: class.to_string(),
        sql: sql.to_string(),
        rows: bed.data.n,
        sluice: Stats::of(sluice),
        handwritten: Stats::of(handwritten),
        recompute: Stats::of(recompute),
        sqlite: Stats::of(polls),
    })
}

/// Prints the results as a table.
pub fn print(report: &Report) {
    println!(
        "{:<11} {:>10} {:>18} {:>13} {:>7} {:>12} {:>12} {:>9}",
        "class", "rows", "sluice p50 (p99)", "hand-written", "ratio", "recompute", "SQLite poll", "vs SQLite"
    );
    for m in &report.results {
        println!(
            "{:<11} {:>10} {:>18} {:>13} {:>6.2}x {:>12} {:>12} {:>8.0}x",
            m.class,
            m.rows,
            format!("{} ({})", us(m.sluice.median_us), us(m.sluice.p99_us)),
            us(m.handwritten.median_us),
            m.vs_handwritten(),
            us(m.recompute.median_us),
            us(m.sqlite.median_us),
            m.vs_sqlite()
        );
    }
}

/// A duration in µs, shown in the unit that keeps it short.
fn us(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} s", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.2} ms", x / 1e3)
    } else {
        format!("{x:.1} µs")
    }
}
