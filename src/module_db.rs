//! A database running a module: the wasm host (datastore and reducers) wired to the IVM engine,
//! so that every committed transaction — a reducer call, a lifecycle event, a scheduled run —
//! is one offset of every subscription's deltas; and, for a durable database, appended to its
//! commit log (group commit) with snapshots on schedule.

use crate::identity::Identity;
use anyhow::{bail, Context, Result};
use sluice_ivm::{Engine, QueryDelta, QueryId, Subscription, SubscriptionId};
use sluice_planner::{parse, Catalog, DataType, Dml, Planner, QueryPlan, Row, Value};
use sluice_runtime::{
    CommitMeta, Host, HostConfig, Lifecycle, RecoveryReport, ReducerError, ScheduledRun, Storage, StorageConfig,
    TxRecord,
};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::db::{engine_for, transaction, StoreRows};
use crate::dml;

pub struct ModuleDb {
    host: Host,
    engine: Engine,
    workers: usize,
    catalog: Catalog,
    /// The commit log and snapshots of a durable database.
    storage: Option<Storage>,
    /// Set while writes are refused because the log could not be written.
    read_only: Option<ReadOnly>,
}

/// Why writes are refused, and when the log was last tried.
struct ReadOnly {
    reason: String,
    probed: Instant,
}

/// How often a read-only database tries whether its log takes writes again.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

/// A committed transaction and the deltas it caused.
pub type Committed = (TxRecord, Vec<QueryDelta>);

/// A query's answer: column names and types, and rows.
#[derive(Debug)]
pub struct QueryAnswer {
    pub columns: Vec<(String, DataType)>,
    pub rows: Vec<Row>,
    /// The offset whose state answered.
    pub offset: u64,
}

/// What a SQL request did: its last statement's rows, or the rows it changed and the offset
/// after it.
#[derive(Debug)]
pub enum SqlOutcome {
    Rows(QueryAnswer),
    Changed { rows: usize, offset: u64 },
}

/// Who asks a query: their identity (what `:sender` stands for) and whether they own the
/// database (only the owner reads private tables).
#[derive(Clone, Copy, Debug)]
pub struct Caller {
    pub identity: Identity,
    pub owner: bool,
}

impl ModuleDb {
    /// Wires a loaded module to an engine with `workers`, in memory only.
    pub fn new(host: Host, workers: usize) -> Result<ModuleDb> {
        ModuleDb::wire(host, workers, None)
    }

    /// Creates a durable database for a module in `dir`, runs its `init` reducer (logged like
    /// every later transaction) and writes `files` (name, contents) beside its own. A crash
    /// before all that is durable leaves no database behind.
    pub fn create(
        dir: &Path,
        wasm: &[u8],
        workers: usize,
        config: StorageConfig,
        meta: CommitMeta,
        files: &[(&str, &[u8])],
    ) -> Result<ModuleDb> {
        let (host, storage) = Storage::create(dir, wasm, HostConfig::default(), config)?;
        let mut db = ModuleDb::wire(host, workers, Some(storage))?;
        if let Some(outcome) = db.lifecycle(Lifecycle::Init, meta) {
            let (tx, _) = outcome.context("the module's init reducer failed")?;
            db.wait_durable(tx.offset)?;
        }
        db.storage.as_ref().expect("a created database has storage").finish_creation(files)?;
        Ok(db)
    }

    /// Recovers the durable database in `dir`: its newest valid snapshot and the log after it;
    /// the engine starts from the recovered rows.
    pub fn open(dir: &Path, workers: usize, config: StorageConfig) -> Result<(ModuleDb, RecoveryReport)> {
        let (host, storage, report) = Storage::open(dir, HostConfig::default(), config)?;
        Ok((ModuleDb::wire(host, workers, Some(storage))?, report))
    }

    /// Wires a host to an engine holding its tables and rows (a recovered state enters the
    /// engine as one transaction at its offset).
    fn wire(host: Host, workers: usize, storage: Option<Storage>) -> Result<ModuleDb> {
        let (engine, catalog) = engine_for(host.datastore(), workers)?;
        Ok(ModuleDb { host, engine, workers, catalog, storage, read_only: None })
    }

