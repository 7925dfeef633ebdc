//! The database host: a transactional in-memory datastore whose committed transactions form
//! the commit stream that feeds the subscription engine, the wasmtime host that runs a
//! module's reducers against it, and the storage that makes it durable (commit log with group
//! commit, snapshots, recovery, reading the past).

mod args;
pub mod commitlog;
pub mod datastore;
pub mod dir_lock;
pub mod error;
pub mod host;
pub mod logwriter;
pub mod module_def;
pub mod module_file;
pub mod record;
pub mod schema;
pub mod snapshot;
pub mod storage;
mod table;

pub use datastore::Datastore;
pub use dir_lock::{DirLock, DirLockError};
pub use error::{DatastoreError, Result};
pub use host::{Host, HostConfig, LoadError, LogLine, ReducerError, ScheduledRun};
pub use logwriter::{Durability, LogConfig};
pub use module_def::{Lifecycle, ModuleDesc};
pub use record::{CommitMeta, TxRecord};
pub use schema::{IndexDef, IndexKind, TableDef, TableId};
pub use sluice_data::TableChange;
pub use storage::{AsOf, RecoveryReport, Storage, StorageConfig, StorageError};
