//! `sluice start`: the server (axum on tokio) hosting named databases, each served by its
//! executor thread. Databases live in the data directory (`DIR/NAME`, recovered at start,
//! with the owner's identity in `DIR/NAME/owner`) or, with `--in-memory`, nowhere. The demo
//! module is published as `game` when absent. `http` holds the HTTP API, `ws` the
//! WebSocket protocol; both are documented in docs/PROTOCOL.md. `dashboard` serves the
//! browser dashboard at `/`.

mod dashboard;
mod http;
mod ws;

use crate::demo::{now_micros, GAME_WASM};
use crate::executor::Executor;
use crate::identity::{Identity, Keys};
use crate::module_db::{Caller, ModuleDb};
use crate::sessions::SendLimits;
use anyhow::{Context, Result};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use serde_json::json;
use sluice_runtime::storage;
use sluice_runtime::{CommitMeta, DirLock, Durability, Host, HostConfig, Lifecycle, LogConfig, StorageConfig};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};

/// How the server runs.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Where databases live; `None` keeps them in memory.
    pub data_dir: Option<PathBuf>,
    pub durability: Durability,
    /// A snapshot every this many transactions (0: only at shutdown).
    pub snapshot_every: u64,
    /// Snapshots kept, with the log from the oldest of them on (`None`: all, and the whole
    /// log; the demo then keeps 2, since its tick would grow its log for ever).
    pub keep_snapshots: Option<usize>,
    /// A WebSocket client with more than this many bytes of updates waiting is closed.
    pub max_queued_bytes: usize,
    /// A client with updates waiting is closed once all clients together have more than this
    /// many bytes waiting.
    pub max_total_queued_bytes: usize,
    /// Largest request body or WebSocket message accepted.
    pub max_message_bytes: usize,
    /// Largest module a publish may bring.
    pub max_module_bytes: usize,
    /// What a one-off query or a subscription's first evaluation may cost.
    pub query_budget: sluice_ivm::QueryBudget,
    /// Whether the demo module is published as `game` when absent.
    pub demo: bool,
}

/// One hosted database.
#[derive(Clone)]
struct Database {
    executor: Arc<Executor>,
    /// Who published it (`None` for the demo the server publishes itself).
    owner: Option<Identity>,
}

struct Databases {
    config: ServerConfig,
    keys: Keys,
    live: Mutex<HashMap<String, Database>>,
    /// Names being created, replaced or deleted (see [`Claim`]).
    changing: Mutex<HashSet<String>>,
    /// Databases in the data directory that could not be opened at start.
    unavailable: Mutex<HashMap<String, Unavailable>>,
    next_client: AtomicU64,
    /// Bytes waiting to be sent to every WebSocket client of every database.
    send_queued: Arc<AtomicUsize>,
}

/// A name being created, replaced or deleted by one request: while it is held, no other
/// request changes that name, so two publishes of a new name cannot both create it (and the
/// loser's cleanup cannot remove the winner's files). Released when dropped.
struct Claim {
    dbs: Shared,
    name: String,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.dbs.changing.lock().expect("names").remove(&self.name);
    }
}

/// Claims `name` for a change, or refuses at once (409) while another request changes it.
fn claim(dbs: &Shared, name: &str) -> Result<Claim, Failure> {
    if !dbs.changing.lock().expect("names").insert(name.to_string()) {
        return Err(Failure(
            StatusCode::CONFLICT,
            format!("database {name} is being published or deleted by another request: try again when it is done"),
        ));
    }
    Ok(Claim { dbs: Arc::clone(dbs), name: name.to_string() })
}

impl Database {
    /// Who asks, as this database sees them.
    fn caller(&self, identity: Identity) -> Caller {
        Caller { identity, owner: self.owner == Some(identity) }
    }
}

/// A database whose files are there but did not open.
struct Unavailable {
    error: String,
    owner: Option<Identity>,
}

type Shared = Arc<Databases>;

/// An error answer: `{"error": "…"}` with its status.
struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn bad(e: impl std::fmt::Display) -> Failure {
    Failure(StatusCode::BAD_REQUEST, e.to_string())
}

