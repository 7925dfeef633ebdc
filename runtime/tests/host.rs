//! The wasmtime host against hand-written modules in WebAssembly text: loading and describing,
//! reducers as transactions, argument checking, and every way a reducer can fail — returned
//! errors, traps, time budget, memory limit, bad pointers (also thousands of random host calls)
//! — each rolled back with the database still serving. Bad modules are refused with clear
//! errors.

use sluice_data::{Row, Value};
use sluice_runtime::{CommitMeta, Host, HostConfig, ReducerError};
use std::time::{Duration, Instant};

const ITEM: &str =
    r#"{"name":"item","columns":[{"name":"id","type":"u64"},{"name":"name","type":"string"}],"primary_key":["id"]}"#;
const ID_NAME: &str = r#"[{"name":"id","type":"u64"},{"name":"name","type":"string"}]"#;

/// Escapes text for a WAT data string.
fn wat_str(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', " ")
}

/// The exports describing `tables` (name, JSON) and `reducers` (name, JSON parameter list,
/// body), with each reducer's function: its body sees `$p` / `$l`, the argument buffer.
fn exports(tables: &[(&str, &str)], reducers: &[(&str, &str, &str)]) -> String {
    let mut items = String::new();
    let mut at = 1024;
    let mut describe = |export: String, json: &str, items: &mut String| {
        items.push_str(&format!(
            "(data (i32.const {at}) \"{}\")\n(func (export \"{export}\") (result i64) (i64.const {}))\n",
            wat_str(json),
            ((at as i64) << 32) | json.len() as i64
        ));
        at += json.len() + 16;
    };
    for (name, json) in tables {
        describe(format!("__sluice_table__{name}"), json, &mut items);
    }
    for (name, params, body) in reducers {
        describe(
            format!("__sluice_describe_reducer__{name}"),
            &format!(r#"{{"name":"{name}","params":{params}}}"#),
            &mut items,
        );
        items.push_str(&format!(
            "(func (export \"__sluice_reducer__{name}\") (param $p i32) (param $l i32) (result i64) (local $x i64)\n{body}\n(i64.const 0))\n"
        ));
    }
    items
}

/// A module on the per-export ABI: `tables` as (name, JSON), `reducers` as (name, JSON
/// parameter list, body). A body sees `$p` / `$l`: the argument buffer (a 40-byte header, then
/// the argument row); `$add` inserts a row into table 0 and returns its error, if any.
fn module(tables: &[(&str, &str)], reducers: &[(&str, &str, &str)]) -> String {
    let items = exports(tables, reducers);
    format!(
        r#"(module
  (import "sluice" "insert" (func $insert (param i32 i32 i32) (result i64)))
  (import "sluice" "read_result" (func $read_result (param i32)))
  (import "sluice" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 2)
  (data (i32.const 900) "hello")
  (func (export "sluice_alloc") (param i32) (result i32) (i32.const 65536))
  ;; Inserts the argument row (after the 40-byte header) into table 0; on failure copies the
  ;; message to 8192 and returns it as the reducer's error.
  (func $add (param $p i32) (param $l i32) (result i64) (local $r i64)
    (local.set $r (call $insert (i32.const 0) (i32.add (local.get $p) (i32.const 40))
                                (i32.sub (local.get $l) (i32.const 40))))
    (if (i64.lt_s (local.get $r) (i64.const 0)) (then
      (call $read_result (i32.const 8192))
      (return (i64.or (i64.shl (i64.const 8192) (i64.const 32))
                      (i64.sub (i64.const -1) (local.get $r))))))
    (call $read_result (i32.const 16384))
    (i64.const 0))
  {items})"#
    )
}

