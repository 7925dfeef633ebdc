//! Shared by the tests that run real modules: building and loading a module crate, an engine
//! holding the module's tables, client caches fed by deltas, and a SQLite mirror of the
//! datastore, fed the same commit records, that answers the subscriptions' queries as the
//! oracle.
#![allow(dead_code)] // Each test binary uses its own part.

use rusqlite::types::{Value as Sql, ValueRef};
use rusqlite::Connection;
use sluice::build::{build, detect, INSTALL_HINT};
use sluice::db::{engine_for, transaction, StoreRows};
use sluice_ivm::{Engine, QueryDelta, QueryId};
use sluice_planner::{Planner, Row, Value};
use sluice_runtime::{Host, HostConfig, TableDef, TxRecord};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Builds the module crate at `path` (relative to the repository); `None` when the machine
/// has no wasm toolchain and SLUICE_SKIP_WASM=1 allows skipping.
pub fn build_module(path: &str) -> Option<PathBuf> {
    if detect().is_none() {
        assert!(std::env::var("SLUICE_SKIP_WASM").is_ok_and(|v| v == "1"), "{INSTALL_HINT}");
        return None;
    }
    Some(build(&Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).expect("the module builds"))
}

/// Builds and loads a module crate with the default limits.
pub fn load(path: &str) -> Option<Host> {
    let wasm = build_module(path)?;
    Some(Host::load(&std::fs::read(&wasm).unwrap(), HostConfig::default()).expect("the module loads"))
}

/// Applies a query's delta to a client cache of (row, multiplicity).
pub fn absorb(cache: &mut BTreeMap<Row, isize>, delta: QueryDelta) {
    for row in delta.deletes {
        *cache.entry(row).or_default() -= 1;
    }
    for row in delta.inserts {
        *cache.entry(row).or_default() += 1;
    }
    cache.retain(|_, n| *n != 0);
}

/// A value as both sides can state it: SQLite has no booleans or unsigned integers.
#[derive(Clone, Debug, PartialEq, PartialOrd)]
pub enum Norm {
    Null,
    Int(i128),
    Real(f64),
    Text(String),
    Bytes(Vec<u8>),
}

fn norm(v: &Value) -> Norm {
    match v {
        Value::Null => Norm::Null,
        Value::Bool(b) => Norm::Int(*b as i128),
        Value::Int(i) => Norm::Int(*i as i128),
        Value::UInt(u) => Norm::Int(*u as i128),
        Value::Real(r) => Norm::Real(*r),
        Value::Text(s) => Norm::Text(s.to_string()),
        Value::Bytes(b) => Norm::Bytes(b.to_vec()),
    }
}

fn sql_value(v: &Value) -> Sql {
    match v {
        Value::Null => Sql::Null,
        Value::Bool(b) => Sql::Integer(*b as i64),
        Value::Int(i) => Sql::Integer(*i),
        Value::UInt(u) => Sql::Integer(i64::try_from(*u).expect("test values fit SQLite")),
        Value::Real(r) => Sql::Real(*r),
        Value::Text(s) => Sql::Text(s.to_string()),
        Value::Bytes(b) => Sql::Blob(b.to_vec()),
    }
}

/// Rows in a comparable, sorted form (a bag: duplicates kept).
pub fn norm_rows<'a>(rows: impl IntoIterator<Item = &'a Row>) -> Vec<Vec<Norm>> {
    let mut out: Vec<Vec<Norm>> = rows.into_iter().map(|r| r.values().iter().map(norm).collect()).collect();
    out.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    out
}

/// A client cache's rows, each repeated by its multiplicity.
pub fn cache_rows(cache: &BTreeMap<Row, isize>) -> Vec<Vec<Norm>> {
    assert!(cache.values().all(|n| *n > 0), "a cache holds no negative multiplicities");
    norm_rows(cache.iter().flat_map(|(r, n)| std::iter::repeat_n(r, *n as usize)))
}

