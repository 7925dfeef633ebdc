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
use sluice_ivm::{Engine, EngineConfig};
use sluice_planner::{Catalog, Planner, Row, Value};
use sluice_runtime::{CommitMeta, Host, HostConfig, ReducerError};
use std::collections::BTreeMap;
use std::path::Path;

fn sqlite_rows(conn: &Connection) -> Vec<Row> {
    let mut stmt = conn.prepare("SELECT id, n FROM counter WHERE n >= 2").unwrap();
    let mut rows: Vec<Row> = stmt
        .query_map([], |r| Ok(Row::new(vec![Value::UInt(r.get::<_, i64>(0)? as u64), Value::Int(r.get(1)?)])))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows.sort();
    rows
}

#[test]
fn a_rust_module_builds_runs_and_feeds_subscriptions() {
    if detect().is_none() {
        assert!(std::env::var("SLUICE_SKIP_WASM").is_ok_and(|v| v == "1"), "{INSTALL_HINT}");
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/modules/counter");
    let wasm = build(&dir).expect("the counter module builds");
    let mut host = Host::load(&std::fs::read(&wasm).unwrap(), HostConfig::default()).expect("it loads");

    // The engine gets the module's tables; a subscription sees only counters at 2 or more.
    let mut engine = Engine::new(EngineConfig::default());
    let mut catalog = Catalog::new();
    for def in host.datastore().defs() {
        engine.create_table(&def.schema).unwrap();
        catalog.add_table(def.schema.clone()).unwrap();
    }
    let plan = Planner::new(&catalog).plan_sql("SELECT id, n FROM counter WHERE n >= 2").unwrap();
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
            for row in delta.deletes {
                *cache.entry(row).or_default() -= 1;
            }
            for row in delta.inserts {
                *cache.entry(row).or_default() += 1;
            }
        }
        cache.retain(|_, n| *n != 0);
        let held: Vec<Row> = cache.keys().cloned().collect();
        assert_eq!(held, sqlite_rows(&conn), "after bump({id})");
    }
    assert_eq!(
        host.call("fail", "[]", CommitMeta::default()).unwrap_err(),
        ReducerError::Failed { reducer: "fail".into(), message: "fail always fails".into() }
    );
    assert_eq!(host.datastore().offset(), 6);
}