fn test_module() -> String {
    module(
        &[("item", ITEM)],
        &[
            ("add", ID_NAME, "(return (call $add (local.get $p) (local.get $l)))"),
            (
                "add_twice",
                ID_NAME,
                "(local.set $x (call $add (local.get $p) (local.get $l)))
                 (if (i64.ne (local.get $x) (i64.const 0)) (then (return (local.get $x))))
                 (return (call $add (local.get $p) (local.get $l)))",
            ),
            ("spin", "[]", "(loop $forever (br $forever))"),
            ("crash", "[]", "(drop (memory.grow (i32.const 1))) unreachable"),
            ("hog", "[]", "(if (i32.eq (memory.grow (i32.const 10000)) (i32.const -1)) (then unreachable))"),
            ("bad_ptr", "[]", "(return (call $insert (i32.const 0) (i32.const 2147483647) (i32.const 100)))"),
            ("hello", "[]", "(call $log (i32.const 2) (i32.const 900) (i32.const 5))"),
            (
                "chatter",
                "[]",
                "(local.set $x (i64.const 5000))
                 (loop $more
                   (call $log (i32.const 3) (i32.const 900) (i32.const 5))
                   (local.set $x (i64.sub (local.get $x) (i64.const 1)))
                   (br_if $more (i64.ne (local.get $x) (i64.const 0))))",
            ),
            // One line of 60 KiB (whatever bytes memory holds there).
            ("shout", "[]", "(call $log (i32.const 1) (i32.const 0) (i32.const 61440))"),
            // Returns the caller identity's first byte as its error, to show the header.
            (
                "whoami",
                "[]",
                "(i32.store8 (i32.const 9000) (i32.add (i32.const 48) (i32.load8_u (local.get $p))))
                 (return (i64.or (i64.shl (i64.const 9000) (i64.const 32)) (i64.const 1)))",
            ),
        ],
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
    assert_eq!(host.description().reducers.len(), 10);
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
fn a_module_logging_in_a_loop_is_bounded_in_lines_and_bytes() {
    let mut host = load();
    host.call("chatter", "[]", CommitMeta::default()).unwrap();
    let logs = host.take_logs();
    let max = sluice_runtime::host::MAX_PENDING_LOG_LINES;
    assert_eq!(logs.len(), max + 1);
    assert!(logs[..max].iter().all(|l| l.message == "hello"));
    assert_eq!(logs[max].message, format!("{} more lines dropped", 5000 - max));
    host.call("shout", "[]", CommitMeta::default()).unwrap();
    let long = host.take_logs();
    assert_eq!(long.len(), 1, "taking the lines starts the count again");
    let cut = sluice_runtime::host::MAX_LOG_LINE_BYTES;
    assert!(long[0].message.ends_with(" […cut]") && long[0].message.len() <= cut * 3 + 16, "{}", long[0].message.len());
}

#[test]
fn reducers_see_the_caller() {
    let mut host = load();
    let meta = CommitMeta { caller: "07ff".into(), ..CommitMeta::default() };
    let err = host.call("whoami", "[]", meta).unwrap_err();
    assert_eq!(err, ReducerError::Failed { reducer: "whoami".into(), message: "7".into() });
}

#[test]
fn bad_modules_are_refused_with_clear_errors() {
    let err = |wasm: &str| Host::load(wasm.as_bytes(), config()).err().expect("refused").to_string();
    assert!(err("not wasm at all").starts_with("module does not compile"));
    // What the bytes are, rather than what reading them as the text format found.
    let bytes_err = |b: &[u8]| Host::load(b, config()).err().expect("refused").to_string();
    assert!(bytes_err(b"# a README\n").contains("not a WebAssembly module: it is text, starting \"# a README"));
    assert!(bytes_err(b"\x7fELF\x02\x01\x01").contains("it is an ELF executable"));
    assert!(bytes_err(&[0xff, 0xfe, 0x00, 0x01]).contains("it starts with the bytes ff fe 00 01"));
    assert!(bytes_err(b"").contains("it is empty"));
    // A reducer described but not exported.
    let mut no_entry = module(&[("item", ITEM)], &[("add", ID_NAME, "")]);
    no_entry = no_entry.replace("(export \"__sluice_reducer__add\")", "");
    assert_eq!(err(&no_entry), "module lacks export `__sluice_reducer__add` (or it has the wrong type)");
    let wrong_sig = module(&[], &[]).replace(
        "(data (i32.const 900)",
        "(func (export \"__sluice_reducer__x\") (result i32) (i32.const 0))\n(data (i32.const 900)",
    );
    let json = r#"{"name":"x","params":[]}"#;
    let describe_x = format!(
        "(data (i32.const 2000) \"{}\")\n(func (export \"__sluice_describe_reducer__x\") (result i64) (i64.const {}))\n",
        wat_str(json),
        (2000i64 << 32) | json.len() as i64
    );
    let wrong_sig =
        wrong_sig.replace("(func (export \"sluice_alloc\")", &(describe_x + "(func (export \"sluice_alloc\")"));
    assert_eq!(err(&wrong_sig), "module lacks export `__sluice_reducer__x` (or it has the wrong type)");
    assert!(err(&module(&[("t", "{not json")], &[])).starts_with("module description: `__sluice_table__t`: malformed"));
    let unknown_col = r#"{"name":"t","columns":[{"name":"a","type":"i64"}],"primary_key":["b"]}"#;
    assert_eq!(err(&module(&[("t", unknown_col)], &[])), "module description: table `t`: no column named `b`");
    // Two reducer descriptions naming the same reducer (the WAT holds the JSON escaped).
    let twice = module(&[], &[("ra", "[]", ""), ("rb", "[]", "")]).replace(r#"\"name\":\"rb\""#, r#"\"name\":\"ra\""#);
    assert_eq!(err(&twice), "module description: two reducers are named `ra`");
    // Lifecycle roles: one reducer each, taking no arguments.
    let init = r#"[],"lifecycle":"init""#;
    assert_eq!(
        err(&module(&[], &[("a", init, ""), ("b", init, "")])),
        "module description: reducers `a` and `b` are both the Init reducer"
    );
    let with_arg = r#"[{"name":"n","type":"u64"}],"lifecycle":"client_connected""#;
    assert_eq!(
        err(&module(&[], &[("hello", with_arg, "")])),
        "module description: lifecycle reducer `hello` must take no arguments"
    );
    // Schedule tables: the schedule columns, and a reducer that takes one of the rows.
    let timer = |cols: &str| {
        format!(
            r#"{{"name":"timer","scheduled":"tick","primary_key":["id"],"columns":[{{"name":"id","type":"u64"}}{cols}]}}"#
        )
    };
    let at = r#",{"name":"scheduled_at","type":"u64"}"#;
    let both = r#",{"name":"scheduled_at","type":"u64"},{"name":"repeat_micros","type":"u64"}"#;
    let row = r#"[{"name":"id","type":"u64"},{"name":"a","type":"u64"},{"name":"r","type":"u64"}]"#;
    assert_eq!(
        err(&module(&[("timer", &timer(at))], &[("tick", row, "")])),
        "module description: schedule table `timer`: needs a column `repeat_micros` of type u64"
    );
    assert_eq!(
        err(&module(&[("timer", &timer(both))], &[("tick", "[]", "")])),
        "module description: schedule table `timer`: reducer `tick` must take exactly one of its rows"
    );
    assert_eq!(
        err(&module(&[("timer", &timer(both))], &[])),
        "module description: schedule table `timer`: no reducer named `tick`"
    );
    assert!(Host::load(module(&[("timer", &timer(both))], &[("tick", row, "")]).as_bytes(), config()).is_ok());
    let no_alloc = module(&[], &[]).replace("(export \"sluice_alloc\")", "");
    assert_eq!(err(&no_alloc), "module lacks export `sluice_alloc` (or it has the wrong type)");
    let unknown_import = r#"(module (import "sluice" "explode" (func)) (memory (export "memory") 1))"#;
    assert!(err(unknown_import).starts_with("module does not instantiate"));
}

/// Databases are independent: while one spins through its time budget on another thread, a
/// second serves calls, and the spinning one then serves again too.
#[test]
fn a_spinning_database_does_not_hold_up_another() {
    let slow = HostConfig { time_budget: Duration::from_secs(2), memory_limit: 4 << 20 };
    let mut spinning = Host::load(test_module().as_bytes(), slow).unwrap();
    let mut serving = load();
    let (started, spin_started) = std::sync::mpsc::channel();
    let spinner = std::thread::spawn(move || {
        started.send(()).unwrap();
        let err = spinning.call("spin", "[]", CommitMeta::default()).unwrap_err();
        (spinning, err, Instant::now())
    });
    spin_started.recv().unwrap();
    for id in 1..=20u64 {
        serving.call("add", &format!(r#"[{id}, "x"]"#), CommitMeta::default()).unwrap();
    }
    let served = Instant::now();
    let (mut spinning, err, spun) = spinner.join().unwrap();
    assert!(matches!(err, ReducerError::TimedOut { .. }), "{err}");
    assert!(served < spun, "the other database served all its calls while this one spun");
    assert_eq!(items(&serving).len(), 20);
    spinning.call("add", r#"[1, "after"]"#, CommitMeta::default()).unwrap();
    assert_eq!(items(&spinning), vec![item(1, "after")]);
}

/// A host function as a module imports it: name, parameter count (all i32) and result type.
const HOST_FUNCTIONS: &[(&str, usize, &str)] = &[
    ("table_id", 2, "i32"),
    ("index_id", 3, "i32"),
    ("insert", 3, "i64"),
    ("update_by", 4, "i64"),
    ("delete_by", 4, "i64"),
    ("find", 4, "i64"),
    ("range", 11, "i64"),
    ("iter_open", 1, "i64"),
    ("iter_next", 2, "i64"),
    ("iter_close", 1, ""),
    ("count", 1, "i64"),
    ("read_result", 1, ""),
    ("log", 3, ""),
];

/// An i32 a hostile module might pass: edges of memory (two 64 KiB pages), of i32, small
/// ids and kinds, or anything at all.
fn hostile_i32(rng: &mut impl rand::Rng) -> i32 {
    const EDGES: &[i32] =
        &[0, 1, 2, -1, 3, 40, 1024, 2048, 4095, 65535, 65536, 131_071, 131_072, 131_073, i32::MAX, i32::MIN];
    match rng.random_range(0..3) {
        0 => EDGES[rng.random_range(0..EDGES.len())],
        1 => rng.random_range(0..131_072),
        _ => rng.random(),
    }
}

/// A module whose reducers `r0` … each call host functions with random arguments, over a
/// memory holding random bytes.
fn hostile_module(rng: &mut impl rand::Rng, reducers: usize) -> String {
    let mut bodies = Vec::new();
    for _ in 0..reducers {
        let mut body = String::new();
        for _ in 0..rng.random_range(1..5) {
            let (name, params, result) = HOST_FUNCTIONS[rng.random_range(0..HOST_FUNCTIONS.len())];
            let args: String = (0..params).map(|_| format!(" (i32.const {})", hostile_i32(rng))).collect();
            let call = format!("(call ${name}{args})");
            body.push_str(&if result.is_empty() { call } else { format!("(drop {call})") });
            body.push('\n');
        }
        bodies.push(body);
    }
    let random: String = (0..2048).map(|_| format!("\\{:02x}", rng.random::<u8>())).collect();
    let names: Vec<String> = (0..reducers).map(|i| format!("r{i}")).collect();
    let reducers: Vec<(&str, &str, &str)> =
        names.iter().zip(&bodies).map(|(name, body)| (name.as_str(), "[]", body.as_str())).collect();
    let items = exports(&[("item", ITEM)], &reducers);
    let imports: String = HOST_FUNCTIONS
        .iter()
        .map(|(name, params, result)| {
            let params = if *params == 0 { String::new() } else { format!(" (param{})", " i32".repeat(*params)) };
            let result = if result.is_empty() { String::new() } else { format!(" (result {result})") };
            format!("(import \"sluice\" \"{name}\" (func ${name}{params}{result}))\n")
        })
        .collect();
    format!(
        r#"(module
  {imports}
  (memory (export "memory") 2)
  (data (i32.const 32768) "{random}")
  (func (export "sluice_alloc") (param i32) (result i32) (i32.const 65536))
  {items})"#
    )
}

#[test]
fn random_host_calls_with_bad_pointers_and_lengths_fail_cleanly_or_commit_whole() {
    use rand::SeedableRng;
    let (mut calls, mut failed) = (0, 0);
    for seed in 0..10 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let reducers = 300;
        let mut host = Host::load(hostile_module(&mut rng, reducers).as_bytes(), config()).expect("loads");
        for i in 0..reducers {
            let (before, offset) = (items(&host), host.datastore().offset());
            match host.call(&format!("r{i}"), "[]", CommitMeta::default()) {
                Ok(tx) => assert_eq!(tx.offset, offset + 1),
                Err(e) => {
                    assert!(
                        matches!(e, ReducerError::Trapped { .. } | ReducerError::Failed { .. }),
                        "seed {seed} r{i}: {e}"
                    );
                    assert_eq!(items(&host), before, "seed {seed} r{i}: a failed call leaves nothing");
                    assert_eq!(host.datastore().offset(), offset);
                    failed += 1;
                }
            }
            calls += 1;
        }
        // Still serving, with every row readable back whole.
        for row in items(&host) {
            assert_eq!(row.values().len(), 2);
        }
    }
    eprintln!("{calls} random reducers, {failed} failed cleanly");
    assert!(failed > calls / 4 && failed < calls, "{failed} of {calls} failed: the inputs reach both outcomes");
}
