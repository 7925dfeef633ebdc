//! sluice-client: the Rust client of Sluice. `Client` holds a WebSocket connection to one
//! database — an identity, subscriptions kept as exact local caches with callbacks on insert,
//! delete and update, reducer calls and one-off queries; `Http` speaks the HTTP API
//! (identities, publishing, schema, calls, SQL, logs). `protocol` is the wire format both
//! sides share (docs/PROTOCOL.md).

mod cache;
mod connection;
mod http;
pub mod protocol;

pub use cache::QueryCache;
pub use connection::{Client, Config, Transaction};
pub use http::{Http, SqlResult};
pub use protocol::{ColumnInfo, Encoding, Row, Value};

/// A query's answer: columns, typed rows, and the offset whose state answered.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryAnswer {
    pub columns: Vec<ColumnInfo>,
    pub rows: Vec<Row>,
    pub offset: u64,
}

/// What can go wrong talking to a server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("connection closed: {0}")]
    Closed(String),
    #[error("no answer in time")]
    Timeout,
    /// The reducer ran and failed (its transaction rolled back).
    #[error("reducer failed: {0}")]
    Reducer(String),
    /// The server refused the request (bad SQL, unknown reducer, not allowed, …).
    #[error("{0}")]
    Refused(String),
    #[error("protocol error: {0}")]
    Protocol(String),
}
