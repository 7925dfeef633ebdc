//! The HTTP API (docs/PROTOCOL.md): identities, publishing (republishing keeps the data when
//! the tables are unchanged), deleting, schemas, reducer calls, one-off SQL (as of a past
//! point, too), transaction logs and metrics. A token, where given, is
//! `Authorization: Bearer TOKEN`; publishing needs one, and only a database's owner may
//! republish, delete or read its private tables.

use super::{bad, check_name, internal, Database, Failure, Shared};
use crate::executor::{Executor, Refusal, Request};
use crate::history::{parse_as_of, query_as_of};
use crate::identity::Identity;
use crate::module_db::{Caller, SqlOutcome};
use crate::wire::{columns, protocol_rows};
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value as JsonValue};
use sluice_runtime::storage;
use std::sync::Arc;
use tokio::sync::oneshot;

/// The identity a request's token proves: `None` without a token, 401 for a bad one.
pub(super) fn bearer(dbs: &Shared, headers: &HeaderMap) -> Result<Option<Identity>, Failure> {
    let Some(value) = headers.get("authorization") else { return Ok(None) };
    let text =
        value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).ok_or_else(|| {
            Failure(StatusCode::UNAUTHORIZED, "the Authorization header must be `Bearer TOKEN`".into())
        })?;
    dbs.keys.verify(text.trim()).map(Some).map_err(|e| Failure(StatusCode::UNAUTHORIZED, e))
}

/// Who asks of a database: a token's identity, or the anonymous identity (all zeros).
fn caller(dbs: &Shared, headers: &HeaderMap, db: &Database) -> Result<Caller, Failure> {
    Ok(match bearer(dbs, headers)? {
        Some(identity) => db.caller(identity),
        None => Caller { identity: Identity([0; 32]), owner: false },
    })
}

/// Refuses anyone but the database's owner.
fn owner_only(dbs: &Shared, headers: &HeaderMap, name: &str, db: &Database, what: &str) -> Result<(), Failure> {
    let Some(who) = bearer(dbs, headers)? else {
        return Err(Failure(StatusCode::UNAUTHORIZED, format!("{what} needs the owner's token")));
    };
    match db.owner {
        Some(owner) if owner == who => Ok(()),
        Some(_) => Err(Failure(StatusCode::FORBIDDEN, format!("only the owner of {name} may {what}"))),
        None => Err(Failure(StatusCode::FORBIDDEN, format!("{name} was published by the server: nobody may {what}"))),
    }
}

/// The bounds this server holds requests to, so a client can check before it sends.
pub(super) async fn limits(State(dbs): State<Shared>) -> Json<JsonValue> {
    let c = &dbs.config;
    Json(json!({
        "max_message_bytes": c.max_message_bytes,
        "max_module_bytes": c.max_module_bytes,
        "max_queued_bytes": c.max_queued_bytes,
        "max_total_queued_bytes": c.max_total_queued_bytes,
        "query_time_limit_ms": c.query_budget.time.as_millis() as u64,
        "query_row_limit": c.query_budget.rows,
    }))
}

pub(super) async fn new_identity(State(dbs): State<Shared>) -> Json<JsonValue> {
    let (identity, token) = dbs.keys.issue();
    Json(json!({ "identity": identity.to_hex(), "token": token }))
}

pub(super) async fn list(State(dbs): State<Shared>, headers: HeaderMap) -> Result<Json<JsonValue>, Failure> {
    // Anyone may list, but a bad token is refused here as everywhere.
    bearer(&dbs, &headers)?;
    let mut items: Vec<(String, JsonValue)> = {
        let live = dbs.live.lock().expect("databases");
        live.iter().map(|(n, d)| (n.clone(), json!({ "name": n, "owner": d.owner.map(|o| o.to_hex()) }))).collect()
    };
    let unavailable = dbs.unavailable.lock().expect("databases");
    items.extend(
        unavailable.iter().map(|(n, u)| {
            (n.clone(), json!({ "name": n, "owner": u.owner.map(|o| o.to_hex()), "unavailable": u.error }))
        }),
    );
    items.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Json(JsonValue::Array(items.into_iter().map(|(_, item)| item).collect())))
}

#[derive(Deserialize)]
pub(super) struct PublishParams {
    #[serde(default)]
    clear: bool,
}

