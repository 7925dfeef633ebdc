//! sluice-planner: Sluice's SQL front end: the catalog, the compiler that turns SQL text into
//! a typed logical plan, and expressions with their evaluation. Pure: no threads, I/O or
//! dataflow. The data it works on (values, rows, schemas) is `sluice-data`'s, re-exported here.

pub mod bind;
pub mod catalog;
pub mod error;
pub mod expr;
pub mod plan;

pub use bind::{parse, Dml, Planner};
pub use catalog::{Catalog, Column, TableSchema};
pub use error::{PlanError, Result};
pub use expr::{BinOp, Columns, Expr, Func};
pub use plan::{AggCall, AggFunc, JoinKey, JoinKind, Plan, QueryPlan, SetOpKind, SortKey, MAX_PLAN_DEPTH};
pub use sluice_data::{change, row, schema, types};
pub use sluice_data::{DataType, IntColumn, Row, RowReader, RowRef, TableChange, Value};
