//! A live connection to one database over the WebSocket protocol. One I/O thread reads every
//! frame in order and applies it (caches, answers, callbacks) before the next; the caller's
//! methods block until their answer arrives. A reducer's result arrives after its
//! transaction's update, so when `call` returns the caches already hold its effects.

use crate::cache::QueryCache;
use crate::protocol::{typed_rows, AppliedQuery, ClientMessage, Encoding, QueryUpdate, Row, ServerMessage, Status};
use crate::{ClientError, QueryAnswer};
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

/// Where and how to connect.
#[derive(Clone, Debug)]
pub struct Config {
    /// The server's HTTP address, e.g. `http://127.0.0.1:3000`.
    pub server: String,
    pub database: String,
    /// A token from an earlier connection (or `POST /v1/identity`); `None` asks for a new
    /// identity.
    pub token: Option<String>,
    pub encoding: Encoding,
    /// How long a request waits for its answer (and `reconnect` for the server).
    pub timeout: Duration,
}

impl Config {
    pub fn new(server: &str, database: &str) -> Config {
        Config {
            server: server.trim_end_matches('/').to_string(),
            database: database.to_string(),
            token: None,
            encoding: Encoding::Json,
            timeout: Duration::from_secs(30),
        }
    }
}

/// A committed transaction as a client sees it.
#[derive(Clone, Debug)]
pub struct Transaction {
    pub offset: u64,
    pub timestamp_micros: u64,
    pub reducer: String,
    /// The caller's identity (hex), shown to the database's owner and to the caller itself;
    /// empty for the server's own transactions and for others' calls.
    pub caller: String,
    /// Per changed query (by the SQL this client subscribed with): typed inserts and deletes.
    pub updates: Vec<(String, Vec<Row>, Vec<Row>)>,
}

type TransactionCallback = Box<dyn FnMut(&Transaction) + Send>;

#[derive(Default)]
struct State {
    /// Caches by the SQL subscribed with.
    caches: HashMap<String, QueryCache>,
    /// The server's query ids and the SQL texts they serve.
    routes: HashMap<u64, Vec<String>>,
    answers: HashMap<u64, ServerMessage>,
    /// The last transaction applied.
    offset: u64,
    /// Why the connection ended, once it has.
    closed: Option<String>,
    /// Errors the server sent about frames it could not read.
    errors: Vec<String>,
    on_transaction: Vec<TransactionCallback>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

/// A connection: identity, caches of subscribed queries, requests.
pub struct Client {
    config: Config,
    identity: String,
    token: String,
    shared: Arc<Shared>,
    outgoing: UnboundedSender<Message>,
    thread: Option<JoinHandle<()>>,
    next_request: u64,
}

impl Client {
    /// Connects; the server answers with this client's identity and token.
    pub fn connect(config: Config) -> Result<Client, ClientError> {
        let shared = Arc::new(Shared { state: Mutex::new(State::default()), changed: Condvar::new() });
        let (outgoing, thread, identity, token) = open(&config, Arc::clone(&shared))?;
        Ok(Client { config, identity, token, shared, outgoing, thread: Some(thread), next_request: 1 })
    }

    /// This client's identity (64 hex digits).
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The token that connects again as the same identity.
    pub fn token(&self) -> &str {
        &self.token
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().expect("client state")
    }

    /// Sends a request and waits for the answer with its id.
    fn request(&mut self, make: impl FnOnce(u64) -> ClientMessage) -> Result<ServerMessage, ClientError> {
        let id = self.next_request;
        self.next_request += 1;
        self.send(&make(id))?;
        let answer = self.wait(self.config.timeout, |state| match state.answers.remove(&id) {
            Some(answer) => Some(Ok(answer)),
            None => state.closed.clone().map(|reason| Err(ClientError::Closed(reason))),
        });
        answer.unwrap_or(Err(ClientError::Timeout))
    }

    /// Waits until `ready` gives a value, or the timeout passes.
    fn wait<T>(&self, timeout: Duration, mut ready: impl FnMut(&mut State) -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            if let Some(done) = ready(&mut state) {
                return Some(done);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            state = self.shared.changed.wait_timeout(state, left).expect("client state").0;
        }
    }

    /// Sends a message as it is (tests use this for frames the server must refuse).
    pub fn send(&self, message: &ClientMessage) -> Result<(), ClientError> {
        let bytes = self.config.encoding.encode(message);
        self.send_raw(match self.config.encoding {
            Encoding::Json => Message::Text(String::from_utf8(bytes).expect("JSON is UTF-8").into()),
            Encoding::MessagePack => Message::Binary(bytes.into()),
        })
    }

