//! Engine benchmarks on one worker: per-transaction update cost of six query classes over
//! 1M-row tables, beside two baselines measured in the same run — recomputing the query from
//! scratch after each transaction, and the same query hand-written in differential dataflow
//! with typed tuples — plus join + filter + GROUP BY throughput and base-arrangement memory.
//! `sluice` is a query with one subscriber; `sluice_shared` the same query with two, for
//! which the engine also keeps the current result.
//!
//! `cargo bench --bench ivm` (set SLUICE_BENCH_ROWS to change the table size, default 1M, and
//! SLUICE_BENCH_ONLY=top10,join3,pipeline,group_size to run only those parts).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use sluice::bench::queries::handwritten::Handwritten;
use sluice::bench::queries::workload::{sql, Data, Sluice, A};
use sluice_ivm::Transaction;
use std::time::{Duration, Instant};

/// The query classes of issue 2, by their names in `workload::CLASSES`.
const QUERIES: [&str; 6] = ["filter", "join2", "join3", "group_sum", "count", "top10"];

fn rows() -> u64 {
    std::env::var("SLUICE_BENCH_ROWS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000)
}

/// Whether `SLUICE_BENCH_ONLY` (a comma-separated list of query names) selects `name`.
fn selected(name: &str) -> bool {
    std::env::var("SLUICE_BENCH_ONLY").map_or(true, |only| only.split(',').any(|o| o.trim() == name))
}

fn per_transaction(c: &mut Criterion) {
    let n = rows();
    for name in QUERIES.into_iter().filter(|name| selected(name)) {
        let mut data = Data::new(n);
        let mut s = Sluice::load(&data);
        let plan = s.plan(sql(name).expect("a class of the workload"));
        let mut group = c.benchmark_group(format!("{name}/{n}"));
        group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
        let sub = s.subscribe(&plan);
        for size in [1usize, 1000] {
            group.bench_function(BenchmarkId::new("sluice", size), |bch| {
                bch.iter_custom(|iters| (0..iters).map(|_| s.timed_update(&mut data, size)).sum())
            });
        }
        // A second subscriber of the same query: from then on the engine keeps the query's
        // current result for later subscribers, which every transaction's changes go into.
        let second = s.subscribe(&plan);
        for size in [1usize, 1000] {
            group.bench_function(BenchmarkId::new("sluice_shared", size), |bch| {
                bch.iter_custom(|iters| (0..iters).map(|_| s.timed_update(&mut data, size)).sum())
            });
        }
        s.engine.unsubscribe(second.id).unwrap();
        s.engine.unsubscribe(sub.id).unwrap();
        group.bench_function(BenchmarkId::new("recompute", 1), |bch| {
            bch.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let u = data.updates(1);
                        let tx = s.tx(&u);
                        s.apply(vec![tx]) + s.timed_recompute(&plan)
                    })
                    .sum()
            })
        });
        drop(s);
        let mut h = Handwritten::new(name, &data).expect("a hand-written class");
        for size in [1usize, 1000] {
            group.bench_function(BenchmarkId::new("handwritten", size), |bch| {
                bch.iter_custom(|iters| (0..iters).map(|_| h.timed_update(&mut data, size)).sum())
            });
        }
        group.finish();
    }
}

/// Input row changes per second through join + filter + GROUP BY: batches of 100
/// transactions of 1000 updates (2000 row changes) each, applied in one call.
fn throughput(c: &mut Criterion) {
    if !selected("pipeline") {
        return;
    }
    let n = rows();
    let mut data = Data::new(n);
    let mut s = Sluice::load(&data);
    let plan = s.plan(sql("pipeline").expect("a class of the workload"));
    s.subscribe(&plan);
    let mut group = c.benchmark_group(format!("pipeline/{n}"));
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(5));
    group.throughput(criterion::Throughput::Elements(100 * 2000));
    group.bench_function("sluice", |bch| {
        bch.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let txs: Vec<Transaction> = (0..100).map(|_| data.updates(1000)).map(|u| s.tx(&u)).collect();
                    s.apply(txs)
                })
                .sum()
        })
    });
    drop(s);
    let mut h = Handwritten::new("pipeline", &data).expect("a hand-written class");
    group.bench_function("handwritten", |bch| {
        bch.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let txs: Vec<Vec<(A, A)>> = (0..100).map(|_| data.updates(1000)).collect();
                    let t = Instant::now();
                    h.apply_all(txs.iter().map(Vec::as_slice));
                    t.elapsed()
                })
                .sum()
        })
    });
    group.finish();
}

/// Cost per change against group size: one group of all rows vs 1000 groups, for
/// accumulable (SUM, AVG) and hierarchical (MAX) aggregates. A rescan of the group would
/// make the single group ~1000x slower.
fn group_scaling(c: &mut Criterion) {
    if !selected("group_size") {
        return;
    }
    let n = rows();
    let mut data = Data::new(n);
    let mut s = Sluice::load(&data);
    let mut group = c.benchmark_group(format!("group_size/{n}"));
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    for (name, sql) in [
        ("sum_1_group", "SELECT SUM(v), AVG(v) FROM a"),
        ("sum_1000_groups", "SELECT g, SUM(v), AVG(v) FROM a GROUP BY g"),
        ("max_1_group", "SELECT MAX(v) FROM a"),
        ("max_1000_groups", "SELECT g, MAX(v) FROM a GROUP BY g"),
    ] {
        let plan = s.plan(sql);
        let sub = s.subscribe(&plan);
        group.bench_function(name, |bch| {
            bch.iter_custom(|iters| (0..iters).map(|_| s.timed_update(&mut data, 1)).sum())
        });
        s.engine.unsubscribe(sub.id).unwrap();
    }
    group.finish();
}

criterion_group!(benches, per_transaction, throughput, group_scaling);
criterion_main!(benches);
