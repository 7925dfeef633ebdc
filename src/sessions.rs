//! The WebSocket clients of one database, on its executor thread: each client's engine
//! subscriptions (identical queries share one dataflow and one query id), which clients
//! watch each query, and what they ask. Every answer and every committed transaction's
//! update becomes an `Outbound` frame, delivered in order once durable; a client whose
//! unsent frames pass the bound is closed with the reason, so server memory stays bounded.

use crate::executor::{Answer, Outbound, Refusal};
use crate::identity::Identity;
use crate::metrics::Metrics;
use crate::module_db::{Caller, Committed, ModuleDb, SqlOutcome};
use crate::wire::{columns, frame, protocol_rows, BatchFrames, Viewer};
use anyhow::Result;
use axum::extract::ws::Message;
use sluice_client::protocol::{AppliedQuery, ClientMessage, Encoding, ServerMessage, Status};
use sluice_ivm::{QueryId, SubscriptionId};
use sluice_planner::Dml;
use sluice_runtime::{CommitMeta, Lifecycle};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

/// A connection's number, unique in the server.
pub type ClientId = u64;

/// A reducer call waiting to run in a batch, as `caller`.
pub struct PendingCall {
    pub reducer: String,
    pub args: String,
    pub caller: Identity,
    pub from: CallFrom,
}

/// Where a call's answer goes: an HTTP request's reply, or a client's connection (with the
/// request's id).
pub enum CallFrom {
    Http(oneshot::Sender<Result<u64, Refusal>>),
    Client(ClientId, u64),
}

/// Where a connection's frames go: its writer's queue (frames in runs, each run one wake-up
/// of the writer), the bytes waiting in it (the writer subtracts what it has sent), and a way
/// to close it at once, ahead of what is queued.
#[derive(Clone)]
pub struct ClientSink {
    pub sender: UnboundedSender<Vec<Message>>,
    pub queued: Arc<QueuedBytes>,
    pub abort: Arc<Mutex<Option<oneshot::Sender<String>>>>,
}

/// The bytes waiting in one connection's queue, counted also in its database's total (the
/// send-queue gauge) and the server's (held to `--max-total-queued-bytes`); whatever is left
/// when the connection is gone leaves the totals.
pub struct QueuedBytes {
    mine: AtomicUsize,
    total: Arc<AtomicUsize>,
    server: Arc<AtomicUsize>,
}

impl QueuedBytes {
    pub fn new(total: Arc<AtomicUsize>, server: Arc<AtomicUsize>) -> QueuedBytes {
        QueuedBytes { mine: AtomicUsize::new(0), total, server }
    }

    /// The bytes waiting for every connection of the server.
    pub fn server_total(&self) -> usize {
        self.server.load(Ordering::Relaxed)
    }

    pub fn get(&self) -> usize {
        self.mine.load(Ordering::Relaxed)
    }

    pub fn add(&self, n: usize) {
        self.mine.fetch_add(n, Ordering::Relaxed);
        self.total.fetch_add(n, Ordering::Relaxed);
        self.server.fetch_add(n, Ordering::Relaxed);
    }

    pub fn sub(&self, n: usize) {
        self.mine.fetch_sub(n, Ordering::Relaxed);
        self.total.fetch_sub(n, Ordering::Relaxed);
        self.server.fetch_sub(n, Ordering::Relaxed);
    }
}

impl Drop for QueuedBytes {
    fn drop(&mut self) {
        let left = self.get();
        self.total.fetch_sub(left, Ordering::Relaxed);
        self.server.fetch_sub(left, Ordering::Relaxed);
    }
}

/// How many bytes of frames may wait to be sent: to one client, and to all of the server's.
#[derive(Clone, Copy, Debug)]
pub struct SendLimits {
    pub per_client: usize,
    pub total: usize,
}

/// Closes a connection with this reason, dropping whatever is still queued (once).
pub fn abort(abort: &Mutex<Option<oneshot::Sender<String>>>, reason: String) {
    if let Some(a) = abort.lock().expect("abort").take() {
        let _ = a.send(reason);
    }
}

