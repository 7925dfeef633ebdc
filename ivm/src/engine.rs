//! The engine: tables, committed transactions in, subscriptions with initial rows and exact
//! per-offset deltas out. Drives one timely worker in the caller's thread, or N worker
//! threads that each receive every command (and only worker 0 feeds input rows). It keeps no
//! copy of the tables: a new subscription reads the rows it needs from the caller's
//! `TableSource`. A query's current result is kept only once a second subscriber (or a
//! `rows` call) has needed it: a query with one subscriber pays nothing for it per change.

use crate::budget::{Limit, Overrun, QueryBudget};
use crate::delta::{consolidate, consolidate_per_offset, split, Diff, Offset, QueryDelta, QueryId, Transaction};
use crate::result_set::ResultSet;
use crate::source::{Loaded, NoRows, TableSource};
use crate::topk::rank;
use crate::worker::{Command, Reply, WorkerState};
use sluice_planner::{DataType, QueryPlan, Row, SortKey, TableSchema};
use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use timely::communication::allocator::thread::Thread;
use timely::communication::Allocator;
use timely::worker::{Config as WorkerConfig, Worker};

/// Engine settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Number of timely workers (threads); 1 runs in the caller's thread.
    pub workers: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig { workers: 1 }
    }
}

/// Errors from the engine's API (bad input from its caller; never a panic).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EngineError {
    #[error("table {0} already exists")]
    TableExists(String),
    #[error("unknown table {0}")]
    UnknownTable(String),
    #[error("table {0} is read by live subscriptions")]
    TableInUse(String),
    #[error("transaction offset {got} is not after the current offset {current}")]
    OffsetNotIncreasing { got: Offset, current: Offset },
    #[error("row for table {table} has {got} values, expected {expected}")]
    RowArity { table: String, got: usize, expected: usize },
    #[error("unknown subscription {0}")]
    UnknownSubscription(u64),
    #[error("the rows given are as of offset {rows}, the engine is at offset {engine}")]
    SourceOffset { rows: Offset, engine: Offset },
    #[error("{0}")]
    OverBudget(String),
    #[error("{0}")]
    Overflow(String),
}

/// A subscription's identity (several may share one query).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriptionId(pub u64);

/// A new subscription: its query's current rows, as of `offset`.
#[derive(Clone, Debug)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub query: QueryId,
    pub offset: Offset,
    /// Visible rows, in the query's ORDER BY order where it has one.
    pub initial: Vec<Row>,
}

struct QueryState {
    plan: QueryPlan,
    /// Current result (all output columns, hidden sort keys included) with multiplicities,
    /// once it has been needed after the query's first subscriber took its initial rows:
    /// from then on every change is added to it. Until then a query's only subscriber holds
    /// the result itself, and keeping a copy would cost every transaction for nothing.
    result: Option<ResultSet>,
    /// Whether result rows have columns past the visible ones (hidden sort keys).
    hidden: bool,
    /// The visible columns typed INTEGER or UNSIGNED (see `overflow`).
    integers: Vec<usize>,
    subscribers: usize,
}

impl QueryState {
    fn new(plan: &QueryPlan) -> QueryState {
        let hidden = plan.plan.arity() > plan.columns.len();
        let integers = (plan.columns.iter().enumerate())
            .filter(|(_, (_, ty))| matches!(ty, DataType::Int | DataType::UInt))
            .map(|(i, _)| i)
            .collect();
        QueryState { plan: plan.clone(), result: None, hidden, integers, subscribers: 0 }
    }

    /// Why `rows` cannot be this query's result, if an integer column holds a REAL: an integer
    /// computation that overflowed goes on in floating point (as SQLite's does, so comparisons
    /// and sorts inside a query agree with it), but a result column typed INTEGER holds
    /// integers. (SQLite itself fails `SUM` and `ABS` that overflow.)
    fn overflow<'r>(&self, rows: impl IntoIterator<Item = &'r Row>) -> Option<EngineError> {
        if self.integers.is_empty() {
            return None;
        }
        let (row, c) = rows
            .into_iter()
            .find_map(|r| self.integers.iter().find(|&&c| r.as_row_ref().is_real_at(c)).map(|&c| (r, c)))?;
        let (name, ty) = &self.plan.columns[c];
        Some(EngineError::Overflow(format!("integer overflow: {} out of range for column `{name}` ({ty})", row.get(c))))
    }

    /// The visible rows of `result` (this query's), sorted by `order`.
    fn visible_rows(&self, result: &ResultSet, order: &[SortKey]) -> Vec<Row> {
        visible_rows(result, self.hidden.then_some(self.plan.columns.len()), order)
    }
}

