//! An in-memory SQL database over the IVM engine: DDL, DML as serial transactions (each one
//! commit-stream offset), one-off queries and subscriptions. The slt runner and the
//! differential tests use it; the wasm-hosted datastore of `sluice-runtime` will take its place.

use anyhow::{anyhow, bail, Result};
use sluice_ivm::{Engine, EngineConfig, QueryDelta, Subscription, SubscriptionId, TableChange, Transaction};
use sluice_planner::expr::truth;
use sluice_planner::{parse, Catalog, Dml, Planner, QueryPlan, Row, TableSchema};
use std::collections::{BTreeMap, HashSet};

/// The rows of one table: a multiset, plus its primary-key set when it has one.
#[derive(Default)]
struct TableData {
    rows: BTreeMap<Row, usize>,
    keys: Option<HashSet<Row>>,
}

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
    data: BTreeMap<String, TableData>,
    engine: Engine,
}

impl Database {
    pub fn new(workers: usize) -> Database {
        Database { catalog: Catalog::new(), data: BTreeMap::new(), engine: Engine::new(EngineConfig { workers }) }
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
                let keys = (!schema.primary_key.is_empty()).then(HashSet::new);
                self.data.insert(schema.name.clone(), TableData { rows: BTreeMap::new(), keys });
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
                self.data.remove(&schema.name);
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
                for (row, &n) in &self.data[&table].rows {
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
                    for _ in 0..n {
                        deletes.push(row.clone());
                        inserts.push(Row::new(vals.clone()));
                    }
                }
                self.commit(&table, inserts, deletes)
            }
            Dml::Delete { table, filter } => {
                let mut deletes = Vec::new();
                for (row, &n) in &self.data[&table].rows {
                    if truth(&filter.eval(&row.values())) == Some(true) {
                        deletes.extend(std::iter::repeat_n(row.clone(), n));
                    }
                }
                self.commit(&table, Vec::new(), deletes)
            }
        }
    }

    fn schema(&self, table: &str) -> Result<TableSchema> {
        self.catalog.table(table).cloned().ok_or_else(|| anyhow!("unknown table {table}"))
    }

    /// Applies deletes then inserts to one table as one transaction, checking primary keys
    /// against the resulting state; on any violation nothing changes.
    fn commit(&mut self, table: &str, inserts: Vec<Row>, deletes: Vec<Row>) -> Result<Outcome> {
        let schema = self.schema(table)?;
        let changed = inserts.len().max(deletes.len());
        if inserts.is_empty() && deletes.is_empty() {
            return Ok(Outcome::Changed { rows: 0, deltas: Vec::new() });
        }
        let data = self.data.get_mut(table).expect("table data exists");
        if let Some(keys) = &data.keys {
            let pk = |r: &Row| r.project(&schema.primary_key);
            let removed: HashSet<Row> = deletes.iter().map(pk).collect();
            let mut added = HashSet::new();
            for r in &inserts {
                let k = pk(r);
                if (keys.contains(&k) && !removed.contains(&k)) || !added.insert(k.clone()) {
                    bail!("duplicate primary key {:?} in table {}", k.values(), table);
                }
            }
        }
        for r in &deletes {
            match data.rows.get_mut(r) {
                Some(n) if *n > 1 => *n -= 1,
                Some(_) => {
                    data.rows.remove(r);
                }
                None => bail!("internal error: deleting a row that is not there"),
            }
            if let Some(keys) = &mut data.keys {
                keys.remove(&r.project(&schema.primary_key));
            }
        }
        for r in &inserts {
            *data.rows.entry(r.clone()).or_insert(0) += 1;
            if let Some(keys) = &mut data.keys {
                keys.insert(r.project(&schema.primary_key));
            }
        }
        let offset = self.engine.offset() + 1;
        let tx = Transaction { offset, changes: vec![TableChange { table: table.to_string(), inserts, deletes }] };
        let deltas = self.engine.apply(vec![tx])?;
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
        self.data
            .get(table)
            .map(|d| d.rows.iter().flat_map(|(r, &n)| std::iter::repeat_n(r.clone(), n)).collect())
            .unwrap_or_default()
    }
}