/// A frame's size as counted against the bound.
pub fn frame_len(m: &Message) -> usize {
    match m {
        Message::Text(t) => t.len(),
        Message::Binary(b) => b.len(),
        _ => 0,
    }
}

struct Session {
    caller: Caller,
    /// The caller's identity in hex, as transactions name their callers.
    hex: String,
    encoding: Encoding,
    sink: ClientSink,
    /// Engine subscriptions by query (a query subscribed twice holds two).
    subs: HashMap<QueryId, Vec<SubscriptionId>>,
    /// Closed for falling behind: nothing more is sent.
    closing: bool,
}

/// Every connected client of one database.
pub struct Sessions {
    clients: HashMap<ClientId, Session>,
    /// The clients that get the same frames: by encoding and the queries they watch (sorted),
    /// the clients still being sent to. A transaction's frame is built once per group.
    groups: HashMap<(Encoding, Vec<QueryId>), BTreeSet<ClientId>>,
    /// Live engine subscriptions over all clients.
    subscriptions: usize,
    /// Bytes that may wait to be sent, per client and for the whole server.
    limits: SendLimits,
    metrics: Arc<Metrics>,
}

impl Sessions {
    pub fn new(limits: SendLimits, metrics: Arc<Metrics>) -> Sessions {
        Sessions { clients: HashMap::new(), groups: HashMap::new(), subscriptions: 0, limits, metrics }
    }

    /// Shows the counts of clients and subscriptions in the metrics (after they change).
    fn counted(&self) {
        self.metrics.set_sessions(self.clients.len(), self.subscriptions);
    }

    /// A client connects: the module's `client_connected` reducer runs as the client.
    pub fn connect(
        &mut self,
        db: &mut ModuleDb,
        id: ClientId,
        caller: Caller,
        encoding: Encoding,
        sink: ClientSink,
        out: &mut Vec<Outbound>,
    ) {
        let hex = caller.identity.to_hex();
        self.clients.insert(id, Session { caller, hex, encoding, sink, subs: HashMap::new(), closing: false });
        self.counted();
        self.lifecycle(db, Lifecycle::ClientConnected, caller.identity, out);
    }

    /// A client is gone: its subscriptions end and `client_disconnected` runs as it.
    pub fn disconnect(&mut self, db: &mut ModuleDb, id: ClientId, out: &mut Vec<Outbound>) {
        self.leave_group(id);
        let Some(session) = self.clients.remove(&id) else { return };
        for (_, subs) in session.subs {
            self.end(db, subs);
        }
        self.counted();
        self.lifecycle(db, Lifecycle::ClientDisconnected, session.caller.identity, out);
    }

    /// Ends engine subscriptions.
    fn end(&mut self, db: &mut ModuleDb, subs: Vec<SubscriptionId>) {
        self.subscriptions -= subs.len();
        for s in subs {
            drop(db.unsubscribe(s));
        }
    }

    fn lifecycle(&self, db: &mut ModuleDb, role: Lifecycle, who: Identity, out: &mut Vec<Outbound>) {
        match db.lifecycle(role, meta(who)) {
            Some(Ok(committed)) => self.fan_out(&committed, out),
            Some(Err(e)) => eprintln!("{role:?} reducer failed for {who}: {e}"),
            None => {}
        }
    }

    /// The group a client's frames are built for: its encoding and the queries it watches;
    /// none while it watches nothing or is being closed.
    fn group_of(&self, id: ClientId) -> Option<(Encoding, Vec<QueryId>)> {
        let session = self.clients.get(&id).filter(|s| !s.closing && !s.subs.is_empty())?;
        let mut queries: Vec<QueryId> = session.subs.keys().copied().collect();
        queries.sort_unstable();
        Some((session.encoding, queries))
    }

