//! Table definitions as a module declares them: columns and primary key (a planner
//! `TableSchema`), unique and btree indexes, an auto-increment column, visibility.

use crate::error::{DatastoreError, Result};
use serde::{Deserialize, Serialize};
use sluice_data::{DataType, TableSchema};

/// A table's position in its datastore, fixed for the datastore's life.
pub type TableId = usize;

/// What an index enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IndexKind {
    /// At most one row per key; point lookups.
    Unique,
    /// Any number of rows per key; point and range lookups in key order.
    BTree,
}

/// One index over one or more columns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexDef {
    pub name: String,
    pub columns: Vec<usize>,
    pub kind: IndexKind,
}

/// A table as a module (or `CREATE TABLE`) declares it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableDef {
    pub schema: TableSchema,
    /// Indexes besides the primary key (which is always a unique index of its own).
    pub indexes: Vec<IndexDef>,
    /// A column whose value the datastore generates when a row is inserted with 0 or NULL.
    pub auto_inc: Option<usize>,
    /// Whether clients may subscribe to the table (private tables are the module's own).
    pub public: bool,
}

impl TableDef {
    /// A public table with no indexes besides its primary key.
    pub fn new(schema: TableSchema) -> TableDef {
        TableDef { schema, indexes: Vec::new(), auto_inc: None, public: true }
    }

    pub fn name(&self) -> &str {
        &self.schema.name
    }

    /// Checks column references, index names and the auto-increment column's type.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| Err(DatastoreError::BadDefinition { table: self.schema.name.clone(), reason });
        let n = self.schema.columns.len();
        if n == 0 {
            return bad("a table needs at least one column".into());
        }
        if self.schema.primary_key.iter().any(|&c| c >= n) {
            return bad("primary key names a column that does not exist".into());
        }
        if let Some(c) = self.schema.primary_key.iter().map(|&c| &self.schema.columns[c]).find(|c| c.nullable) {
            return bad(format!("primary key column `{}` must be NOT NULL", c.name));
        }
        for (i, ix) in self.indexes.iter().enumerate() {
            if ix.columns.is_empty() || ix.columns.iter().any(|&c| c >= n) {
                return bad(format!("index `{}` names no column or one that does not exist", ix.name));
            }
            if self.indexes[..i].iter().any(|o| o.name == ix.name) {
                return bad(format!("two indexes are named `{}`", ix.name));
            }
        }
        if let Some(c) = self.auto_inc {
            match self.schema.columns.get(c).map(|c| c.ty) {
                Some(DataType::Int | DataType::UInt) => {}
                Some(ty) => return bad(format!("auto-increment column must be an integer, not {ty}")),
                None => return bad("auto-increment names a column that does not exist".into()),
            }
        }
        Ok(())
    }
}
