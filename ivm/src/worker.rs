//! One timely worker's share of the engine: base-table inputs and their shared arrangements,
//! query dataflows, and the commands the engine sends every worker.

use crate::budget::{Limit, Overrun};
use crate::delta::{Diff, Offset, QueryId, Transaction};
use crate::layout::arrange_by_key;
use crate::render::{column_key, shared_arrangements, Base, Predicate, Renderer, Scan, SharedKey};
use crate::source::{Loaded, NoRows, TableSource};
use differential_dataflow::input::InputSession;
use differential_dataflow::trace::implementations::spine_fueled::SpineBatch;
use differential_dataflow::trace::TraceReader;
use sluice_planner::{Plan, Row};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use timely::dataflow::operators::probe::Handle as ProbeHandle;
use timely::dataflow::operators::Probe;
use timely::progress::frontier::AntichainRef;
use timely::worker::Worker;

/// What the engine asks of every worker.
#[derive(Clone)]
pub enum Command {
    CreateTable(String),
    DropTable(String),
    Apply(Arc<Vec<Transaction>>),
    /// A query, with the rows of the tables it reads when they cannot be borrowed (worker
    /// threads; `None` reads them from the source the command is handled with), built within
    /// a budget.
    AddQuery(QueryId, Arc<Plan>, Option<Arc<Loaded>>, Limit),
    DropQuery(QueryId),
    /// Count the update records of the shared arrangements.
    Stats,
}

/// A worker's answer to a command.
#[derive(Default)]
pub struct Reply {
    /// Output updates of each query produced while handling the command.
    pub outputs: Outputs,
    /// For `Stats`: update records in this worker's shared arrangements.
    pub base_records: usize,
    /// For `AddQuery`: why the query was stopped and dropped, if it ran past its budget.
    pub overrun: Option<Overrun>,
}

/// Output updates of each query produced while handling a command.
pub type Outputs = Vec<(QueryId, Vec<(Row, Offset, Diff)>)>;

/// The input of a by-key arrangement: (key, row) pairs.
type KeyedInput = InputSession<Offset, (Row, Row), Diff>;

/// A shared by-key arrangement's input and dataflow.
struct Keyed {
    key: SharedKey,
    /// The key's filter: which of the table's rows the arrangement holds.
    admit: Predicate,
    input: KeyedInput,
    dataflow: usize,
    /// Its own probe: a dropped dataflow's probe would hold a shared handle back.
    probe: ProbeHandle<Offset>,
    /// Live queries importing the arrangement; it is dropped with the last.
    users: usize,
}

/// The inputs fed a base table's changes.
#[derive(Default)]
struct Table {
    /// Inputs of the table's arrangements by key (filtered and keyed on the way in), so a
    /// by-key arrangement reads no other dataflow.
    keyed: Vec<Keyed>,
    /// Inputs of the queries' scans of the table.
    scans: Vec<(QueryId, Scan)>,
}

impl Table {
    /// Advances the by-key and scan inputs past `now`; returns the by-key arrangements'
    /// probes (a scan's progress shows in its query's probe).
    fn advance(&mut self, now: Offset) -> impl Iterator<Item = ProbeHandle<Offset>> + '_ {
        for keyed in &mut self.keyed {
            keyed.input.advance_to(now + 1);
            keyed.input.flush();
        }
        for (_, scan) in &mut self.scans {
            scan.input.advance_to(now + 1);
            scan.input.flush();
        }
        self.keyed.iter().map(|k| k.probe.clone())
    }
}

struct Query {
    dataflow: usize,
    probe: ProbeHandle<Offset>,
    output: Rc<RefCell<Vec<(Row, Offset, Diff)>>>,
    tables: Vec<String>,
    /// The shared by-key arrangements it imports.
    arrangements: Vec<(String, SharedKey)>,
}

/// Per-worker state.
pub struct WorkerState {
    tables: HashMap<String, Table>,
    bases: HashMap<String, Base>,
    queries: HashMap<QueryId, Query>,
    /// Last applied offset: the state every arrangement reflects.
    now: Offset,
}

impl WorkerState {
    pub fn new(now: Offset) -> WorkerState {
        WorkerState { tables: HashMap::new(), bases: HashMap::new(), queries: HashMap::new(), now }
    }

