//! sluice-planner: Sluice's data model (types, values, rows, schemas, catalog) and the SQL
//! compiler that turns SQL text into a typed logical plan. Pure: no threads, I/O or dataflow.

pub mod bind;
pub mod catalog;
pub mod change;
pub mod error;
pub mod expr;
pub mod plan;
pub mod row;
pub mod types;

pub use bind::{parse, Dml, Planner};
pub use catalog::{Catalog, Column, TableSchema};
pub use change::TableChange;
pub use error::{PlanError, Result};
pub use expr::{BinOp, Columns, Expr, Func};
pub use plan::{AggCall, AggFunc, JoinKey, JoinKind, Plan, QueryPlan, SetOpKind, SortKey, MAX_PLAN_DEPTH};
pub use row::{IntColumn, Row, RowReader, RowRef};
pub use types::{DataType, Value};