    /// Takes a client out of its group, before what it watches changes.
    fn leave_group(&mut self, id: ClientId) {
        let Some(key) = self.group_of(id) else { return };
        if let Some(group) = self.groups.get_mut(&key) {
            group.remove(&id);
            if group.is_empty() {
                self.groups.remove(&key);
            }
        }
    }

    /// Puts a client in the group of what it now watches.
    fn join_group(&mut self, id: ClientId) {
        if let Some(key) = self.group_of(id) {
            self.groups.entry(key).or_default().insert(id);
        }
    }

    /// Serves one request from a client.
    pub fn handle(&mut self, db: &mut ModuleDb, id: ClientId, message: ClientMessage, out: &mut Vec<Outbound>) {
        let Some(session) = self.clients.get(&id) else { return };
        let (caller, encoding) = (session.caller, session.encoding);
        let reply = match message {
            ClientMessage::Subscribe { request_id, queries } => self.subscribe(db, id, request_id, queries),
            ClientMessage::Unsubscribe { request_id, query_id } => self.unsubscribe(db, id, request_id, query_id),
            ClientMessage::CallReducer { request_id, reducer, args } => {
                let from = CallFrom::Client(id, request_id);
                let call = PendingCall { reducer, args: args.to_string(), caller: caller.identity, from };
                return self.call_batch(db, vec![call], out);
            }
            ClientMessage::OneOffQuery { request_id, sql } => match db.query(&sql, &caller) {
                Ok(a) => ServerMessage::QueryResult {
                    request_id,
                    offset: a.offset,
                    columns: columns(&a.columns),
                    rows: protocol_rows(&a.rows),
                },
                Err(e) => ServerMessage::Error { request_id: Some(request_id), error: format!("{e:#}") },
            },
        };
        out.push(Outbound::Client(id, frame(encoding, &reply)));
    }

    /// Calls reducers in order (for WebSocket clients or over HTTP), each its own transaction
    /// as its caller, the engine brought up to date with all of them in one step: each timed
    /// and counted, the batch's updates fanned out (one frame per client, its transactions in
    /// commit order) and then each answer (its offset, or why it failed) queued, so a caller
    /// has its update before its answer.
    pub fn call_batch(&self, db: &mut ModuleDb, calls: Vec<PendingCall>, out: &mut Vec<Outbound>) {
        if calls.is_empty() {
            return;
        }
        let ran = db.call_batch(calls.iter().map(|c| (c.reducer.as_str(), c.args.as_str(), meta(c.caller))));
        let mut committed = Vec::new();
        let mut answers = Vec::with_capacity(calls.len());
        for (call, (outcome, took)) in calls.into_iter().zip(ran) {
            self.metrics.reducer_ran(took, outcome.is_ok());
            let answer = outcome
                .map(|c| {
                    let offset = c.0.offset;
                    committed.push(c);
                    offset
                })
                .map_err(|e| Refusal::of_call(&e));
            answers.push((call.from, answer));
        }
        self.fan_out_batch(&committed, out);
        for (from, answer) in answers {
            match from {
                CallFrom::Http(reply) => out.push(Outbound::Answer(Answer::Call(reply, answer))),
                CallFrom::Client(id, request_id) => {
                    let Some(session) = self.clients.get(&id) else { continue };
                    let (status, offset, error) = match answer {
                        Ok(offset) => (Status::Committed, Some(offset), None),
                        Err(e) => (Status::Failed, None, Some(e.to_string())),
                    };
                    let reply = ServerMessage::ReducerResult { request_id, status, offset, error };
                    out.push(Outbound::Client(id, frame(session.encoding, &reply)));
                }
            }
        }
    }

    /// The identity a connected client calls reducers as.
    pub fn caller_of(&self, id: ClientId) -> Option<Identity> {
        self.clients.get(&id).map(|s| s.caller.identity)
    }

