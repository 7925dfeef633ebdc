//! Sluice's data representation, shared by the SDK's host side, the runtime, the engine and
//! the planner: column types and values (`types`), rows and their compact byte encoding
//! (`row`), column access for evaluation (`columns`), tables' shapes (`schema`), and one
//! transaction's changes to one table (`change`). No SQL here: the planner depends on this crate, not the other way round.

pub mod change;
pub mod columns;
pub mod row;
pub mod schema;
pub mod types;

pub use change::TableChange;
pub use columns::Columns;
pub use row::{IntColumn, Row, RowReader, RowRef};
pub use schema::{Column, TableSchema};
pub use types::{DataType, Value};
