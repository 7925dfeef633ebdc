//! Errors a datastore operation reports to its caller (a reducer or a SQL statement).

use sluice_data::DataType;
use thiserror::Error;

pub type Result<T, E = DatastoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum DatastoreError {
    #[error("no table named `{0}`")]
    NoSuchTable(String),
    #[error("table `{0}` already exists")]
    TableExists(String),
    #[error("table `{table}`: no index named `{index}`")]
    NoSuchIndex { table: String, index: String },
    #[error("invalid table definition `{table}`: {reason}")]
    BadDefinition { table: String, reason: String },
    #[error("table `{table}` has {expected} columns, the row has {got}")]
    Arity { table: String, expected: usize, got: usize },
    #[error("table `{table}`, column `{column}`: expected {expected}, got {got}")]
    Type { table: String, column: String, expected: DataType, got: DataType },
    #[error("table `{table}`, column `{column}` is NOT NULL")]
    Null { table: String, column: String },
    #[error("table `{table}`: duplicate key {key} violates unique constraint `{constraint}`")]
    Unique { table: String, constraint: String, key: String },
    #[error("table `{table}`: duplicate primary key {key}")]
    PrimaryKey { table: String, key: String },
    #[error("table `{table}` has no primary key")]
    NoPrimaryKey { table: String },
    #[error("table `{table}`: no row with key {key}")]
    NotFound { table: String, key: String },
    #[error("table `{table}`: key has {got} values, the index has {expected} columns")]
    KeyArity { table: String, expected: usize, got: usize },
    #[error("table `{table}`, column `{column}`: auto-increment sequence exhausted")]
    SequenceExhausted { table: String, column: String },
    #[error("commit record at offset {offset} does not apply: {reason}")]
    Replay { offset: u64, reason: String },
    #[error("no transaction is open")]
    NoTransaction,
    #[error("a transaction is already open")]
    InTransaction,
}
