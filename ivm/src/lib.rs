//! sluice-ivm: incremental view maintenance. Logical plans from `sluice-planner` are rendered
//! as differential dataflow over shared base-table arrangements; committed transactions go in,
//! exact per-offset deltas of every subscribed query come out.

mod aggregate;
mod budget;
mod delta;
mod engine;
mod group_totals;
mod layout;
mod render;
mod result_set;
mod rows;
mod sort_key;
mod source;
mod topk;
mod worker;

pub use budget::QueryBudget;
pub use delta::{consolidate, Diff, Offset, QueryDelta, QueryId, TableChange, Transaction};
pub use engine::{Engine, EngineConfig, EngineError, Subscription, SubscriptionId};
pub use source::{TableRows, TableSource};
