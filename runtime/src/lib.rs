//! The database host: a transactional in-memory datastore whose committed transactions form
//! the commit stream that feeds the subscription engine, and the wasmtime host that runs a
//! module's reducers against it.

mod args;
pub mod datastore;
pub mod error;
pub mod host;
pub mod module_def;
pub mod record;
pub mod schema;
mod table;

pub use datastore::Datastore;
pub use error::{DatastoreError, Result};
pub use host::{Host, HostConfig, LoadError, LogLine, ReducerError, ScheduledRun};
pub use module_def::{Lifecycle, ModuleDesc};
pub use record::{CommitMeta, TxRecord};
pub use schema::{IndexDef, IndexKind, TableDef, TableId};
pub use sluice_planner::TableChange;
