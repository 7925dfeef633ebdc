//! The `sluice` command-line tool.

use anyhow::Result;
use clap::{Parser, Subcommand};
use sluice::slt::{run_file, Mode};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "sluice", version, about = "A realtime database that streams exact incremental query results")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run sqllogictest files against the engine.
    Slt {
        /// `incremental` maintains every query as a live subscription; `oneshot` evaluates
        /// each query where it stands.
        #[arg(long, value_enum, default_value = "incremental")]
        mode: Mode,
        /// Number of timely worker threads.
        #[arg(long, default_value_t = 1)]
        workers: usize,
        /// The .slt files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run the bundled demo (examples/game) in real time, printing its live subscriptions'
    /// deltas as each transaction commits.
    Demo {
        /// Stop after this many seconds (default: run until interrupted).
        #[arg(long)]
        seconds: Option<u64>,
        /// Bots to add to the twelve the game starts with.
        #[arg(long, default_value_t = 0)]
        bots: u64,
    },
    /// Compile a module crate to WebAssembly (rustup's wasm32 target or Debian's rustc-web).
    Build {
        /// The module crate's directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Slt { mode, workers, files } => {
            let (mut passed, mut failed) = (0, 0);
            for f in &files {
                let summary = run_file(f, mode, workers)?;
                for failure in &summary.failures {
                    println!("{failure}");
                }
                passed += summary.passed;
                failed += summary.failures.len();
            }
            println!("{passed} passed, {failed} failed");
            Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Demo { seconds, bots } => {
            sluice::demo::run(seconds, bots)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Build { dir } => {
            let wasm = sluice::build::build(&dir)?;
            println!("{}", wasm.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}