    /// Carries out one command, reading tables' rows from `source` (as of the current offset)
    /// where a new query needs them; returns the query output it produced.
    pub fn handle(&mut self, worker: &mut Worker, cmd: Command, source: &dyn TableSource) -> Reply {
        let (mut base_records, mut overrun) = (0, None);
        match cmd {
            Command::Stats => base_records = self.base_records(),
            Command::CreateTable(name) => {
                self.bases.insert(name.clone(), Base { by_key: HashMap::new() });
                self.tables.insert(name, Table::default());
            }
            Command::DropTable(name) => {
                self.bases.remove(&name);
                for k in self.tables.remove(&name).map(|t| t.keyed).unwrap_or_default() {
                    worker.drop_dataflow(k.dataflow);
                }
            }
            Command::Apply(txs) => self.apply(worker, &txs),
            Command::AddQuery(id, plan, loaded, limit) => {
                // Worker 0 feeds every input, so it alone loads rows.
                let source: &dyn TableSource = match (&loaded, worker.index()) {
                    (_, 1..) => &NoRows,
                    (Some(loaded), 0) => &**loaded,
                    (None, 0) => source,
                };
                self.add_query(worker, id, &plan, source);
                overrun = self.build_within(worker, id, &limit);
            }
            Command::DropQuery(id) => self.drop_query(worker, id),
        }
        self.step_until(worker, self.now + 1, &[]);
        Reply { outputs: self.drain(), base_records, overrun }
    }

    /// Steps a new query until its rows are complete, or until it runs past `limit`: then it
    /// is dropped (with what it produced) and the overrun returned.
    fn build_within(&mut self, worker: &mut Worker, id: QueryId, limit: &Limit) -> Option<Overrun> {
        loop {
            let q = &self.queries[&id];
            if !q.probe.less_than(&(self.now + 1)) {
                return None;
            }
            let produced = q.output.borrow().len();
            if let Some(overrun) = limit.check(produced) {
                self.drop_query(worker, id);
                return Some(overrun);
            }
            worker.step();
        }
    }

    /// Update records in the shared arrangements.
    fn base_records(&self) -> usize {
        let mut n = 0;
        for b in self.bases.values() {
            for k in b.by_key.values() {
                k.map_spans(|s| n += s.inner.as_ref().map_or(0, |b| b.len()));
            }
        }
        n
    }

    fn apply(&mut self, worker: &mut Worker, txs: &[Transaction]) {
        let Some(last) = txs.last().map(|t| t.offset) else { return };
        if worker.index() == 0 {
            for tx in txs {
                for change in &tx.changes {
                    let table = self.tables.get_mut(&change.table).expect("engine checked the table");
                    for (changed, diff) in [(&change.deletes, -1), (&change.inserts, 1)] {
                        for r in changed {
                            for k in &mut table.keyed {
                                if k.admit.admits(r.as_row_ref()) {
                                    k.input.update_at((column_key(&k.key.cols, r), r.clone()), tx.offset, diff);
                                }
                            }
                            for (_, scan) in &mut table.scans {
                                if scan.admit.admits(r.as_row_ref()) {
                                    scan.input.update_at(r.clone(), tx.offset, diff);
                                }
                            }
                        }
                    }
                }
            }
        }
        // Every input moves on, so every query and arrangement is complete through `last`.
        let mut probes = Vec::new();
        let mut moved = Vec::new();
        for (name, t) in &mut self.tables {
            let before = probes.len();
            probes.extend(t.advance(last));
            if probes.len() > before {
                moved.push(name.clone());
            }
        }
        self.now = last;
        self.step_until(worker, last + 1, &probes);
        let frontier = [last];
        for name in &moved {
            for t in self.bases.get_mut(name).expect("base of a table").by_key.values_mut() {
                t.set_logical_compaction(AntichainRef::new(&frontier));
                t.set_physical_compaction(AntichainRef::new(&frontier));
            }
        }
    }

