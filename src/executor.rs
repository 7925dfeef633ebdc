//! One database's executor: a thread that owns its `ModuleDb` (wasm host, engine, storage)
//! and serves requests one at a time, running due scheduled reducers between them. Nothing
//! leaves before it is durable: the executor takes every request already queued, runs them,
//! then waits once for the log to make their transactions durable before answering them all —
//! so while one batch is being fsynced the next one queues, and many transactions share each
//! fsync (group commit).

use crate::demo::now_micros;
use crate::module_db::ModuleDb;
use anyhow::Result;
use sluice_planner::{DataType, Row};
use sluice_runtime::CommitMeta;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::oneshot;

/// Requests served at most per batch before answering (bounds a reply's wait).
const BATCH: usize = 1024;

/// A query's answer: column names and types, and rows.
#[derive(Debug)]
pub struct QueryAnswer {
    pub columns: Vec<(String, DataType)>,
    pub rows: Vec<Row>,
    /// The offset whose state answered.
    pub offset: u64,
}

/// What a database is asked to do.
pub enum Request {
    /// Call a reducer with JSON arguments; answers the transaction's offset.
    Call { reducer: String, args: String, caller: String, reply: oneshot::Sender<Result<u64, String>> },
    /// A one-off query on the current state.
    Sql { query: String, reply: oneshot::Sender<Result<QueryAnswer, String>> },
}

/// A handle to a database's executor thread; dropping it shuts the database down cleanly.
pub struct Executor {
    sender: Option<Sender<Request>>,
    thread: Option<JoinHandle<()>>,
}

impl Executor {
    /// Starts a thread that opens the database with `open` (the database lives and dies on
    /// that thread) and then serves requests.
    pub fn spawn(name: &str, open: impl FnOnce() -> Result<ModuleDb> + Send + 'static) -> Result<Executor> {
        let (sender, receiver) = channel();
        let (ready, opened) = channel::<Result<(), String>>();
        let thread = std::thread::Builder::new().name(format!("db-{name}")).spawn(move || match open() {
            Ok(db) => {
                let _ = ready.send(Ok(()));
                serve(db, receiver);
            }
            Err(e) => {
                let _ = ready.send(Err(format!("{e:#}")));
            }
        })?;
        match opened.recv() {
            Ok(Ok(())) => Ok(Executor { sender: Some(sender), thread: Some(thread) }),
            Ok(Err(e)) => Err(anyhow::anyhow!(e)),
            Err(_) => Err(anyhow::anyhow!("the database thread stopped while opening")),
        }
    }

    /// Queues a request; false if the database has stopped.
    pub fn send(&self, request: Request) -> bool {
        self.sender.as_ref().is_some_and(|s| s.send(request).is_ok())
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        self.sender = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An answer held until the transactions before it are durable.
enum Pending {
    Call(oneshot::Sender<Result<u64, String>>, Result<u64, String>),
    Sql(oneshot::Sender<Result<QueryAnswer, String>>, Result<QueryAnswer, String>),
}

fn serve(mut db: ModuleDb, requests: Receiver<Request>) {
    let mut pending = Vec::new();
    loop {
        let next = db.host().next_scheduled().map(|at| Duration::from_micros(at.saturating_sub(now_micros())));
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
        for request in first.into_iter().chain(std::iter::from_fn(|| requests.try_recv().ok()).take(BATCH)) {
            pending.push(run(&mut db, request));
        }
        for run in db.run_scheduled(now_micros()) {
            if let Some(e) = run.0.error {
                eprintln!("scheduled {} failed: {e}", run.0.reducer);
            }
        }
        let last = db.host().datastore().offset();
        let durable = db.wait_durable(last).map_err(|e| format!("{e:#}"));
        for p in pending.drain(..) {
            match (p, &durable) {
                (Pending::Call(reply, outcome), Ok(())) => drop(reply.send(outcome)),
                (Pending::Sql(reply, outcome), Ok(())) => drop(reply.send(outcome)),
                (Pending::Call(reply, _), Err(e)) => drop(reply.send(Err(e.clone()))),
                (Pending::Sql(reply, _), Err(e)) => drop(reply.send(Err(e.clone()))),
            }
        }
    }
    if let Err(e) = db.close(now_micros()) {
        eprintln!("shutting down: {e:#}");
    }
}

fn run(db: &mut ModuleDb, request: Request) -> Pending {
    match request {
        Request::Call { reducer, args, caller, reply } => {
            let meta = CommitMeta { timestamp_micros: now_micros(), caller, ..CommitMeta::default() };
            let outcome = db.call(&reducer, &args, meta).map(|(tx, _)| tx.offset).map_err(|e| e.to_string());
            Pending::Call(reply, outcome)
        }
        Request::Sql { query, reply } => {
            let offset = db.host().datastore().offset();
            let outcome = db
                .query(&query)
                .map(|(plan, rows)| QueryAnswer { columns: plan.columns, rows, offset })
                .map_err(|e| format!("{e:#}"));
            Pending::Sql(reply, outcome)
        }
    }
}
