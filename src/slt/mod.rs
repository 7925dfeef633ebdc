//! The sqllogictest runner: `sluice slt [--mode oneshot|incremental] FILE…`.

mod format;
pub mod parse;
mod run;

pub use run::{run_file, Failure, Mode, Summary};
