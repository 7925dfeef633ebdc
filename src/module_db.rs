//! A database running a module: the wasm host (datastore and reducers) wired to the IVM engine,
//! so that every committed transaction — a reducer call, a lifecycle event, a scheduled run —
//! is one offset of every subscription's deltas; and, for a durable database, appended to its
//! commit log (group commit) with snapshots on schedule.

use anyhow::{Context, Result};
use sluice_ivm::{Engine, QueryDelta, Subscription};
use sluice_planner::{Catalog, Planner, QueryPlan, Row};
use sluice_runtime::{
    CommitMeta, Host, HostConfig, Lifecycle, RecoveryReport, ReducerError, ScheduledRun, Storage, StorageConfig,
    TxRecord,
};
use std::path::Path;

use crate::db::{engine_for, transaction};

pub struct ModuleDb {
    host: Host,
    engine: Engine,
    catalog: Catalog,
    /// The commit log and snapshots of a durable database.
    storage: Option<Storage>,
}

/// A committed transaction and the deltas it caused.
pub type Committed = (TxRecord, Vec<QueryDelta>);

impl ModuleDb {
    /// Wires a loaded module to an engine with `workers`, in memory only.
    pub fn new(host: Host, workers: usize) -> Result<ModuleDb> {
        ModuleDb::wire(host, workers, None)
    }

    /// Creates a durable database for a module in `dir` and runs its `init` reducer (logged
    /// like every later transaction).
    pub fn create(
        dir: &Path,
        wasm: &[u8],
        workers: usize,
        config: StorageConfig,
        meta: CommitMeta,
    ) -> Result<ModuleDb> {
        let (host, storage) = Storage::create(dir, wasm, HostConfig::default(), config)?;
        let mut db = ModuleDb::wire(host, workers, Some(storage))?;
        if let Some(outcome) = db.lifecycle(Lifecycle::Init, meta) {
            let (tx, _) = outcome.context("the module's init reducer failed")?;
            db.wait_durable(tx.offset)?;
        }
        Ok(db)
    }

    /// Recovers the durable database in `dir`: its newest valid snapshot and the log after it;
    /// the engine starts from the recovered rows.
    pub fn open(dir: &Path, workers: usize, config: StorageConfig) -> Result<(ModuleDb, RecoveryReport)> {
        let (host, storage, report) = Storage::open(dir, HostConfig::default(), config)?;
        Ok((ModuleDb::wire(host, workers, Some(storage))?, report))
    }

    /// Wires a host to an engine holding its tables and rows (a recovered state enters the
    /// engine as one transaction at its offset).
    fn wire(host: Host, workers: usize, storage: Option<Storage>) -> Result<ModuleDb> {
        let (engine, catalog) = engine_for(host.datastore(), workers)?;
        Ok(ModuleDb { host, engine, catalog, storage })
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Subscribes to a query; its initial rows are as of the current offset.
    pub fn subscribe(&mut self, sql: &str) -> Result<Subscription> {
        let plan = Planner::new(&self.catalog).plan_sql(sql)?;
        Ok(self.engine.subscribe(&plan)?)
    }

    /// Evaluates a one-off query on the current state: its plan (column names and types) and
    /// rows, in its ORDER BY order.
    pub fn query(&mut self, sql: &str) -> Result<(QueryPlan, Vec<Row>)> {
        let plan = Planner::new(&self.catalog).plan_sql(sql)?;
        let rows = self.engine.evaluate(&plan)?;
        Ok((plan, rows))
    }

    fn apply(&mut self, tx: TxRecord) -> Committed {
        if let Some(storage) = &mut self.storage {
            // Appending cannot fail here; a snapshot can, and the log still holds everything.
            if let Err(e) = storage.append(&tx, &self.host) {
                eprintln!("warning: snapshot at offset {} failed: {e}", tx.offset);
            }
        }
        let deltas = self.engine.apply(vec![transaction(tx.clone())]).expect("commit records come in offset order");
        (tx, deltas)
    }

    /// Calls a reducer with JSON arguments.
    pub fn call(&mut self, reducer: &str, args: &str, meta: CommitMeta) -> Result<Committed, ReducerError> {
        let tx = self.host.call(reducer, args, meta)?;
        Ok(self.apply(tx))
    }

    /// Runs the module's reducer for a lifecycle event, if it has one.
    pub fn lifecycle(&mut self, role: Lifecycle, meta: CommitMeta) -> Option<Result<Committed, ReducerError>> {
        let outcome = self.host.lifecycle(role, meta)?;
        Some(outcome.map(|tx| self.apply(tx)))
    }

    /// Runs the scheduled reducers due at `now` (microseconds since the Unix epoch).
    pub fn run_scheduled(&mut self, now: u64) -> Vec<(ScheduledRun, Vec<QueryDelta>)> {
        let runs = self.host.run_scheduled(now);
        runs.into_iter()
            .map(|ScheduledRun { reducer, tx, error }| {
                let (tx, deltas) = self.apply(tx);
                (ScheduledRun { reducer, tx, error }, deltas)
            })
            .collect()
    }

    /// Transactions up to this offset are durable (all of them, in memory only).
    pub fn durable(&self) -> u64 {
        self.storage.as_ref().map_or(self.host.datastore().offset(), Storage::durable)
    }

    /// Waits until the transaction at `offset` is durable: before then, neither its result
    /// nor its deltas may leave the database.
    pub fn wait_durable(&self, offset: u64) -> Result<()> {
        if let Some(s) = &self.storage {
            s.wait(offset)?;
        }
        Ok(())
    }

    /// Clean shutdown: everything durable and a snapshot taken.
    pub fn close(self, timestamp_micros: u64) -> Result<()> {
        if let Some(s) = self.storage {
            s.close(&self.host, timestamp_micros)?;
        }
        Ok(())
    }
}
