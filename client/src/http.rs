//! The HTTP API (docs/PROTOCOL.md): identities, publishing and deleting databases, schemas,
//! reducer calls, one-off SQL and transaction logs. Blocking calls; a refusal carries the
//! server's reason.

use crate::protocol::{typed_rows, ColumnInfo, Row};
use crate::{ClientError, QueryAnswer};
use serde::Deserialize;
use serde_json::Value as Json;

/// A server's HTTP API, as one identity (or none).
#[derive(Clone, Debug)]
pub struct Http {
    server: String,
    token: Option<String>,
    agent: ureq::Agent,
}

#[derive(Deserialize)]
struct Answer {
    columns: Vec<ColumnInfo>,
    rows: Vec<Row>,
    offset: u64,
}

#[derive(Deserialize)]
struct Changed {
    changed: u64,
    offset: u64,
}

/// What a SQL request did: a query's answer, or the rows its last statement changed and the
/// offset after it.
#[derive(Clone, Debug, PartialEq)]
pub enum SqlResult {
    Rows(QueryAnswer),
    Changed { rows: u64, offset: u64 },
}

/// The server's reason in an error answer's body: its `{"error": …}`, else the body itself.
pub(crate) fn reason(body: &str) -> String {
    let error = serde_json::from_str::<Json>(body).ok().and_then(|j| j.get("error")?.as_str().map(str::to_string));
    error.unwrap_or_else(|| body.to_string())
}

impl Http {
    /// `server` is like `http://127.0.0.1:3000`.
    pub fn new(server: &str, token: Option<String>) -> Http {
        Http { server: server.trim_end_matches('/').to_string(), token, agent: ureq::Agent::new() }
    }

    fn request(&self, method: &str, path: &str) -> ureq::Request {
        let r = self.agent.request(method, &format!("{}{path}", self.server));
        match &self.token {
            Some(t) => r.set("Authorization", &format!("Bearer {t}")),
            None => r,
        }
    }

    /// Sends a request; a non-2xx answer becomes the server's error message.
    fn send(&self, request: ureq::Request, body: Option<&[u8]>) -> Result<Json, ClientError> {
        let sent = match body {
            Some(b) => request.send_bytes(b),
            None => request.call(),
        };
        match sent {
            Ok(response) => response.into_json().map_err(|e| ClientError::Protocol(e.to_string())),
            Err(ureq::Error::Status(code, response)) => {
                let reason = reason(&response.into_string().unwrap_or_default());
                Err(ClientError::Refused(format!("{reason} (HTTP {code})")))
            }
            Err(e) => Err(ClientError::Connect(e.to_string())),
        }
    }

    /// A new identity and its token.
    pub fn new_identity(&self) -> Result<(String, String), ClientError> {
        let j = self.send(self.request("POST", "/v1/identity"), Some(b""))?;
        match (j["identity"].as_str(), j["token"].as_str()) {
            (Some(i), Some(t)) => Ok((i.to_string(), t.to_string())),
            _ => Err(ClientError::Protocol(format!("unexpected answer {j}"))),
        }
    }

    /// Publishes a module as database `name`: created, or updated keeping its data when the
    /// tables are unchanged (`clear` replaces it and its data). A module larger than the
    /// server takes is refused here, before it is sent (a server refusing a body mid-send
    /// leaves the sender only a broken pipe).
    pub fn publish(&self, name: &str, wasm: &[u8], clear: bool) -> Result<Json, ClientError> {
        // A server without `/v1/limits` (an older one) sets no limit a client could check.
        let limits = match self.limits() {
            Err(ClientError::Refused(m)) if m.ends_with("(HTTP 404)") => Json::Null,
            other => other?,
        };
        let limit = limits["max_module_bytes"].as_u64();
        if let Some(limit) = limit.filter(|l| wasm.len() as u64 > *l) {
            return Err(ClientError::Refused(format!("module too large ({} bytes, limit {limit})", wasm.len())));
        }
        let path = format!("/v1/database/{name}{}", if clear { "?clear=true" } else { "" });
        self.send(self.request("POST", &path), Some(wasm))
    }