    /// After the log failed to make a transaction durable (`wait_durable` answered `failure`):
    /// the database recovered afresh from its files, which hold exactly what became durable,
    /// so the transactions that did not are gone from memory, the engine and its
    /// subscriptions too (their subscribers must subscribe again). It refuses writes until
    /// its log takes them again, and serves reads meanwhile.
    pub fn revert(self, failure: &str) -> Result<ModuleDb> {
        let budget = self.engine.budget();
        let storage = self.storage.context("a database in memory has no log to fail")?;
        let durable = storage.durable();
        drop((self.host, self.engine));
        let (host, storage, _) = storage.reopen(HostConfig::default())?;
        let offset = host.datastore().offset();
        if offset != durable {
            // The failed batch could not be cut off: its callers were told nothing yet, but
            // going on would contradict either them or the disk.
            bail!("the log holds offset {offset} where {durable} was the last durable one");
        }
        let mut db = ModuleDb::wire(host, self.workers, Some(storage))?;
        db.set_query_budget(budget);
        let reason = format!(
            "the database refuses writes for now: {failure}; it resumes them by itself once its log can be written"
        );
        db.read_only = Some(ReadOnly { reason, probed: Instant::now() });
        Ok(db)
    }

    /// Whether writes are being refused (see `revert`).
    pub fn refusing_writes(&self) -> bool {
        self.read_only.is_some()
    }

    /// Whether the database takes writes: not while its log cannot be written, which is
    /// tried again at most every `PROBE_EVERY`.
    fn writable(&mut self) -> Result<(), ReducerError> {
        let Some(read_only) = &mut self.read_only else { return Ok(()) };
        if read_only.probed.elapsed() >= PROBE_EVERY {
            read_only.probed = Instant::now();
            if self.storage.as_ref().is_none_or(|s| s.probe().is_ok()) {
                self.read_only = None;
                return Ok(());
            }
        }
        Err(ReducerError::ReadOnly(read_only.reason.clone()))
    }

    /// When the next scheduled reducer is due (microseconds since the Unix epoch); while
    /// writes are refused, no sooner than the next try of the log.
    pub fn next_scheduled(&self) -> Option<u64> {
        let at = self.host.next_scheduled()?;
        Some(match &self.read_only {
            Some(r) => {
                at.max(crate::demo::now_micros() + PROBE_EVERY.saturating_sub(r.probed.elapsed()).as_micros() as u64)
            }
            None => at,
        })
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The module's wasm as its storage keeps it (`None` for a database in memory).
    pub fn stored_module(&self) -> Option<&[u8]> {
        self.storage.as_ref().map(|s| s.module())
    }

    /// The lines the module logged since they were last taken.
    pub fn take_logs(&mut self) -> Vec<sluice_runtime::LogLine> {
        self.host.take_logs()
    }

    /// Sets what each later one-off query or new subscription's evaluation may cost.
    pub fn set_query_budget(&mut self, budget: sluice_ivm::QueryBudget) {
        self.engine.set_budget(budget);
    }

    /// Subscribes to a query; its initial rows are as of the current offset.
    pub fn subscribe(&mut self, sql: &str) -> Result<Subscription> {
        let plan = Planner::new(&self.catalog).plan_sql(sql)?;
        Ok(self.engine.subscribe(&plan, &StoreRows(self.host.datastore()))?)
    }

    /// Plans a query as `caller` asks it: `:sender` is the caller's identity, and a private
    /// table is refused to all but the owner.
    pub fn plan_as(&self, sql: &str, caller: &Caller) -> Result<QueryPlan> {
        let plan = self.planner(caller).plan_sql(sql)?;
        self.check_readable(&plan, caller)?;
        Ok(plan)
    }

    /// Plans each statement of a SQL request as `caller` asks it: queries as `plan_as` does,
    /// and INSERT, UPDATE and DELETE for the owner only. The module declares the tables, so
    /// DDL is refused.
    pub fn plan_statements(&self, sql: &str, caller: &Caller) -> Result<Vec<Dml>> {
        let stmts = parse(sql)?;
        if stmts.is_empty() {
            bail!("empty statement");
        }
        let planner = self.planner(caller);
        let mut planned = Vec::new();
        for stmt in &stmts {
            match planner.plan_statement(stmt)? {
                Dml::Query(plan) => {
                    self.check_readable(&plan, caller)?;
                    planned.push(Dml::Query(plan));
                }
                dml @ (Dml::Insert { .. } | Dml::InsertSelect { .. } | Dml::Update { .. } | Dml::Delete { .. }) => {
                    if !caller.owner {
                        bail!("only the database's owner may run INSERT, UPDATE or DELETE");
                    }
                    planned.push(dml);
                }
                _ => bail!("the module declares the tables: publish a new module to change them"),
            }
        }
        Ok(planned)
    }

    fn planner(&self, caller: &Caller) -> Planner<'_> {
        Planner::new(&self.catalog).with_param("sender", Value::Bytes(caller.identity.0.to_vec().into()))
    }

