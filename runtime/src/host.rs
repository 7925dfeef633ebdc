//! The wasmtime host: compiles a module once, reads its description, creates its tables, and
//! runs its reducers, each as one datastore transaction: called by clients, run for lifecycle
//! events (init, client connected / disconnected), or run when a schedule table's row falls
//! due. A reducer that returns an error, traps, runs past its time budget (epoch interruption)
//! or past its memory limit is rolled back and its caller gets the reason; after a trap the
//! instance is replaced, so the database keeps serving.
//!
//! The ABI. The module exports `memory` and `sluice_alloc(len: i32) -> i32`; per table
//! `__sluice_table__<name>() -> i64` and per reducer `__sluice_describe_reducer__<name>() -> i64`
//! (pointer << 32 | length of the item's JSON description, see `module_def`); and per reducer
//! `__sluice_reducer__<name>(args: i32, len: i32) -> i64` (0 on success, else pointer << 32 |
//! length of an error message). One export per item lets attribute macros declare tables and
//! reducers with no central list. A reducer's argument buffer is a 40-byte header — the
//! caller's 32-byte identity and the timestamp (microseconds since the Unix epoch, u64 little
//! endian) — then its arguments as one row in the engine's compact row encoding. Host functions, module `sluice`, take table and index ids and encoded rows or
//! keys; those that produce data return its length n >= 0 and leave it for `read_result(ptr)`
//! to copy, or return -1 - n and leave an n-byte error message there instead. A table scan is an
//! iterator the host keeps for the rest of the call (`iter_open`, `iter_next` for pages of at
//! most `limit` rows, `iter_close`): a snapshot of the rows, skipping those deleted before they
//! are reached. `range` returns pages of an index range resumed after a given row, keeping no
//! state.

use crate::args;
use crate::datastore::Datastore;
use crate::error::DatastoreError;
use crate::module_def::{Lifecycle, ModuleDesc, REPEAT_MICROS, SCHEDULED_AT, SCHEDULE_INDEX};
use crate::record::{CommitMeta, TxRecord};
use crate::schema::TableId;
use crate::snapshot::TableState;
use sluice_data::{Row, Value};
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use wasmtime::{Caller, Config, Engine, Instance, Linker, Memory, Module, ResourceLimiter, Store};
use wasmtime::{Trap, TypedFunc};

/// How often the epoch advances: the granularity of time budgets.
const TICK: Duration = Duration::from_millis(5);

/// Limits every reducer call runs under.
#[derive(Clone, Debug)]
pub struct HostConfig {
    /// Wall-clock budget of one reducer call.
    pub time_budget: Duration,
    /// Largest linear memory a module may have, in bytes.
    pub memory_limit: usize,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig { time_budget: Duration::from_millis(1000), memory_limit: 256 << 20 }
    }
}

/// Why a module could not be loaded.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("module does not compile: {0}")]
    Compile(String),
    #[error("module does not instantiate: {0}")]
    Instantiate(String),
    #[error("module lacks export `{0}` (or it has the wrong type)")]
    MissingExport(String),
    #[error("module description: {0}")]
    Description(String),
    #[error("creating table: {0}")]
    Table(#[from] DatastoreError),
}

/// Why a reducer call changed nothing.
#[derive(Debug, Error, PartialEq)]
pub enum ReducerError {
    #[error("no reducer named `{0}`")]
    NoSuchReducer(String),
    #[error("{0}")]
    BadArguments(String),
    #[error("reducer `{reducer}` failed: {message}")]
    Failed { reducer: String, message: String },
    #[error("reducer `{reducer}` trapped: {message}")]
    Trapped { reducer: String, message: String },
    #[error("reducer `{reducer}` ran past its time budget of {budget:?}")]
    TimedOut { reducer: String, budget: Duration },
    #[error("reducer `{reducer}` exceeded the memory limit of {limit} bytes")]
    OutOfMemory { reducer: String, limit: usize },
    #[error("reducer `{reducer}` is the module's {role:?} reducer; only the database runs it")]
    Lifecycle { reducer: String, role: Lifecycle },
    #[error("reducer `{reducer}` is run by the schedule table `{table}`; only the database runs it")]
    Scheduled { reducer: String, table: String },
    /// The database takes no writes for now (its commit log cannot be written); not run.
    #[error("{0}")]
    ReadOnly(String),
}

/// One run of a scheduled reducer. It is always one transaction, which at least consumes its
/// schedule row (deleted, or moved to its next time); if the reducer failed, only that
/// remains and `error` says why.
#[derive(Debug)]
pub struct ScheduledRun {
    pub reducer: String,
    pub tx: TxRecord,
    pub error: Option<ReducerError>,
}