/// The datastore's tables in SQLite (no constraints, no type affinity), fed commit records.
pub struct Mirror {
    pub conn: Connection,
    columns: BTreeMap<String, Vec<String>>,
}

impl Mirror {
    pub fn new<'a>(defs: impl IntoIterator<Item = &'a TableDef>) -> Mirror {
        let conn = Connection::open_in_memory().unwrap();
        let mut columns = BTreeMap::new();
        for def in defs {
            let cols: Vec<String> = def.schema.columns.iter().map(|c| c.name.clone()).collect();
            conn.execute_batch(&format!("CREATE TABLE \"{}\" ({})", def.name(), cols.join(", "))).unwrap();
            columns.insert(def.name().to_string(), cols);
        }
        Mirror { conn, columns }
    }

    /// Applies one committed transaction: its deletes, then its inserts.
    pub fn apply(&self, tx: &TxRecord) {
        for change in &tx.changes {
            let cols = &self.columns[&change.table];
            let matches: Vec<String> = cols.iter().enumerate().map(|(i, c)| format!("{c} IS ?{}", i + 1)).collect();
            let delete = format!(
                "DELETE FROM \"{0}\" WHERE rowid = (SELECT rowid FROM \"{0}\" WHERE {1} LIMIT 1)",
                change.table,
                matches.join(" AND ")
            );
            for row in &change.deletes {
                let params: Vec<Sql> = row.values().iter().map(sql_value).collect();
                let n = self.conn.execute(&delete, rusqlite::params_from_iter(params)).unwrap();
                assert_eq!(n, 1, "offset {}: deleted row {row:?} of {} exists", tx.offset, change.table);
            }
            let slots: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
            let insert = format!("INSERT INTO \"{}\" VALUES ({})", change.table, slots.join(", "));
            for row in &change.inserts {
                let params: Vec<Sql> = row.values().iter().map(sql_value).collect();
                self.conn.execute(&insert, rusqlite::params_from_iter(params)).unwrap();
            }
        }
    }

    /// Replaces a table's rows with rows a network client received.
    pub fn reload(&self, table: &str, rows: &[sluice_client::Row]) {
        use sluice_client::Value as W;
        self.conn.execute(&format!("DELETE FROM \"{table}\""), []).unwrap();
        let slots: Vec<String> = (1..=self.columns[table].len()).map(|i| format!("?{i}")).collect();
        let insert = format!("INSERT INTO \"{table}\" VALUES ({})", slots.join(", "));
        for row in rows {
            let params = row.iter().map(|v| match v {
                W::Null => Sql::Null,
                W::Bool(b) => Sql::Integer(*b as i64),
                W::Int(i) => Sql::Integer(*i),
                W::UInt(u) => Sql::Integer(i64::try_from(*u).expect("test values fit SQLite")),
                W::Real(r) => Sql::Real(*r),
                W::Text(s) => Sql::Text(s.clone()),
                W::Bytes(b) => Sql::Blob(b.clone()),
            });
            self.conn.execute(&insert, rusqlite::params_from_iter(params)).unwrap();
        }
    }

    /// SQLite's answer, sorted.
    pub fn query(&self, sql: &str) -> Vec<Vec<Norm>> {
        let mut stmt = self.conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let n = stmt.column_count();
        let mut out: Vec<Vec<Norm>> = stmt
            .query_map([], |r| {
                (0..n)
                    .map(|i| {
                        Ok(match r.get_ref(i)? {
                            ValueRef::Null => Norm::Null,
                            ValueRef::Integer(i) => Norm::Int(i as i128),
                            ValueRef::Real(f) => Norm::Real(f),
                            ValueRef::Text(t) => Norm::Text(String::from_utf8_lossy(t).into_owned()),
                            ValueRef::Blob(b) => Norm::Bytes(b.to_vec()),
                        })
                    })
                    .collect()
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        out.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
        out
    }

    /// One integer from a query.
    pub fn int(&self, sql: &str) -> i64 {
        self.conn.query_row(sql, [], |r| r.get(0)).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

/// Subscriptions over a module's tables, each held in a client cache fed by the engine's
/// deltas, checked against the SQLite mirror at every offset.
pub struct Live {
    pub engine: Engine,
    pub mirror: Mirror,
    subs: Vec<(QueryId, String, BTreeMap<Row, isize>)>,
}

impl Live {
    /// Subscribes to `queries` over the host's tables as they are now (empty).
    pub fn new(host: &Host, queries: &[&str]) -> Live {
        let (mut engine, catalog) = engine_for(host.datastore(), 1).unwrap();
        let mirror = Mirror::new(host.datastore().defs());
        let subs = queries
            .iter()
            .map(|q| {
                let plan = Planner::new(&catalog).plan_sql(q).unwrap_or_else(|e| panic!("{q}: {e}"));
                let sub = engine.subscribe(&plan, &StoreRows(host.datastore())).unwrap();
                (sub.query, q.to_string(), sub.initial.into_iter().map(|r| (r, 1)).collect())
            })
            .collect();
        let live = Live { engine, mirror, subs };
        live.check(0);
        live
    }

    /// Feeds one committed transaction to the engine and the mirror, then checks every
    /// subscription's cache against SQLite.
    pub fn commit(&mut self, tx: &TxRecord) {
        self.mirror.apply(tx);
        for delta in self.engine.apply(vec![transaction(tx)]).unwrap() {
            assert_eq!(delta.offset, tx.offset);
            let sub = self.subs.iter_mut().find(|(q, ..)| *q == delta.query).expect("a subscribed query");
            absorb(&mut sub.2, delta);
        }
        self.check(tx.offset);
    }

    fn check(&self, offset: u64) {
        for (_, sql, cache) in &self.subs {
            assert_eq!(cache_rows(cache), self.mirror.query(sql), "offset {offset}: {sql}");
        }
    }

    /// A subscription's current rows.
    pub fn rows(&self, i: usize) -> Vec<Vec<Norm>> {
        cache_rows(&self.subs[i].2)
    }
}

/// Starts `sluice start` on a free port of 127.0.0.1 over the data directory `data`; returns
/// the process and its base URL (its further output is drained on a thread).
pub fn start_server(data: &Path) -> (std::process::Child, String) {
    start_server_with(data, &["--listen", "127.0.0.1:0"])
}

/// `sluice start` over `data` with further arguments.
pub fn start_server_with(data: &Path, args: &[&str]) -> (std::process::Child, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"));
    command.args(["start", "--data-dir", data.to_str().unwrap()]).args(args).stderr(std::process::Stdio::null());
    spawn_server(command)
}

/// Spawns a command that runs `sluice start` and returns it with the base URL it prints
/// first (its further output is drained on a thread).
pub fn spawn_server(mut command: std::process::Command) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = command.stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("the server prints its address").unwrap();
    let url = first.strip_prefix("listening on ").expect("listening on …").to_string();
    std::thread::spawn(move || lines.for_each(drop));
    (child, url)
}

/// A network client's value in the comparable form.
pub fn norm_wire(v: &sluice_client::Value) -> Norm {
    use sluice_client::Value as W;
    match v {
        W::Null => Norm::Null,
        W::Bool(b) => Norm::Int(*b as i128),
        W::Int(i) => Norm::Int(*i as i128),
        W::UInt(u) => Norm::Int(*u as i128),
        W::Real(r) => Norm::Real(*r),
        W::Text(s) => Norm::Text(s.clone()),
        W::Bytes(b) => Norm::Bytes(b.clone()),
    }
}

/// A network client's rows, sorted, in the comparable form.
pub fn norm_wire_rows<'a>(rows: impl IntoIterator<Item = &'a sluice_client::Row>) -> Vec<Vec<Norm>> {
    let mut out: Vec<Vec<Norm>> = rows.into_iter().map(|r| r.iter().map(norm_wire).collect()).collect();
    out.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    out
}
