//! The commit-stream record: what one committed transaction changed, with who and why.

use serde::{Deserialize, Serialize};
use sluice_data::TableChange;

/// Who ran a transaction and why, supplied by the caller of `commit`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitMeta {
    /// Microseconds since the Unix epoch at which the transaction ran.
    pub timestamp_micros: u64,
    /// The reducer's name, or `sql` for a SQL statement.
    pub reducer: String,
    /// The caller's identity (hex); empty for the server itself (`init`, scheduled runs).
    pub caller: String,
    /// The arguments as JSON text.
    pub args: String,
}

/// One committed transaction of the commit stream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxRecord {
    /// The transaction's offset: one more than the previous committed transaction's.
    pub offset: u64,
    pub meta: CommitMeta,
    /// Net changes per table, in table creation order; tables without changes are absent.
    pub changes: Vec<TableChange>,
}

impl TxRecord {
    /// Total rows inserted and deleted.
    pub fn len(&self) -> usize {
        self.changes.iter().map(|c| c.inserts.len() + c.deletes.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