/// A schedule table as the host drives it.
#[derive(Clone, Debug)]
struct Schedule {
    table: TableId,
    index: usize,
    reducer: usize,
    at: usize,
    repeat: usize,
}

/// Host-side state every host function sees.
struct State {
    ds: Datastore,
    /// Output of the last host call, for `read_result`.
    result: Vec<u8>,
    limits: Limits,
    logs: Vec<LogLine>,
    /// Lines logged past [`MAX_PENDING_LOG_LINES`] since the logs were last taken.
    dropped_logs: u64,
    /// The instance's exported memory, once instantiated (host functions read and write it).
    memory: Option<Memory>,
    /// The call's open table scans, by id; all dropped when the call ends.
    iters: Vec<Option<ScanIter>>,
}

impl State {
    fn new(ds: Datastore, limits: Limits) -> State {
        State { ds, result: Vec::new(), limits, logs: Vec::new(), dropped_logs: 0, memory: None, iters: Vec::new() }
    }
}

/// Table scans a call may hold open at once (each holds a snapshot of its table's rows).
const MAX_ITERS: usize = 16;

/// An open table scan: the rows as the scan began, and how far the module has read.
struct ScanIter {
    table: TableId,
    rows: Vec<Row>,
    pos: usize,
}

/// The memory limit, remembering whether it refused a request during the current call.
#[derive(Default)]
struct Limits {
    memory: usize,
    refused: bool,
}

impl ResourceLimiter for Limits {
    fn memory_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        let ok = desired <= self.memory;
        self.refused |= !ok;
        Ok(ok)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// The log level a module's panic message is written at, just before it traps.
pub const PANIC_LEVEL: u32 = 0;

/// Lines a module's log holds until they are taken; more are counted, not kept.
pub const MAX_PENDING_LOG_LINES: usize = 1000;

/// Bytes of a logged line that are kept.
pub const MAX_LOG_LINE_BYTES: usize = 4096;

/// One line a module logged (level 0 a panic, 1 error … 5 trace).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub level: u32,
    pub reducer: String,
    pub message: String,
}

struct Exports {
    memory: Memory,
    alloc: TypedFunc<i32, i32>,
    /// Reducer entry points in the description's order.
    reducers: Vec<TypedFunc<(i32, i32), i64>>,
}

const TABLE_EXPORT: &str = "__sluice_table__";
const REDUCER_DESC_EXPORT: &str = "__sluice_describe_reducer__";
const REDUCER_EXPORT: &str = "__sluice_reducer__";
/// Bytes before a reducer's arguments: caller identity and timestamp.
pub const ARGS_HEADER: usize = 40;

/// A loaded module with its datastore.
pub struct Host {
    engine: Engine,
    module: Module,
    linker: Linker<State>,
    store: Store<State>,
    exports: Exports,
    desc: ModuleDesc,
    config: HostConfig,
    ticker: Arc<AtomicBool>,
    schedules: Vec<Schedule>,
}

impl Drop for Host {
    fn drop(&mut self) {
        self.ticker.store(true, Ordering::Relaxed);
    }
}

fn store(engine: &Engine, ds: Datastore, config: &HostConfig) -> Store<State> {
    let limits = Limits { memory: config.memory_limit, refused: false };
    let state = State::new(ds, limits);
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limits);
    store
}

fn instantiate(
    store: &mut Store<State>,
    linker: &Linker<State>,
    module: &Module,
    reducers: &[String],
) -> Result<(Instance, Exports), LoadError> {
    let instance: Instance =
        linker.instantiate(&mut *store, module).map_err(|e| LoadError::Instantiate(format!("{e:#}")))?;
    let memory = instance.get_memory(&mut *store, "memory").ok_or(LoadError::MissingExport("memory".into()))?;
    store.data_mut().memory = Some(memory);
    let alloc = instance
        .get_typed_func::<i32, i32>(&mut *store, "sluice_alloc")
        .map_err(|_| LoadError::MissingExport("sluice_alloc".into()))?;
    let reducers = reducers
        .iter()
        .map(|name| {
            let export = format!("{REDUCER_EXPORT}{name}");
            instance
                .get_typed_func::<(i32, i32), i64>(&mut *store, &export)
                .map_err(|_| LoadError::MissingExport(export))
        })
        .collect::<Result<_, _>>()?;
    Ok((instance, Exports { memory, alloc, reducers }))
}

