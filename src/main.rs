//! The `sluice` command-line tool.

use anyhow::Result;
use clap::{Parser, Subcommand};
use sluice::client_cli;
use sluice::slt::{run_file, Mode};
use sluice_runtime::Durability;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "sluice", version, about = "A realtime database that streams exact incremental query results")]
struct Cli {
    /// The server the client commands talk to [default: http://127.0.0.1:3000]; `bench`
    /// starts a server of its own without one.
    #[arg(long, global = true, env = "SLUICE_SERVER")]
    server: Option<String>,
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
    /// Measure a server end to end (one of its own unless --server is given).
    #[command(subcommand)]
    Bench(BenchCommand),
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
        /// Close a WebSocket client once more than this many bytes of updates wait for it.
        #[arg(long, default_value_t = 16 << 20)]
        max_queued_bytes: usize,
        /// The largest request body or WebSocket message accepted.
        #[arg(long, default_value_t = 1 << 20)]
        max_message_bytes: usize,
        /// Keep the newest N snapshots of each database and its log from the oldest of them on
        /// (at least 2); without it everything is kept (the demo keeps 2), so any past offset
        /// reads back.
        #[arg(long)]
        keep_snapshots: Option<usize>,
        /// Close a WebSocket client that has updates waiting once all clients together have
        /// more than this many bytes waiting.
        #[arg(long, default_value_t = 512 << 20)]
        max_total_queued_bytes: usize,
        /// The largest module a publish may bring.
        #[arg(long, default_value_t = 16 << 20)]
        max_module_bytes: usize,
        /// Do not publish the bundled demo module as `game` (it is published when absent).
        #[arg(long)]
        no_demo: bool,
        /// How long a one-off query or a new subscription's first evaluation may run before
        /// it is stopped with an error (e.g. `5s`, `500ms`); the database waits meanwhile.
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        query_time_limit: std::time::Duration,
        /// How many rows a one-off query or a new subscription's first evaluation may produce.
        #[arg(long, default_value_t = 5_000_000)]
        query_row_limit: usize,
    },
    /// Publish a module as a database: created, or updated keeping its data when its tables
    /// are unchanged (--clear replaces the data).
    Publish {
        name: String,
        /// The module crate to build.
        #[arg(long, default_value = ".")]
        path: PathBuf,
        /// A built module, instead of building one.
        #[arg(long)]
        wasm: Option<PathBuf>,
        #[arg(long)]
        clear: bool,
    },
    /// Call a reducer with arguments in order, or each as NAME=VALUE, read by the parameters'
    /// declared types (a string parameter takes its text as it is, any other its JSON).
    Call {
        name: String,
        reducer: String,
        #[arg(allow_negative_numbers = true)]
        args: Vec<String>,
    },
    /// Subscribe to queries: their rows, then each transaction's changes as it commits.
    Subscribe {
        name: String,
        #[arg(required = true)]
        queries: Vec<String>,
        /// Stop after this many transactions.
        #[arg(short = 'n')]
        count: Option<usize>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// A database's transactions, from the server; with --module, what its module logged.
    Logs {
        name: String,
        /// Keep printing as more come.
        #[arg(short = 'f', long)]
        follow: bool,
        /// The module's log lines (`sluice_sdk::info!`, panics; the owner's) instead of the
        /// transactions.
        #[arg(long)]
        module: bool,
    },
    /// A database's owner, tables and reducers.
    Describe { name: String },
    /// The server's databases.
    List,
    /// Delete a database and its data (its owner only).
    Delete { name: String },
    /// Check databases' snapshots and commit logs (a data directory or one database's).
    Verify {
        path: PathBuf,
        /// Make a damaged database start again, losing what it must (one database's
        /// directory; a copy of its files is kept in it first).
        #[arg(long)]
        repair: bool,
    },
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
    /// Run a query on a database, now or at a past offset or time: on the server, or with
    /// --data-dir on the database's files.
    Sql {
        name: String,
        query: String,
        #[arg(long)]
        data_dir: Option<PathBuf>,
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

#[derive(Subcommand)]
enum BenchCommand {
    /// The transfer workload over WebSocket connections, with dashboard subscribers.
    Transfer {
        #[command(flatten)]
        options: sluice::bench::transfer::Options,
        /// One JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Per-transaction cost of each query class at several table sizes, beside hand-written
    /// differential dataflow, recomputation and SQLite polling.
    Queries {
        #[command(flatten)]
        options: sluice::bench::queries::Options,
        /// One JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Per-transaction cost and memory as the number of distinct live subscriptions grows.
    Scaling {
        #[command(flatten)]
        options: sluice::bench::queries::scaling::Options,
        /// One JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Start { .. } | Command::Demo { .. }) {
        // A command whose output goes to a pipe that closes (`sluice sql … | head`) ends
        // quietly as other Unix tools do, instead of panicking on a failed print. The server
        // and the demo keep Rust's default (SIGPIPE ignored): they run on when their output
        // goes, and a peer that hangs up is an error on that socket, not the end of the
        // process.
        // SAFETY: setting a signal's disposition to its default before any thread exists.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let server = cli.server.clone().unwrap_or_else(|| DEFAULT_SERVER.to_string());
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if let Some(hint) = client_cli::stale_token_hint(&server, &e) {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(2)
        }
    }
}

/// The server the client commands talk to without `--server`.
const DEFAULT_SERVER: &str = "http://127.0.0.1:3000";

fn run(cli: Cli) -> Result<ExitCode> {
    let server = cli.server.as_deref().unwrap_or(DEFAULT_SERVER);
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
        Command::Start {
            listen,
            data_dir,
            in_memory,
            durability,
            snapshot_every,
            keep_snapshots,
            max_queued_bytes,
            max_total_queued_bytes,
            max_message_bytes,
            max_module_bytes,
            no_demo,
            query_time_limit,
            query_row_limit,
        } => {
            let config = sluice::server::ServerConfig {
                listen,
                data_dir: (!in_memory).then_some(data_dir),
                durability: durability.into(),
                snapshot_every,
                keep_snapshots,
                max_queued_bytes,
                max_total_queued_bytes,
                max_message_bytes,
                max_module_bytes,
                query_budget: sluice_ivm::QueryBudget { time: query_time_limit, rows: query_row_limit },
                demo: !no_demo,
            };
            tokio::runtime::Runtime::new()?.block_on(sluice::server::run(config))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { path, repair: false } => {
            Ok(if sluice::history::verify(&path)? { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Verify { path, repair: true } => {
            sluice::history::repair(&path)?;
            Ok(if sluice::history::verify(&path)? { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Log { name, data_dir, after, limit } => {
            sluice::history::log(&data_dir.join(name), after, limit)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sql { name, query, data_dir: Some(data_dir), as_of, json } => {
            let as_of = as_of.as_deref().map(sluice::history::parse_as_of).transpose()?;
            sluice::history::sql(&data_dir.join(name), &query, as_of, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sql { name, query, data_dir: None, as_of, json } => {
            client_cli::sql(server, &name, &query, as_of.as_deref(), json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Publish { name, path, wasm, clear } => {
            client_cli::publish(server, &name, &path, wasm.as_deref(), clear)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Call { name, reducer, args } => {
            client_cli::call(server, &name, &reducer, &args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Subscribe { name, queries, count, json } => {
            client_cli::subscribe(server, &name, &queries, count, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Logs { name, follow, module: false } => {
            client_cli::logs(server, &name, follow)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Logs { name, follow, module: true } => {
            client_cli::module_logs(server, &name, follow)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Describe { name } => {
            client_cli::describe(server, &name)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::List => {
            client_cli::list(server)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Delete { name } => {
            client_cli::delete(server, &name)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Transfer { options, json }) => {
            use sluice::bench::transfer;
            show(&transfer::run(cli.server.as_deref(), options, !json)?, json, transfer::print)
        }
        Command::Bench(BenchCommand::Queries { options, json }) => {
            use sluice::bench::queries;
            show(&queries::run(options, true)?, json, queries::print)
        }
        Command::Bench(BenchCommand::Scaling { options, json }) => {
            use sluice::bench::queries::scaling;
            show(&scaling::run(options, true)?, json, scaling::print)
        }
        Command::Build { dir } => {
            let wasm = sluice::build::build(&dir)?;
            println!("{}", wasm.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Prints a benchmark's report: one JSON object, or its table.
fn show<R: serde::Serialize>(report: &R, json: bool, table: fn(&R)) -> Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string(report)?);
    } else {
        table(report);
    }
    Ok(ExitCode::SUCCESS)
}
