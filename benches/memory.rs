//! Memory of the engine's base-table state against the raw row bytes. The engine keeps no copy
//! of a table's rows (subscriptions read them from the caller's store), so what it holds per
//! table are the shared arrangements its queries use: this loads a 4-column INTEGER table into
//! a store beside a fresh engine, subscribes to a join that adds two shared by-key arrangements
//! of all rows, and reports the resident-memory growth per row that subscribing caused, and
//! again after every row has been updated five times (compaction keeps it to the current
//! state). Two measures: live heap bytes (this binary counts every allocation and free, so
//! it is what the engine holds) and resident memory (which also keeps the allocator's freed
//! pages, e.g. the sort buffers of the initial load).
//!
//! `cargo bench --bench memory` (SLUICE_BENCH_ROWS sets the row count, default 1M).

use sluice::bench::resident_bytes as rss_bytes;
use sluice_ivm::{Engine, EngineConfig, TableChange, TableRows, Transaction};
use sluice_planner::{Catalog, Dml, Planner, Row, Value};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting the bytes live.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded as received.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded as received.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live_bytes() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// Row `i` of the table after `round` updates.
fn row(i: usize, round: i64, n: usize) -> Row {
    let i = i as i64;
    Row::new(vec![
        Value::Int(i),
        Value::Int(i % 1000),
        Value::Int((i * 7 + round) % 1000),
        Value::Int((i * 13) % n as i64),
    ])
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let n: usize = std::env::var("SLUICE_BENCH_ROWS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let raw_per_row = 4 * 8;
    let mut catalog = Catalog::new();
    let stmt = &sluice_planner::parse("CREATE TABLE a (id INTEGER PRIMARY KEY, g INTEGER, v INTEGER, b_id INTEGER)")
        .unwrap()[0];
    let Dml::CreateTable(schema) = Planner::new(&catalog).plan_statement(stmt).unwrap() else { unreachable!() };
    catalog.add_table(schema.clone()).unwrap();
    let mut engine = Engine::new(EngineConfig::default());
    engine.create_table(&schema).unwrap();
    let mut store = TableRows::new();
    store.create_table("a", schema.primary_key.clone());
    let mut offset = 0;
    let mut apply = |engine: &mut Engine, store: &mut TableRows, round: i64| {
        for start in (0..n).step_by(100_000) {
            let ids = start..(start + 100_000).min(n);
            let deletes = if round == 0 { Vec::new() } else { ids.clone().map(|i| row(i, round - 1, n)).collect() };
            let inserts = ids.map(|i| row(i, round, n)).collect();
            offset += 1;
            let tx = Transaction { offset, changes: vec![TableChange { table: "a".into(), inserts, deletes }] };
            engine.apply(vec![tx.clone()]).unwrap();
            store.apply(&tx);
        }
    };
    apply(&mut engine, &mut store, 0);
    let (live_before, rss_before) = (live_bytes(), rss_bytes());
    // A join whose result is empty (v is never negative), so what it adds is the shared
    // by-key arrangements of all rows (the condition is on both sides: no filtered one).
    let sql = "SELECT x.id FROM a x JOIN a y ON x.b_id = y.id WHERE x.v + y.v < 0";
    let sub = engine.subscribe(&Planner::new(&catalog).plan_sql(sql).unwrap(), &store).unwrap();
    assert!(sub.initial.is_empty());
    println!("rows: {n}, raw bytes per row: {raw_per_row}");
    let report = |state: &str| {
        let live = (live_bytes() as f64 - live_before as f64) / n as f64;
        let rss = (rss_bytes() as f64 - rss_before as f64) / n as f64;
        let x = |b: f64| b / raw_per_row as f64;
        println!(
            "{state}: live heap {live:.1} bytes/row = {:.2}x raw, {:.2}x raw each; resident {rss:.1} bytes/row = {:.2}x raw, {:.2}x raw each",
            x(live),
            x(live) / 2.0,
            x(rss),
            x(rss) / 2.0
        );
    };
    report("shared arrangements by b_id and by id");
    for round in 1..=5 {
        apply(&mut engine, &mut store, round);
    }
    report("after updating every row 5 times");
}