impl Host {
    /// Compiles and instantiates a module (wasm bytes or text), reads its description and
    /// creates its tables in a fresh datastore. A new database then runs `init`.
    pub fn load(wasm: &[u8], config: HostConfig) -> Result<Host, LoadError> {
        let mut cfg = Config::new();
        cfg.epoch_interruption(true);
        let engine = Engine::new(&cfg).map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        check_kind(wasm)?;
        let module = Module::new(&engine, wasm).map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        let ticker = Arc::new(AtomicBool::new(false));
        let (e, stop) = (engine.clone(), Arc::clone(&ticker));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(TICK);
                e.increment_epoch();
            }
        });
        let mut linker = Linker::new(&engine);
        link(&mut linker).map_err(|e| LoadError::Instantiate(format!("{e:#}")))?;
        let mut scratch = store(&engine, Datastore::new(), &config);
        scratch.set_epoch_deadline(ticks(config.time_budget));
        let desc = describe(&mut scratch, &linker, &module)?;
        let names: Vec<String> = desc.reducers.iter().map(|r| r.name.clone()).collect();
        let mut store = store(&engine, Datastore::new(), &config);
        store.set_epoch_deadline(ticks(config.time_budget));
        let (_, exports) = instantiate(&mut store, &linker, &module, &names)?;
        let mut schedules = Vec::new();
        for t in &desc.tables {
            let def = t.to_def().map_err(LoadError::Description)?;
            let col = |name: &str| def.schema.columns.iter().position(|c| c.name == name).expect("checked");
            let schedule = t.scheduled.as_ref().map(|r| (r, col(SCHEDULED_AT), col(REPEAT_MICROS)));
            let ds = &mut store.data_mut().ds;
            let table = ds.create_table(def)?;
            if let Some((reducer, at, repeat)) = schedule {
                let reducer = names.iter().position(|n| n == reducer).expect("checked");
                let index = ds.index_id(table, SCHEDULE_INDEX)?;
                schedules.push(Schedule { table, index, reducer, at, repeat });
            }
        }
        Ok(Host { engine, module, linker, store, exports, desc, config, ticker, schedules })
    }

    /// Runs the module's `init` reducer, if it has one: once, when the database is created.
    pub fn init(&mut self, meta: CommitMeta) -> Option<Result<TxRecord, ReducerError>> {
        self.lifecycle(Lifecycle::Init, meta)
    }

    /// Runs the module's reducer for a lifecycle event as `meta.caller`, if it has one. A
    /// failing `client_connected` is the server's reason to refuse the connection.
    pub fn lifecycle(&mut self, role: Lifecycle, meta: CommitMeta) -> Option<Result<TxRecord, ReducerError>> {
        let id = self.desc.lifecycle(role)?;
        Some(self.transaction(id, &[], "[]".into(), meta))
    }

    pub fn description(&self) -> &ModuleDesc {
        &self.desc
    }

    pub fn datastore(&self) -> &Datastore {
        &self.store.data().ds
    }

    /// Loads a snapshot's tables into a freshly loaded host, as of `offset`.
    pub fn restore(&mut self, offset: u64, tables: Vec<TableState>) -> Result<(), DatastoreError> {
        self.store.data_mut().ds.restore(offset, tables)
    }

    /// Applies a committed transaction's record from the log, without running its reducer.
    pub fn replay(&mut self, record: &TxRecord) -> Result<(), DatastoreError> {
        self.store.data_mut().ds.replay(record)
    }

    /// Lines the module logged since the last call of this method (and, last, how many more
    /// were dropped past [`MAX_PENDING_LOG_LINES`]).
    pub fn take_logs(&mut self) -> Vec<LogLine> {
        let state = self.store.data_mut();
        let mut lines = std::mem::take(&mut state.logs);
        let dropped = std::mem::take(&mut state.dropped_logs);
        if dropped > 0 {
            lines.push(LogLine { level: 2, reducer: String::new(), message: format!("{dropped} more lines dropped") });
        }
        lines
    }

    /// Runs a reducer with JSON arguments as one transaction; on success returns its commit
    /// record (`meta.reducer` and `meta.args` are filled in here). Lifecycle reducers are the
    /// database's to run.
    pub fn call(&mut self, reducer: &str, args_json: &str, meta: CommitMeta) -> Result<TxRecord, ReducerError> {
        let id = self
            .desc
            .reducers
            .iter()
            .position(|r| r.name == reducer)
            .ok_or_else(|| ReducerError::NoSuchReducer(reducer.into()))?;
        if let Some(role) = self.desc.reducers[id].lifecycle {
            return Err(ReducerError::Lifecycle { reducer: reducer.into(), role });
        }
        // A scheduled reducer trusts its row: called by a client with a row of its choosing,
        // it would do as the schedule whatever the schedule's writer may do.
        if let Some(t) = self.desc.tables.iter().find(|t| t.scheduled.as_deref() == Some(reducer)) {
            return Err(ReducerError::Scheduled { reducer: reducer.into(), table: t.name.clone() });
        }
        let values =
            args::from_json(reducer, &self.desc.reducers[id].params, args_json).map_err(ReducerError::BadArguments)?;
        self.transaction(id, &values, args_json.to_string(), meta)
    }

    fn transaction(
        &mut self,
        id: usize,
        args: &[Value],
        args_json: String,
        mut meta: CommitMeta,
    ) -> Result<TxRecord, ReducerError> {
        meta.reducer = self.desc.reducers[id].name.clone();
        meta.args = args_json;
        self.store.data_mut().ds.begin().expect("no transaction is open between calls");
        match self.invoke(id, args, &meta) {
            Ok(()) => Ok(self.store.data_mut().ds.commit(meta).expect("the call's transaction is open")),
            Err(e) => {
                self.store.data_mut().ds.rollback().expect("the call's transaction is open");
                Err(e)
            }
        }
    }

    /// Runs `write` on the datastore as one transaction, outside any reducer (the owner's SQL
    /// DML): committed as `meta` if it succeeds, else rolled back.
    pub fn transact<E>(
        &mut self,
        meta: CommitMeta,
        write: impl FnOnce(&mut Datastore) -> Result<(), E>,
    ) -> Result<TxRecord, E> {
        let ds = &mut self.store.data_mut().ds;
        ds.begin().expect("no transaction is open between calls");
        match write(ds) {
            Ok(()) => Ok(ds.commit(meta).expect("the transaction is open")),
            Err(e) => {
                ds.rollback().expect("the transaction is open");
                Err(e)
            }
        }
    }

    /// When the earliest scheduled reducer is due (microseconds since the Unix epoch).
    pub fn next_scheduled(&self) -> Option<u64> {
        let ds = &self.store.data().ds;
        let all = (Bound::Unbounded, Bound::Unbounded);
        self.schedules
            .iter()
            .filter_map(|s| {
                let first = ds.range_page(s.table, s.index, all, None, 1).ok()?.pop()?;
                match first.values()[s.at] {
                    Value::UInt(at) => Some(at),
                    _ => None,
                }
            })
            .min()
    }

    /// Runs every scheduled reducer due at `now` (microseconds since the Unix epoch), in the
    /// order they fall due, each as one transaction with the schedule row as its argument.
    /// A one-off row (`repeat_micros` 0) is deleted; a repeating one moves on by its interval
    /// (to `now` plus the interval if it fell behind: missed runs are not made up). Rows that
    /// these runs schedule for `now` or earlier run at the next call.
    pub fn run_scheduled(&mut self, now: u64) -> Vec<ScheduledRun> {
        let mut due = Vec::new();
        for s in &self.schedules {
            let upto = [Value::UInt(now)];
            let rows = self.store.data().ds.range(s.table, s.index, Bound::Unbounded, Bound::Included(&upto));
            due.extend(rows.unwrap_or_default().into_iter().map(|row| (s.clone(), row)));
        }
        due.sort_by(|(a, x), (b, y)| x.values()[a.at].cmp(&y.values()[b.at]));
        let mut runs = Vec::new();
        for (s, row) in due {
            // An earlier run may have changed or cancelled this row.
            if !self.store.data().ds.contains(s.table, &row).unwrap_or(false) {
                continue;
            }
            runs.push(self.run_schedule_row(&s, row, now));
        }
        runs
    }

    fn run_schedule_row(&mut self, s: &Schedule, row: Row, now: u64) -> ScheduledRun {
        let values = row.values().to_vec();
        let reducer = self.desc.reducers[s.reducer].name.clone();
        let meta = CommitMeta {
            timestamp_micros: now,
            reducer: reducer.clone(),
            caller: String::new(),
            args: args::to_json(&values),
        };
        let ds = &mut self.store.data_mut().ds;
        ds.begin().expect("no transaction is open between calls");
        let moved_on = match (&values[s.at], &values[s.repeat]) {
            (Value::UInt(at), Value::UInt(repeat)) if *repeat > 0 => {
                let mut next = values.clone();
                let due = at.saturating_add(*repeat);
                next[s.at] = Value::UInt(if due > now { due } else { now.saturating_add(*repeat) });
                ds.update(s.table, next).map(drop)
            }
            _ => ds.delete(s.table, &row).map(drop),
        };
        // A row that cannot move on (its new time breaks one of the module's own constraints)
        // is dropped, so it cannot fall due again and again.
        let dropped = moved_on.err().map(|e| {
            ds.delete(s.table, &row).expect("the schedule row exists in the open transaction");
            ReducerError::Failed { reducer: reducer.clone(), message: format!("schedule row dropped: {e}") }
        });
        let error = self.invoke(s.reducer, &values, &meta).err().or(dropped);
        let tx = self.store.data_mut().ds.commit(meta).expect("the run's transaction is open");
        ScheduledRun { reducer, tx, error }
    }

    /// Runs reducer `id` inside the open transaction; if it fails, undoes what it did (the
    /// transaction stays open) and returns why.
    fn invoke(&mut self, id: usize, args: &[Value], meta: &CommitMeta) -> Result<(), ReducerError> {
        let reducer = self.desc.reducers[id].name.clone();
        let mut buffer = identity_bytes(&meta.caller).to_vec();
        buffer.extend_from_slice(&meta.timestamp_micros.to_le_bytes());
        buffer.extend_from_slice(Row::from_values(args).as_bytes());
        let savepoint = self.store.data().ds.savepoint().expect("a transaction is open");
        self.store.data_mut().limits.refused = false;
        self.store.set_epoch_deadline(ticks(self.config.time_budget));
        let logged = self.store.data().logs.len();
        let outcome = self.run(id, &buffer);
        self.store.data_mut().iters.clear();
        for line in &mut self.store.data_mut().logs[logged..] {
            line.reducer = reducer.clone();
        }
        let undo = |host: &mut Host| host.store.data_mut().ds.rollback_to(savepoint).expect("a transaction is open");
        match outcome {
            Ok(0) => Ok(()),
            Ok(packed) => {
                let message = read_packed(&self.exports.memory, &self.store, packed)
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_else(|| "(error message out of bounds)".into());
                undo(self);
                Err(ReducerError::Failed { reducer, message })
            }
            Err(e) => {
                undo(self);
                let panic = self.store.data().logs[logged..].iter().find(|l| l.level == PANIC_LEVEL);
                let err = self.classify(&reducer, e, panic.map(|l| l.message.clone()));
                // The instance may be mid-update of its own state: start a fresh one.
                self.reinstantiate();
                Err(err)
            }
        }
    }

    fn run(&mut self, id: usize, args: &[u8]) -> wasmtime::Result<i64> {
        let len = i32::try_from(args.len()).map_err(|_| wasmtime::format_err!("arguments too large"))?;
        let ptr = self.exports.alloc.call(&mut self.store, len)?;
        self.exports.memory.write(&mut self.store, ptr as u32 as usize, args)?;
        self.exports.reducers[id].call(&mut self.store, (ptr, len))
    }

    /// Why a call trapped: its time budget, the memory limit, the panic message the module
    /// logged, or else the trap itself.
    fn classify(&self, reducer: &str, e: wasmtime::Error, panic: Option<String>) -> ReducerError {
        let reducer = reducer.to_string();
        if let Some(Trap::Interrupt) = e.downcast_ref::<Trap>() {
            return ReducerError::TimedOut { reducer, budget: self.config.time_budget };
        }
        if self.store.data().limits.refused {
            return ReducerError::OutOfMemory { reducer, limit: self.config.memory_limit };
        }
        ReducerError::Trapped { reducer, message: panic.unwrap_or_else(|| format!("{e:#}")) }
    }

    fn reinstantiate(&mut self) {
        let state = std::mem::replace(self.store.data_mut(), State::new(Datastore::new(), Limits::default()));
        let mut store = store(&self.engine, state.ds, &self.config);
        store.data_mut().logs = state.logs;
        store.data_mut().dropped_logs = state.dropped_logs;
        store.set_epoch_deadline(ticks(self.config.time_budget));
        // The module instantiated before, with the same imports and limits, so it does again.
        let names: Vec<String> = self.desc.reducers.iter().map(|r| r.name.clone()).collect();
        let (_, exports) =
            instantiate(&mut store, &self.linker, &self.module, &names).expect("a module that loaded re-instantiates");
        self.exports = exports;
        self.store = store;
    }
}

