//! A table's shape: its name, its typed columns and its primary key. The catalog (in the
//! planner) and the datastore (in the runtime) both hold tables of this shape.

use crate::types::DataType;
use serde::{Deserialize, Serialize};

/// One column of a table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    pub ty: DataType,
    pub nullable: bool,
}

/// A table: name, columns and primary key (column indexes; empty for a bag table).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSchema {
    pub name: String,
    pub columns: Vec<Column>,
    pub primary_key: Vec<usize>,
}

impl TableSchema {
    /// Index of the column named `name` (case-insensitive).
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name.eq_ignore_ascii_case(name))
    }
}
