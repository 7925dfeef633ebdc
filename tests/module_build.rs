//! End to end through the toolchain: `sluice build` compiles a Rust module (tests/modules/
//! counter, written against the raw host ABI) to wasm, the host loads it and runs its
//! reducers, and every commit record feeds the IVM engine, whose subscription is checked
//! against SQLite after each transaction.
//!
//! Needs a wasm toolchain (rustup's wasm32 target or Debian's rustc-web packages, which
//! `.ci/run` installs); without one the test fails with the install hint, unless
//! SLUICE_SKIP_WASM=1 says to skip it.

use rusqlite::Connection;
use sluice::build::{build, detect, INSTALL_HINT};
use sluice::db::transaction;
use sluice_ivm::{Engine, EngineConfig, QueryDelta, QueryId};
use sluice_planner::{Catalog, Planner, Row, Value};
use sluice_runtime::{CommitMeta, Host, HostConfig, ReducerError};
use std::collections::BTreeMap;
use std::path::Path;

/// The counter test's subscription: counters at 2 or more.
const COUNTER_QUERY: &str = "SELECT id, n FROM counter WHERE n >= 2";

/// SQLite's answer to a query returning (unsigned id, integer) rows, sorted.
fn sqlite_rows(conn: &Connection, sql: &str) -> Vec<Row> {
    let mut stmt = conn.prepare(sql).unwrap();
    let mut rows: Vec<Row> = stmt
        .query_map([], |r| Ok(Row::new(vec![Value::UInt(r.get::<_, i64>(0)? as u64), Value::Int(r.get(1)?)])))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows.sort();
    rows
}

/// Builds the module crate at `path` (relative to the repository) and loads it; `None` when
/// the machine has no wasm toolchain and SLUICE_SKIP_WASM=1 allows skipping.
fn load(path: &str) -> Option<Host> {
    if detect().is_none() {
        assert!(std::env::var("SLUICE_SKIP_WASM").is_ok_and(|v| v == "1"), "{INSTALL_HINT}");
        return None;
    }
    let wasm = build(&Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).expect("the module builds");
    Some(Host::load(&std::fs::read(&wasm).unwrap(), HostConfig::default()).expect("the module loads"))
}

/// An engine and a catalog holding the module's tables.
fn engine_for(host: &Host) -> (Engine, Catalog) {
    let mut engine = Engine::new(EngineConfig::default());
    let mut catalog = Catalog::new();
    for def in host.datastore().defs() {
        engine.create_table(&def.schema).unwrap();
        catalog.add_table(def.schema.clone()).unwrap();
    }
    (engine, catalog)
}

/// Applies a query's delta to a client cache of (row, multiplicity).
fn absorb(cache: &mut BTreeMap<Row, isize>, delta: QueryDelta) {
    for row in delta.deletes {
        *cache.entry(row).or_default() -= 1;
    }
    for row in delta.inserts {
        *cache.entry(row).or_default() += 1;
    }
    cache.retain(|_, n| *n != 0);
}

#[test]
fn a_rust_module_builds_runs_and_feeds_subscriptions() {
    let Some(mut host) = load("tests/modules/counter") else { return };
    // The engine gets the module's tables; a subscription sees only counters at 2 or more.
    let (mut engine, catalog) = engine_for(&host);
    let plan = Planner::new(&catalog).plan_sql(COUNTER_QUERY).unwrap();
    let sub = engine.subscribe(&plan).unwrap();
    let mut cache: BTreeMap<Row, isize> = sub.initial.iter().map(|r| (r.clone(), 1)).collect();

    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)").unwrap();
    for (i, id) in [1u64, 2, 1, 3, 1, 2].into_iter().enumerate() {
        let tx = host.call("bump", &format!("[{id}]"), CommitMeta::default()).unwrap();
        assert_eq!(tx.offset, i as u64 + 1);
        conn.execute("INSERT INTO counter VALUES (?1, 1) ON CONFLICT(id) DO UPDATE SET n = n + 1", [id as i64])
            .unwrap();
        for delta in engine.apply(vec![transaction(tx)]).unwrap() {
            assert_eq!(delta.offset, i as u64 + 1);
            absorb(&mut cache, delta);
        }
        let held: Vec<Row> = cache.keys().cloned().collect();
        assert_eq!(held, sqlite_rows(&conn, COUNTER_QUERY), "after bump({id})");
    }
    assert_eq!(
        host.call("fail", "[]", CommitMeta::default()).unwrap_err(),
        ReducerError::Failed { reducer: "fail".into(), message: "fail always fails".into() }
    );
    assert_eq!(host.datastore().offset(), 6);
}

