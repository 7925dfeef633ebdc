//! Sluice: a realtime database that streams exact incremental query results.
//! This crate wires the planner, the IVM engine and the runtime into a database and the
//! `sluice` command-line tool.

pub mod build;
pub mod db;
pub mod demo;
pub mod executor;
pub mod history;
pub mod module_db;
pub mod server;
pub mod slt;
