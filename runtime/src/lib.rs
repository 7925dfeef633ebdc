//! The database host: a transactional in-memory datastore whose committed transactions form
//! the commit stream that feeds the subscription engine.

pub mod datastore;
pub mod error;
pub mod record;
pub mod schema;
mod table;

pub use datastore::Datastore;
pub use error::{DatastoreError, Result};
pub use record::{CommitMeta, TableDelta, TxRecord};
pub use schema::{IndexDef, IndexKind, TableDef, TableId};