    fn check_readable(&self, plan: &QueryPlan, caller: &Caller) -> Result<()> {
        if !caller.owner {
            let defs: Vec<_> = self.host.datastore().defs().collect();
            for table in plan.plan.tables() {
                if defs.iter().any(|d| d.schema.name == table && !d.public) {
                    bail!("table {table} is private: only the database's owner may read it");
                }
            }
        }
        Ok(())
    }

    /// Subscribes to a planned query (see `plan_as`).
    pub fn subscribe_plan(&mut self, plan: &QueryPlan) -> Result<Subscription> {
        Ok(self.engine.subscribe(plan, &StoreRows(self.host.datastore()))?)
    }

    /// The live queries ended since the last call, and why (see `Engine::take_failed`).
    pub fn take_failed_queries(&mut self) -> Vec<(QueryId, String)> {
        self.engine.take_failed()
    }

    pub fn unsubscribe(&mut self, id: SubscriptionId) -> Result<()> {
        Ok(self.engine.unsubscribe(id)?)
    }

    /// The result columns holding a table's primary key, where the query keeps one row per key.
    pub fn primary_key(&self, plan: &QueryPlan) -> Option<Vec<usize>> {
        plan.plan.primary_key(&self.catalog).filter(|key| key.iter().all(|&k| k < plan.columns.len()))
    }

    /// Evaluates a one-off query on the current state: its columns, and its rows in its
    /// ORDER BY order.
    pub fn query(&mut self, sql: &str, caller: &Caller) -> Result<QueryAnswer> {
        let plan = self.plan_as(sql, caller)?;
        self.evaluate(plan)
    }

    /// Evaluates a planned query on the current state.
    pub fn evaluate(&mut self, plan: QueryPlan) -> Result<QueryAnswer> {
        let rows = self.engine.evaluate(&plan, &StoreRows(self.host.datastore()))?;
        Ok(QueryAnswer { columns: plan.columns, rows, offset: self.host.datastore().offset() })
    }

    /// Runs an INSERT, UPDATE or DELETE (see `plan_statements`) as one transaction, committed
    /// as `meta`: the rows it changed, and its commit (none when it changes no row).
    pub fn write(&mut self, dml: Dml, mut meta: CommitMeta) -> Result<(usize, Option<Committed>)> {
        self.writable()?;
        let engine = &mut self.engine;
        let store = self.host.datastore();
        let changes = dml::changes(store, dml, |q| Ok(engine.evaluate(q, &StoreRows(store))?))?;
        let rows = changes.rows();
        if rows == 0 {
            return Ok((0, None));
        }
        meta.reducer = "sql".into();
        let tx = self.host.transact(meta, |store| dml::apply(store, changes))?;
        Ok((rows, Some(self.apply(tx))))
    }

    /// Hands a committed transaction to the log (in memory only: nothing to do).
    fn log(&mut self, tx: &TxRecord) {
        if let Some(storage) = &mut self.storage {
            // Appending cannot fail here; a snapshot can, and the log still holds everything.
            if let Err(e) = storage.append(tx, &self.host) {
                eprintln!("warning: snapshot at offset {} failed: {e}", tx.offset);
            }
        }
    }

    fn apply(&mut self, tx: TxRecord) -> Committed {
        self.log(&tx);
        let deltas = self.engine.apply(vec![transaction(&tx)]).expect("commit records come in offset order");
        (tx, deltas)
    }

    /// Calls a reducer with JSON arguments.
    pub fn call(&mut self, reducer: &str, args: &str, meta: CommitMeta) -> Result<Committed, ReducerError> {
        self.writable()?;
        let tx = self.host.call(reducer, args, meta)?;
        Ok(self.apply(tx))
    }

