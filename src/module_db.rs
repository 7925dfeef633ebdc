//! A database running a module: the wasm host (datastore and reducers) wired to the IVM engine,
//! so that every committed transaction — a reducer call, a lifecycle event, a scheduled run —
//! is one offset of every subscription's deltas.

use anyhow::Result;
use sluice_ivm::{Engine, EngineConfig, QueryDelta, Subscription};
use sluice_planner::{Catalog, Planner};
use sluice_runtime::{CommitMeta, Host, Lifecycle, ReducerError, ScheduledRun, TxRecord};

use crate::db::transaction;

pub struct ModuleDb {
    host: Host,
    engine: Engine,
    catalog: Catalog,
}

/// A committed transaction and the deltas it caused.
pub type Committed = (TxRecord, Vec<QueryDelta>);

impl ModuleDb {
    /// Wires a freshly loaded module (no transaction run yet) to an engine with `workers`.
    pub fn new(host: Host, workers: usize) -> Result<ModuleDb> {
        let mut engine = Engine::new(EngineConfig { workers });
        let mut catalog = Catalog::new();
        for def in host.datastore().defs() {
            engine.create_table(&def.schema)?;
            catalog.add_table(def.schema.clone())?;
        }
        Ok(ModuleDb { host, engine, catalog })
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Subscribes to a query; its initial rows are as of the current offset.
    pub fn subscribe(&mut self, sql: &str) -> Result<Subscription> {
        let plan = Planner::new(&self.catalog).plan_sql(sql)?;
        Ok(self.engine.subscribe(&plan)?)
    }

    fn apply(&mut self, tx: TxRecord) -> Committed {
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
}
