//! Memory of a base table's state against the raw row bytes: loads a 4-column INTEGER table
//! into a fresh engine and reports resident-memory growth per row: its rows alone, after
//! updating every row, and with a join query that adds two shared by-key arrangements.
//!
//! `cargo bench --bench memory` (SLUICE_BENCH_ROWS sets the row count, default 1M).

use sluice_ivm::{Engine, EngineConfig, TableChange, Transaction};
use sluice_planner::{Catalog, Dml, Planner, Row, Value};

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("procfs");
    let pages: usize = statm.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("statm rss");
    pages * 4096
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
    let before = rss_bytes();
    let mut engine = Engine::new(EngineConfig::default());
    engine.create_table(&schema).unwrap();
    for (c, start) in (0..n).step_by(100_000).enumerate() {
        let rows: Vec<Row> = (start..(start + 100_000).min(n))
            .map(|i| {
                let i = i as i64;
                Row::new(vec![
                    Value::Int(i),
                    Value::Int(i % 1000),
                    Value::Int((i * 7) % 1000),
                    Value::Int((i * 13) % n as i64),
                ])
            })
            .collect();
        let tx = Transaction {
            offset: c as u64 + 1,
            changes: vec![TableChange { table: "a".into(), inserts: rows, deletes: vec![] }],
        };
        engine.apply(vec![tx]).unwrap();
    }
    let loaded = rss_bytes();
    let per_row = (loaded - before) as f64 / n as f64;
    println!("rows: {n}, raw bytes per row: {raw_per_row}");
    println!("table rows (hash table): {per_row:.1} bytes/row = {:.2}x raw", per_row / raw_per_row as f64);
    // Update every row five times: with compaction, memory follows the current state.
    let mut offset = engine.offset();
    for round in 1..=5i64 {
        for start in (0..n).step_by(100_000) {
            let ids = start..(start + 100_000).min(n);
            let row = |i: usize, r: i64| {
                let i = i as i64;
                Row::new(vec![
                    Value::Int(i),
                    Value::Int(i % 1000),
                    Value::Int((i * 7 + r) % 1000),
                    Value::Int((i * 13) % n as i64),
                ])
            };
            offset += 1;
            let change = TableChange {
                table: "a".into(),
                deletes: ids.clone().map(|i| row(i, round - 1)).collect(),
                inserts: ids.map(|i| row(i, round)).collect(),
            };
            engine.apply(vec![Transaction { offset, changes: vec![change] }]).unwrap();
        }
    }
    let churned = rss_bytes();
    let per_row_churned = (churned - before) as f64 / n as f64;
    println!(
        "after updating every row 5 times: {per_row_churned:.1} bytes/row = {:.2}x raw",
        per_row_churned / raw_per_row as f64
    );
    // A join whose result is empty (v is never negative), so what it adds is the shared
    // by-key arrangements of all rows (the condition is on both sides: no filtered one).
    let sql = "SELECT x.id FROM a x JOIN a y ON x.b_id = y.id WHERE x.v + y.v < 0";
    let sub = engine.subscribe(&Planner::new(&catalog).plan_sql(sql).unwrap()).unwrap();
    assert!(sub.initial.is_empty());
    let keyed = rss_bytes();
    let per_row_keyed = (keyed - before) as f64 / n as f64;
    println!(
        "plus shared arrangements by b_id and by id: {per_row_keyed:.1} bytes/row = {:.2}x raw",
        per_row_keyed / raw_per_row as f64
    );
}
