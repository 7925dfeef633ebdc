//! `sluice start`: the HTTP server (axum on tokio) hosting named databases, each served by its
//! executor thread. Databases live in the data directory (`DIR/NAME`, recovered at start) or,
//! with `--in-memory`, nowhere. The demo module is published as `game` when absent.
//!
//! Endpoints (JSON answers; an error is `{"error": "…"}` with a 4xx/5xx status):
//! - `GET /health`
//! - `POST /v1/database/{name}[?clear=true]`, body: the module's wasm — create a database
//!   (`clear` replaces an existing one and its data);
//! - `POST /v1/database/{name}/call/{reducer}`, body: the arguments as a JSON array —
//!   `{"offset": N}` once the transaction is durable;
//! - `POST /v1/database/{name}/sql[?as_of=OFFSET|TIME]`, body: a query —
//!   `{"columns": [{"name", "type"}], "rows": [[…]], "offset": N}`;
//! - `GET /v1/database/{name}/log[?after=OFFSET&limit=N]` — transactions: offset, time,
//!   reducer, caller, arguments, rows changed.

use crate::demo::{now_micros, GAME_WASM};
use crate::executor::{Executor, Request};
use crate::history::{parse_as_of, query_as_of};
use crate::module_db::ModuleDb;
use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value as JsonValue};
use sluice_planner::Value;
use sluice_runtime::storage;
use sluice_runtime::{CommitMeta, Durability, Host, HostConfig, Lifecycle, LogConfig, StorageConfig};
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// How the server runs.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Where databases live; `None` keeps them in memory.
    pub data_dir: Option<PathBuf>,
    pub durability: Durability,
    /// A snapshot every this many transactions (0: only at shutdown).
    pub snapshot_every: u64,
}

struct Databases {
    config: ServerConfig,
    live: Mutex<HashMap<String, Arc<Executor>>>,
}

type Shared = Arc<Databases>;

/// An error answer.
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

