//! The transactional datastore: tables, serial transactions with an undo log, and the commit
//! stream. One executor thread owns a datastore, so a transaction is serializable by
//! construction; it sees its own writes, commits into one `TxRecord` with the next offset, or
//! rolls back leaving no trace (rows, indexes and auto-increment sequences restored).

use crate::error::{DatastoreError, Result};
use crate::record::{CommitMeta, TxRecord};
use crate::schema::{TableDef, TableId};
use crate::snapshot::TableState;
use crate::table::{format_key, Table, PRIMARY_KEY};
use sluice_data::{Row, TableChange, Value};
use std::collections::HashMap;
use std::ops::Bound;

/// One change, recorded so it can be undone and reported.
enum Change {
    Insert(TableId, Row),
    Delete(TableId, Row),
    Seq(TableId, i128),
}

#[derive(Default)]
pub struct Datastore {
    /// Tables by id; a dropped table leaves its slot empty so ids stay stable.
    tables: Vec<Option<Table>>,
    by_name: HashMap<String, TableId>,
    /// Offset of the last committed transaction (0 before the first).
    offset: u64,
    /// The open transaction's changes, oldest first.
    tx: Option<Vec<Change>>,
}

impl Datastore {
    pub fn new() -> Datastore {
        Datastore::default()
    }

    /// Offset of the last committed transaction.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Adds an empty table (outside any transaction: schema changes are not transactional).
    pub fn create_table(&mut self, def: TableDef) -> Result<TableId> {
        def.validate()?;
        let key = def.name().to_ascii_lowercase();
        if self.by_name.contains_key(&key) {
            return Err(DatastoreError::TableExists(def.name().to_string()));
        }
        let id = self.tables.len();
        self.tables.push(Some(Table::new(def)));
        self.by_name.insert(key, id);
        Ok(id)
    }

    /// Drops a table and its rows (outside any transaction); returns its definition.
    pub fn drop_table(&mut self, name: &str) -> Result<TableDef> {
        if self.tx.is_some() {
            return Err(DatastoreError::InTransaction);
        }
        let id = self.table_id(name)?;
        self.by_name.remove(&name.to_ascii_lowercase());
        let table = self.tables[id].take().expect("named tables exist");
        Ok(table.def)
    }

    /// The table named `name` (case-insensitive).
    pub fn table_id(&self, name: &str) -> Result<TableId> {
        self.by_name.get(&name.to_ascii_lowercase()).copied().ok_or_else(|| DatastoreError::NoSuchTable(name.into()))
    }

    pub fn def(&self, table: TableId) -> Result<&TableDef> {
        Ok(&self.table(table)?.def)
    }

    /// Every table's definition, in creation order.
    pub fn defs(&self) -> impl Iterator<Item = &TableDef> {
        self.tables.iter().flatten().map(|t| &t.def)
    }

    /// The position of a table's index by name (`primary_key` for the primary key).
    pub fn index_id(&self, table: TableId, name: &str) -> Result<usize> {
        self.table(table)?.index_id(name)
    }

    fn table(&self, id: TableId) -> Result<&Table> {
        self.tables.get(id).and_then(Option::as_ref).ok_or_else(|| DatastoreError::NoSuchTable(format!("#{id}")))
    }

    fn table_mut(&mut self, id: TableId) -> Result<&mut Table> {
        self.tables.get_mut(id).and_then(Option::as_mut).ok_or_else(|| DatastoreError::NoSuchTable(format!("#{id}")))
    }

    fn log(&mut self) -> Result<&mut Vec<Change>> {
        self.tx.as_mut().ok_or(DatastoreError::NoTransaction)
    }

    /// Opens a transaction.
    pub fn begin(&mut self) -> Result<()> {
        if self.tx.is_some() {
            return Err(DatastoreError::InTransaction);
        }
        self.tx = Some(Vec::new());
        Ok(())
    }

    /// Commits the open transaction: its net changes become the next offset's record. A
    /// transaction that changed nothing on net still takes an offset (it ran, and its caller
    /// may wait for it).
    pub fn commit(&mut self, meta: CommitMeta) -> Result<TxRecord> {
        let log = self.tx.take().ok_or(DatastoreError::NoTransaction)?;
        // Net changes: (table, row, ±1) sorted, then summed per (table, row).
        let mut net: Vec<(TableId, Row, isize)> = log
            .into_iter()
            .filter_map(|c| match c {
                Change::Insert(t, r) => Some((t, r, 1)),
                Change::Delete(t, r) => Some((t, r, -1)),
                Change::Seq(..) => None,
            })
            .collect();
        net.sort_unstable_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let mut changes: Vec<(TableId, TableChange)> = Vec::new();
        let mut net = net.into_iter().peekable();
        while let Some((t, row, mut n)) = net.next() {
            while let Some((_, _, d)) = net.next_if(|(u, r, _)| *u == t && *r == row) {
                n += d;
            }
            if n == 0 {
                continue;
            }
            if changes.last().is_none_or(|(u, _)| *u != t) {
                let name = self.table(t)?.def.name().to_string();
                changes.push((t, TableChange { table: name, ..TableChange::default() }));
            }
            let d = &mut changes.last_mut().expect("just pushed").1;
            let side = if n > 0 { &mut d.inserts } else { &mut d.deletes };
            // The row itself goes in last: a row changed once is moved, not copied.
            side.extend(std::iter::repeat_n(row, n.unsigned_abs()));
        }
        let changes = changes.into_iter().map(|(_, c)| c).collect();
        self.offset += 1;
        Ok(TxRecord { offset: self.offset, meta, changes })
    }