    /// Sends a raw frame.
    pub fn send_raw(&self, frame: Message) -> Result<(), ClientError> {
        self.outgoing.send(frame).map_err(|_| ClientError::Closed(self.closed().unwrap_or_default()))
    }

    /// Subscribes to queries, all applied at one offset; returns that offset and each query's
    /// rows then (typed), which its cache held at that point. Any error subscribes none.
    pub fn subscribe(&mut self, queries: &[&str]) -> Result<(u64, Vec<AppliedQuery>), ClientError> {
        let queries: Vec<String> = queries.iter().map(|q| q.to_string()).collect();
        match self.request(|request_id| ClientMessage::Subscribe { request_id, queries })? {
            ServerMessage::SubscribeApplied { offset, queries, .. } => Ok((offset, queries)),
            other => Err(refusal(other)),
        }
    }

    /// Ends the subscription to a query (by the SQL it was subscribed with).
    pub fn unsubscribe(&mut self, sql: &str) -> Result<(), ClientError> {
        let query_id = {
            let state = self.lock();
            let found = state.routes.iter().find(|(_, sqls)| sqls.iter().any(|s| s == sql));
            *found.ok_or_else(|| ClientError::Refused(format!("not subscribed to {sql}")))?.0
        };
        match self.request(|request_id| ClientMessage::Unsubscribe { request_id, query_id })? {
            ServerMessage::UnsubscribeApplied { .. } => {
                let mut state = self.lock();
                state.caches.remove(sql);
                if let Some(sqls) = state.routes.get_mut(&query_id) {
                    sqls.retain(|s| s != sql);
                    if sqls.is_empty() {
                        state.routes.remove(&query_id);
                    }
                }
                Ok(())
            }
            other => Err(refusal(other)),
        }
    }

    /// Calls a reducer; returns its transaction's offset once committed (and applied here).
    pub fn call(&mut self, reducer: &str, args: serde_json::Value) -> Result<u64, ClientError> {
        let reducer = reducer.to_string();
        match self.request(|request_id| ClientMessage::CallReducer { request_id, reducer, args })? {
            ServerMessage::ReducerResult { status: Status::Committed, offset: Some(offset), .. } => Ok(offset),
            ServerMessage::ReducerResult { error, .. } => {
                Err(ClientError::Reducer(error.unwrap_or_else(|| "the reducer failed".into())))
            }
            other => Err(refusal(other)),
        }
    }

    /// Evaluates a query once on the current state.
    pub fn query(&mut self, sql: &str) -> Result<QueryAnswer, ClientError> {
        let sql = sql.to_string();
        match self.request(|request_id| ClientMessage::OneOffQuery { request_id, sql })? {
            ServerMessage::QueryResult { offset, columns, rows, .. } => {
                let rows = typed_rows(rows, &columns).map_err(ClientError::Protocol)?;
                Ok(QueryAnswer { columns, rows, offset })
            }
            other => Err(refusal(other)),
        }
    }

    /// A subscribed query's current rows (in no particular order).
    pub fn rows(&self, sql: &str) -> Option<Vec<Row>> {
        self.lock().caches.get(sql).map(QueryCache::rows)
    }

    /// Runs `f` on a subscribed query's cache (to read its columns or key, or add callbacks:
    /// they run on the connection's thread and must not call this client).
    pub fn with_cache<T>(&self, sql: &str, f: impl FnOnce(&mut QueryCache) -> T) -> Option<T> {
        self.lock().caches.get_mut(sql).map(f)
    }

    /// Calls `f` with every transaction that changes a subscribed query, after the caches
    /// hold it (on the connection's thread; it must not call this client).
    pub fn on_transaction(&self, f: impl FnMut(&Transaction) + Send + 'static) {
        self.lock().on_transaction.push(Box::new(f));
    }

    /// The offset of the last transaction or subscription applied.
    pub fn offset(&self) -> u64 {
        self.lock().offset
    }

    /// Why the connection ended, if it has.
    pub fn closed(&self) -> Option<String> {
        self.lock().closed.clone()
    }

    /// Errors the server reported about frames it could not read.
    pub fn errors(&self) -> Vec<String> {
        self.lock().errors.clone()
    }

