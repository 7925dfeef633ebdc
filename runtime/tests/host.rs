//! The wasmtime host against hand-written modules in WebAssembly text: loading and describing,
//! reducers as transactions, argument checking, and every way a reducer can fail — returned
//! errors, traps, time budget, memory limit, bad pointers — each rolled back with the database
//! still serving. Bad modules are refused with clear errors.

use sluice_planner::{Row, Value};
use sluice_runtime::{CommitMeta, Host, HostConfig, ReducerError};
use std::time::{Duration, Instant};

const DESCRIPTION: &str = r#"{"tables":[{"name":"item","columns":[{"name":"id","type":"u64"},{"name":"name","type":"string"}],"primary_key":["id"]}],
"reducers":[{"name":"add","params":[{"name":"id","type":"u64"},{"name":"name","type":"string"}]},
{"name":"add_twice","params":[{"name":"id","type":"u64"},{"name":"name","type":"string"}]},
{"name":"spin","params":[]},{"name":"crash","params":[]},{"name":"hog","params":[]},
{"name":"bad_ptr","params":[]},{"name":"hello","params":[]}]}"#;

/// A module whose `sluice_call` dispatches on the reducer index; `describe` is its description.
fn module(describe: &str, exports: &str) -> String {
    let escaped = describe.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', " ");
    format!(
        r#"(module
  (import "sluice" "insert" (func $insert (param i32 i32 i32) (result i64)))
  (import "sluice" "read_result" (func $read_result (param i32)))
  (import "sluice" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 2)
  (data (i32.const 1024) "{escaped}")
  (data (i32.const 900) "hello")
  (func (export "sluice_describe") (result i64)
    (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const {len})))
  (func (export "sluice_alloc") (param i32) (result i32) (i32.const 65536))
  ;; Inserts the argument row into table 0; on failure copies the message to 8192 and
  ;; returns it as the reducer's error.
  (func $add (param $p i32) (param $l i32) (result i64) (local $r i64)
    (local.set $r (call $insert (i32.const 0) (local.get $p) (local.get $l)))
    (if (i64.lt_s (local.get $r) (i64.const 0)) (then
      (call $read_result (i32.const 8192))
      (return (i64.or (i64.shl (i64.const 8192) (i64.const 32))
                      (i64.sub (i64.const -1) (local.get $r))))))
    (call $read_result (i32.const 16384))
    (i64.const 0))
  {exports})"#,
        len = describe.len()
    )
}

fn test_module() -> String {
    module(
        DESCRIPTION,
        r#"(func (export "sluice_call") (param $r i32) (param $p i32) (param $l i32) (result i64) (local $x i64)
    (if (i32.eq (local.get $r) (i32.const 0)) (then (return (call $add (local.get $p) (local.get $l)))))
    (if (i32.eq (local.get $r) (i32.const 1)) (then
      (local.set $x (call $add (local.get $p) (local.get $l)))
      (if (i64.ne (local.get $x) (i64.const 0)) (then (return (local.get $x))))
      (return (call $add (local.get $p) (local.get $l)))))
    (if (i32.eq (local.get $r) (i32.const 2)) (then (loop $forever (br $forever))))
    (if (i32.eq (local.get $r) (i32.const 3)) (then (drop (memory.grow (i32.const 1))) unreachable))
    (if (i32.eq (local.get $r) (i32.const 4)) (then
      (if (i32.eq (memory.grow (i32.const 10000)) (i32.const -1)) (then unreachable))))
    (if (i32.eq (local.get $r) (i32.const 5)) (then
      (return (call $insert (i32.const 0) (i32.const 2147483647) (i32.const 100)))))
    (if (i32.eq (local.get $r) (i32.const 6)) (then
      (call $log (i32.const 2) (i32.const 900) (i32.const 5))))
    (i64.const 0))"#,
    )
}

fn config() -> HostConfig {
    HostConfig { time_budget: Duration::from_millis(100), memory_limit: 4 << 20 }
}

fn load() -> Host {
    Host::load(test_module().as_bytes(), config()).expect("the test module loads")
}

fn item(id: u64, name: &str) -> Row {
    Row::new(vec![Value::UInt(id), Value::text(name)])
}

fn items(host: &Host) -> Vec<Row> {
    let ds = host.datastore();
    let mut rows: Vec<Row> = ds.scan(ds.table_id("item").unwrap()).unwrap().cloned().collect();
    rows.sort();
    rows
}

