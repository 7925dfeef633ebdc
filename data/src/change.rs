//! The rows one transaction inserted into and deleted from one table (an update is both): the
//! unit of the commit stream, shared by the runtime's commit records and the engine's input.

use crate::row::Row;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableChange {
    pub table: String,
    pub inserts: Vec<Row>,
    pub deletes: Vec<Row>,
}