    /// Runs a SQL request as `caller` (over HTTP): each statement in order, a query answered
    /// from the current state and each INSERT, UPDATE or DELETE its own transaction (the
    /// owner's only), fanned out like a reducer's. The last statement's outcome; the first
    /// error stops the rest.
    pub fn sql(&self, db: &mut ModuleDb, sql: &str, caller: Caller, out: &mut Vec<Outbound>) -> Result<SqlOutcome> {
        let mut last = None;
        for statement in db.plan_statements(sql, &caller)? {
            last = Some(match statement {
                Dml::Query(plan) => SqlOutcome::Rows(db.evaluate(plan)?),
                dml => {
                    let (rows, committed) = db.write(dml, meta(caller.identity))?;
                    if let Some(c) = &committed {
                        self.fan_out(c, out);
                    }
                    SqlOutcome::Changed { rows, offset: db.host().datastore().offset() }
                }
            });
        }
        Ok(last.expect("plan_statements refuses an empty request"))
    }

    /// Subscribes a client to every query or, on any error, to none.
    fn subscribe(&mut self, db: &mut ModuleDb, id: ClientId, request_id: u64, queries: Vec<String>) -> ServerMessage {
        let caller = self.clients[&id].caller;
        let refuse = |error: String| ServerMessage::SubscriptionError { request_id, error };
        if queries.is_empty() {
            return refuse("a subscription needs at least one query".into());
        }
        let mut plans = Vec::new();
        for sql in &queries {
            match db.plan_as(sql, &caller) {
                Ok(p) => plans.push(p),
                Err(e) => return refuse(format!("{sql}: {e:#}")),
            }
        }
        let mut applied = Vec::new();
        let mut offset = 0;
        for (sql, plan) in queries.into_iter().zip(&plans) {
            let sub = match db.subscribe_plan(plan) {
                Ok(s) => s,
                Err(e) => {
                    for (_, made, _) in applied {
                        drop(db.unsubscribe(made));
                    }
                    return refuse(format!("{sql}: {e:#}"));
                }
            };
            offset = sub.offset;
            applied.push((
                sub.query,
                sub.id,
                AppliedQuery {
                    query_id: sub.query.0,
                    sql,
                    columns: columns(&plan.columns),
                    primary_key: db.primary_key(plan),
                    rows: protocol_rows(&sub.initial),
                },
            ));
        }
        self.subscriptions += applied.len();
        self.counted();
        self.leave_group(id);
        let session = self.clients.get_mut(&id).expect("connected");
        let mut queries = Vec::new();
        for (query, sub, a) in applied {
            session.subs.entry(query).or_default().push(sub);
            queries.push(a);
        }
        self.join_group(id);
        ServerMessage::SubscribeApplied { request_id, offset, queries }
    }

    fn unsubscribe(&mut self, db: &mut ModuleDb, id: ClientId, request_id: u64, query_id: u64) -> ServerMessage {
        if !self.clients[&id].subs.contains_key(&QueryId(query_id)) {
            return ServerMessage::Error {
                request_id: Some(request_id),
                error: format!("not subscribed to query {query_id}"),
            };
        }
        self.leave_group(id);
        let session = self.clients.get_mut(&id).expect("connected");
        let subs = session.subs.remove(&QueryId(query_id)).expect("checked above");
        self.join_group(id);
        self.end(db, subs);
        self.counted();
        ServerMessage::UnsubscribeApplied { request_id, query_id }
    }

    /// Counts a committed transaction and queues its update for every client watching a
    /// query it changed.
    pub fn fan_out(&self, committed: &Committed, out: &mut Vec<Outbound>) {
        self.fan_out_batch(std::slice::from_ref(committed), out);
    }

