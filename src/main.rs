//! The `sluice` command-line tool.

use anyhow::Result;
use clap::{Parser, Subcommand};
use sluice::slt::{run_file, Mode};
use sluice_runtime::Durability;
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
        /// Keep the game durably in DIR/game (created, or recovered if it exists).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// With --data-dir: acknowledge transactions once written, without waiting for fsync.
        #[arg(long, value_enum, default_value = "full")]
        durability: DurabilityArg,
    },
    /// Start the server: databases from the data directory (recovered) or in memory, served
    /// over HTTP; the demo module is published as `game` when absent.
    Start {
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: std::net::SocketAddr,
        #[arg(long, default_value = "sluice-data")]
        data_dir: PathBuf,
        /// Keep databases in memory only (nothing written to disk).
        #[arg(long)]
        in_memory: bool,
        /// `relaxed` acknowledges transactions once written, without waiting for fsync.
        #[arg(long, value_enum, default_value = "full")]
        durability: DurabilityArg,
        /// Take a snapshot of a database every N transactions (0: only at shutdown).
        #[arg(long, default_value_t = 100_000)]
        snapshot_every: u64,
    },
    /// Check databases' snapshots and commit logs (a data directory or one database's).
    Verify { path: PathBuf },
    /// List a database's transactions: offset, time, reducer, caller, rows changed.
    Log {
        name: String,
        #[arg(long, default_value = "sluice-data")]
        data_dir: PathBuf,
        /// Start after this offset.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// At most this many transactions.
        #[arg(short = 'n', long, default_value_t = usize::MAX)]
        limit: usize,
    },
    /// Run a query on a database's state, now or at a past offset or time.
    Sql {
        name: String,
        query: String,
        #[arg(long, default_value = "sluice-data")]
        data_dir: PathBuf,
        /// An offset, or a time like 2026-11-25T01:02:03Z (the last transaction at or before it).
        #[arg(long)]
        as_of: Option<String>,
        /// One JSON object per row.
        #[arg(long)]
        json: bool,
    },
    /// Compile a module crate to WebAssembly (rustup's wasm32 target or Debian's rustc-web).
    Build {
        /// The module crate's directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
}

/// `--durability`: when a transaction counts as durable.
#[derive(Clone, Copy, clap::ValueEnum)]
enum DurabilityArg {
    /// After its commit-log record is fsynced (group commit).
    Full,
    /// After its record is written, without waiting for fsync.
    Relaxed,
}

impl From<DurabilityArg> for Durability {
    fn from(d: DurabilityArg) -> Durability {
        match d {
            DurabilityArg::Full => Durability::Full,
            DurabilityArg::Relaxed => Durability::Relaxed,
        }
    }
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
        Command::Demo { seconds, bots, data_dir, durability } => {
            sluice::demo::run(seconds, bots, data_dir.as_deref(), durability.into())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Start { listen, data_dir, in_memory, durability, snapshot_every } => {
            let config = sluice::server::ServerConfig {
                listen,
                data_dir: (!in_memory).then_some(data_dir),
                durability: durability.into(),
                snapshot_every,
            };
            tokio::runtime::Runtime::new()?.block_on(sluice::server::run(config))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { path } => {
            Ok(if sluice::history::verify(&path)? { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Log { name, data_dir, after, limit } => {
            sluice::history::log(&data_dir.join(name), after, limit)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sql { name, query, data_dir, as_of, json } => {
            let as_of = as_of.as_deref().map(sluice::history::parse_as_of).transpose()?;
            sluice::history::sql(&data_dir.join(name), &query, as_of, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Build { dir } => {
            let wasm = sluice::build::build(&dir)?;
            println!("{}", wasm.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}