fn ticks(budget: Duration) -> u64 {
    (budget.as_millis() / TICK.as_millis()).max(1) as u64
}

/// Reads the module's description from its per-table and per-reducer exports, in export
/// order, on a throwaway instance (in a store of its own, dropped afterwards).
fn describe(store: &mut Store<State>, linker: &Linker<State>, module: &Module) -> Result<ModuleDesc, LoadError> {
    let instance = linker.instantiate(&mut *store, module).map_err(|e| LoadError::Instantiate(format!("{e:#}")))?;
    let memory = instance.get_memory(&mut *store, "memory").ok_or(LoadError::MissingExport("memory".into()))?;
    store.data_mut().memory = Some(memory);
    let mut desc = ModuleDesc::default();
    let names: Vec<String> = module.exports().map(|e| e.name().to_string()).collect();
    for name in names {
        let is_table = name.starts_with(TABLE_EXPORT);
        if !is_table && !name.starts_with(REDUCER_DESC_EXPORT) {
            continue;
        }
        let f = instance
            .get_typed_func::<(), i64>(&mut *store, &name)
            .map_err(|_| LoadError::Description(format!("`{name}` must take nothing and return i64")))?;
        let packed = f.call(&mut *store, ()).map_err(|e| LoadError::Description(format!("`{name}` trapped: {e:#}")))?;
        let json = read_packed(&memory, store, packed)
            .ok_or_else(|| LoadError::Description(format!("`{name}` returned an out-of-bounds buffer")))?;
        let parsed = if is_table {
            serde_json::from_slice(json).map(|t| desc.tables.push(t))
        } else {
            serde_json::from_slice(json).map(|r| desc.reducers.push(r))
        };
        parsed.map_err(|e| LoadError::Description(format!("`{name}`: malformed description: {e}")))?;
    }
    desc.check().map_err(LoadError::Description)?;
    Ok(desc)
}