    /// Counts committed transactions and queues their updates for every client watching a
    /// query they changed: one frame per client, holding each of those transactions with all
    /// of that client's queries it changed, built once for each group of clients that watch
    /// the same queries in one encoding.
    fn fan_out_batch(&self, committed: &[Committed], out: &mut Vec<Outbound>) {
        committed.iter().for_each(|c| self.metrics.committed(c));
        if committed.iter().all(|(_, deltas)| deltas.is_empty()) || self.groups.is_empty() {
            return;
        }
        // A group's clients share a frame, except that callers are named only to the owner and
        // to themselves: one frame for those who see no caller, one for the owner, one for each
        // identity that called in this batch.
        let callers: HashSet<&str> = committed.iter().map(|(tx, _)| tx.meta.caller.as_str()).collect();
        let mut frames = BatchFrames::new(committed);
        let mut built: HashMap<Viewer<'_>, Option<Message>> = HashMap::new();
        for ((encoding, watched), clients) in &self.groups {
            built.clear();
            for c in clients {
                let session = &self.clients[c];
                let viewer = match session.caller.owner {
                    true => Viewer::Owner,
                    false if callers.contains(session.hex.as_str()) => Viewer::Client(&session.hex),
                    false => Viewer::Client(""),
                };
                let frame = built.entry(viewer).or_insert_with(|| frames.frame(*encoding, watched, viewer));
                if let Some(frame) = frame {
                    out.push(Outbound::Client(*c, frame.clone()));
                }
            }
        }
    }

    /// Closes the connections of the clients watching a query the engine ended (its result
    /// could not be shown; see `Engine::take_failed`), with the reason: the protocol has no
    /// message for one query ending, and a client kept open would wait on it for ever.
    pub fn end_failed(&mut self, failed: Vec<(QueryId, String)>) {
        for (query, reason) in failed {
            let watching: Vec<ClientId> =
                self.clients.iter().filter(|(_, s)| s.subs.contains_key(&query)).map(|(id, _)| *id).collect();
            for id in watching {
                self.close(id, format!("query {} ended: {reason}", query.0));
            }
        }
    }

    /// Closes a client's connection with `reason`: nothing more is sent to it, and it stays a
    /// session until its disconnection arrives (which ends its subscriptions).
    fn close(&mut self, id: ClientId, reason: String) {
        self.leave_group(id);
        if let Some(session) = self.clients.get_mut(&id) {
            session.closing = true;
            abort(&session.sink.abort, reason);
        }
    }

    /// Closes every client's connection with `reason` and forgets them: their subscriptions
    /// belong to an engine that is gone (see `ModuleDb::revert`), and nothing of theirs is
    /// run later, not even `client_disconnected`.
    pub fn close_all(&mut self, reason: &str) {
        for (_, session) in self.clients.drain() {
            abort(&session.sink.abort, reason.to_string());
        }
        self.groups.clear();
        self.subscriptions = 0;
        self.counted();
    }

    /// Hands frames to a client's writer in one go, or closes a client that has fallen too far
    /// behind: past its own bound, or, with frames already waiting, past the server's (a
    /// client that keeps up, with nothing waiting, is still sent to).
    pub fn deliver(&mut self, id: ClientId, frames: Vec<Message>) {
        let Some(session) = self.clients.get(&id) else { return };
        if session.closing {
            return;
        }
        let len = frames.iter().map(frame_len).sum();
        let queued = session.sink.queued.get();
        let reason = if queued + len > self.limits.per_client {
            Some(format!(
                "too slow: more than {} bytes of updates waiting to be sent; reconnect to resubscribe",
                self.limits.per_client
            ))
        } else if queued > 0 && session.sink.queued.server_total() + len > self.limits.total {
            Some(format!(
                "too slow: the server's clients have more than {} bytes of updates waiting to be sent, \
                 and this one is behind; reconnect to resubscribe",
                self.limits.total
            ))
        } else {
            None
        };
        if let Some(reason) = reason {
            return self.close(id, reason);
        }
        session.sink.queued.add(len);
        drop(session.sink.sender.send(frames));
    }
}

/// Who ran a transaction, and when.
fn meta(who: Identity) -> CommitMeta {
    CommitMeta { timestamp_micros: crate::demo::now_micros(), caller: who.to_hex(), ..CommitMeta::default() }
}
