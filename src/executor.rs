//! One database's executor: a thread that owns its `ModuleDb` (wasm host, engine, storage)
//! and serves requests one at a time, running due scheduled reducers between them. Reducer
//! calls queued one after another run as a batch: each its own transaction, the engine
//! brought up to date with all of them in one step. Nothing leaves before it is durable: the
//! executor takes every request already queued, runs them, then waits once for the log to
//! make their transactions durable before answering them all — so while one batch is being
//! fsynced the next one queues, and many transactions share each fsync (group commit). Its
//! WebSocket clients (`Sessions`) are served here too, so every transaction's update reaches
//! them in commit order, before the answer to its caller; each client's frames of a batch go
//! to its writer in one hand-off.

use crate::demo::now_micros;
use crate::identity::Identity;
use crate::metrics::Metrics;
use crate::module_db::{Caller, ModuleDb, SqlOutcome};
use crate::module_log::ModuleLog;
use crate::sessions::{CallFrom, ClientId, ClientSink, PendingCall, SendLimits, Sessions};
use anyhow::Result;
use axum::extract::ws::Message;
use sluice_client::protocol::{ClientMessage, Encoding};
use sluice_runtime::ReducerError;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::oneshot;

/// A database thread's stack. Planning and rendering grow their own stacks where they
/// recurse; evaluating an expression recurses over it as deep as the planner allows
/// (`MAX_NESTING` levels of SQL, a few more once bound), which this holds with room to spare
/// in unoptimised builds too. Only the pages used are ever touched.
const STACK_BYTES: usize = 16 << 20;

/// Requests served at most per batch before answering (bounds a reply's wait).
const BATCH: usize = 1024;

/// What a database is asked to do.
pub enum Request {
    /// Call a reducer with JSON arguments; answers the transaction's offset.
    Call { reducer: String, args: String, caller: Identity, reply: oneshot::Sender<Result<u64, Refusal>> },
    /// A SQL request over HTTP: queries, and the owner's INSERT, UPDATE and DELETE.
    Sql { query: String, caller: Caller, reply: oneshot::Sender<Result<SqlOutcome, Refusal>> },
    /// A WebSocket client connected (its identity token already sent).
    Connect { client: ClientId, caller: Caller, encoding: Encoding, sink: ClientSink },
    /// A client's request.
    Client { client: ClientId, message: ClientMessage },
    /// A client's connection ended.
    Disconnect { client: ClientId },
    /// The module's description (tables and reducers).
    Describe { reply: oneshot::Sender<Result<serde_json::Value, Refusal>> },
    /// Replace the module, keeping the data (its tables must be declared as before).
    Republish { wasm: Vec<u8>, reply: oneshot::Sender<Result<serde_json::Value, Refusal>> },
    /// The module's log lines numbered after `after`.
    ModuleLog { after: u64, reply: oneshot::Sender<Result<serde_json::Value, Refusal>> },
}

/// A handle to a database's executor thread; `shutdown` (or dropping it) shuts the database
/// down cleanly.
pub struct Executor {
    sender: Mutex<Option<Sender<Request>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    metrics: Arc<Metrics>,
}

impl Executor {
    /// Starts a thread that opens the database with `open` (the database lives and dies on
    /// that thread) and then serves requests.
    /// `send` bounds the bytes waiting to be sent to WebSocket clients.
    pub fn spawn(
        name: &str,
        send: SendLimits,
        budget: sluice_ivm::QueryBudget,
        open: impl FnOnce() -> Result<ModuleDb> + Send + 'static,
    ) -> Result<Executor> {
        let (sender, receiver) = channel();
        let (ready, opened) = channel::<Result<(), String>>();
        let metrics = Arc::new(Metrics::default());
        let m = Arc::clone(&metrics);
        let thread_name = name.to_string();
        let thread = std::thread::Builder::new().name(format!("db-{name}")).stack_size(STACK_BYTES).spawn(
            move || match open() {
                Ok(mut db) => {
                    db.set_query_budget(budget);
                    let _ = ready.send(Ok(()));
                    let mut log = Log { name: thread_name, lines: ModuleLog::default() };
                    serve(db, receiver, Sessions::new(send, Arc::clone(&m)), &m, &mut log);
                }
                Err(e) => {
                    let _ = ready.send(Err(format!("{e:#}")));
                }
            },
        )?;
        match opened.recv() {
            Ok(Ok(())) => Ok(Executor { sender: Mutex::new(Some(sender)), thread: Mutex::new(Some(thread)), metrics }),
            Ok(Err(e)) => Err(anyhow::anyhow!(e)),
            Err(_) => Err(anyhow::anyhow!("the database thread stopped while opening")),
        }
    }