/// The identity a module sees as the sender of what the database runs itself (`init`,
/// scheduled runs): all ones, which no client identity is (the anonymous one is all zeros).
pub const SERVER_IDENTITY: [u8; 32] = [0xff; 32];

/// Refuses bytes that are neither a binary module nor the text format (which the tests write
/// modules in), saying what they start with, rather than what parsing them as text found.
fn check_kind(bytes: &[u8]) -> Result<(), LoadError> {
    let text = std::str::from_utf8(bytes).ok();
    if bytes.starts_with(b"\0asm") || text.is_some_and(|t| t.trim_start().starts_with('(')) {
        return Ok(());
    }
    let what = match bytes {
        [] => "it is empty".to_string(),
        [0x7f, b'E', b'L', b'F', ..] => "it is an ELF executable, not a module built for wasm32".to_string(),
        _ if text.is_some() => {
            format!("it is text, starting {:?}", String::from_utf8_lossy(&bytes[..bytes.len().min(16)]))
        }
        _ => {
            let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
            format!("it starts with the bytes {}", head.join(" "))
        }
    };
    Err(LoadError::Compile(format!(
        "not a WebAssembly module: {what} (a module starts with the bytes 00 61 73 6d, \"\\0asm\"; `sluice build` makes one)"
    )))
}