/// Runs the server until Ctrl-C; databases shut down cleanly (snapshots taken).
pub async fn run(config: ServerConfig) -> Result<()> {
    let databases = Arc::new(Databases { config: config.clone(), live: Mutex::new(HashMap::new()) });
    let recovered = tokio::task::spawn_blocking({
        let d = Arc::clone(&databases);
        move || d.recover_all()
    })
    .await??;
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/v1/database/{name}", post(publish))
        .route("/v1/database/{name}/call/{reducer}", post(call))
        .route("/v1/database/{name}/sql", post(sql))
        .route("/v1/database/{name}/log", get(log))
        .with_state(Arc::clone(&databases));
    let listener = tokio::net::TcpListener::bind(config.listen).await.context("binding the listen address")?;
    let addr = listener.local_addr()?;
    println!("listening on http://{addr}");
    for name in recovered {
        println!("database {name} ready");
    }
    std::io::stdout().flush()?;
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    let live: Vec<Arc<Executor>> = databases.live.lock().expect("databases").drain().map(|(_, e)| e).collect();
    tokio::task::spawn_blocking(move || drop(live)).await?;
    Ok(())
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

impl Databases {
    fn storage_config(&self) -> StorageConfig {
        let log = LogConfig { durability: self.config.durability, ..LogConfig::default() };
        StorageConfig { log, snapshot_every: self.config.snapshot_every }
    }

    /// Opens every database in the data directory, and publishes the demo as `game` if absent.
    fn recover_all(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        if let Some(dir) = &self.config.data_dir {
            std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
            for (name, path) in storage::databases(dir)? {
                let config = self.storage_config();
                let executor = Executor::spawn(&name, move || {
                    let (db, report) = ModuleDb::open(&path, 1, config)?;
                    if let Some((file, at, reason)) = report.torn {
                        eprintln!("{}: cut off a torn tail at byte {at}: {reason}", file.display());
                    }
                    Ok(db)
                })
                .with_context(|| format!("recovering database {name}"))?;
                self.live.lock().expect("databases").insert(name.clone(), Arc::new(executor));
                names.push(name);
            }
        }
        if !self.live.lock().expect("databases").contains_key("game") {
            self.create("game", GAME_WASM.to_vec())?;
            names.push("game".into());
        }
        names.sort();
        Ok(names)
    }

    /// Creates a database for a module (its `init` run and durable before this returns).
    fn create(&self, name: &str, wasm: Vec<u8>) -> Result<()> {
        let meta = CommitMeta { timestamp_micros: now_micros(), ..CommitMeta::default() };
        let executor = match &self.config.data_dir {
            Some(dir) => {
                let (path, config) = (dir.join(name), self.storage_config());
                let created = Executor::spawn(name, {
                    let path = path.clone();
                    move || ModuleDb::create(&path, &wasm, 1, config, meta)
                });
                // A module that fails to start leaves no database behind to recover later.
                created.inspect_err(|_| drop(std::fs::remove_dir_all(&path)))?
            }
            None => Executor::spawn(name, move || {
                let mut db = ModuleDb::new(Host::load(&wasm, HostConfig::default())?, 1)?;
                if let Some(outcome) = db.lifecycle(Lifecycle::Init, meta) {
                    outcome.context("the module's init reducer failed")?;
                }
                Ok(db)
            })?,
        };
        self.live.lock().expect("databases").insert(name.to_string(), Arc::new(executor));
        Ok(())
    }

    fn get(&self, name: &str) -> Result<Arc<Executor>, Failure> {
        let live = self.live.lock().expect("databases");
        live.get(name).cloned().ok_or_else(|| Failure(StatusCode::NOT_FOUND, format!("no database named {name}")))
    }

    fn dir(&self, name: &str) -> Result<PathBuf, Failure> {
        self.get(name)?;
        match &self.config.data_dir {
            Some(d) => Ok(d.join(name)),
            None => Err(bad(format!("database {name} is in memory: it has no log to read"))),
        }
    }
}

#[derive(Deserialize)]
struct PublishParams {
    #[serde(default)]
    clear: bool,
}

async fn publish(
    State(dbs): State<Shared>,
    UrlPath(name): UrlPath<String>,
    Query(params): Query<PublishParams>,
    wasm: Bytes,
) -> Result<Json<JsonValue>, Failure> {
    check_name(&name)?;
    let old = dbs.live.lock().expect("databases").get(&name).cloned();
    if old.is_some() && !params.clear {
        return Err(Failure(
            StatusCode::CONFLICT,
            format!("database {name} exists (publish with clear=true to replace it)"),
        ));
    }
    let d = Arc::clone(&dbs);
    tokio::task::spawn_blocking(move || -> Result<(), Failure> {
        if old.is_some() {
            let removed = d.live.lock().expect("databases").remove(&name);
            drop((old, removed)); // the old database shuts down before its files go
            if let Some(dir) = &d.config.data_dir {
                let path = dir.join(&name);
                if path.exists() {
                    std::fs::remove_dir_all(&path).map_err(internal)?;
                }
            }
        }
        d.create(&name, wasm.to_vec()).map_err(|e| bad(format!("{e:#}")))
    })
    .await
    .map_err(internal)??;
    Ok(Json(json!({ "ok": true })))
}

async fn call(
    State(dbs): State<Shared>,
    UrlPath((name, reducer)): UrlPath<(String, String)>,
    args: Bytes,
) -> Result<Json<JsonValue>, Failure> {
    let db = dbs.get(&name)?;
    let args = std::str::from_utf8(&args).map_err(|_| bad("arguments must be UTF-8 JSON"))?.to_string();
    let args = if args.trim().is_empty() { "[]".to_string() } else { args };
    let offset = ask(&db, &name, |reply| Request::Call { reducer, args, caller: String::new(), reply }).await?;
    Ok(Json(json!({ "offset": offset })))
}

/// Sends a database a request and awaits its answer; a refusal is a bad request.
async fn ask<T>(
    db: &Executor,
    name: &str,
    request: impl FnOnce(oneshot::Sender<Result<T, String>>) -> Request,
) -> Result<T, Failure> {
    let (reply, answer) = oneshot::channel();
    if !db.send(request(reply)) {
        return Err(internal(format!("database {name} has stopped")));
    }
    answer.await.map_err(internal)?.map_err(bad)
}

#[derive(Deserialize)]
struct SqlParams {
    as_of: Option<String>,
}

async fn sql(
    State(dbs): State<Shared>,
    UrlPath(name): UrlPath<String>,
    Query(params): Query<SqlParams>,
    query: Bytes,
) -> Result<Json<JsonValue>, Failure> {
    let query = std::str::from_utf8(&query).map_err(|_| bad("the query must be UTF-8"))?.to_string();
    let answer = match params.as_of {
        Some(point) => {
            let point = parse_as_of(&point).map_err(|e| bad(format!("{e:#}")))?;
            let dir = dbs.dir(&name)?;
            tokio::task::spawn_blocking(move || query_as_of(&dir, &query, point))
                .await
                .map_err(internal)?
                .map_err(|e| bad(format!("{e:#}")))?
        }
        None => ask(&*dbs.get(&name)?, &name, |reply| Request::Sql { query, reply }).await?,
    };
    let columns: Vec<JsonValue> =
        answer.columns.iter().map(|(n, t)| json!({ "name": n, "type": t.to_string() })).collect();
    let rows: Vec<JsonValue> =
        answer.rows.iter().map(|r| JsonValue::Array(r.values().iter().map(value_json).collect())).collect();
    Ok(Json(json!({ "columns": columns, "rows": rows, "offset": answer.offset })))
}

#[derive(Deserialize)]
struct LogParams {
    #[serde(default)]
    after: u64,
    limit: Option<usize>,
}

async fn log(
    State(dbs): State<Shared>,
    UrlPath(name): UrlPath<String>,
    Query(params): Query<LogParams>,
) -> Result<Json<JsonValue>, Failure> {
    let dir = dbs.dir(&name)?;
    let limit = params.limit.unwrap_or(1000);
    let records = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        storage::history(&dir, params.after, |r| {
            out.push(json!({
                "offset": r.offset,
                "timestamp_micros": r.meta.timestamp_micros,
                "reducer": r.meta.reducer,
                "caller": r.meta.caller,
                "args": r.meta.args,
                "rows": r.len(),
            }));
            out.len() < limit
        })
        .map(|_| out)
    })
    .await
    .map_err(internal)?
    .map_err(internal)?;
    Ok(Json(JsonValue::Array(records)))
}

/// A value as JSON: numbers, strings, booleans, null; bytes as a hex string.
pub fn value_json(v: &Value) -> JsonValue {
    match v {
        Value::Null => JsonValue::Null,
        Value::Bool(b) => json!(b),
        Value::Int(i) => json!(i),
        Value::UInt(u) => json!(u),
        Value::Real(r) => serde_json::Number::from_f64(*r).map_or(JsonValue::Null, JsonValue::Number),
        Value::Text(s) => json!(&**s),
        Value::Bytes(b) => json!(b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
    }
}
