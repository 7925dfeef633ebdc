//! A SQL database: DDL, DML as serial transactions on the runtime's datastore (each commit one
//! commit-stream offset, fed to the IVM engine), one-off queries and subscriptions. The slt
//! runner and the differential tests use it.

use anyhow::{anyhow, bail, Result};
use sluice_ivm::{Engine, EngineConfig, QueryDelta, Subscription, SubscriptionId, Transaction};
use sluice_planner::expr::truth;
use sluice_planner::{parse, Catalog, Dml, Planner, QueryPlan, Row, TableSchema};
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
            Dml::Insert { table, rows } => self.commit(&table, rows, Vec::new()),
            Dml::InsertSelect { table, columns, query } => {
                let schema = self.schema(&table)?;
                let mut rows = Vec::new();
                for r in self.evaluate(&query)? {
                    let mut vals = vec![sluice_planner::Value::Null; schema.columns.len()];
                    for (v, &c) in r.values().iter().zip(&columns) {
                        vals[c] =
                            sluice_planner::bind::coerce(v.clone(), &schema.columns[c]).map_err(|m| anyhow!(m))?;
                    }
                    for (c, v) in schema.columns.iter().zip(&vals) {
                        if v.is_null() && !c.nullable {
                            bail!("NULL value in NOT NULL column {}.{}", table, c.name);
                        }
                    }
                    rows.push(Row::new(vals));
                }
                self.commit(&table, rows, Vec::new())
            }
            Dml::Update { table, assignments, filter } => {
                let schema = self.schema(&table)?;
                let mut inserts = Vec::new();
                let mut deletes = Vec::new();
                for row in self.store.scan(self.store.table_id(&table)?)? {
                    if truth(&filter.eval(&row.values())) != Some(true) {
                        continue;
                    }
                    let mut vals = row.values().to_vec();
                    for (c, e) in &assignments {
                        vals[*c] = e.eval(&row.values());
                        if vals[*c].is_null() && !schema.columns[*c].nullable {
                            bail!("NULL value in NOT NULL column {}.{}", table, schema.columns[*c].name);
                        }
                    }
                    deletes.push(row.clone());
                    inserts.push(Row::new(vals));
                }
                self.commit(&table, inserts, deletes)
            }
            Dml::Delete { table, filter } => {
                let mut deletes = Vec::new();
                for row in self.store.scan(self.store.table_id(&table)?)? {
                    if truth(&filter.eval(&row.values())) == Some(true) {
                        deletes.push(row.clone());
                    }
                }
                self.commit(&table, Vec::new(), deletes)
            }
        }
    }

    fn schema(&self, table: &str) -> Result<TableSchema> {
        self.catalog.table(table).cloned().ok_or_else(|| anyhow!("unknown table {table}"))
    }

    /// Applies deletes then inserts to one table as one datastore transaction, so constraints
    /// hold against the resulting state; on any violation it rolls back and nothing changes.
    fn commit(&mut self, table: &str, inserts: Vec<Row>, deletes: Vec<Row>) -> Result<Outcome> {
        let changed = inserts.len().max(deletes.len());
        if inserts.is_empty() && deletes.is_empty() {
            return Ok(Outcome::Changed { rows: 0, deltas: Vec::new() });
        }
        let t = self.store.table_id(table)?;
        self.store.begin()?;
        let applied = (|| {
            for r in &deletes {
                if !self.store.delete(t, r)? {
                    bail!("internal error: deleting a row that is not there");
                }
            }
            for r in inserts {
                self.store.insert(t, r.values().to_vec())?;
            }
            Ok(())
        })();
        if let Err(e) = applied {
            self.store.rollback()?;
            return Err(e);
        }
        let record = self.store.commit(CommitMeta { reducer: "sql".into(), ..CommitMeta::default() })?;
        let deltas = self.engine.apply(vec![transaction(record)])?;
        Ok(Outcome::Changed { rows: changed, deltas })
    }

    /// Evaluates a query from scratch on the current state (never sharing a live dataflow).
    pub fn evaluate(&mut self, plan: &QueryPlan) -> Result<Vec<Row>> {
        Ok(self.engine.evaluate(plan)?)
    }

    /// Subscribes to a planned query.
    pub fn subscribe(&mut self, plan: &QueryPlan) -> Result<Subscription> {
        Ok(self.engine.subscribe(plan)?)
    }

    pub fn unsubscribe(&mut self, id: SubscriptionId) -> Result<()> {
        Ok(self.engine.unsubscribe(id)?)
    }

    /// The current rows of a table (multiset as a list).
    pub fn table_rows(&self, table: &str) -> Vec<Row> {
        let rows = self.store.table_id(table).and_then(|t| self.store.scan(t).map(|rows| rows.cloned().collect()));
        rows.unwrap_or_default()
    }
}

/// An engine (and its catalog) holding a datastore's tables and current rows: the rows enter
/// as one transaction at the datastore's offset.
pub fn engine_for(store: &Datastore, workers: usize) -> Result<(Engine, Catalog)> {
    let mut engine = Engine::new(EngineConfig { workers });
    let mut catalog = Catalog::new();
    let mut changes = Vec::new();
    for def in store.defs() {
        catalog.add_table(def.schema.clone())?;
        engine.create_table(&def.schema)?;
        let inserts = store.scan(store.table_id(def.name())?)?.cloned().collect();
        changes.push(sluice_ivm::TableChange { table: def.name().to_string(), inserts, deletes: Vec::new() });
    }
    if store.offset() > 0 {
        engine.apply(vec![Transaction { offset: store.offset(), changes }])?;
    }
    Ok((engine, catalog))
}

/// The engine's view of a committed transaction.
pub fn transaction(record: TxRecord) -> Transaction {
    Transaction { offset: record.offset, changes: record.changes }
}