    /// The bounds the server holds requests to (`max_message_bytes`, `max_module_bytes`, …).
    pub fn limits(&self) -> Result<Json, ClientError> {
        self.send(self.request("GET", "/v1/limits"), None)
    }

    pub fn delete(&self, name: &str) -> Result<Json, ClientError> {
        self.send(self.request("DELETE", &format!("/v1/database/{name}")), None)
    }

    /// The database's owner, tables and reducers.
    pub fn describe(&self, name: &str) -> Result<Json, ClientError> {
        self.send(self.request("GET", &format!("/v1/database/{name}/schema")), None)
    }

    /// Every database: name and owner.
    pub fn list(&self) -> Result<Json, ClientError> {
        self.send(self.request("GET", "/v1/database"), None)
    }

    /// Calls a reducer; its transaction's offset once durable.
    pub fn call(&self, name: &str, reducer: &str, args: &Json) -> Result<u64, ClientError> {
        let body = args.to_string();
        let j =
            self.send(self.request("POST", &format!("/v1/database/{name}/call/{reducer}")), Some(body.as_bytes()))?;
        j["offset"].as_u64().ok_or_else(|| ClientError::Protocol(format!("unexpected answer {j}")))
    }

    /// Runs SQL: queries, and as the owner INSERT, UPDATE and DELETE (each statement its own
    /// transaction); the last statement's outcome. `as_of` (an offset or an RFC 3339 time)
    /// asks a past state, for one query.
    pub fn sql(&self, name: &str, sql: &str, as_of: Option<&str>) -> Result<SqlResult, ClientError> {
        let mut request = self.request("POST", &format!("/v1/database/{name}/sql"));
        if let Some(point) = as_of {
            request = request.query("as_of", point);
        }
        let j = self.send(request, Some(sql.as_bytes()))?;
        let protocol = |e: serde_json::Error| ClientError::Protocol(e.to_string());
        if j.get("changed").is_some() {
            let c: Changed = serde_json::from_value(j).map_err(protocol)?;
            return Ok(SqlResult::Changed { rows: c.changed, offset: c.offset });
        }
        let a: Answer = serde_json::from_value(j).map_err(protocol)?;
        let rows = typed_rows(a.rows, &a.columns).map_err(ClientError::Protocol)?;
        Ok(SqlResult::Rows(QueryAnswer { columns: a.columns, rows, offset: a.offset }))
    }

    /// Runs one query (see `sql`): its answer.
    pub fn query(&self, name: &str, query: &str, as_of: Option<&str>) -> Result<QueryAnswer, ClientError> {
        match self.sql(name, query, as_of)? {
            SqlResult::Rows(answer) => Ok(answer),
            SqlResult::Changed { .. } => Err(ClientError::Protocol("expected a query, not a change".into())),
        }
    }

    /// Transactions after `after`, at most `limit`: offset, time, reducer, caller, arguments.
    pub fn logs(&self, name: &str, after: u64, limit: usize) -> Result<Vec<Json>, ClientError> {
        self.items(&format!("/v1/database/{name}/log?after={after}&limit={limit}"))
    }

    /// The module's log lines numbered after `after` (the owner's): seq, time, level, reducer,
    /// message.
    pub fn module_logs(&self, name: &str, after: u64) -> Result<Vec<Json>, ClientError> {
        self.items(&format!("/v1/database/{name}/logs?after={after}"))
    }

    fn items(&self, path: &str) -> Result<Vec<Json>, ClientError> {
        match self.send(self.request("GET", path), None)? {
            Json::Array(items) => Ok(items),
            other => Err(ClientError::Protocol(format!("unexpected answer {other}"))),
        }
    }
}