/// Creates a database, or republishes one: keeping its data when the module's tables are
/// declared as before, replacing it with `clear=true`.
pub(super) async fn publish(
    State(dbs): State<Shared>,
    UrlPath(name): UrlPath<String>,
    Query(params): Query<PublishParams>,
    headers: HeaderMap,
    wasm: Bytes,
) -> Result<Json<JsonValue>, Failure> {
    check_name(&name)?;
    let Some(who) = bearer(&dbs, &headers)? else {
        return Err(Failure(StatusCode::UNAUTHORIZED, "publishing needs a token (POST /v1/identity gives one)".into()));
    };
    let claim = super::claim(&dbs, &name)?;
    let old = match dbs.get(&name) {
        Ok(db) => Some(db),
        Err(Failure(StatusCode::NOT_FOUND, _)) => None,
        Err(unavailable) => return Err(unavailable),
    };
    if let Some(db) = &old {
        owner_only(&dbs, &headers, &name, db, "republish it")?;
    }
    let d = Arc::clone(&dbs);
    let outcome = match old {
        Some(db) if !params.clear => {
            let wasm = wasm.to_vec();
            ask(&db.executor, &name, |reply| Request::Republish { wasm, reply }).await?;
            "updated"
        }
        old => {
            let replaced = old.is_some();
            // The claim goes with the work: a client that hangs up does not release the name
            // while its database is still being created.
            tokio::task::spawn_blocking(move || -> Result<(), Failure> {
                let _claim = claim;
                if replaced {
                    d.remove(&name)?;
                }
                d.create(&name, wasm.to_vec(), Some(who)).map_err(|e| bad(format!("{e:#}")))
            })
            .await
            .map_err(internal)??;
            if replaced {
                "replaced"
            } else {
                "created"
            }
        }
    };
    Ok(Json(json!({ "ok": true, "outcome": outcome })))
}