    /// Waits until `done` holds of (offset, closed reason), or the timeout passes.
    pub fn wait_until(&self, timeout: Duration, mut done: impl FnMut(u64, Option<&str>) -> bool) -> bool {
        self.wait(timeout, |state| done(state.offset, state.closed.as_deref()).then_some(())).is_some()
    }

    /// Connects again as the same identity (retrying until the timeout while the server is
    /// down) and resubscribes every query; each cache becomes the new result, its callbacks
    /// seeing only the rows that differ.
    pub fn reconnect(&mut self) -> Result<(u64, Vec<AppliedQuery>), ClientError> {
        self.shutdown();
        let config = Config { token: Some(self.token.clone()), ..self.config.clone() };
        let deadline = Instant::now() + self.config.timeout;
        let (outgoing, thread) = loop {
            {
                let mut state = self.lock();
                state.closed = None;
                state.routes.clear();
            }
            match open(&config, Arc::clone(&self.shared)) {
                Ok((outgoing, thread, _, _)) => break (outgoing, thread),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        (self.outgoing, self.thread) = (outgoing, Some(thread));
        let mut queries: Vec<String> = self.lock().caches.keys().cloned().collect();
        queries.sort();
        let queries: Vec<&str> = queries.iter().map(String::as_str).collect();
        if queries.is_empty() {
            return Ok((self.offset(), Vec::new()));
        }
        self.subscribe(&queries)
    }

    fn shutdown(&mut self) {
        let _ = self.outgoing.send(Message::Close(None));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// An answer that is not the one asked for: the server's refusal.
fn refusal(answer: ServerMessage) -> ClientError {
    match answer {
        ServerMessage::SubscriptionError { error, .. } | ServerMessage::Error { error, .. } => {
            ClientError::Refused(error)
        }
        other => ClientError::Protocol(format!("unexpected answer {other:?}")),
    }
}

type Opened = (UnboundedSender<Message>, JoinHandle<()>, String, String);

/// Opens a connection: its I/O thread, and the identity and token the server sent first.
fn open(config: &Config, shared: Arc<Shared>) -> Result<Opened, ClientError> {
    let url = format!(
        "{}/v1/database/{}/subscribe",
        config.server.replacen("http://", "ws://", 1).replacen("https://", "wss://", 1),
        config.database
    );
    let mut request = url.as_str().into_client_request().map_err(|e| ClientError::Connect(e.to_string()))?;
    let headers = request.headers_mut();
    headers.insert("Sec-WebSocket-Protocol", HeaderValue::from_static(config.encoding.protocol()));
    if let Some(token) = &config.token {
        let value =
            HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| ClientError::Connect(e.to_string()))?;
        headers.insert("Authorization", value);
    }
    let (outgoing, receiver) = unbounded_channel();
    let (ready, opened) = std::sync::mpsc::channel();
    let encoding = config.encoding;
    let thread = std::thread::Builder::new()
        .name("sluice-client".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(run(request, encoding, receiver, shared, ready));
        })
        .map_err(|e| ClientError::Connect(e.to_string()))?;
    match opened.recv_timeout(config.timeout) {
        Ok(Ok((identity, token))) => Ok((outgoing, thread, identity, token)),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => Err(ClientError::Timeout),
    }
}

type Ready = std::sync::mpsc::Sender<Result<(String, String), ClientError>>;

/// The I/O thread: connects, reports the identity, then applies every frame until closed.
async fn run(
    request: tokio_tungstenite::tungstenite::handshake::client::Request,
    encoding: Encoding,
    mut outgoing: UnboundedReceiver<Message>,
    shared: Arc<Shared>,
    ready: Ready,
) {
    // TCP_NODELAY: a request goes out at once, not held back by Nagle's algorithm.
    let mut ws = match tokio_tungstenite::connect_async_with_config(request, None, true).await {
        Ok((ws, _)) => ws,
        Err(e) => {
            let _ = ready.send(Err(ClientError::Connect(describe_connect_error(e))));
            return;
        }
    };
    let first = match ws.next().await {
        Some(Ok(frame)) => decode(encoding, &frame),
        other => Err(format!("the connection ended before the identity: {other:?}")),
    };
    match first {
        Ok(Some(ServerMessage::IdentityToken { identity, token })) => {
            let _ = ready.send(Ok((identity, token)));
        }
        other => {
            let _ = ready.send(Err(ClientError::Protocol(format!("expected IdentityToken, got {other:?}"))));
            return;
        }
    }
    let reason = loop {
        tokio::select! {
            frame = ws.next() => match frame {
                Some(Ok(Message::Close(close))) => {
                    break close.map_or("closed by the server".into(), |c| format!("closed by the server: {}", c.reason));
                }
                Some(Ok(frame)) => match decode(encoding, &frame) {
                    Ok(Some(message)) => {
                        if let Err(e) = apply(&shared, message) {
                            break e;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => break e,
                },
                Some(Err(e)) => break format!("connection lost: {e}"),
                None => break "connection lost".into(),
            },
            out = outgoing.recv() => match out {
                Some(frame) => {
                    let closing = matches!(frame, Message::Close(_));
                    if ws.send(frame).await.is_err() || closing {
                        break "closed by the client".into();
                    }
                }
                None => break "closed by the client".into(),
            },
        }
    };
    let mut state = shared.state.lock().expect("client state");
    state.closed = Some(reason);
    shared.changed.notify_all();
}

/// A connection refused at the HTTP upgrade carries the server's reason in its body.
fn describe_connect_error(e: tokio_tungstenite::tungstenite::Error) -> String {
    match e {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            let body = response.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default();
            format!("{}: {}", response.status(), crate::http::reason(&body))
        }
        other => other.to_string(),
    }
}

/// A frame's message (`None` for pings and pongs).
fn decode(encoding: Encoding, frame: &Message) -> Result<Option<ServerMessage>, String> {
    let bytes: &[u8] = match frame {
        Message::Text(t) => t.as_bytes(),
        Message::Binary(b) => b,
        _ => return Ok(None),
    };
    encoding.decode(bytes).map(Some).map_err(|e| format!("unreadable message from the server: {e}"))
}

/// Applies one message: caches and routes first, then the answer its request waits for.
fn apply(shared: &Shared, message: ServerMessage) -> Result<(), String> {
    let mut state = shared.state.lock().expect("client state");
    match message {
        ServerMessage::TransactionUpdate { offset, timestamp_micros, reducer, caller, updates } => {
            let mut tx = Transaction { offset, timestamp_micros, reducer, caller, updates: Vec::new() };
            for QueryUpdate { query_id, inserts, deletes } in updates {
                let sqls = state.routes.get(&query_id).cloned().unwrap_or_default();
                for sql in sqls {
                    let cache = state.caches.get_mut(&sql).expect("a routed query has a cache");
                    let inserts = typed_rows(inserts.clone(), &cache.columns)?;
                    let deletes = typed_rows(deletes.clone(), &cache.columns)?;
                    cache.apply(inserts.clone(), deletes.clone())?;
                    tx.updates.push((sql, inserts, deletes));
                }
            }
            state.offset = offset;
            let mut callbacks = std::mem::take(&mut state.on_transaction);
            for f in &mut callbacks {
                f(&tx);
            }
            state.on_transaction = callbacks;
        }
        ServerMessage::TransactionUpdates { transactions } => {
            drop(state);
            for t in transactions {
                if !matches!(t, ServerMessage::TransactionUpdate { .. }) {
                    return Err(format!("a TransactionUpdates holding {t:?}"));
                }
                apply(shared, t)?;
            }
            return Ok(());
        }
        ServerMessage::SubscribeApplied { request_id, offset, queries } => {
            let mut typed = Vec::new();
            for mut q in queries {
                q.rows = typed_rows(q.rows, &q.columns)?;
                let rows = q.rows.clone();
                let cache = state
                    .caches
                    .entry(q.sql.clone())
                    .or_insert_with(|| QueryCache::new(q.sql.clone(), q.columns.clone(), q.primary_key.clone()));
                cache.reset(rows);
                let routes = state.routes.entry(q.query_id).or_default();
                if !routes.contains(&q.sql) {
                    routes.push(q.sql.clone());
                }
                typed.push(q);
            }
            state.offset = state.offset.max(offset);
            let answer = ServerMessage::SubscribeApplied { request_id, offset, queries: typed };
            state.answers.insert(request_id, answer);
        }
        ServerMessage::Error { request_id: None, error } => state.errors.push(error),
        ServerMessage::IdentityToken { .. } => return Err("a second IdentityToken".into()),
        answer => match answer.request_id() {
            Some(id) => drop(state.answers.insert(id, answer)),
            None => return Err(format!("an unexpected message: {answer:?}")),
        },
    }
    shared.changed.notify_all();
    Ok(())
}