    /// Queues a request; false if the database has stopped.
    pub fn send(&self, request: Request) -> bool {
        self.metrics.queued.fetch_add(1, Ordering::Relaxed);
        let sent = self.sender.lock().expect("executor").as_ref().is_some_and(|s| s.send(request).is_ok());
        if !sent {
            self.metrics.queued.fetch_sub(1, Ordering::Relaxed);
        }
        sent
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Stops taking requests, serves those queued, closes its clients' connections and shuts
    /// the database down (everything durable, a snapshot taken); later requests are refused.
    pub fn shutdown(&self) {
        drop(self.sender.lock().expect("executor").take());
        if let Some(t) = self.thread.lock().expect("executor").take() {
            let _ = t.join();
        }
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Why a request was not served: its own fault (`Bad`: asking again will not help), or the
/// database's state for now (`Unavailable`: its log cannot be written; asking again later may).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    Bad(String),
    #[error("{0}")]
    Unavailable(String),
}

impl Refusal {
    /// An error as its requester is told it: unavailable where writes are refused for now.
    pub fn of(e: &anyhow::Error) -> Refusal {
        let read_only = e.chain().any(|c| matches!(c.downcast_ref(), Some(ReducerError::ReadOnly(_))));
        Refusal::from_text(format!("{e:#}"), read_only)
    }

    /// A reducer call's failure as its requester is told it.
    pub fn of_call(e: &ReducerError) -> Refusal {
        Refusal::from_text(e.to_string(), matches!(e, ReducerError::ReadOnly(_)))
    }

    fn from_text(text: String, unavailable: bool) -> Refusal {
        if unavailable {
            Refusal::Unavailable(text)
        } else {
            Refusal::Bad(text)
        }
    }
}

/// Something to send once the transactions before it are durable, in order.
pub enum Outbound {
    /// A frame for a WebSocket client (dropped if the batch could not be made durable).
    Client(ClientId, Message),
    Answer(Answer),
}

/// The answer to a request made over HTTP (or a reducer call's result).
pub enum Answer {
    Call(oneshot::Sender<Result<u64, Refusal>>, Result<u64, Refusal>),
    Sql(oneshot::Sender<Result<SqlOutcome, Refusal>>, Result<SqlOutcome, Refusal>),
    Json(oneshot::Sender<Result<serde_json::Value, Refusal>>, Result<serde_json::Value, Refusal>),
}

impl Answer {
    /// Sends the outcome, or the durability error that overrides it.
    fn send<T>(self, durable: &Result<T, Refusal>) {
        let durable = durable.as_ref().map_err(Refusal::clone);
        match self {
            Answer::Call(reply, outcome) => drop(reply.send(durable.and(outcome))),
            Answer::Sql(reply, outcome) => drop(reply.send(durable.and(outcome))),
            Answer::Json(reply, outcome) => drop(reply.send(durable.and(outcome))),
        }
    }
}

/// A database's module log, and its name to print the lines under.
struct Log {
    name: String,
    lines: ModuleLog,
}

impl Log {
    /// Keeps what the module logged since last time, printing each line.
    fn take(&mut self, db: &mut ModuleDb) {
        for line in db.take_logs() {
            let kept = self.lines.push(line, now_micros());
            eprintln!("{} [{}] {}: {}", self.name, kept.level, kept.reducer, kept.message);
        }
    }
}

fn serve(mut db: ModuleDb, requests: Receiver<Request>, mut sessions: Sessions, metrics: &Metrics, log: &mut Log) {
    metrics.durable.store(db.durable(), Ordering::Relaxed);
    let mut pending = Vec::new();
    // Each client's frames of a batch, in order, handed to its writer at once.
    let mut frames: HashMap<ClientId, Vec<Message>> = HashMap::new();
    loop {
        let next = db.next_scheduled().map(|at| Duration::from_micros(at.saturating_sub(now_micros())));
        let first = match next {
            Some(wait) => match requests.recv_timeout(wait) {
                Ok(r) => Some(r),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            },
            None => match requests.recv() {
                Ok(r) => Some(r),
                Err(_) => break,
            },
        };
        // Reducer calls in a row run as one batch: one engine step for all their transactions.
        let mut calls = Vec::new();
        for request in first.into_iter().chain(std::iter::from_fn(|| requests.try_recv().ok()).take(BATCH)) {
            metrics.queued.fetch_sub(1, Ordering::Relaxed);
            run(&mut db, &mut sessions, request, &mut calls, &mut pending, log);
        }
        sessions.call_batch(&mut db, calls, &mut pending);
        for (run, deltas) in db.run_scheduled(now_micros()) {
            if let Some(e) = &run.error {
                eprintln!("scheduled {} failed: {e}", run.reducer);
            }
            sessions.fan_out(&(run.tx, deltas), &mut pending);
        }
        log.take(&mut db);
        sessions.end_failed(db.take_failed_queries());
        metrics.refusing_writes.store(db.refusing_writes(), Ordering::Relaxed);
        let last = db.host().datastore().offset();
        match db.wait_durable(last) {
            Ok(()) => {
                metrics.durable.store(last, Ordering::Relaxed);
                release(&mut pending, &mut frames, &mut sessions, &Ok(()));
            }
            Err(e) => {
                // What did not become durable must not stay visible: the database goes back to
                // what its files hold, and serves reads but no writes until its log takes them.
                let failure = format!("{e:#}");
                // (A close frame's reason holds 123 bytes: the cause is in the answers and the
                // server's output.)
                sessions
                    .close_all("the database went back to its last durable transaction; reconnect and subscribe again");
                match db.revert(&failure) {
                    Ok(reverted) => {
                        db = reverted;
                        metrics.durable.store(db.durable(), Ordering::Relaxed);
                        eprintln!("{}: {failure}; went back to offset {}, refusing writes", log.name, db.durable());
                        let answer = Refusal::Unavailable(format!(
                            "not committed: {failure}; the database went back to its last durable transaction"
                        ));
                        release(&mut pending, &mut frames, &mut sessions, &Err(answer));
                    }
                    Err(e) => {
                        let e = format!("{e:#}");
                        eprintln!("{}: {failure}; stopped, as it could not go back to its files: {e}", log.name);
                        let answer =
                            Refusal::Unavailable(format!("outcome unknown: {failure}; the database stopped: {e}"));
                        return release(&mut pending, &mut frames, &mut sessions, &Err(answer));
                    }
                }
            }
        }
    }
    if let Err(e) = db.close(now_micros()) {
        eprintln!("shutting down: {e:#}");
    }
}

/// Sends what a batch produced once its durability is known: the clients' frames (only if
/// durable) to their writers first, then the HTTP answers (overridden by the error if not).
fn release(
    pending: &mut Vec<Outbound>,
    frames: &mut HashMap<ClientId, Vec<Message>>,
    sessions: &mut Sessions,
    durable: &Result<(), Refusal>,
) {
    let mut answers = Vec::new();
    for p in pending.drain(..) {
        match p {
            Outbound::Client(client, m) if durable.is_ok() => frames.entry(client).or_default().push(m),
            Outbound::Client(..) => {}
            Outbound::Answer(answer) => answers.push(answer),
        }
    }
    for (client, batch) in frames.drain() {
        sessions.deliver(client, batch);
    }
    for answer in answers {
        answer.send(durable);
    }
}

/// Serves a request: a reducer call (over HTTP, or from a connected client) joins `calls`,
/// the batch being gathered; any other request first runs that batch, then itself.
fn run(
    db: &mut ModuleDb,
    sessions: &mut Sessions,
    request: Request,
    calls: &mut Vec<PendingCall>,
    out: &mut Vec<Outbound>,
    log: &mut Log,
) {
    let request = match request {
        Request::Call { reducer, args, caller, reply } => {
            return calls.push(PendingCall { reducer, args, caller, from: CallFrom::Http(reply) });
        }
        Request::Client { client, message: ClientMessage::CallReducer { request_id, reducer, args } } => {
            // A client already gone is not served, as `Sessions::handle` serves none.
            if let Some(caller) = sessions.caller_of(client) {
                let from = CallFrom::Client(client, request_id);
                calls.push(PendingCall { reducer, args: args.to_string(), caller, from });
            }
            return;
        }
        other => other,
    };
    sessions.call_batch(db, std::mem::take(calls), out);
    match request {
        Request::Call { .. } => unreachable!("calls join the batch above"),
        Request::Sql { query, caller, reply } => {
            let outcome = sessions.sql(db, &query, caller, out).map_err(|e| Refusal::of(&e));
            out.push(Outbound::Answer(Answer::Sql(reply, outcome)));
        }
        Request::Describe { reply } => {
            let desc = serde_json::to_value(db.host().description()).expect("descriptions are JSON");
            out.push(Outbound::Answer(Answer::Json(reply, Ok(desc))));
        }
        Request::ModuleLog { after, reply } => {
            log.take(db);
            let lines = serde_json::to_value(log.lines.after(after)).expect("log lines are JSON");
            out.push(Outbound::Answer(Answer::Json(reply, Ok(lines))));
        }
        Request::Republish { wasm, reply } => {
            let outcome = db.republish(&wasm, now_micros()).map(|()| serde_json::Value::Null);
            out.push(Outbound::Answer(Answer::Json(reply, outcome.map_err(|e| Refusal::of(&e)))));
        }
        Request::Connect { client, caller, encoding, sink } => {
            sessions.connect(db, client, caller, encoding, sink, out);
        }
        Request::Disconnect { client } => sessions.disconnect(db, client, out),
        Request::Client { client, message } => sessions.handle(db, client, message, out),
    }
}
