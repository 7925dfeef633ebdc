//! End to end through the toolchain: `sluice build` compiles a Rust module (tests/modules/
//! counter, written against the raw host ABI) to wasm, the host loads it and runs its
//! reducers, and every commit record feeds the IVM engine, whose subscription is checked
//! against SQLite after each transaction.
//!
//! Needs a wasm toolchain (rustup's wasm32 target or Debian's rustc-web packages, which
//! `.ci/run` installs); without one the test fails with the install hint, unless
//! SLUICE_SKIP_WASM=1 says to skip it.

mod common;

use common::{build_module, load, Live, Norm};
use sluice_planner::Value;
use sluice_runtime::{CommitMeta, Host, HostConfig, ReducerError};
use std::collections::BTreeMap;

#[test]
fn a_rust_module_builds_runs_and_feeds_subscriptions() {
    let Some(mut host) = load("tests/modules/counter") else { return };
    // A subscription over the module's table sees only counters at 2 or more.
    let mut live = Live::new(&host, &["SELECT id, n FROM counter WHERE n >= 2"]);
    for (i, id) in [1u64, 2, 1, 3, 1, 2].into_iter().enumerate() {
        let tx = host.call("bump", &format!("[{id}]"), CommitMeta::default()).unwrap();
        assert_eq!(tx.offset, i as u64 + 1);
        live.commit(&tx);
    }
    assert_eq!(live.rows(0), vec![vec![Norm::Int(1), Norm::Int(3)], vec![Norm::Int(2), Norm::Int(2)]]);
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
    assert_eq!(names, vec!["noop", "open", "seed", "seed_range", "transfer"]);
    let queries = [
        "SELECT SUM(balance), COUNT(*) FROM account",
        "SELECT id, balance FROM account ORDER BY balance DESC, id LIMIT 3",
    ];
    let mut live = Live::new(&host, &queries);

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
        if let Ok(tx) = outcome {
            live.commit(&tx);
        }
    }
    assert_eq!(live.rows(0), vec![vec![Norm::Int(20_000), Norm::Int(20)]], "money is neither made nor lost");
    let ds = host.datastore();
    // Accounts are (id, branch_id, balance).
    let stored: BTreeMap<u64, i64> = ds
        .scan(ds.table_id("account").unwrap())
        .unwrap()
        .map(|r| match (r.get(0), r.get(2)) {
            (Value::UInt(id), Value::Int(b)) => (id, b),
            other => panic!("unexpected row {other:?}"),
        })
        .collect();
    assert_eq!(stored, model);
}

/// Argument buffers are freed after each call: 40,000 calls with ~50-byte buffers would need
/// about twice the 2 MiB memory limit (the module starts at about 1.1 MiB) if they were not.
#[test]
fn reducer_calls_do_not_grow_module_memory() {
    let Some(wasm) = build_module("examples/bank") else { return };
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

/// A module written with the SDK that panics, spins, allocates without bound and fails after
/// writing: each call is rolled back with its reason (a panic's own message), a fresh
/// instance takes over, and the database keeps serving.
#[test]
fn misbehaving_reducers_are_rolled_back_with_their_reason() {
    let Some(wasm) = build_module("tests/modules/faulty") else { return };
    let config = HostConfig { time_budget: std::time::Duration::from_millis(200), memory_limit: 16 << 20 };
    let mut host = Host::load(&std::fs::read(&wasm).unwrap(), config).unwrap();
    let mut call = |r: &str, args: &str| host.call(r, args, CommitMeta::default());
    call("add", r#"[1, "kept"]"#).unwrap();
    let panic = call("panics", "[2]").unwrap_err();
    assert!(
        matches!(&panic, ReducerError::Trapped { message, .. } if message.contains("note not found") && message.contains("src/lib.rs")),
        "{panic}"
    );
    let spin = call("spins", "[3]").unwrap_err();
    assert_eq!(spin, ReducerError::TimedOut { reducer: "spins".into(), budget: std::time::Duration::from_millis(200) });
    let hog = call("hogs", "[]").unwrap_err();
    assert_eq!(hog, ReducerError::OutOfMemory { reducer: "hogs".into(), limit: 16 << 20 });
    let fail = call("fails", "[4]").unwrap_err();
    assert_eq!(fail, ReducerError::Failed { reducer: "fails".into(), message: "note 4 was not wanted".into() });
    let tx = call("add", r#"[5, "also kept"]"#).unwrap();
    assert_eq!(tx.offset, 2, "failed calls take no offset");
    let ds = host.datastore();
    let mut notes: Vec<Value> = ds.scan(ds.table_id("note").unwrap()).unwrap().map(|r| r.get(0)).collect();
    notes.sort();
    assert_eq!(notes, vec![Value::UInt(1), Value::UInt(5)], "nothing of the failed calls remains");
    let panics: Vec<_> =
        host.take_logs().into_iter().filter(|l| l.level == sluice_runtime::host::PANIC_LEVEL).collect();
    assert_eq!(panics.len(), 1, "the panic is in the database's log too");
}