/// A caller identity (hex, as in `CommitMeta::caller`, empty for the database itself) as the
/// 32 bytes a module sees; shorter or non-hex identities are zero-padded.
fn identity_bytes(hex: &str) -> [u8; 32] {
    if hex.is_empty() {
        return SERVER_IDENTITY;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.as_bytes().chunks(2).take(32).enumerate() {
        out[i] = std::str::from_utf8(pair).ok().and_then(|p| u8::from_str_radix(p, 16).ok()).unwrap_or(0);
    }
    out
}

/// The memory slice a (pointer << 32 | length) value names, if in bounds.
fn read_packed<'a>(memory: &Memory, store: &'a Store<State>, packed: i64) -> Option<&'a [u8]> {
    let (ptr, len) = ((packed as u64 >> 32) as usize, (packed as u64 & 0xffff_ffff) as usize);
    memory.data(store).get(ptr..ptr.checked_add(len)?)
}

/// The guest's memory.
fn guest_memory(caller: &Caller<'_, State>, func: &str) -> wasmtime::Result<Memory> {
    caller.data().memory.ok_or_else(|| wasmtime::format_err!("{func}: module has no memory"))
}

/// The bytes at (ptr, len) in the guest's memory, or a trap naming the host function.
fn guest_bytes(caller: &mut Caller<'_, State>, func: &str, ptr: i32, len: i32) -> wasmtime::Result<Vec<u8>> {
    let memory = guest_memory(caller, func)?;
    let (ptr, len) = (ptr as u32 as usize, len as u32 as usize);
    memory
        .data(&caller)
        .get(ptr..ptr + len)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| wasmtime::format_err!("{func}: pointer {ptr}+{len} is out of bounds of the module's memory"))
}