enum Driver {
    Local(Box<(Worker, WorkerState)>),
    Threads { senders: Vec<Sender<Command>>, replies: Receiver<Reply>, handle: Option<JoinHandle<()>> },
}

impl Driver {
    /// Runs a command that may move many rows (applying transactions, building a dataflow):
    /// one that took `bulk` or more returns the buffers it freed to the system.
    fn run_bulk(&mut self, cmd: Command, source: &dyn TableSource, bulk: Duration) -> Reply {
        let started = Instant::now();
        let reply = self.run(cmd, source);
        if started.elapsed() >= bulk {
            release_free_memory();
        }
        reply
    }

    /// Runs a command on every worker, a new query reading rows from `source`; merges their
    /// replies.
    fn run(&mut self, cmd: Command, source: &dyn TableSource) -> Reply {
        match self {
            Driver::Local(b) => {
                let (worker, state) = &mut **b;
                state.handle(worker, cmd, source)
            }
            Driver::Threads { senders, replies, .. } => {
                // The threads cannot borrow the source: they get a copy of the tables read.
                let cmd = match cmd {
                    Command::AddQuery(q, plan, None, limit) => {
                        let loaded = Loaded::copy(source, &plan.tables());
                        Command::AddQuery(q, plan, Some(Arc::new(loaded)), limit)
                    }
                    cmd => cmd,
                };
                for s in senders.iter() {
                    s.send(cmd.clone()).expect("engine worker alive");
                }
                let mut all = Reply::default();
                for _ in 0..senders.len() {
                    let r = replies.recv().expect("engine worker alive");
                    all.outputs.extend(r.outputs);
                    all.base_records += r.base_records;
                    // The worker that ran past the budget knows which bound it was.
                    if all.overrun.is_none() || all.overrun == Some(Overrun::Peer) {
                        all.overrun = r.overrun.or(all.overrun);
                    }
                }
                all
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Driver::Threads { senders, handle, .. } = self {
            senders.clear();
            if let Some(h) = handle.take() {
                let _ = h.join();
            }
        }
    }
}

/// The incremental view maintenance engine.
pub struct Engine {
    driver: Driver,
    tables: BTreeMap<String, TableSchema>,
    offset: Offset,
    queries: HashMap<QueryId, QueryState>,
    /// Queries by plan and visible width: identical plans share one dataflow.
    by_plan: HashMap<(sluice_planner::Plan, usize), QueryId>,
    /// Each subscription's query and its own presentation order.
    subscriptions: HashMap<SubscriptionId, (QueryId, Vec<SortKey>)>,
    next_query: u64,
    next_subscription: u64,
    /// What each query build may cost.
    budget: QueryBudget,
    /// Queries ended since `take_failed` was last called, and why.
    failed: Vec<(QueryId, String)>,
}

impl Engine {
    /// An engine at offset 0 (empty state).
    pub fn new(config: EngineConfig) -> Engine {
        Engine::at(config, 0)
    }

    /// An engine whose next transaction follows `offset`: for tables whose rows up to
    /// `offset` are in the store subscriptions will read them from (a recovered database).
    pub fn at(config: EngineConfig, offset: Offset) -> Engine {
        let driver = if config.workers <= 1 {
            let alloc = Allocator::Thread(Thread::default());
            let worker = Worker::new(WorkerConfig::default(), alloc, Some(std::time::Instant::now()));
            Driver::Local(Box::new((worker, WorkerState::new(offset))))
        } else {
            spawn_workers(config.workers, offset)
        };
        Engine {
            driver,
            tables: BTreeMap::new(),
            offset,
            queries: HashMap::new(),
            by_plan: HashMap::new(),
            subscriptions: HashMap::new(),
            next_query: 0,
            next_subscription: 0,
            budget: QueryBudget::default(),
            failed: Vec::new(),
        }
    }

    /// Sets what each later query build (subscription or evaluation) may cost.
    pub fn set_budget(&mut self, budget: QueryBudget) {
        self.budget = budget;
    }

    /// What each query build may cost.
    pub fn budget(&self) -> QueryBudget {
        self.budget
    }

    /// The live queries that ended since the last call, with the reason: a transaction gave
    /// one a result it cannot show (see `QueryState::overflow`). Their subscriptions are gone,
    /// and no delta of theirs was returned for that transaction or will be.
    pub fn take_failed(&mut self) -> Vec<(QueryId, String)> {
        std::mem::take(&mut self.failed)
    }

    /// Ends a live query and every subscription to it.
    fn fail(&mut self, query: QueryId, reason: String) {
        self.subscriptions.retain(|_, (q, _)| *q != query);
        self.drop_query(query);
        self.failed.push((query, reason));
    }

    /// Forgets a live query and drops its dataflow on every worker.
    fn drop_query(&mut self, query: QueryId) {
        if let Some(state) = self.queries.remove(&query) {
            self.by_plan.remove(&(state.plan.plan, state.plan.columns.len()));
        }
        self.driver.run(Command::DropQuery(query), &NoRows);
    }

    /// The offset of the last applied transaction.
    pub fn offset(&self) -> Offset {
        self.offset
    }

    /// Adds a table.
    pub fn create_table(&mut self, schema: &TableSchema) -> Result<(), EngineError> {
        if self.tables.contains_key(&schema.name) {
            return Err(EngineError::TableExists(schema.name.clone()));
        }
        self.tables.insert(schema.name.clone(), schema.clone());
        self.driver.run(Command::CreateTable(schema.name.clone()), &NoRows);
        Ok(())
    }

    /// Removes a table that no subscription reads.
    pub fn drop_table(&mut self, name: &str) -> Result<(), EngineError> {
        if !self.tables.contains_key(name) {
            return Err(EngineError::UnknownTable(name.to_string()));
        }
        if self.queries.values().any(|q| q.plan.plan.tables().iter().any(|t| t == name)) {
            return Err(EngineError::TableInUse(name.to_string()));
        }
        self.tables.remove(name);
        self.driver.run(Command::DropTable(name.to_string()), &NoRows);
        Ok(())
    }

    /// Applies committed transactions (offsets increasing) in one worker step, each at its own
    /// timestamp; returns every query's consolidated delta per offset, in offset order.
    pub fn apply(&mut self, txs: Vec<Transaction>) -> Result<Vec<QueryDelta>, EngineError> {
        let mut current = self.offset;
        for tx in &txs {
            if tx.offset <= current {
                return Err(EngineError::OffsetNotIncreasing { got: tx.offset, current });
            }
            current = tx.offset;
            for c in &tx.changes {
                let schema = self.tables.get(&c.table).ok_or_else(|| EngineError::UnknownTable(c.table.clone()))?;
                let expected = schema.columns.len();
                if let Some(r) = c.inserts.iter().chain(&c.deletes).find(|r| r.len() != expected) {
                    return Err(EngineError::RowArity { table: c.table.clone(), got: r.len(), expected });
                }
            }
        }
        if txs.is_empty() {
            return Ok(Vec::new());
        }
        self.offset = current;
        let reply = self.driver.run_bulk(Command::Apply(Arc::new(txs)), &NoRows, BULK_APPLY);
        Ok(self.absorb(reply.outputs))
    }

    /// Subscribes to a planned query; identical plans share one dataflow. A new dataflow
    /// reads the rows it needs from `source`, which must be as of the engine's offset; so does
    /// the first later subscriber of a query, whose initial rows are computed once and kept
    /// current from then on for every subscriber after it.
    pub fn subscribe(&mut self, plan: &QueryPlan, source: &dyn TableSource) -> Result<Subscription, EngineError> {
        self.check_tables(plan)?;
        let shape = (plan.plan.clone(), plan.columns.len());
        let (query, initial) = match self.by_plan.get(&shape) {
            Some(q) => {
                let q = *q;
                (q, self.kept_rows(q, &plan.order_by, source)?)
            }
            None => {
                let (q, result) = self.build(plan, source)?;
                let state = QueryState::new(plan);
                let initial = state.visible_rows(&result, &plan.order_by);
                if let Some(e) = state.overflow(&initial) {
                    self.driver.run(Command::DropQuery(q), &NoRows);
                    return Err(e);
                }
                self.queries.insert(q, state);
                self.by_plan.insert(shape, q);
                (q, initial)
            }
        };
        self.queries.get_mut(&query).expect("query exists").subscribers += 1;
        let id = SubscriptionId(self.next_subscription);
        self.next_subscription += 1;
        self.subscriptions.insert(id, (query, plan.order_by.clone()));
        Ok(Subscription { id, query, offset: self.offset, initial })
    }

    /// A live query's visible rows in `order`, from its kept result; the result is evaluated
    /// from `source` first, and kept from then on, if it is not kept yet.
    fn kept_rows(&mut self, q: QueryId, order: &[SortKey], source: &dyn TableSource) -> Result<Vec<Row>, EngineError> {
        if self.queries[&q].result.is_none() {
            let plan = self.queries[&q].plan.clone();
            let result = self.evaluate_once(&plan, source)?;
            self.queries.get_mut(&q).expect("query exists").result = Some(result);
        }
        let state = &self.queries[&q];
        Ok(state.visible_rows(state.result.as_ref().expect("kept above"), order))
    }

    /// Evaluates a query from scratch on the current state, read from `source` (as of the
    /// engine's offset): a dataflow of its own, never shared with a live subscription,
    /// dropped once its rows are read.
    pub fn evaluate(&mut self, plan: &QueryPlan, source: &dyn TableSource) -> Result<Vec<Row>, EngineError> {
        self.check_tables(plan)?;
        let result = self.evaluate_once(plan, source)?;
        let state = QueryState::new(plan);
        let rows = state.visible_rows(&result, &plan.order_by);
        match state.overflow(&rows) {
            Some(e) => Err(e),
            None => Ok(rows),
        }
    }

    /// A query's rows as of the current offset, from a dataflow of its own over `source` (and
    /// the shared arrangements), dropped once read.
    fn evaluate_once(&mut self, plan: &QueryPlan, source: &dyn TableSource) -> Result<ResultSet, EngineError> {
        let (q, result) = self.build(plan, source)?;
        self.driver.run(Command::DropQuery(q), &NoRows);
        Ok(result)
    }

    fn check_tables(&self, plan: &QueryPlan) -> Result<(), EngineError> {
        match plan.plan.tables().into_iter().find(|t| !self.tables.contains_key(t)) {
            Some(t) => Err(EngineError::UnknownTable(t)),
            None => Ok(()),
        }
    }

    /// Builds a query's dataflow over `source`'s rows; returns its id and its rows as of the
    /// current offset.
    fn build(&mut self, plan: &QueryPlan, source: &dyn TableSource) -> Result<(QueryId, ResultSet), EngineError> {
        if source.offset() != self.offset {
            return Err(EngineError::SourceOffset { rows: source.offset(), engine: self.offset });
        }
        let q = QueryId(self.next_query);
        self.next_query += 1;
        let limit = Limit::start(self.budget);
        let command = Command::AddQuery(q, Arc::new(plan.plan.clone()), None, limit);
        let reply = self.driver.run_bulk(command, source, BULK_LOAD);
        if let Some(overrun) = reply.overrun {
            // A worker that finished before another overran still has the query: all drop it.
            self.driver.run(Command::DropQuery(q), &NoRows);
            return Err(EngineError::OverBudget(self.budget.explain(overrun)));
        }
        debug_assert!(reply.outputs.iter().all(|(id, _)| *id == q), "only the new query has output");
        let result = reply.outputs.into_iter().flat_map(|(_, out)| out).map(|(r, _, d)| (r, d)).collect();
        Ok((q, result))
    }

    /// Ends a subscription; the query's dataflow is dropped with its last subscriber.
    pub fn unsubscribe(&mut self, id: SubscriptionId) -> Result<(), EngineError> {
        let (query, _) = self.subscriptions.remove(&id).ok_or(EngineError::UnknownSubscription(id.0))?;
        let state = self.queries.get_mut(&query).expect("query exists");
        state.subscribers -= 1;
        if state.subscribers == 0 {
            self.drop_query(query);
        }
        Ok(())
    }

    /// The current visible rows of a subscription's query, in presentation order. The query's
    /// result is kept current from then on; the first call reads it from `source` (as of the
    /// engine's offset) unless a second subscriber already has.
    pub fn rows(&mut self, id: SubscriptionId, source: &dyn TableSource) -> Result<Vec<Row>, EngineError> {
        let (q, order) = self.subscriptions.get(&id).ok_or(EngineError::UnknownSubscription(id.0))?.clone();
        self.kept_rows(q, &order, source)
    }

    /// Base-table state held: the update records of the shared arrangements by key (the
    /// tables' rows themselves stay in the caller's store). With compaction this follows the
    /// current state, not the history of changes.
    pub fn base_arrangement_records(&mut self) -> usize {
        self.driver.run(Command::Stats, &NoRows).base_records
    }

    /// Number of distinct query dataflows.
    pub fn query_count(&self) -> usize {
        self.queries.len()
    }

    /// Turns raw worker outputs into per-query, per-offset visible deltas.
    fn absorb(&mut self, mut outputs: crate::worker::Outputs) -> Vec<QueryDelta> {
        // The workers' outputs of one query are taken together.
        outputs.sort_unstable_by_key(|(q, _)| *q);
        let mut merged: crate::worker::Outputs = Vec::with_capacity(outputs.len());
        for (q, updates) in outputs {
            match merged.last_mut() {
                Some((p, all)) if *p == q => all.extend(updates),
                _ => merged.push((q, updates)),
            }
        }
        let (mut deltas, mut failed) = (Vec::new(), Vec::new());
        for (q, updates) in merged {
            let Some(state) = self.queries.get_mut(&q) else { continue };
            let mut mine = Vec::new();
            let visible = state.plan.columns.len();
            let per_offset = consolidate_per_offset(updates);
            if let Some(result) = &mut state.result {
                result.add(per_offset.iter().flat_map(|(_, changes)| changes.iter().cloned()).collect());
            }
            for (offset, updates) in per_offset {
                let shown = if state.hidden {
                    let mut shown: Vec<(Row, Diff)> =
                        updates.into_iter().map(|(r, d)| (r.prefix(visible), d)).collect();
                    consolidate(&mut shown);
                    shown
                } else {
                    updates
                };
                if shown.is_empty() {
                    continue;
                }
                let (inserts, deletes) = split(shown);
                mine.push(QueryDelta { query: q, offset, inserts, deletes });
            }
            match state.overflow(mine.iter().flat_map(|d| d.inserts.iter().chain(&d.deletes))) {
                Some(e) => failed.push((q, e.to_string())),
                None => deltas.extend(mine),
            }
        }
        for (q, reason) in failed {
            self.fail(q, reason);
        }
        deltas.sort_by_key(|d| (d.offset, d.query));
        deltas
    }
}

/// A result's rows, sorted by `order` (then by the whole row), cut to their first `visible`
/// columns where they carry hidden ones.
fn visible_rows(result: &ResultSet, visible: Option<usize>, order: &[SortKey]) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    let mut entries = result.rows();
    entries.sort_by_cached_key(|(row, _)| rank(order, row));
    for (r, d) in entries {
        for _ in 0..d {
            rows.push(visible.map_or_else(|| r.clone(), |n| r.prefix(n)));
        }
    }
    rows
}

/// Starts `n` timely worker threads at `offset`, each running every command it receives.
fn spawn_workers(n: usize, offset: Offset) -> Driver {
    let (reply_tx, replies) = channel::<Reply>();
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    for _ in 0..n {
        let (tx, rx) = channel::<Command>();
        senders.push(tx);
        receivers.push(Mutex::new(Some(rx)));
    }
    let receivers = Arc::new(receivers);
    let reply_tx = Mutex::new(reply_tx);
    let handle = std::thread::spawn(move || {
        let guards = timely::execute(timely::Config::process(n), move |worker| {
            let rx = receivers[worker.index()].lock().expect("lock").take().expect("one receiver per worker");
            let reply = reply_tx.lock().expect("lock").clone();
            let mut state = WorkerState::new(offset);
            while let Ok(cmd) = rx.recv() {
                // A new query's rows come with it (`Driver::run`).
                let out = state.handle(worker, cmd, &NoRows);
                if reply.send(out).is_err() {
                    break;
                }
            }
        })
        .expect("timely workers start");
        drop(guards);
    });
    Driver::Threads { senders, replies, handle: Some(handle) }
}

/// A new dataflow that took this long to build moved many rows (arrangements are sorted from
/// buffers several times their final size): the buffers it freed are worth returning.
const BULK_LOAD: Duration = Duration::from_millis(50);

/// Transactions that took this long to apply were a bulk load. Shorter ones are a busy
/// stream, whose next step reuses the buffers at once: returning them after every 200 ms
/// step of 200,000 changes made the next fault them in again (a tenth of that step's time).
const BULK_APPLY: Duration = Duration::from_secs(1);

/// Returns the allocator's free pages to the system. glibc's malloc keeps what a bulk load
/// freed (the arrangement sort buffers: 80 bytes per update), which would otherwise stay in
/// the process's resident memory long after the load; trimming walks the heap's free chunks,
/// milliseconds against the seconds such a load takes.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory the allocator holds free; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}