    /// Undoes every change of the open transaction.
    pub fn rollback(&mut self) -> Result<()> {
        self.rollback_to(0)?;
        self.tx = None;
        Ok(())
    }

    /// A point in the open transaction that `rollback_to` can return to.
    pub fn savepoint(&self) -> Result<usize> {
        self.tx.as_ref().map(Vec::len).ok_or(DatastoreError::NoTransaction)
    }

    /// Undoes the open transaction's changes made after `savepoint`; it stays open.
    pub fn rollback_to(&mut self, savepoint: usize) -> Result<()> {
        let log = self.tx.as_mut().ok_or(DatastoreError::NoTransaction)?;
        for c in log.drain(savepoint.min(log.len())..).rev() {
            // Tables cannot be dropped while a transaction is open.
            let (Change::Insert(t, _) | Change::Delete(t, _) | Change::Seq(t, _)) = c;
            let table = self.tables[t].as_mut().expect("tables of an open transaction exist");
            match c {
                Change::Insert(_, r) => {
                    table.remove(&r);
                }
                Change::Delete(_, r) => table.insert_checked(r),
                Change::Seq(_, old) => table.seq = old,
            }
        }
        Ok(())
    }

    /// Inserts a row, generating the auto-increment value if the row carries 0 or NULL there;
    /// returns the row as stored.
    pub fn insert(&mut self, table: TableId, mut values: Vec<Value>) -> Result<Row> {
        self.log()?;
        let t = self.table(table)?;
        let seq = t.fill_auto_inc(&mut values)?;
        t.check(&mut values)?;
        let row = Row::from_values(&values);
        t.check_unique(&row)?;
        let t = self.table_mut(table)?;
        t.insert_checked(row.clone());
        let old_seq = t.seq;
        if let Some(next) = seq {
            t.seq = next;
            self.log()?.push(Change::Seq(table, old_seq));
        }
        self.log()?.push(Change::Insert(table, row.clone()));
        Ok(row)
    }

    /// Deletes one copy of exactly this row; false if there is none.
    pub fn delete(&mut self, table: TableId, row: &Row) -> Result<bool> {
        self.log()?;
        if !self.table_mut(table)?.remove(row) {
            return Ok(false);
        }
        self.log()?.push(Change::Delete(table, row.clone()));
        Ok(true)
    }

    /// Deletes the row with `key` in a unique index (or the primary key); returns it.
    pub fn delete_by(&mut self, table: TableId, index: usize, key: &[Value]) -> Result<Option<Row>> {
        let Some(row) = self.find(table, index, key)? else { return Ok(None) };
        self.delete(table, &row)?;
        Ok(Some(row))
    }

    /// Replaces the row that has the same key in a unique index (or the primary key) as
    /// `values`; returns the new row. Fails, changing nothing, if there is no such row or the
    /// new row breaks a constraint.
    pub fn update_by(&mut self, table: TableId, index: usize, mut values: Vec<Value>) -> Result<Row> {
        self.log()?;
        let t = self.table(table)?;
        let seq = t.fill_auto_inc(&mut values)?;
        t.check(&mut values)?;
        let key: Vec<Value> = t.index_columns(index)?.iter().map(|&c| values[c].clone()).collect();
        let Some(old) = t.find(index, &key)? else {
            return Err(DatastoreError::NotFound { table: t.def.name().into(), key: format_key(&key) });
        };
        let new = Row::from_values(&values);
        let t = self.table_mut(table)?;
        t.replace(&old, new.clone())?;
        let old_seq = t.seq;
        if let Some(next) = seq {
            t.seq = next;
            self.log()?.push(Change::Seq(table, old_seq));
        }
        let log = self.log()?;
        log.push(Change::Delete(table, old));
        log.push(Change::Insert(table, new.clone()));
        Ok(new)
    }

    /// Replaces the row with the same primary key.
    pub fn update(&mut self, table: TableId, values: Vec<Value>) -> Result<Row> {
        let pk = self.primary_index(table)?;
        self.update_by(table, pk, values)
    }