/// Decodes an encoded row or key from the guest; a malformed one traps.
fn guest_values(caller: &mut Caller<'_, State>, func: &str, ptr: i32, len: i32) -> wasmtime::Result<Vec<Value>> {
    let bytes = guest_bytes(caller, func, ptr, len)?;
    Row::decode_untrusted(&bytes)
        .map(|v| v.to_vec())
        .ok_or_else(|| wasmtime::format_err!("{func}: malformed row encoding"))
}

/// The row an iterator resumes after, or `None` (from the start) for a negative length.
fn guest_row(caller: &mut Caller<'_, State>, func: &str, ptr: i32, len: i32) -> wasmtime::Result<Option<Row>> {
    if len < 0 {
        return Ok(None);
    }
    Ok(Some(Row::from_values(&guest_values(caller, func, ptr, len)?)))
}

fn guest_str(caller: &mut Caller<'_, State>, func: &str, ptr: i32, len: i32) -> wasmtime::Result<String> {
    let bytes = guest_bytes(caller, func, ptr, len)?;
    String::from_utf8(bytes).map_err(|_| wasmtime::format_err!("{func}: string is not UTF-8"))
}

/// Leaves a host call's outcome for `read_result`: its length n, or -1 - n for an n-byte
/// error message.
fn outcome(caller: &mut Caller<'_, State>, r: Result<Vec<u8>, DatastoreError>) -> i64 {
    let s = caller.data_mut();
    match r {
        Ok(bytes) => {
            s.result = bytes;
            s.result.len() as i64
        }
        Err(e) => {
            s.result = e.to_string().into_bytes();
            -1 - s.result.len() as i64
        }
    }
}

/// Rows as (u32 little-endian length, encoded row) pairs.
fn rows_bytes(rows: impl IntoIterator<Item = Row>) -> Vec<u8> {
    let mut out = Vec::new();
    for r in rows {
        out.extend_from_slice(&(r.as_bytes().len() as u32).to_le_bytes());
        out.extend_from_slice(r.as_bytes());
    }
    out
}

fn bound(kind: i32, key: &[Value]) -> Bound<&[Value]> {
    match kind {
        0 => Bound::Included(key),
        1 => Bound::Excluded(key),
        _ => Bound::Unbounded,
    }
}