fn internal(e: impl std::fmt::Display) -> Failure {
    Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// Runs the server until SIGINT (Ctrl-C) or SIGTERM; databases shut down cleanly (snapshots
/// taken).
pub async fn run(config: ServerConfig) -> Result<()> {
    // The data directory's lock comes before anything in it is read or written, and the
    // listen address is bound before any database is recovered or created: a second server
    // started by mistake stops without touching a file.
    let _lock = config.data_dir.as_deref().map(DirLock::acquire).transpose()?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding the listen address {}", config.listen))?;
    let keys = match &config.data_dir {
        Some(dir) => Keys::load_or_create(dir)?,
        None => Keys::ephemeral(),
    };
    let databases = Arc::new(Databases {
        config: config.clone(),
        keys,
        live: Mutex::new(HashMap::new()),
        changing: Mutex::new(HashSet::new()),
        unavailable: Mutex::new(HashMap::new()),
        next_client: AtomicU64::new(1),
        send_queued: Arc::new(AtomicUsize::new(0)),
    });
    let recovered = tokio::task::spawn_blocking({
        let d = Arc::clone(&databases);
        move || d.recover_all()
    })
    .await??;
    // A module is larger than any other request: publishing has a body limit of its own.
    let modules = Router::new()
        .route("/v1/database/{name}", post(http::publish).delete(http::delete))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(config.max_module_bytes));
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/metrics", get(http::metrics))
        .route("/v1/limits", get(http::limits))
        .route("/v1/identity", post(http::new_identity))
        .route("/v1/database", get(http::list))
        .route("/v1/database/{name}/schema", get(http::describe))
        .route("/v1/database/{name}/call/{reducer}", post(http::call))
        .route("/v1/database/{name}/sql", post(http::sql))
        .route("/v1/database/{name}/log", get(http::log))
        .route("/v1/database/{name}/logs", get(http::module_log))
        .route("/v1/database/{name}/subscribe", get(ws::upgrade))
        .merge(dashboard::routes())
        // Refuses a body whose declared length is past the limit before reading any of it
        // (and one that turns out longer while being read).
        .layer(tower_http::limit::RequestBodyLimitLayer::new(config.max_message_bytes))
        .merge(modules)
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(Arc::clone(&databases));
    let addr = listener.local_addr()?;
    println!("listening on http://{addr}");
    for name in &recovered {
        println!("database {name} ready: ws://{addr}/v1/database/{name}/subscribe");
    }
    println!("dashboard: http://{addr}/");
    if recovered.iter().any(|n| n == "game") {
        println!("connect with: sluice subscribe game \"SELECT * FROM player\" --server http://{addr}");
    } else {
        println!("publish a module with: sluice publish NAME --path DIR --server http://{addr}");
    }
    std::io::stdout().flush()?;
    // Frames go out as soon as they are written: without TCP_NODELAY a subscriber that only
    // reads would wait on Nagle's algorithm and its own delayed ACKs (tens of milliseconds)
    // between updates.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            eprintln!("could not set TCP_NODELAY on a connection: {e}");
        }
    });
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?;
    let live: Vec<Database> = databases.live.lock().expect("databases").drain().map(|(_, d)| d).collect();
    tokio::task::spawn_blocking(move || drop(live)).await?;
    Ok(())
}

/// Resolves at SIGINT (Ctrl-C) or SIGTERM (what service managers and `kill` send): both
/// shut down cleanly, each database taking its snapshot.
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            eprintln!("cannot listen for SIGTERM ({e}); only Ctrl-C shuts down cleanly");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Database names are path components: letters, digits, `_` and `-`.
fn check_name(name: &str) -> Result<(), Failure> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(bad(format!("bad database name {name:?}: use letters, digits, '_' and '-'")))
    }
}

/// The file naming a database's owner, in its directory.
const OWNER_FILE: &str = "owner";

impl Databases {
    fn send_limits(&self) -> SendLimits {
        SendLimits { per_client: self.config.max_queued_bytes, total: self.config.max_total_queued_bytes }
    }

    /// The storage settings of a database published by `owner` (`None`: the demo, which keeps
    /// two snapshots unless told otherwise: its tick would grow its log for ever).
    fn storage_config(&self, owner: Option<Identity>) -> StorageConfig {
        let log = LogConfig { durability: self.config.durability, ..LogConfig::default() };
        let keep_snapshots = match owner {
            None => self.config.keep_snapshots.or(Some(2)),
            Some(_) => self.config.keep_snapshots,
        };
        StorageConfig { log, snapshot_every: self.config.snapshot_every, keep_snapshots }
    }