pub(super) async fn delete(
    State(dbs): State<Shared>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Json<JsonValue>, Failure> {
    // The claim comes first: the database checked is the one removed.
    let claim = super::claim(&dbs, &name)?;
    let db = dbs.get(&name)?;
    owner_only(&dbs, &headers, &name, &db, "delete it")?;
    drop(db);
    tokio::task::spawn_blocking(move || {
        let _claim = claim;
        dbs.remove(&name)
    })
    .await
    .map_err(internal)??;
    Ok(Json(json!({ "ok": true })))
}

pub(super) async fn describe(
    State(dbs): State<Shared>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Json<JsonValue>, Failure> {
    bearer(&dbs, &headers)?;
    let db = dbs.get(&name)?;
    let mut desc = ask(&db.executor, &name, |reply| Request::Describe { reply }).await?;
    desc["name"] = json!(name);
    desc["owner"] = json!(db.owner.map(|o| o.to_hex()));
    Ok(Json(desc))
}

pub(super) async fn call(
    State(dbs): State<Shared>,
    UrlPath((name, reducer)): UrlPath<(String, String)>,
    headers: HeaderMap,
    args: Bytes,
) -> Result<Json<JsonValue>, Failure> {
    let db = dbs.get(&name)?;
    let caller = caller(&dbs, &headers, &db)?.identity;
    let args = std::str::from_utf8(&args).map_err(|_| bad("arguments must be UTF-8 JSON"))?.to_string();
    let args = if args.trim().is_empty() { "[]".to_string() } else { args };
    let offset = ask(&db.executor, &name, |reply| Request::Call { reducer, args, caller, reply }).await?;
    Ok(Json(json!({ "offset": offset })))
}

/// Sends a database a request and awaits its answer: a refusal is a bad request (400), or,
/// while the database cannot write its log, unavailable (503: worth retrying).
pub(super) async fn ask<T>(
    db: &Executor,
    name: &str,
    request: impl FnOnce(oneshot::Sender<Result<T, Refusal>>) -> Request,
) -> Result<T, Failure> {
    let (reply, answer) = oneshot::channel();
    if !db.send(request(reply)) {
        return Err(internal(format!("database {name} has stopped")));
    }
    answer.await.map_err(|_| internal(format!("database {name} stopped")))?.map_err(|r| match r {
        Refusal::Bad(e) => bad(e),
        Refusal::Unavailable(e) => Failure(StatusCode::SERVICE_UNAVAILABLE, e),
    })
}

#[derive(Deserialize)]
pub(super) struct SqlParams {
    as_of: Option<String>,
}

pub(super) async fn sql(
    State(dbs): State<Shared>,
    UrlPath(name): UrlPath<String>,
    Query(params): Query<SqlParams>,
    headers: HeaderMap,
    query: Bytes,
) -> Result<Json<JsonValue>, Failure> {
    let db = dbs.get(&name)?;
    let caller = caller(&dbs, &headers, &db)?;
    let query = std::str::from_utf8(&query).map_err(|_| bad("the query must be UTF-8"))?.to_string();
    let outcome = match params.as_of {
        Some(point) => {
            if !caller.owner {
                return Err(Failure(StatusCode::FORBIDDEN, "only the owner may read past states".into()));
            }
            let point = parse_as_of(&point).map_err(|e| bad(format!("{e:#}")))?;
            let dir = dbs.dir(&name)?;
            let answer = tokio::task::spawn_blocking(move || query_as_of(&dir, &query, point))
                .await
                .map_err(internal)?
                .map_err(|e| bad(format!("{e:#}")))?;
            SqlOutcome::Rows(answer)
        }
        None => ask(&db.executor, &name, |reply| Request::Sql { query, caller, reply }).await?,
    };
    match outcome {
        SqlOutcome::Rows(answer) => {
            let rows = serde_json::to_value(protocol_rows(&answer.rows)).map_err(internal)?;
            Ok(Json(json!({ "columns": columns(&answer.columns), "rows": rows, "offset": answer.offset })))
        }
        SqlOutcome::Changed { rows, offset } => Ok(Json(json!({ "changed": rows, "offset": offset }))),
    }
}

#[derive(Deserialize)]
pub(super) struct LogParams {
    #[serde(default)]
    after: u64,
    limit: Option<usize>,
}

/// Most transactions one page of the log holds; a larger `limit` is cut to it.
const MAX_LOG_PAGE: usize = 1000;

/// Transactions with their row changes. Who called and with what arguments are the owner's,
/// as are private tables' changes: others see the reducer's name, its time and the changes
/// of public tables (which they could subscribe to anyway).
pub(super) async fn log(
    State(dbs): State<Shared>,
    UrlPath(name): UrlPath<String>,
    Query(params): Query<LogParams>,
    headers: HeaderMap,
) -> Result<Json<JsonValue>, Failure> {
    let db = dbs.get(&name)?;
    let owner = caller(&dbs, &headers, &db)?.owner;
    let private: Vec<String> = if owner {
        Vec::new()
    } else {
        let desc = ask(&db.executor, &name, |reply| Request::Describe { reply }).await?;
        let tables = desc["tables"].as_array().cloned().unwrap_or_default();
        tables
            .iter()
            .filter(|t| t["public"] == json!(false))
            .filter_map(|t| t["name"].as_str().map(String::from))
            .collect()
    };
    let dir = dbs.dir(&name)?;
    // The log's files may hold records being made durable (or about to be cut off again
    // after a failed write): nothing past the durable offset is shown.
    let durable = db.executor.metrics().durable.load(std::sync::atomic::Ordering::Relaxed);
    let limit = params.limit.unwrap_or(MAX_LOG_PAGE).clamp(1, MAX_LOG_PAGE);
    let records = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        storage::history(&dir, params.after, |r| {
            if r.offset > durable {
                return false;
            }
            let visible = || r.changes.iter().filter(|c| !private.contains(&c.table));
            let rows: usize = visible().map(|c| c.inserts.len() + c.deletes.len()).sum();
            let changes: Vec<JsonValue> = visible()
                .map(|c| {
                    json!({
                        "table": c.table,
                        "inserts": protocol_rows(&c.inserts),
                        "deletes": protocol_rows(&c.deletes),
                    })
                })
                .collect();
            out.push(json!({
                "offset": r.offset,
                "timestamp_micros": r.meta.timestamp_micros,
                "reducer": r.meta.reducer,
                "caller": if owner { json!(r.meta.caller) } else { JsonValue::Null },
                "args": if owner { json!(r.meta.args) } else { JsonValue::Null },
                "rows": rows,
                "changes": changes,
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

#[derive(Deserialize)]
pub(super) struct ModuleLogParams {
    #[serde(default)]
    after: u64,
}

/// The module's log lines (what its reducers logged), the owner's alone: a module's own
/// messages may say anything about its data.
pub(super) async fn module_log(
    State(dbs): State<Shared>,
    UrlPath(name): UrlPath<String>,
    Query(params): Query<ModuleLogParams>,
    headers: HeaderMap,
) -> Result<Json<JsonValue>, Failure> {
    let db = dbs.get(&name)?;
    owner_only(&dbs, &headers, &name, &db, "read its module's log")?;
    let after = params.after;
    Ok(Json(ask(&db.executor, &name, |reply| Request::ModuleLog { after, reply }).await?))
}

pub(super) async fn metrics(State(dbs): State<Shared>) -> String {
    let live: Vec<(String, Database)> =
        dbs.live.lock().expect("databases").iter().map(|(n, d)| (n.clone(), d.clone())).collect();
    let refs: Vec<(String, &crate::metrics::Metrics)> =
        live.iter().map(|(n, d)| (n.clone(), d.executor.metrics())).collect();
    let mut text = crate::metrics::render(&refs);
    text.push_str(&crate::metrics::render_server(dbs.send_queued.load(std::sync::atomic::Ordering::Relaxed)));
    text
}