    fn add_query(&mut self, worker: &mut Worker, id: QueryId, plan: &Plan, source: &dyn TableSource) {
        // Every input is advanced through `now` at each step, so the arrangements are current.
        // Shared arrangements by join key are their own dataflows, built before the query's
        // unless a usable one exists: an input loaded with the table's current rows (all on
        // worker 0), then fed every later change.
        let mut probes = Vec::new();
        let mut arrangements = Vec::new();
        for (table, want) in shared_arrangements(plan) {
            let base = self.bases.get_mut(&table).expect("engine checked the table");
            if let Some(key) = base.choose(&want) {
                let t = self.tables.get_mut(&table).expect("table");
                t.keyed.iter_mut().find(|k| k.key == key).expect("input of an arrangement").users += 1;
                arrangements.push((table, key));
                continue;
            }
            let mut keyed = InputSession::new();
            let now = self.now;
            let admit = Predicate::new(want.filter.clone());
            source.for_each_row(&table, &mut |row| {
                if admit.admits(row.as_row_ref()) {
                    keyed.update_at((column_key(&want.cols, row), row.clone()), now, 1);
                }
            });
            let probe = ProbeHandle::new();
            let dataflow = worker.next_dataflow_index();
            let trace = worker.dataflow(|scope| {
                let arranged = arrange_by_key(keyed.to_collection(scope));
                arranged.stream.clone().probe_with(&probe);
                arranged.trace
            });
            keyed.advance_to(self.now + 1);
            keyed.flush();
            base.by_key.insert(want.clone(), trace);
            let t = self.tables.get_mut(&table).expect("table");
            t.keyed.push(Keyed { key: want.clone(), admit, input: keyed, dataflow, probe: probe.clone(), users: 1 });
            probes.push(probe);
            arrangements.push((table, want));
        }
        self.step_until(worker, self.now + 1, &probes);
        let output = Rc::new(RefCell::new(Vec::new()));
        let probe = ProbeHandle::new();
        let dataflow = worker.next_dataflow_index();
        let index = worker.index();
        let bases = &mut self.bases;
        let sink = Rc::clone(&output);
        let now = self.now;
        let scans = worker.dataflow(|scope| {
            let mut r = Renderer::new(scope, bases, index, now, source);
            r.render(plan).inspect_batch(move |_, data| sink.borrow_mut().extend_from_slice(data)).probe_with(&probe);
            r.scans
        });
        // Scans start moving once their dataflow is built.
        for (name, mut scan) in scans {
            scan.input.advance_to(now + 1);
            scan.input.flush();
            self.tables.get_mut(&name).expect("engine checked the table").scans.push((id, scan));
        }
        self.queries.insert(id, Query { dataflow, probe, output, tables: plan.tables(), arrangements });
    }

    /// Drops a query's dataflow, and the shared arrangements no other query imports.
    fn drop_query(&mut self, worker: &mut Worker, id: QueryId) {
        let Some(q) = self.queries.remove(&id) else { return };
        worker.drop_dataflow(q.dataflow);
        for t in &q.tables {
            if let Some(t) = self.tables.get_mut(t) {
                t.scans.retain(|(q, _)| *q != id);
            }
        }
        for (table, key) in q.arrangements {
            let t = self.tables.get_mut(&table).expect("tables outlive their queries");
            let i = t.keyed.iter().position(|k| k.key == key).expect("input of an arrangement");
            t.keyed[i].users -= 1;
            if t.keyed[i].users == 0 {
                let k = t.keyed.swap_remove(i);
                worker.drop_dataflow(k.dataflow);
                self.bases.get_mut(&table).expect("base of a table").by_key.remove(&key);
            }
        }
    }

    /// Steps until every query, and the arrangements `probes` watch, are complete up to `target`.
    fn step_until(&self, worker: &mut Worker, target: Offset, probes: &[ProbeHandle<Offset>]) {
        let behind = |p: &ProbeHandle<Offset>| p.less_than(&target);
        while probes.iter().any(behind) || self.queries.values().any(|q| behind(&q.probe)) {
            worker.step();
        }
    }

    fn drain(&mut self) -> Outputs {
        self.queries
            .iter()
            .filter_map(|(id, q)| {
                let mut out = q.output.borrow_mut();
                (!out.is_empty()).then(|| (*id, std::mem::take(&mut *out)))
            })
            .collect()
    }
}
