//! One timely worker's share of the engine: base-table inputs and their shared arrangements,
//! query dataflows, and the commands the engine sends every worker.

use crate::delta::{Diff, Offset, QueryId, Transaction};
use crate::render::{column_key, rows_as_of, shared_arrangements, BaseTraces, Renderer, ScanInput};
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
    AddQuery(QueryId, Arc<Plan>),
    DropQuery(QueryId),
    /// Count the update records held by base-table arrangements.
    Stats,
}

/// A worker's answer to a command.
#[derive(Default)]
pub struct Reply {
    /// Output updates of each query produced while handling the command.
    pub outputs: Outputs,
    /// For `Stats`: update records in this worker's base-table arrangements.
    pub base_records: usize,
}

/// Output updates of each query produced while handling a command.
pub type Outputs = Vec<(QueryId, Vec<(Row, Offset, Diff)>)>;

/// The input of a by-key arrangement: (key, row) pairs.
type KeyedInput = InputSession<Offset, (Row, Row), Diff>;

/// Offsets a table's by-row input may fall behind: no query reads that arrangement as changes
/// come (it serves to load new scans and by-key arrangements, after a catch-up), so this only
/// bounds the updates it holds unsorted, and catching up sorts them in one batch.
const ROWS_LAG: Offset = 256;

struct Table {
    input: InputSession<Offset, Row, Diff>,
    /// Inputs of the table's arrangements by key columns, fed the same changes as `input`
    /// (keyed on the way in), so a by-key arrangement reads no other dataflow.
    keyed: Vec<(Vec<usize>, KeyedInput)>,
    /// Inputs of the queries' scans of the table, fed the same changes.
    scans: Vec<(QueryId, ScanInput)>,
    dataflows: Vec<usize>,
    /// Probes the arrangement by row.
    probe: ProbeHandle<Offset>,
    /// Probes the arrangements by key.
    keyed_probe: ProbeHandle<Offset>,
    /// Live queries reading the table. A table no query reads and no transaction changes is
    /// left alone (its inputs not advanced), so idle tables cost nothing per transaction; it
    /// catches up when a query starts reading it.
    readers: usize,
    /// The by-row input has been advanced past this offset.
    rows_at: Offset,
    /// The by-row input holds changes after `rows_at`.
    rows_dirty: bool,
}

impl Table {
    /// Advances the by-row input past `now`; true if it moved.
    fn advance_rows(&mut self, now: Offset) -> bool {
        if self.rows_at >= now {
            return false;
        }
        self.input.advance_to(now + 1);
        self.input.flush();
        self.rows_at = now;
        self.rows_dirty = false;
        true
    }

    /// Advances the by-key and scan inputs past `now`; true if there are by-key ones (a
    /// scan's progress shows in its query's probe).
    fn advance_fed(&mut self, now: Offset) -> bool {
        for (_, keyed) in &mut self.keyed {
            keyed.advance_to(now + 1);
            keyed.flush();
        }
        for (_, scan) in &mut self.scans {
            scan.advance_to(now + 1);
            scan.flush();
        }
        !self.keyed.is_empty()
    }
}

struct Query {
    dataflow: usize,
    probe: ProbeHandle<Offset>,
    output: Rc<RefCell<Vec<(Row, Offset, Diff)>>>,
    tables: Vec<String>,
}

/// Per-worker state.
pub struct WorkerState {
    tables: HashMap<String, Table>,
    traces: HashMap<String, BaseTraces>,
    queries: HashMap<QueryId, Query>,
    /// Last applied offset: the state every arrangement reflects.
    now: Offset,
}

impl WorkerState {
    pub fn new(now: Offset) -> WorkerState {
        WorkerState { tables: HashMap::new(), traces: HashMap::new(), queries: HashMap::new(), now }
    }

    /// Carries out one command; returns the query output it produced.
    pub fn handle(&mut self, worker: &mut Worker, cmd: Command) -> Reply {
        let mut base_records = 0;
        match cmd {
            Command::Stats => base_records = self.base_records(),
            Command::CreateTable(name) => self.create_table(worker, name),
            Command::DropTable(name) => {
                if let Some(t) = self.tables.remove(&name) {
                    self.traces.remove(&name);
                    for d in t.dataflows {
                        worker.drop_dataflow(d);
                    }
                }
            }
            Command::Apply(txs) => self.apply(worker, &txs),
            Command::AddQuery(id, plan) => self.add_query(worker, id, &plan),
            Command::DropQuery(id) => {
                if let Some(q) = self.queries.remove(&id) {
                    worker.drop_dataflow(q.dataflow);
                    for t in &q.tables {
                        if let Some(t) = self.tables.get_mut(t) {
                            t.readers -= 1;
                            t.scans.retain(|(q, _)| *q != id);
                        }
                    }
                }
            }
        }
        self.step_until(worker, self.now + 1, &[]);
        Reply { outputs: self.drain(), base_records }
    }

    fn base_records(&self) -> usize {
        let mut n = 0;
        for t in self.traces.values() {
            t.rows.map_spans(|s| n += s.inner.as_ref().map_or(0, |b| b.len()));
            for k in t.by_key.values() {
                k.map_spans(|s| n += s.inner.as_ref().map_or(0, |b| b.len()));
            }
        }
        n
    }