    fn primary_index(&self, table: TableId) -> Result<usize> {
        let t = self.table(table)?;
        t.index_id(PRIMARY_KEY).map_err(|_| DatastoreError::NoPrimaryKey { table: t.def.name().into() })
    }

    /// The row with `key` in a unique index or the primary key (the first match of a btree).
    pub fn find(&self, table: TableId, index: usize, key: &[Value]) -> Result<Option<Row>> {
        self.table(table)?.find(index, key)
    }

    /// The row with this primary key.
    pub fn find_by_pk(&self, table: TableId, key: &[Value]) -> Result<Option<Row>> {
        self.find(table, self.primary_index(table)?, key)
    }

    /// Rows whose key in `index` (or its prefix as long as the bounds) lies within the bounds.
    pub fn range(&self, table: TableId, index: usize, lo: Bound<&[Value]>, hi: Bound<&[Value]>) -> Result<Vec<Row>> {
        self.table(table)?.range(index, lo, hi, None, usize::MAX)
    }

    /// A page of `range`: up to `limit` rows after the row `after` (from the start if `None`).
    pub fn range_page(
        &self,
        table: TableId,
        index: usize,
        (lo, hi): (Bound<&[Value]>, Bound<&[Value]>),
        after: Option<&Row>,
        limit: usize,
    ) -> Result<Vec<Row>> {
        self.table(table)?.range(index, lo, hi, after, limit)
    }

    /// Whether a table holds `row`.
    pub fn contains(&self, table: TableId, row: &Row) -> Result<bool> {
        Ok(self.table(table)?.contains(row))
    }

    /// Every row of a table (duplicates repeated).
    pub fn scan(&self, table: TableId) -> Result<impl Iterator<Item = &Row>> {
        Ok(self.table(table)?.scan())
    }

    pub fn count(&self, table: TableId) -> Result<usize> {
        Ok(self.table(table)?.len())
    }

    /// Every table's definition, sequence and rows (in no particular order), for a snapshot.
    pub fn tables_state(&self) -> Vec<TableState> {
        self.tables
            .iter()
            .flatten()
            .map(|t| TableState { def: t.def.clone(), seq: t.seq, rows: t.scan().cloned().collect() })
            .collect()
    }

    /// Loads a snapshot's tables (defined as this datastore's, all still empty) as of `offset`.
    pub fn restore(&mut self, offset: u64, tables: Vec<TableState>) -> Result<()> {
        let bad = |reason: String| DatastoreError::Replay { offset, reason };
        if self.tx.is_some() || self.offset != 0 {
            return Err(bad("the datastore is not fresh".into()));
        }
        for state in tables {
            let id = self.table_id(state.def.name()).map_err(|_| bad(format!("no table `{}`", state.def.name())))?;
            let t = self.table_mut(id)?;
            if t.def != state.def {
                return Err(bad(format!("table `{}` is defined differently", state.def.name())));
            }
            for row in state.rows {
                t.check_unique(&row).map_err(|e| bad(e.to_string()))?;
                t.insert_checked(row);
            }
            t.seq = state.seq;
        }
        self.offset = offset;
        Ok(())
    }

    /// Applies a committed transaction's record from the log (its net changes, as
    /// committed). It must be the next offset and apply exactly.
    pub fn replay(&mut self, record: &TxRecord) -> Result<()> {
        let bad = |reason: String| DatastoreError::Replay { offset: record.offset, reason };
        if self.tx.is_some() || record.offset != self.offset + 1 {
            return Err(bad(format!("expected offset {}", self.offset + 1)));
        }
        // Checked first, so a record that does not apply changes nothing.
        let mut ids = Vec::with_capacity(record.changes.len());
        for c in &record.changes {
            let id = self.table_id(&c.table).map_err(|_| bad(format!("no table `{}`", c.table)))?;
            let t = self.table(id)?;
            let arity = t.def.schema.columns.len();
            if let Some(r) = c.deletes.iter().find(|r| !t.contains(r)) {
                return Err(bad(format!("table `{}` has no row {r:?} to delete", c.table)));
            }
            if c.inserts.iter().chain(&c.deletes).any(|r| r.len() != arity) {
                return Err(bad(format!("a row of table `{}` has the wrong number of values", c.table)));
            }
            ids.push(id);
        }
        for (c, id) in record.changes.iter().zip(ids) {
            let t = self.table_mut(id)?;
            for r in &c.deletes {
                t.remove(r);
            }
            for r in &c.inserts {
                t.check_unique(r).map_err(|e| bad(e.to_string()))?;
                t.insert_checked(r.clone());
                if let Some(v) = t.def.auto_inc.and_then(|col| r.get(col).as_i128()) {
                    t.seq = t.seq.max(v + 1);
                }
            }
        }
        self.offset = record.offset;
        Ok(())
    }
}