#[test]
fn reducers_run_as_transactions_with_checked_arguments() {
    let mut host = load();
    assert_eq!(host.description().tables[0].name, "item");
    assert_eq!(host.description().reducers.len(), 7);
    let tx = host.call("add", r#"[1, "one"]"#, CommitMeta::default()).unwrap();
    assert_eq!((tx.offset, tx.meta.reducer.as_str()), (1, "add"));
    assert_eq!(tx.changes[0].inserts, vec![item(1, "one")]);
    let tx = host.call("add", r#"{"name": "two", "id": 2}"#, CommitMeta::default()).unwrap();
    assert_eq!(tx.offset, 2);
    assert_eq!(items(&host), vec![item(1, "one"), item(2, "two")]);

    let bad = |host: &mut Host, args: &str| host.call("add", args, CommitMeta::default()).unwrap_err().to_string();
    assert_eq!(
        bad(&mut host, r#"[-1, "x"]"#),
        "reducer `add`, argument `id`: expected an unsigned 64-bit integer, got -1"
    );
    assert_eq!(bad(&mut host, r#"[3]"#), "reducer `add` takes 2 arguments, got 1");
    assert_eq!(bad(&mut host, r#"{"id": 3, "nom": "x"}"#), "reducer `add` has no parameter `nom`");
    assert!(bad(&mut host, "[3, ").starts_with("reducer `add`: arguments are not JSON"));
    let none = host.call("nope", "[]", CommitMeta::default()).unwrap_err();
    assert_eq!(none, ReducerError::NoSuchReducer("nope".into()));
    assert_eq!(host.datastore().offset(), 2, "rejected calls take no offset");
}

#[test]
fn failed_reducers_roll_back_and_the_database_keeps_serving() {
    let mut host = load();
    host.call("add", r#"[1, "one"]"#, CommitMeta::default()).unwrap();
    let call = |host: &mut Host, name: &str, args: &str| host.call(name, args, CommitMeta::default());

    // A constraint violation the reducer returns as its error.
    let dup = call(&mut host, "add", r#"[1, "again"]"#).unwrap_err();
    assert_eq!(
        dup,
        ReducerError::Failed { reducer: "add".into(), message: "table `item`: duplicate primary key (1)".into() }
    );
    // The first of two inserts succeeded inside the reducer, then the second failed: neither stays.
    assert!(matches!(call(&mut host, "add_twice", r#"[5, "five"]"#), Err(ReducerError::Failed { .. })));

    let start = Instant::now();
    let spin = call(&mut host, "spin", "[]").unwrap_err();
    assert_eq!(spin, ReducerError::TimedOut { reducer: "spin".into(), budget: Duration::from_millis(100) });
    assert!(start.elapsed() < Duration::from_secs(5), "interrupted promptly: {:?}", start.elapsed());

    let crash = call(&mut host, "crash", "[]").unwrap_err();
    assert!(matches!(&crash, ReducerError::Trapped { message, .. } if message.contains("unreachable")), "{crash}");

    let hog = call(&mut host, "hog", "[]").unwrap_err();
    assert_eq!(hog, ReducerError::OutOfMemory { reducer: "hog".into(), limit: 4 << 20 });

    let ptr = call(&mut host, "bad_ptr", "[]").unwrap_err();
    assert!(matches!(&ptr, ReducerError::Trapped { message, .. } if message.contains("out of bounds")), "{ptr}");

    assert_eq!(items(&host), vec![item(1, "one")], "nothing of the failed calls remains");
    assert_eq!(host.datastore().offset(), 1);
    let tx = call(&mut host, "add", r#"[2, "two"]"#).unwrap();
    assert_eq!(tx.offset, 2, "still serving, offsets contiguous");
    assert_eq!(items(&host), vec![item(1, "one"), item(2, "two")]);
}

#[test]
fn module_logs_reach_the_host() {
    let mut host = load();
    host.call("hello", "[]", CommitMeta::default()).unwrap();
    let logs = host.take_logs();
    assert_eq!(logs.len(), 1);
    assert_eq!((logs[0].level, logs[0].reducer.as_str(), logs[0].message.as_str()), (2, "hello", "hello"));
}

#[test]
fn bad_modules_are_refused_with_clear_errors() {
    let err = |wasm: &str| Host::load(wasm.as_bytes(), config()).err().expect("refused").to_string();
    assert!(err("not wasm at all").starts_with("module does not compile"));
    let no_call = module(DESCRIPTION, "");
    assert_eq!(err(&no_call), "module lacks export `sluice_call` (or it has the wrong type)");
    let wrong_sig =
        module(DESCRIPTION, r#"(func (export "sluice_call") (param i32 i32 i32) (result i32) (i32.const 0))"#);
    assert_eq!(err(&wrong_sig), "module lacks export `sluice_call` (or it has the wrong type)");
    let call = r#"(func (export "sluice_call") (param i32 i32 i32) (result i64) (i64.const 0))"#;
    assert!(err(&module("{not json", call)).starts_with("module description: malformed description"));
    let unknown_col =
        r#"{"tables":[{"name":"t","columns":[{"name":"a","type":"i64"}],"primary_key":["b"]}],"reducers":[]}"#;
    assert_eq!(err(&module(unknown_col, call)), "module description: table `t`: no column named `b`");
    let unknown_import = r#"(module (import "sluice" "explode" (func)) (memory (export "memory") 1))"#;
    assert!(err(unknown_import).starts_with("module does not instantiate"));
}