    /// Opens every database in the data directory, and publishes the demo as `game` if absent
    /// (unless told not to).
    fn recover_all(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        if let Some(dir) = &self.config.data_dir {
            for name in storage::remove_deleted(dir)? {
                eprintln!("{name}: its deletion was cut off before it finished; removed what it left");
            }
            for (name, path) in storage::cut_off_creations(dir)? {
                eprintln!("{name}: its creation was cut off before it finished; removing what it left");
                std::fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))?;
            }
            for (name, path) in storage::databases(dir)? {
                let owner = std::fs::read_to_string(path.join(OWNER_FILE)).ok().and_then(|t| Identity::parse(t.trim()));
                let config = self.storage_config(owner);
                let opened = Executor::spawn(&name, self.send_limits(), self.config.query_budget, {
                    let path = path.clone();
                    move || {
                        let (db, report) = ModuleDb::open(&path, 1, config)?;
                        if let Some((file, at, reason)) = report.torn {
                            eprintln!("{}: cut off a torn tail at byte {at}: {reason}", file.display());
                        }
                        for skipped in &report.skipped {
                            eprintln!("{}: passed over a damaged snapshot: {skipped}", path.display());
                        }
                        Ok(db)
                    }
                });
                match opened {
                    Ok(executor) => {
                        let db = Database { executor: Arc::new(executor), owner };
                        self.live.lock().expect("databases").insert(name.clone(), db);
                        names.push(name);
                    }
                    // One damaged database does not keep the others from serving: it is listed
                    // with its error, refused with 503, and its files are left as they are.
                    Err(e) => {
                        let error = format!("{e:#}");
                        eprintln!(
                            "{name}: cannot be opened, so it is unavailable (the others are served): {error}; \
                             `sluice verify {}` says what is damaged",
                            path.display()
                        );
                        self.unavailable.lock().expect("databases").insert(name, Unavailable { error, owner });
                    }
                }
            }
        }
        let game_unavailable = self.unavailable.lock().expect("databases").contains_key("game");
        let game_live = self.live.lock().expect("databases").contains_key("game");
        if self.config.demo && !game_unavailable && !game_live {
            self.create("game", GAME_WASM.to_vec(), None)?;
            names.push("game".into());
        }
        names.sort();
        Ok(names)
    }

    /// Creates a database for a module (its `init` run and durable before this returns).
    fn create(&self, name: &str, wasm: Vec<u8>, owner: Option<Identity>) -> Result<()> {
        let meta = CommitMeta { timestamp_micros: now_micros(), ..CommitMeta::default() };
        let send = self.send_limits();
        let executor = match &self.config.data_dir {
            Some(dir) => {
                let (path, config) = (dir.join(name), self.storage_config(owner));
                // What is there already (a database that failed to open, say) is not this
                // creation's to remove.
                if path.exists() && !storage::cut_off(&path) {
                    anyhow::bail!("{} already exists and is not a database this server has open", path.display());
                }
                let created = Executor::spawn(name, send, self.config.query_budget, {
                    let path = path.clone();
                    move || {
                        let owner = owner.map(|o| o.to_hex());
                        let files: Vec<(&str, &[u8])> = owner.iter().map(|o| (OWNER_FILE, o.as_bytes())).collect();
                        ModuleDb::create(&path, &wasm, 1, config, meta, &files)
                    }
                });
                // A module that fails to start leaves no database behind to recover later.
                created.inspect_err(|_| drop(std::fs::remove_dir_all(&path)))?
            }
            None => Executor::spawn(name, send, self.config.query_budget, move || {
                let mut db = ModuleDb::new(Host::load(&wasm, HostConfig::default())?, 1)?;
                if let Some(outcome) = db.lifecycle(Lifecycle::Init, meta) {
                    outcome.context("the module's init reducer failed")?;
                }
                Ok(db)
            })?,
        };
        let db = Database { executor: Arc::new(executor), owner };
        self.live.lock().expect("databases").insert(name.to_string(), db);
        Ok(())
    }

    fn get(&self, name: &str) -> Result<Database, Failure> {
        if let Some(db) = self.live.lock().expect("databases").get(name) {
            return Ok(db.clone());
        }
        if let Some(u) = self.unavailable.lock().expect("databases").get(name) {
            return Err(Failure(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("database {name} is unavailable: it could not be opened at start ({})", u.error),
            ));
        }
        Err(Failure(StatusCode::NOT_FOUND, format!("no database named {name}")))
    }

    /// Stops a database and removes its files.
    fn remove(&self, name: &str) -> Result<(), Failure> {
        let removed = self.live.lock().expect("databases").remove(name);
        if let Some(db) = removed {
            db.executor.shutdown(); // before its files go, even while connections hold it
        }
        if let Some(dir) = &self.config.data_dir {
            let path = dir.join(name);
            if path.exists() {
                storage::delete(&path).map_err(internal)?;
            }
        }
        Ok(())
    }

    fn dir(&self, name: &str) -> Result<PathBuf, Failure> {
        self.get(name)?;
        match &self.config.data_dir {
            Some(d) => Ok(d.join(name)),
            None => Err(bad(format!("database {name} is in memory: it has no log to read"))),
        }
    }
}