/// The bank example, written with the SDK's macros: seeded, then random transfers (some
/// failing on insufficient funds or unknown accounts, changing nothing). After every call the
/// stored accounts equal a model, and subscriptions fed by the commit records (the total, the
/// three richest accounts) equal SQLite's answers on the same state.
#[test]
fn the_bank_example_keeps_its_books_and_feeds_subscriptions() {
    use rand::{Rng, SeedableRng};
    let Some(mut host) = load("examples/bank") else { return };
    let names: Vec<&str> = host.description().reducers.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, vec!["seed", "transfer"]);

    let (mut engine, catalog) = engine_for(&host);
    let queries = [
        "SELECT SUM(balance), COUNT(*) FROM account",
        "SELECT id, balance FROM account ORDER BY balance DESC, id LIMIT 3",
    ];
    let mut caches: Vec<(QueryId, BTreeMap<Row, isize>)> = queries
        .iter()
        .map(|q| {
            let plan = Planner::new(&catalog).plan_sql(q).unwrap();
            let sub = engine.subscribe(&plan).unwrap();
            (sub.query, sub.initial.into_iter().map(|r| (r, 1)).collect())
        })
        .collect();
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("CREATE TABLE account (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)").unwrap();

    let mut model: BTreeMap<u64, i64> = BTreeMap::new();
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    for step in 0..120 {
        let (reducer, args) = if step == 0 {
            ("seed", "[20]".to_string())
        } else {
            let (from, to) = (rng.random_range(1..=22u64), rng.random_range(1..=22u64));
            ("transfer", format!("[{from}, {to}, {}]", rng.random_range(0..1500)))
        };
        let outcome = host.call(reducer, &args, CommitMeta::default());
        // The model's verdict.
        let ok = if step == 0 {
            model.extend((1..=20).map(|id| (id, 1000)));
            true
        } else {
            let v: Vec<i64> = serde_json::from_str(&args).unwrap();
            let (from, to, amount) = (v[0] as u64, v[1] as u64, v[2]);
            match (model.get(&from).copied(), model.contains_key(&to)) {
                (Some(b), true) if b >= amount => {
                    *model.get_mut(&from).unwrap() -= amount;
                    *model.get_mut(&to).unwrap() += amount;
                    true
                }
                _ => false,
            }
        };
        assert_eq!(outcome.is_ok(), ok, "step {step}: {reducer}{args}: {outcome:?}");
        let Ok(tx) = outcome else { continue };
        conn.execute("DELETE FROM account", []).unwrap();
        for (id, b) in &model {
            conn.execute("INSERT INTO account VALUES (?1, ?2)", [*id as i64, *b]).unwrap();
        }
        for delta in engine.apply(vec![transaction(tx)]).unwrap() {
            let cache = &mut caches.iter_mut().find(|(q, _)| *q == delta.query).unwrap().1;
            absorb(cache, delta);
        }
        let sum: (i64, i64) =
            conn.query_row("SELECT SUM(balance), COUNT(*) FROM account", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        assert_eq!(
            caches[0].1.keys().cloned().collect::<Vec<_>>(),
            vec![Row::new(vec![Value::Int(sum.0), Value::Int(sum.1)])]
        );
        let top = sqlite_rows(&conn, queries[1]);
        assert_eq!(caches[1].1.keys().cloned().collect::<Vec<_>>(), top, "step {step}");
    }
    let ds = host.datastore();
    let stored: BTreeMap<u64, i64> = ds
        .scan(ds.table_id("account").unwrap())
        .unwrap()
        .map(|r| match (r.get(0), r.get(1)) {
            (Value::UInt(id), Value::Int(b)) => (id, b),
            other => panic!("unexpected row {other:?}"),
        })
        .collect();
    assert_eq!(stored, model);
    assert_eq!(model.values().sum::<i64>(), 20_000, "money is neither made nor lost");
}

/// Argument buffers are freed after each call: 40,000 calls with ~50-byte buffers would need
/// about twice the 2 MiB memory limit (the module starts at about 1.1 MiB) if they were not.
#[test]
fn reducer_calls_do_not_grow_module_memory() {
    if load("examples/bank").is_none() {
        return;
    }
    let wasm = build(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/bank")).unwrap();
    let config = HostConfig { memory_limit: 2 << 20, ..HostConfig::default() };
    let mut host = Host::load(&std::fs::read(&wasm).unwrap(), config).unwrap();
    host.call("seed", "[2]", CommitMeta::default()).unwrap();
    for i in 0..40_000 {
        host.call("transfer", "[1, 2, 0]", CommitMeta::default()).unwrap_or_else(|e| panic!("call {i}: {e}"));
        if i % 1000 == 0 {
            // Failing calls keep only the last error message.
            host.call("transfer", "[1, 3, 0]", CommitMeta::default()).unwrap_err();
        }
    }
}
