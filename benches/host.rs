//! Reducer calls per second on the executor alone (no network, no fsync), with the bank
//! example: an empty reducer, one insert, and `transfer` between random accounts of 100k;
//! then `transfer` with the engine maintaining three live subscriptions over the accounts,
//! its commit records applied one per engine call and in batches of 100.
//!
//! `cargo bench --bench host` (needs a wasm toolchain: see `sluice build`).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sluice::build::build;
use sluice::db::transaction;
use sluice_ivm::{Engine, EngineConfig};
use sluice_planner::{Catalog, Planner};
use sluice_runtime::{CommitMeta, Host, HostConfig};
use std::path::Path;

const ACCOUNTS: u64 = 100_000;
/// Commit records applied per engine call in the batched variant.
const BATCH: usize = 100;

fn bank() -> Host {
    let wasm = build(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/bank")).expect("bank builds");
    let mut host = Host::load(&std::fs::read(wasm).unwrap(), HostConfig::default()).unwrap();
    host.call("seed", &format!("[{ACCOUNTS}]"), CommitMeta::default()).unwrap();
    host
}

/// An engine holding the bank's accounts with three live subscriptions.
fn engine_with_subscriptions(host: &Host) -> Engine {
    let mut engine = Engine::new(EngineConfig::default());
    let mut catalog = Catalog::new();
    for def in host.datastore().defs() {
        engine.create_table(&def.schema).unwrap();
        catalog.add_table(def.schema.clone()).unwrap();
    }
    let ds = host.datastore();
    let rows = ds.scan(ds.table_id("account").unwrap()).unwrap().cloned().collect();
    let load = sluice_ivm::Transaction {
        offset: ds.offset(),
        changes: vec![sluice_ivm::TableChange { table: "account".into(), inserts: rows, deletes: vec![] }],
    };
    engine.apply(vec![load]).unwrap();
    for q in [
        "SELECT SUM(balance), COUNT(*) FROM account",
        "SELECT id, balance FROM account ORDER BY balance DESC, id LIMIT 10",
        "SELECT COUNT(*) FROM account WHERE balance > 1000",
    ] {
        engine.subscribe(&Planner::new(&catalog).plan_sql(q).unwrap()).unwrap();
    }
    engine
}

fn reducers(c: &mut Criterion) {
    let mut group = c.benchmark_group("reducers");
    group.throughput(Throughput::Elements(1));
    let mut rng = StdRng::seed_from_u64(1);
    let mut args = move || {
        let (a, b) = (rng.random_range(1..=ACCOUNTS), rng.random_range(1..=ACCOUNTS));
        format!("[{a}, {b}, 1]")
    };

    let mut host = bank();
    group.bench_function("empty", |bch| bch.iter(|| host.call("noop", "[]", CommitMeta::default()).unwrap()));
    let mut next = ACCOUNTS;
    group.bench_function("one_insert", |bch| {
        bch.iter(|| {
            next += 1;
            host.call("open", &format!("[{next}, 5]"), CommitMeta::default()).unwrap()
        })
    });

    let mut host = bank();
    group.bench_function("transfer", |bch| bch.iter(|| host.call("transfer", &args(), CommitMeta::default()).unwrap()));

    let mut host = bank();
    let mut engine = engine_with_subscriptions(&host);
    group.bench_function("transfer_with_3_subscriptions", |bch| {
        bch.iter(|| {
            let tx = host.call("transfer", &args(), CommitMeta::default()).unwrap();
            engine.apply(vec![transaction(tx)]).unwrap()
        })
    });

    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("transfer_with_3_subscriptions_batched", |bch| {
        bch.iter_batched(
            || (0..BATCH).map(|_| args()).collect::<Vec<_>>(),
            |calls| {
                let txs = calls
                    .iter()
                    .map(|a| transaction(host.call("transfer", a, CommitMeta::default()).unwrap()))
                    .collect();
                engine.apply(txs).unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, reducers);
criterion_main!(benches);
