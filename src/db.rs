//! A SQL database: DDL, DML as serial transactions on the runtime's datastore (each commit one
//! commit-stream offset, fed to the IVM engine), one-off queries and subscriptions. The slt
//! runner and the differential tests use it.

use crate::dml;
use anyhow::{bail, Result};
use sluice_ivm::{Engine, EngineConfig, Offset, QueryDelta, Subscription, SubscriptionId, TableSource, Transaction};
use sluice_planner::{parse, Catalog, Dml, Planner, QueryPlan, Row};
use sluice_runtime::{CommitMeta, Datastore, TableDef, TxRecord};

/// What a statement did.
#[derive(Debug)]
pub enum Outcome {
    /// A query's visible columns and rows (in ORDER BY order where it has one).
    Rows { plan: QueryPlan, rows: Vec<Row> },
    /// A DML statement's transaction: rows changed and the deltas it caused.
    Changed { rows: usize, deltas: Vec<QueryDelta> },
    /// DDL or a no-op statement.
    Done,
}

/// An in-memory database.
pub struct Database {
    catalog: Catalog,
    store: Datastore,
    engine: Engine,
}

impl Database {
    pub fn new(workers: usize) -> Database {
        Database { catalog: Catalog::new(), store: Datastore::new(), engine: Engine::new(EngineConfig { workers }) }
    }

    /// A database over an existing datastore's tables and rows (a past state read back from
    /// disk, say), as of its offset.
    pub fn load(store: Datastore, workers: usize) -> Result<Database> {
        let (engine, catalog) = engine_for(&store, workers)?;
        Ok(Database { catalog, store, engine })
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn offset(&self) -> u64 {
        self.engine.offset()
    }

    /// Plans a query against the current catalog.
    pub fn plan(&self, sql: &str) -> Result<QueryPlan> {
        Ok(Planner::new(&self.catalog).plan_sql(sql)?)
    }

    /// Runs each statement of `sql` in order; returns the last outcome.
    pub fn execute(&mut self, sql: &str) -> Result<Outcome> {
        let stmts = parse(sql)?;
        if stmts.is_empty() {
            bail!("empty statement");
        }
        let mut last = Outcome::Done;
        for stmt in &stmts {
            let dml = Planner::new(&self.catalog).plan_statement(stmt)?;
            last = self.run(dml)?;
        }
        Ok(last)
    }

    fn run(&mut self, dml: Dml) -> Result<Outcome> {
        match dml {
            Dml::Query(plan) => {
                let rows = self.evaluate(&plan)?;
                Ok(Outcome::Rows { plan, rows })
            }
            Dml::CreateTable(schema) => {
                self.catalog.add_table(schema.clone())?;
                self.engine.create_table(&schema)?;
                self.store.create_table(TableDef::new(schema))?;
                Ok(Outcome::Done)
            }
            Dml::DropTable { name, if_exists } => {
                let Some(schema) = self.catalog.table(&name).cloned() else {
                    if if_exists {
                        return Ok(Outcome::Done);
                    }
                    bail!("unknown table {name}");
                };
                self.engine.drop_table(&schema.name)?;
                self.catalog.remove_table(&schema.name);
                self.store.drop_table(&schema.name)?;
                Ok(Outcome::Done)
            }
            Dml::CreateIndex { .. } => Ok(Outcome::Done),
            dml => {
                let engine = &mut self.engine;
                let store = &self.store;
                let changes = dml::changes(store, dml, |q| Ok(engine.evaluate(q, &StoreRows(store))?))?;
                self.commit(changes)
            }
        }
    }

    /// Applies a statement's changes as one datastore transaction; on any violation it rolls
    /// back and nothing changes. A statement that changes no row takes no offset.
    fn commit(&mut self, changes: dml::Changes) -> Result<Outcome> {
        let rows = changes.rows();
        if rows == 0 {
            return Ok(Outcome::Changed { rows, deltas: Vec::new() });
        }
        self.store.begin()?;
        if let Err(e) = dml::apply(&mut self.store, changes) {
            self.store.rollback()?;
            return Err(e);
        }
        let record = self.store.commit(CommitMeta { reducer: "sql".into(), ..CommitMeta::default() })?;
        let deltas = self.engine.apply(vec![transaction(&record)])?;
        Ok(Outcome::Changed { rows, deltas })
    }

    /// Evaluates a query from scratch on the current state (never sharing a live dataflow).
    pub fn evaluate(&mut self, plan: &QueryPlan) -> Result<Vec<Row>> {
        Ok(self.engine.evaluate(plan, &StoreRows(&self.store))?)
    }

    /// Subscribes to a planned query.
    pub fn subscribe(&mut self, plan: &QueryPlan) -> Result<Subscription> {
        Ok(self.engine.subscribe(plan, &StoreRows(&self.store))?)
    }

    pub fn unsubscribe(&mut self, id: SubscriptionId) -> Result<()> {
        Ok(self.engine.unsubscribe(id)?)
    }

    /// The live queries ended since the last call, and why (see `Engine::take_failed`).
    pub fn take_failed(&mut self) -> Vec<(sluice_ivm::QueryId, String)> {
        self.engine.take_failed()
    }

    /// The current rows of a table (multiset as a list).
    pub fn table_rows(&self, table: &str) -> Vec<Row> {
        let mut rows = Vec::new();
        StoreRows(&self.store).for_each_row(table, &mut |r| rows.push(r.clone()));
        rows
    }
}

/// An engine (and its catalog) for a datastore's tables, at the datastore's offset: its
/// subscriptions read the current rows from the datastore (`StoreRows`).
pub fn engine_for(store: &Datastore, workers: usize) -> Result<(Engine, Catalog)> {
    let mut engine = Engine::at(EngineConfig { workers }, store.offset());
    let mut catalog = Catalog::new();
    for def in store.defs() {
        catalog.add_table(def.schema.clone())?;
        engine.create_table(&def.schema)?;
    }
    Ok((engine, catalog))
}

/// A datastore as the engine's source of tables' rows: the committed state, as long as no
/// transaction is open (every caller runs queries between transactions).
pub struct StoreRows<'a>(pub &'a Datastore);

impl TableSource for StoreRows<'_> {
    fn offset(&self) -> Offset {
        self.0.offset()
    }

    fn for_each_row(&self, table: &str, f: &mut dyn FnMut(&Row)) {
        if let Ok(rows) = self.0.table_id(table).and_then(|t| self.0.scan(t)) {
            rows.for_each(f);
        }
    }
}

/// The engine's view of a committed transaction (its changes; the record's metadata stays).
pub fn transaction(record: &TxRecord) -> Transaction {
    Transaction { offset: record.offset, changes: record.changes.clone() }
}