/// Registers the host functions.
fn link(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    linker.func_wrap("sluice", "table_id", |mut c: Caller<'_, State>, ptr: i32, len: i32| {
        let name = guest_str(&mut c, "table_id", ptr, len)?;
        Ok(c.data().ds.table_id(&name).map_or(-1, |t| t as i32))
    })?;
    linker.func_wrap("sluice", "index_id", |mut c: Caller<'_, State>, table: i32, ptr: i32, len: i32| {
        let name = guest_str(&mut c, "index_id", ptr, len)?;
        Ok(c.data().ds.index_id(table as u32 as usize, &name).map_or(-1, |i| i as i32))
    })?;
    linker.func_wrap("sluice", "insert", |mut c: Caller<'_, State>, table: i32, ptr: i32, len: i32| {
        let values = guest_values(&mut c, "insert", ptr, len)?;
        let r = c.data_mut().ds.insert(table as u32 as usize, values).map(|row| row.as_bytes().to_vec());
        Ok(outcome(&mut c, r))
    })?;
    linker.func_wrap(
        "sluice",
        "update_by",
        |mut c: Caller<'_, State>, table: i32, index: i32, ptr: i32, len: i32| {
            let values = guest_values(&mut c, "update_by", ptr, len)?;
            let r = c.data_mut().ds.update_by(table as u32 as usize, index as u32 as usize, values);
            Ok(outcome(&mut c, r.map(|row| row.as_bytes().to_vec())))
        },
    )?;
    linker.func_wrap(
        "sluice",
        "delete_by",
        |mut c: Caller<'_, State>, table: i32, index: i32, ptr: i32, len: i32| {
            let key = guest_values(&mut c, "delete_by", ptr, len)?;
            let r = c.data_mut().ds.delete_by(table as u32 as usize, index as u32 as usize, &key);
            Ok(outcome(&mut c, r.map(|row| row.map_or_else(Vec::new, |r| rows_bytes([r])))))
        },
    )?;
    linker.func_wrap("sluice", "find", |mut c: Caller<'_, State>, table: i32, index: i32, ptr: i32, len: i32| {
        let key = guest_values(&mut c, "find", ptr, len)?;
        let r = c.data().ds.find(table as u32 as usize, index as u32 as usize, &key);
        Ok(outcome(&mut c, r.map(|row| row.map_or_else(Vec::new, |r| rows_bytes([r])))))
    })?;
    linker.func_wrap(
        "sluice",
        "range",
        |mut c: Caller<'_, State>,
         table: i32,
         index: i32,
         lo: i32,
         lo_len: i32,
         lo_kind: i32,
         hi: i32,
         hi_len: i32,
         hi_kind: i32,
         after: i32,
         after_len: i32,
         limit: i32| {
            let lo_key = guest_values(&mut c, "range", lo, lo_len)?;
            let hi_key = guest_values(&mut c, "range", hi, hi_len)?;
            let after = guest_row(&mut c, "range", after, after_len)?;
            let bounds = (bound(lo_kind, &lo_key), bound(hi_kind, &hi_key));
            let r = c.data().ds.range_page(
                table as u32 as usize,
                index as u32 as usize,
                bounds,
                after.as_ref(),
                limit.max(1) as usize,
            );
            Ok(outcome(&mut c, r.map(rows_bytes)))
        },
    )?;
    linker.func_wrap("sluice", "iter_open", |mut c: Caller<'_, State>, table: i32| {
        let s = c.data_mut();
        let slot = s.iters.iter().position(Option::is_none).unwrap_or(s.iters.len());
        if slot >= MAX_ITERS {
            return Err(wasmtime::format_err!("iter_open: more than {MAX_ITERS} table scans open at once"));
        }
        let table = table as u32 as usize;
        let r = s.ds.scan(table).map(|rows| rows.cloned().collect::<Vec<_>>()).map(|rows| {
            if slot == s.iters.len() {
                s.iters.push(None);
            }
            s.iters[slot] = Some(ScanIter { table, rows, pos: 0 });
            (slot as u32).to_le_bytes().to_vec()
        });
        Ok(outcome(&mut c, r))
    })?;
    linker.func_wrap("sluice", "iter_next", |mut c: Caller<'_, State>, id: i32, limit: i32| {
        let s = c.data_mut();
        let Some(Some(it)) = s.iters.get_mut(id as u32 as usize) else {
            return Err(wasmtime::format_err!("iter_next: no open scan {id}"));
        };
        let mut page = Vec::new();
        while page.len() < limit.max(1) as usize && it.pos < it.rows.len() {
            let row = &it.rows[it.pos];
            it.pos += 1;
            if s.ds.contains(it.table, row).unwrap_or(false) {
                page.push(row.clone());
            }
        }
        Ok(outcome(&mut c, Ok(rows_bytes(page))))
    })?;
    linker.func_wrap("sluice", "iter_close", |mut c: Caller<'_, State>, id: i32| {
        if let Some(slot) = c.data_mut().iters.get_mut(id as u32 as usize) {
            *slot = None;
        }
        Ok(())
    })?;
    linker.func_wrap("sluice", "count", |c: Caller<'_, State>, table: i32| {
        Ok(c.data().ds.count(table as u32 as usize).map_or(-1, |n| n as i64))
    })?;
    linker.func_wrap("sluice", "read_result", |mut c: Caller<'_, State>, ptr: i32| {
        let memory = guest_memory(&c, "read_result")?;
        let bytes = std::mem::take(&mut c.data_mut().result);
        memory
            .write(&mut c, ptr as u32 as usize, &bytes)
            .map_err(|_| wasmtime::format_err!("read_result: pointer {ptr} is out of bounds of the module's memory"))
    })?;
    linker.func_wrap("sluice", "log", |mut c: Caller<'_, State>, level: i32, ptr: i32, len: i32| {
        // A module logging in a loop keeps the first lines (and one panic message past
        // them): the lines waiting to be taken are bounded in number and in length.
        let (level, pending) = (level as u32, c.data().logs.len());
        if pending > MAX_PENDING_LOG_LINES || (pending == MAX_PENDING_LOG_LINES && level != PANIC_LEVEL) {
            c.data_mut().dropped_logs += 1;
            return Ok(());
        }
        let shown = len.clamp(0, MAX_LOG_LINE_BYTES as i32);
        let bytes = guest_bytes(&mut c, "log", ptr, shown)?;
        let mut message = String::from_utf8_lossy(&bytes).into_owned();
        if shown < len {
            message.push_str(" […cut]");
        }
        c.data_mut().logs.push(LogLine { level, reducer: String::new(), message });
        Ok(())
    })?;
    Ok(())
}