    /// Calls reducers one after another, each its own transaction at its own offset, then
    /// brings the engine up to date with all of them in one step (the engine's cost per step
    /// is shared; each transaction's deltas are still its own). Per call: its commit and
    /// deltas or why it failed, and how long the reducer took to run and commit.
    pub fn call_batch<'a>(
        &mut self,
        calls: impl IntoIterator<Item = (&'a str, &'a str, CommitMeta)>,
    ) -> Vec<(Result<Committed, ReducerError>, Duration)> {
        let mut ran = Vec::new();
        let mut txs = Vec::new();
        for (reducer, args, meta) in calls {
            let started = Instant::now();
            let outcome = self.writable().and_then(|()| self.host.call(reducer, args, meta));
            if let Ok(tx) = &outcome {
                self.log(tx);
                txs.push(transaction(tx));
            }
            ran.push((outcome, started.elapsed()));
        }
        let deltas = self.engine.apply(txs).expect("commit records come in offset order");
        // The deltas come sorted by offset, as the calls ran.
        let mut deltas = deltas.into_iter().peekable();
        ran.into_iter()
            .map(|(outcome, took)| {
                let committed = outcome.map(|tx| {
                    let mine = std::iter::from_fn(|| deltas.next_if(|d| d.offset == tx.offset)).collect();
                    (tx, mine)
                });
                (committed, took)
            })
            .collect()
    }

    /// Runs the module's reducer for a lifecycle event, if it has one.
    pub fn lifecycle(&mut self, role: Lifecycle, meta: CommitMeta) -> Option<Result<Committed, ReducerError>> {
        if let Err(e) = self.writable() {
            return self.host.description().lifecycle(role).map(|_| Err(e));
        }
        let outcome = self.host.lifecycle(role, meta)?;
        Some(outcome.map(|tx| self.apply(tx)))
    }

    /// Runs the scheduled reducers due at `now` (microseconds since the Unix epoch).
    pub fn run_scheduled(&mut self, now: u64) -> Vec<(ScheduledRun, Vec<QueryDelta>)> {
        if self.host.next_scheduled().is_none_or(|at| at > now) || self.writable().is_err() {
            return Vec::new();
        }
        let runs = self.host.run_scheduled(now);
        runs.into_iter()
            .map(|ScheduledRun { reducer, tx, error }| {
                let (tx, deltas) = self.apply(tx);
                (ScheduledRun { reducer, tx, error }, deltas)
            })
            .collect()
    }

    /// Replaces the module, keeping the data: its tables must be declared exactly as before
    /// (reducers may change). Live subscriptions go on undisturbed.
    pub fn republish(&mut self, wasm: &[u8], timestamp_micros: u64) -> Result<()> {
        let mut host = Host::load(wasm, HostConfig::default())?;
        let (old, new): (Vec<_>, Vec<_>) = (self.host.datastore().defs().collect(), host.datastore().defs().collect());
        for def in &new {
            match old.iter().find(|o| o.schema.name == def.schema.name) {
                None => bail!(
                    "incompatible schema: table {} is new (publish with --clear to replace the data)",
                    def.schema.name
                ),
                Some(o) if o != def => bail!(
                    "incompatible schema: table {} changed (publish with --clear to replace the data)",
                    def.schema.name
                ),
                Some(_) => {}
            }
        }
        if let Some(gone) = old.iter().find(|o| !new.iter().any(|d| d.schema.name == o.schema.name)) {
            bail!("incompatible schema: table {} is gone (publish with --clear to replace the data)", gone.schema.name);
        }
        let datastore = self.host.datastore();
        host.restore(datastore.offset(), datastore.tables_state())?;
        if let Some(storage) = &mut self.storage {
            storage.wait(datastore.offset())?;
            storage.replace_module(wasm, &host, timestamp_micros)?;
        }
        self.host = host;
        Ok(())
    }

    /// Transactions up to this offset are durable (all of them, in memory only).
    pub fn durable(&self) -> u64 {
        self.storage.as_ref().map_or(self.host.datastore().offset(), Storage::durable)
    }

    /// Waits until the transaction at `offset` is durable: before then, neither its result
    /// nor its deltas may leave the database.
    pub fn wait_durable(&self, offset: u64) -> Result<()> {
        if let Some(s) = &self.storage {
            s.wait(offset)?;
        }
        Ok(())
    }

    /// Clean shutdown: everything durable and a snapshot taken.
    pub fn close(self, timestamp_micros: u64) -> Result<()> {
        if let Some(s) = self.storage {
            s.close(&self.host, timestamp_micros)?;
        }
        Ok(())
    }
}
