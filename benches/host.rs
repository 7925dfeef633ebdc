//! Reducer calls per second on the executor alone (no network, no fsync), with the bank
//! example: an empty reducer, one insert, and `transfer` between random accounts of 100k;
//! then `transfer` with the engine maintaining three live subscriptions over the accounts,
//! its commit records applied one per engine call and in batches of 100; and `transfer` with
//! its record appended to the commit log (group commit, fsync per batch; and relaxed, no fsync)
//! against the same calls in memory, in one run; and recovery (snapshot plus log replay) with
//! the log's bytes per transaction.
//!
//! `cargo bench --bench host` (needs a wasm toolchain: see `sluice build`).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sluice::build::build;
use sluice::db::{engine_for, transaction, StoreRows};
use sluice_ivm::Engine;
use sluice_planner::Planner;
use sluice_runtime::{CommitMeta, Durability, Host, HostConfig, LogConfig, Storage, StorageConfig};
use std::path::{Path, PathBuf};
use std::time::Instant;

const ACCOUNTS: u64 = 100_000;
/// Commit records applied per engine call in the batched variant.
const BATCH: usize = 100;

fn bank_wasm() -> Vec<u8> {
    let wasm = build(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/bank")).expect("bank builds");
    std::fs::read(wasm).unwrap()
}

fn bank() -> Host {
    let mut host = Host::load(&bank_wasm(), HostConfig::default()).unwrap();
    host.call("seed", &format!("[{ACCOUNTS}]"), CommitMeta::default()).unwrap();
    host
}

/// The bank as a durable database in a fresh directory, seeded.
fn durable_bank(durability: Durability, snapshot_every: u64) -> (Host, Storage, PathBuf) {
    let dir = std::env::temp_dir().join(format!("sluice-bench-{durability:?}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config =
        StorageConfig { log: LogConfig { durability, ..LogConfig::default() }, snapshot_every, keep_snapshots: None };
    let (mut host, mut storage) = Storage::create(&dir, &bank_wasm(), HostConfig::default(), config).unwrap();
    let seed = host.call("seed", &format!("[{ACCOUNTS}]"), CommitMeta::default()).unwrap();
    storage.append(&seed, &host).unwrap();
    (host, storage, dir)
}

/// An engine over the bank's tables with three live subscriptions.
fn engine_with_subscriptions(host: &Host) -> Engine {
    let (mut engine, catalog) = engine_for(host.datastore(), 1).unwrap();
    for q in [
        "SELECT SUM(balance), COUNT(*) FROM account",
        "SELECT id, balance FROM account ORDER BY balance DESC, id LIMIT 10",
        "SELECT COUNT(*) FROM account WHERE balance > 1000",
    ] {
        engine.subscribe(&Planner::new(&catalog).plan_sql(q).unwrap(), &StoreRows(host.datastore())).unwrap();
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
            engine.apply(vec![transaction(&tx)]).unwrap()
        })
    });

    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("transfer_with_3_subscriptions_batched", |bch| {
        bch.iter_batched(
            || (0..BATCH).map(|_| args()).collect::<Vec<_>>(),
            |calls| {
                let txs = calls
                    .iter()
                    .map(|a| transaction(&host.call("transfer", a, CommitMeta::default()).unwrap()))
                    .collect();
                engine.apply(txs).unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// Transfers per second with each record appended to the commit log, beside the same calls
/// in memory: the executor runs on while the writer thread fsyncs batches; each measured
/// stretch ends when its last transaction is durable.
fn durability(c: &mut Criterion) {
    let mut group = c.benchmark_group("durability");
    group.throughput(Throughput::Elements(1));
    let mut rng = StdRng::seed_from_u64(2);
    let mut args = move || {
        let (a, b) = (rng.random_range(1..=ACCOUNTS), rng.random_range(1..=ACCOUNTS));
        format!("[{a}, {b}, 1]")
    };
    let mut host = bank();
    group.bench_function("transfer_in_memory", |bch| {
        bch.iter(|| host.call("transfer", &args(), CommitMeta::default()).unwrap())
    });
    for (name, durability) in
        [("transfer_logged_fsync", Durability::Full), ("transfer_logged_relaxed", Durability::Relaxed)]
    {
        let (mut host, mut storage, dir) = durable_bank(durability, StorageConfig::default().snapshot_every);
        group.bench_function(name, |bch| {
            bch.iter_custom(|iters| {
                let t = Instant::now();
                let mut last = 0;
                for _ in 0..iters {
                    let tx = host.call("transfer", &args(), CommitMeta::default()).unwrap();
                    last = tx.offset;
                    storage.append(&tx, &host).unwrap();
                }
                storage.wait(last).unwrap();
                t.elapsed()
            })
        });
        drop(storage);
        let _ = std::fs::remove_dir_all(dir);
    }
    group.finish();
}

/// Recovery time per transaction replayed, and the log's bytes per transaction and per row
/// change: the bank's 100k accounts in a snapshot, then 200k transfers in the log after it.
fn recovery(c: &mut Criterion) {
    const TRANSFERS: u64 = 200_000;
    let (mut host, mut storage, dir) = durable_bank(Durability::Full, 0);
    storage.snapshot(&host, 0).unwrap();
    let log_bytes = |dir: &Path| -> u64 {
        let segments = std::fs::read_dir(dir.join("log")).unwrap();
        segments.map(|e| e.unwrap().metadata().unwrap().len()).sum()
    };
    let before = log_bytes(&dir);
    let mut rng = StdRng::seed_from_u64(3);
    let (mut last, mut rows) = (0, 0);
    for _ in 0..TRANSFERS {
        let (a, b) = (rng.random_range(1..=ACCOUNTS), rng.random_range(1..=ACCOUNTS));
        let tx = host.call("transfer", &format!("[{a}, {b}, 1]"), CommitMeta::default()).unwrap();
        (last, rows) = (tx.offset, rows + tx.len());
        storage.append(&tx, &host).unwrap();
    }
    storage.wait(last).unwrap();
    drop(storage); // no clean shutdown: recovery replays all of them
    let bytes = log_bytes(&dir) - before;
    println!(
        "log: {bytes} bytes for {TRANSFERS} transfers = {:.1} bytes per transaction, {:.1} per row change ({rows} rows)",
        bytes as f64 / TRANSFERS as f64,
        bytes as f64 / rows as f64
    );
    let mut group = c.benchmark_group("recovery");
    group.sample_size(10).throughput(Throughput::Elements(TRANSFERS));
    let config = StorageConfig { snapshot_every: 0, ..StorageConfig::default() };
    group.bench_function("replay_200k_transfers_after_100k_account_snapshot", |bch| {
        bch.iter(|| {
            let (host, _storage, report) = Storage::open(&dir, HostConfig::default(), config.clone()).unwrap();
            assert_eq!(report.replayed, TRANSFERS);
            host
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(dir);
}

criterion_group!(benches, reducers, durability, recovery);
criterion_main!(benches);
