//! Sluice: a realtime database that streams exact incremental query results.
//! This crate wires the planner and the IVM engine into an in-memory database and the
//! `sluice` command-line tool.

pub mod db;
pub mod slt;