    fn create_table(&mut self, worker: &mut Worker, name: String) {
        let mut input = InputSession::new();
        let probe = ProbeHandle::new();
        let dataflow = worker.next_dataflow_index();
        let rows = worker.dataflow(|scope| {
            let arranged = input.to_collection(scope).arrange_by_self();
            arranged.stream.clone().probe_with(&probe);
            arranged.trace
        });
        input.advance_to(self.now + 1);
        input.flush();
        // Compaction starts when the trace is next advanced, once it has caught up.
        self.traces.insert(name.clone(), BaseTraces { rows, by_key: HashMap::new() });
        let table = Table {
            input,
            keyed: Vec::new(),
            scans: Vec::new(),
            dataflows: vec![dataflow],
            probe,
            keyed_probe: ProbeHandle::new(),
            readers: 0,
            rows_at: self.now,
            rows_dirty: false,
        };
        let probes = [table.probe.clone()];
        self.tables.insert(name, table);
        self.step_until(worker, self.now + 1, &probes);
    }

    fn apply(&mut self, worker: &mut Worker, txs: &[Transaction]) {
        let Some(last) = txs.last().map(|t| t.offset) else { return };
        if worker.index() == 0 {
            for tx in txs {
                for change in &tx.changes {
                    let table = self.tables.get_mut(&change.table).expect("engine checked the table");
                    for (rows, diff) in [(&change.deletes, -1), (&change.inserts, 1)] {
                        for r in rows {
                            for (cols, keyed) in &mut table.keyed {
                                keyed.update_at((column_key(cols, r), r.clone()), tx.offset, diff);
                            }
                            for (_, scan) in &mut table.scans {
                                scan.update_at(r.clone(), tx.offset, diff);
                            }
                            table.input.update_at(r.clone(), tx.offset, diff);
                        }
                    }
                }
            }
        }
        // Advance the by-key and scan inputs of the tables that changed or that some query
        // reads, and the by-row inputs that fell too far behind.
        let mut changed: Vec<&str> = txs.iter().flat_map(|tx| tx.changes.iter().map(|c| c.table.as_str())).collect();
        changed.sort_unstable();
        changed.dedup();
        let mut probes = Vec::new();
        let (mut rows_moved, mut keys_moved) = (Vec::new(), Vec::new());
        for (name, t) in &mut self.tables {
            let is_changed = changed.binary_search(&name.as_str()).is_ok();
            t.rows_dirty |= is_changed;
            if (t.readers > 0 || is_changed) && t.advance_fed(last) {
                probes.push(t.keyed_probe.clone());
                keys_moved.push(name.clone());
            }
            let lagging = t.rows_dirty && last - t.rows_at >= ROWS_LAG;
            if lagging && t.advance_rows(last) {
                probes.push(t.probe.clone());
                rows_moved.push(name.clone());
            }
        }
        self.now = last;
        self.step_until(worker, last + 1, &probes);
        let frontier = [last];
        for name in &rows_moved {
            let traces = self.traces.get_mut(name).expect("traces of a table");
            traces.rows.set_logical_compaction(AntichainRef::new(&frontier));
            traces.rows.set_physical_compaction(AntichainRef::new(&frontier));
        }
        for name in &keys_moved {
            for t in self.traces.get_mut(name).expect("traces of a table").by_key.values_mut() {
                t.set_logical_compaction(AntichainRef::new(&frontier));
                t.set_physical_compaction(AntichainRef::new(&frontier));
            }
        }
    }

    fn add_query(&mut self, worker: &mut Worker, id: QueryId, plan: &Plan) {
        // The plan's tables catch up to the current offset first.
        let tables = plan.tables();
        let mut probes = Vec::new();
        for name in &tables {
            let t = self.tables.get_mut(name).expect("engine checked the table");
            t.advance_rows(self.now);
            t.advance_fed(self.now);
            t.readers += 1;
            probes.extend([t.probe.clone(), t.keyed_probe.clone()]);
        }
        self.step_until(worker, self.now + 1, &probes);
        // Shared arrangements by join key are their own dataflows, built before the query's:
        // an input loaded with this worker's share of the table's current rows, then fed every
        // later change alongside the table's own input.
        for (table, cols) in shared_arrangements(plan) {
            let traces = self.traces.get_mut(&table).expect("engine checked the table");
            if traces.by_key.contains_key(&cols) {
                continue;
            }
            let mut keyed = InputSession::new();
            for (row, diff) in rows_as_of(&mut traces.rows, self.now) {
                keyed.update_at((column_key(&cols, &row), row), self.now, diff);
            }
            let probe = self.tables[&table].keyed_probe.clone();
            let dataflow = worker.next_dataflow_index();
            let trace = worker.dataflow(|scope| {
                let arranged = keyed.to_collection(scope).arrange_by_key();
                arranged.stream.clone().probe_with(&probe);
                arranged.trace
            });
            keyed.advance_to(self.now + 1);
            keyed.flush();
            traces.by_key.insert(cols.clone(), trace);
            let t = self.tables.get_mut(&table).expect("table");
            t.keyed.push((cols, keyed));
            t.dataflows.push(dataflow);
        }
        self.step_until(worker, self.now + 1, &probes);
        let output = Rc::new(RefCell::new(Vec::new()));
        let probe = ProbeHandle::new();
        let dataflow = worker.next_dataflow_index();
        let index = worker.index();
        let traces = &mut self.traces;
        let sink = Rc::clone(&output);
        let now = self.now;
        let scans = worker.dataflow(|scope| {
            let mut r = Renderer::new(scope, traces, index, now);
            r.render(plan).inspect_batch(move |_, data| sink.borrow_mut().extend_from_slice(data)).probe_with(&probe);
            r.scans
        });
        // Scans start moving once their dataflow is built.
        for (name, mut scan) in scans {
            scan.advance_to(now + 1);
            scan.flush();
            self.tables.get_mut(&name).expect("engine checked the table").scans.push((id, scan));
        }
        self.queries.insert(id, Query { dataflow, probe, output, tables });
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
