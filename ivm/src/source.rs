//! Where the engine reads tables' current rows. A new query's scan of a table and a new shared
//! arrangement are loaded from the caller's store — the datastore that holds the rows anyway,
//! as of the engine's offset — so the engine keeps no second copy of every table and pays
//! nothing per change to maintain one. `TableRows` is such a store for an engine used on its
//! own (tests, benchmarks).

use crate::delta::{Offset, Transaction};
use crate::rows::Rows;
use sluice_planner::Row;
use std::collections::HashMap;

/// Tables' current rows, as of an offset.
pub trait TableSource {
    /// The offset of the last transaction the rows reflect.
    fn offset(&self) -> Offset;
    /// Calls `f` on each row of `table`, a row held n times n times; nothing for a table the
    /// source does not hold.
    fn for_each_row(&self, table: &str, f: &mut dyn FnMut(&Row));
}

/// Tables' rows with their multiplicities, kept by applying the transactions the engine is
/// given.
#[derive(Default)]
pub struct TableRows {
    tables: HashMap<String, Rows>,
    offset: Offset,
}

impl TableRows {
    pub fn new() -> TableRows {
        TableRows::default()
    }

    /// Adds an empty table; rows are hashed by `primary_key` (the whole row without one).
    pub fn create_table(&mut self, name: &str, primary_key: Vec<usize>) {
        self.tables.insert(name.to_string(), Rows::new(primary_key));
    }

    /// Applies a transaction's changes; a table never created is created keyless.
    pub fn apply(&mut self, tx: &Transaction) {
        for change in &tx.changes {
            let rows = self.tables.entry(change.table.clone()).or_insert_with(|| Rows::new(Vec::new()));
            for r in &change.deletes {
                rows.add(r, -1);
            }
            for r in &change.inserts {
                rows.add(r, 1);
            }
        }
        self.offset = tx.offset;
    }
}

impl TableSource for TableRows {
    fn offset(&self) -> Offset {
        self.offset
    }

    fn for_each_row(&self, table: &str, f: &mut dyn FnMut(&Row)) {
        for (row, n) in self.tables.get(table).into_iter().flat_map(Rows::iter) {
            for _ in 0..n.max(0) {
                f(row);
            }
        }
    }
}

/// A copy of some tables' rows, sent with a command to worker threads (a borrowed source
/// cannot cross to them).
pub struct Loaded {
    offset: Offset,
    tables: HashMap<String, Vec<Row>>,
}

impl Loaded {
    /// Copies `tables` from `source`.
    pub fn copy(source: &dyn TableSource, tables: &[String]) -> Loaded {
        let mut copied = HashMap::new();
        for t in tables {
            let mut rows = Vec::new();
            source.for_each_row(t, &mut |r| rows.push(r.clone()));
            copied.insert(t.clone(), rows);
        }
        Loaded { offset: source.offset(), tables: copied }
    }
}

impl TableSource for Loaded {
    fn offset(&self) -> Offset {
        self.offset
    }

    fn for_each_row(&self, table: &str, f: &mut dyn FnMut(&Row)) {
        self.tables.get(table).into_iter().flatten().for_each(f);
    }
}

/// No rows at all: what a worker other than the first loads (worker 0 feeds every input).
pub struct NoRows;

impl TableSource for NoRows {
    fn offset(&self) -> Offset {
        0
    }

    fn for_each_row(&self, _table: &str, _f: &mut dyn FnMut(&Row)) {}
}
