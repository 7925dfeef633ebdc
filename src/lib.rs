//! Sluice: a realtime database that streams exact incremental query results.
//! This crate wires the planner, the IVM engine and the runtime into a database and the
//! `sluice` command-line tool.

pub mod bench;
pub mod build;
pub mod client_cli;
pub mod db;
pub mod demo;
pub mod dml;
pub mod executor;
pub mod history;
pub mod identity;
pub mod metrics;
pub mod module_db;
pub mod module_log;
pub mod output;
pub mod server;
pub mod sessions;
pub mod slt;
pub mod wire;
