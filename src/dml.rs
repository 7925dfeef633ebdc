//! DML as row changes: INSERT (VALUES or SELECT), UPDATE and DELETE are evaluated against a
//! datastore's current rows, then applied in its open transaction — deletes before inserts, so
//! constraints hold against the resulting state. The SQL databases of the slt runner and a
//! module database's owner (over `/sql`) share it.

use anyhow::{anyhow, bail, Result};
use sluice_planner::expr::truth;
use sluice_planner::{bind::coerce, Dml, QueryPlan, Row, Value};
use sluice_runtime::Datastore;

/// The rows a DML statement deletes from and inserts into its table.
pub struct Changes {
    pub table: String,
    pub inserts: Vec<Row>,
    pub deletes: Vec<Row>,
}

impl Changes {
    /// Rows changed: inserted, deleted, or updated (one delete and one insert each).
    pub fn rows(&self) -> usize {
        self.inserts.len().max(self.deletes.len())
    }
}

/// The changes of an INSERT, UPDATE or DELETE on the store's current rows; `select`
/// evaluates an INSERT … SELECT's query. Other statements are refused.
pub fn changes(store: &Datastore, dml: Dml, select: impl FnOnce(&QueryPlan) -> Result<Vec<Row>>) -> Result<Changes> {
    let (table, inserts, deletes) = match dml {
        Dml::Insert { table, rows } => (table, rows, Vec::new()),
        Dml::InsertSelect { table, columns, query } => {
            let schema = &store.def(store.table_id(&table)?)?.schema;
            let mut rows = Vec::new();
            for r in select(&query)? {
                let mut vals = vec![Value::Null; schema.columns.len()];
                for (v, &c) in r.values().iter().zip(&columns) {
                    vals[c] = coerce(v.clone(), &schema.columns[c]).map_err(|m| anyhow!(m))?;
                }
                for (c, v) in schema.columns.iter().zip(&vals) {
                    if v.is_null() && !c.nullable {
                        bail!("NULL value in NOT NULL column {}.{}", table, c.name);
                    }
                }
                rows.push(Row::new(vals));
            }
            (table, rows, Vec::new())
        }
        Dml::Update { table, assignments, filter } => {
            let t = store.table_id(&table)?;
            let schema = &store.def(t)?.schema;
            let (mut inserts, mut deletes) = (Vec::new(), Vec::new());
            for row in store.scan(t)? {
                if truth(&filter.eval(&row.values())) != Some(true) {
                    continue;
                }
                let mut vals = row.values().to_vec();
                for (c, e) in &assignments {
                    let column = &schema.columns[*c];
                    vals[*c] = coerce(e.eval(&row.values()), column).map_err(|m| anyhow!("{table}: {m}"))?;
                }
                deletes.push(row.clone());
                inserts.push(Row::new(vals));
            }
            (table, inserts, deletes)
        }
        Dml::Delete { table, filter } => {
            let t = store.table_id(&table)?;
            let deletes =
                store.scan(t)?.filter(|row| truth(&filter.eval(&row.values())) == Some(true)).cloned().collect();
            (table, Vec::new(), deletes)
        }
        _ => bail!("expected INSERT, UPDATE or DELETE"),
    };
    Ok(Changes { table, inserts, deletes })
}

/// Applies changes in the store's open transaction; on an error the caller rolls it back.
pub fn apply(store: &mut Datastore, changes: Changes) -> Result<()> {
    let t = store.table_id(&changes.table)?;
    for r in &changes.deletes {
        if !store.delete(t, r)? {
            bail!("internal error: deleting a row that is not there");
        }
    }
    for r in changes.inserts {
        store.insert(t, r.values().to_vec())?;
    }
    Ok(())
}
