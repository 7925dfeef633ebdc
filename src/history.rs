//! Reading databases' files from the command line: `sluice verify` checks data directories,
//! `sluice log` lists a database's transactions, `sluice sql --as-of` answers a query on the
//! state at a past offset or time (rebuilt from the snapshot before it and the log).

use crate::db::Database;
use crate::module_db::QueryAnswer;
use anyhow::{bail, Context, Result};
use sluice_runtime::storage::{self, AsOf};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

/// Checks every database under `path` (a database directory, or a data directory holding
/// them) and prints what it finds; false if any would refuse to start.
pub fn verify(path: &Path) -> Result<bool> {
    let (dirs, cut_off): (Vec<PathBuf>, Vec<PathBuf>) = if storage::exists(path) {
        (vec![path.to_path_buf()], vec![])
    } else if storage::cut_off(path) {
        (vec![], vec![path.to_path_buf()])
    } else {
        let names = |found: Vec<(String, PathBuf)>| found.into_iter().map(|(_, dir)| dir).collect();
        (names(storage::databases(path)?), names(storage::cut_off_creations(path)?))
    };
    if dirs.is_empty() && cut_off.is_empty() {
        bail!("{}: no database found", path.display());
    }
    for dir in cut_off {
        println!("{}: no database (its creation was cut off; creating it again starts afresh)", dir.display());
    }
    let mut all_ok = true;
    for dir in dirs {
        let r = storage::verify(&dir)?;
        let verdict = if r.ok() { "ok" } else { "DAMAGED" };
        println!("{}: {verdict}", dir.display());
        println!("  snapshots: {:?}", r.snapshots);
        for bad in &r.bad_snapshots {
            println!("  damaged snapshot: {bad}");
        }
        println!("  log: {} segments, {} records, last offset {}", r.segments, r.records, r.last_offset);
        if let Some((file, at, reason)) = &r.torn {
            println!("  torn tail (cut off at the next start): {}, byte {at}: {reason}", file.display());
        }
        if let Some(d) = &r.damage {
            println!("  damage: {d}");
        }
        all_ok &= r.ok();
    }
    Ok(all_ok)
}

/// Repairs a damaged database (`storage::repair`), saying what was kept and what was cut.
pub fn repair(dir: &Path) -> Result<()> {
    if !storage::exists(dir) {
        bail!("{}: not a database's directory (repair takes one database, e.g. sluice-data/NAME)", dir.display());
    }
    // Not under a running server's feet: its data directory's lock first (`.` names a
    // database's directory too, so the path is made absolute to find the data directory).
    let dir = &std::fs::canonicalize(dir).with_context(|| format!("{}", dir.display()))?;
    let data_dir = dir.parent().unwrap_or(dir);
    let _lock = sluice_runtime::DirLock::acquire(data_dir)?;
    let report = storage::repair(dir)?;
    let Some(kept) = report.kept else {
        println!("{}: nothing to repair", dir.display());
        return Ok(());
    };
    println!("{}: the damaged files are kept in {}", dir.display(), kept.display());
    for cut in &report.cut {
        println!("  {cut}");
    }
    Ok(())
}

/// Prints a database's transactions after offset `after`: offset, time, reducer, caller and
/// rows changed; at most `limit` of them.
pub fn log(dir: &Path, after: u64, limit: usize) -> Result<()> {
    println!("{:>10}  {:<27}  {:<20}  {:<16}  rows", "offset", "time", "reducer", "caller");
    let mut shown = 0;
    storage::history(dir, after, |r| {
        let caller = if r.meta.caller.is_empty() { "-" } else { &r.meta.caller[..r.meta.caller.len().min(16)] };
        println!(
            "{:>10}  {:<27}  {:<20}  {:<16}  {}",
            r.offset,
            format_time(r.meta.timestamp_micros),
            r.meta.reducer,
            caller,
            r.len()
        );
        shown += 1;
        shown < limit
    })?;
    Ok(())
}

fn format_time(micros: u64) -> String {
    humantime::format_rfc3339_micros(UNIX_EPOCH + Duration::from_micros(micros)).to_string()
}

/// An `--as-of` argument: an offset, or an RFC 3339 time (`2026-11-25T01:02:03Z`).
pub fn parse_as_of(s: &str) -> Result<AsOf> {
    if let Ok(n) = s.parse::<u64>() {
        return Ok(AsOf::Offset(n));
    }
    let t = humantime::parse_rfc3339_weak(s)
        .with_context(|| format!("--as-of {s}: neither an offset nor a time like 2026-11-25T01:02:03Z"))?;
    let micros = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
    Ok(AsOf::Time(micros))
}

/// Runs a query on the database's state at `as_of` (the last durable state if `None`) and
/// prints the rows as a table, or as JSON lines with `json`.
pub fn sql(dir: &Path, query: &str, as_of: Option<AsOf>, json: bool) -> Result<()> {
    let QueryAnswer { columns, rows, offset } = query_as_of(dir, query, as_of.unwrap_or(AsOf::Time(u64::MAX)))?;
    let rows = crate::wire::protocol_rows(&rows);
    crate::output::print_rows(&crate::wire::columns(&columns), &rows, json);
    if !json {
        println!("({} rows, as of offset {offset})", rows.len());
    }
    Ok(())
}

/// Answers a query on a database's state at a past point, rebuilt from its files.
pub fn query_as_of(dir: &Path, query: &str, point: AsOf) -> Result<QueryAnswer> {
    let store = storage::as_of(dir, point)?;
    let offset = store.offset();
    let mut db = Database::load(store, 1)?;
    let plan = db.plan(query).context("only one SELECT query can run on a past state")?;
    let rows = db.evaluate(&plan)?;
    Ok(QueryAnswer { columns: plan.columns, rows, offset })
}
