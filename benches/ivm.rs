//! Engine benchmarks on one worker: per-transaction update cost of six query classes over
//! 1M-row tables, beside two baselines measured in the same run — recomputing the query from
//! scratch after each transaction, and the same query hand-written in differential dataflow
//! with typed tuples — plus join + filter + GROUP BY throughput and base-arrangement memory.
//!
//! `cargo bench --bench ivm` (set SLUICE_BENCH_ROWS to change the table size, default 1M, and
//! SLUICE_BENCH_ONLY=top10,join3,pipeline,group_size to run only those parts).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use differential_dataflow::input::InputSession;
use differential_dataflow::operators::count::CountTotal;
use differential_dataflow::VecCollection;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sluice_ivm::{Engine, EngineConfig, TableChange, TableRows, Transaction};
use sluice_planner::{Catalog, Dml, Planner, Row, Value};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};
use timely::communication::allocator::thread::Thread;
use timely::communication::Allocator;
use timely::dataflow::operators::probe::Handle as Probe;
use timely::worker::{Config as WorkerConfig, Worker};

const GROUPS: u64 = 1000;
const VALUES: i64 = 1000;

/// The query classes, as SQL.
const QUERIES: [(&str, &str); 6] = [
    ("filter", "SELECT id, v FROM a WHERE v < 100"),
    ("join2", "SELECT a.id, a.v, b.w FROM a JOIN b ON a.b_id = b.id"),
    ("join3", "SELECT a.id, a.v, c.x FROM a JOIN b ON a.b_id = b.id JOIN c ON b.c_id = c.id"),
    ("group_sum", "SELECT g, SUM(v) FROM a GROUP BY g"),
    ("count", "SELECT COUNT(*) FROM a WHERE v < 500"),
    ("top10", "SELECT id, v FROM a ORDER BY v DESC, id LIMIT 10"),
];

const PIPELINE: &str =
    "SELECT b.c_id % 100, SUM(a.v) FROM a JOIN b ON a.b_id = b.id WHERE a.v < 500 GROUP BY b.c_id % 100";

fn rows() -> u64 {
    std::env::var("SLUICE_BENCH_ROWS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000)
}

/// Row of table a: (id, g, v, b_id).
type A = (u64, u64, i64, u64);

struct Data {
    n: u64,
    a: Vec<A>,
    rng: StdRng,
}

impl Data {
    fn new(n: u64) -> Data {
        let mut rng = StdRng::seed_from_u64(7);
        let a = (0..n)
            .map(|id| (id, rng.random_range(0..GROUPS), rng.random_range(0..VALUES), rng.random_range(0..n)))
            .collect();
        Data { n, a, rng }
    }
    fn b(&self, id: u64) -> (u64, u64, i64) {
        (id, (id * 7919) % self.n, (id % 97) as i64)
    }
    fn c(&self, id: u64) -> (u64, i64) {
        (id, (id % 13) as i64)
    }
    /// `k` random updates of a's g and v: (old, new) pairs, applied to the data.
    fn updates(&mut self, k: usize) -> Vec<(A, A)> {
        (0..k)
            .map(|_| {
                let i = self.rng.random_range(0..self.n) as usize;
                let old = self.a[i];
                let new = (old.0, self.rng.random_range(0..GROUPS), self.rng.random_range(0..VALUES), old.3);
                self.a[i] = new;
                (old, new)
            })
            .collect()
    }
}

fn int(x: u64) -> Value {
    Value::Int(x as i64)
}
fn row_a(r: &A) -> Row {
    Row::new(vec![int(r.0), int(r.1), Value::Int(r.2), int(r.3)])
}

/// An engine with tables a, b, c of `n` rows each, and the store holding the rows (a
/// datastore's part: it is kept up to date outside the timed sections).
struct Sluice {
    engine: Engine,
    rows: TableRows,
    catalog: Catalog,
    offset: u64,
}

impl Sluice {
    fn load(data: &Data) -> Sluice {
        let mut catalog = Catalog::new();
        let mut engine = Engine::new(EngineConfig::default());
        let mut rows = TableRows::new();
        for ddl in [
            "CREATE TABLE a (id INTEGER PRIMARY KEY, g INTEGER, v INTEGER, b_id INTEGER)",
            "CREATE TABLE b (id INTEGER PRIMARY KEY, c_id INTEGER, w INTEGER)",
            "CREATE TABLE c (id INTEGER PRIMARY KEY, x INTEGER)",
        ] {
            let stmt = &sluice_planner::parse(ddl).unwrap()[0];
            let Dml::CreateTable(s) = Planner::new(&catalog).plan_statement(stmt).unwrap() else { unreachable!() };
            engine.create_table(&s).unwrap();
            rows.create_table(&s.name, s.primary_key.clone());
            catalog.add_table(s).unwrap();
        }
        let mut s = Sluice { engine, rows, catalog, offset: 0 };
        let chunk = 100_000u64;
        for start in (0..data.n).step_by(chunk as usize) {
            let ids = start..(start + chunk).min(data.n);
            let a = ids.clone().map(|i| row_a(&data.a[i as usize])).collect();
            let b =
                ids.clone().map(|i| data.b(i)).map(|(x, y, z)| Row::new(vec![int(x), int(y), Value::Int(z)])).collect();
            let c = ids.map(|i| data.c(i)).map(|(x, y)| Row::new(vec![int(x), Value::Int(y)])).collect();
            s.offset += 1;
            let changes = vec![
                TableChange { table: "a".into(), inserts: a, deletes: vec![] },
                TableChange { table: "b".into(), inserts: b, deletes: vec![] },
                TableChange { table: "c".into(), inserts: c, deletes: vec![] },
            ];
            s.apply(vec![Transaction { offset: s.offset, changes }]);
        }
        s
    }

    /// Applies transactions to the store, then to the engine; returns the engine's time.
    fn apply(&mut self, txs: Vec<Transaction>) -> Duration {
        txs.iter().for_each(|tx| self.rows.apply(tx));
        let t = Instant::now();
        self.engine.apply(txs).unwrap();
        t.elapsed()
    }

    fn subscribe(&mut self, plan: &sluice_planner::QueryPlan) -> sluice_ivm::Subscription {
        self.engine.subscribe(plan, &self.rows).unwrap()
    }

    fn tx(&mut self, updates: &[(A, A)]) -> Transaction {
        self.offset += 1;
        let change = TableChange {
            table: "a".into(),
            deletes: updates.iter().map(|(o, _)| row_a(o)).collect(),
            inserts: updates.iter().map(|(_, n)| row_a(n)).collect(),
        };
        Transaction { offset: self.offset, changes: vec![change] }
    }

    /// Time to apply one transaction of `size` random updates (making it is not timed).
    fn timed_update(&mut self, data: &mut Data, size: usize) -> Duration {
        let updates = data.updates(size);
        let tx = self.tx(&updates);
        self.apply(vec![tx])
    }

    fn plan(&self, sql: &str) -> sluice_planner::QueryPlan {
        Planner::new(&self.catalog).plan_sql(sql).unwrap()
    }
}

/// The six queries hand-written in differential dataflow over typed tuples. As a live query
/// must, it keeps every table's input open (b and c could change at any transaction, so their
/// inputs advance with a's) and delivers its output updates (collected at the end of the
/// dataflow and taken after each step).
struct Handwritten {
    worker: Worker,
    a: InputSession<u64, A, isize>,
    b: InputSession<u64, (u64, u64, i64), isize>,
    c: InputSession<u64, (u64, i64), isize>,
    probe: Probe<u64>,
    /// Takes the output updates collected so far; returns how many there were.
    take_output: Box<dyn FnMut() -> usize>,
    time: u64,
}

/// Output updates of a hand-written query, collected as a subscriber's would be.
type Sink<D> = Rc<RefCell<Vec<(D, u64, isize)>>>;

/// Collects a hand-written query's output into `sink` and probes it.
fn deliver<'s, D: differential_dataflow::Data>(
    c: VecCollection<'s, u64, D, isize>,
    sink: &Sink<D>,
    probe: &Probe<u64>,
) {
    let sink = Rc::clone(sink);
    c.inspect_batch(move |_, data| sink.borrow_mut().extend_from_slice(data)).probe_with(probe);
}

/// A `take_output` for a sink.
fn taker<D: 'static>(sink: Sink<D>) -> Box<dyn FnMut() -> usize> {
    Box::new(move || std::mem::take(&mut *sink.borrow_mut()).len())
}

impl Handwritten {
    fn new(query: &str, data: &Data) -> Handwritten {
        let alloc = Allocator::Thread(Thread::default());
        let mut worker = Worker::new(WorkerConfig::default(), alloc, Some(Instant::now()));
        let mut a: InputSession<u64, A, isize> = InputSession::new();
        let mut b: InputSession<u64, (u64, u64, i64), isize> = InputSession::new();
        let mut c: InputSession<u64, (u64, i64), isize> = InputSession::new();
        let probe = Probe::new();
        let p = probe.clone();
        let query = query.to_string();
        let take_output = worker.dataflow::<u64, _, _>(|scope| {
            let a = a.to_collection(scope);
            let b = b.to_collection(scope);
            let c = c.to_collection(scope);
            match query.as_str() {
                "filter" => {
                    let sink = Sink::default();
                    deliver(a.filter(|r| r.2 < 100).map(|r| (r.0, r.2)), &sink, &p);
                    taker(sink)
                }
                "join2" => {
                    let b = b.map(|r| (r.0, r.2)).arrange_by_key();
                    let sink = Sink::default();
                    let out =
                        a.map(|r| (r.3, (r.0, r.2))).arrange_by_key().join_core(b, |_, &(id, v), &w| Some((id, v, w)));
                    deliver(out, &sink, &p);
                    taker(sink)
                }
                "join3" => {
                    let b = b.map(|r| (r.0, r.1)).arrange_by_key();
                    let c = c.map(|r| (r.0, r.1)).arrange_by_key();
                    let out = a
                        .map(|r| (r.3, (r.0, r.2)))
                        .arrange_by_key()
                        .join_core(b, |_, &(id, v), &c_id| Some((c_id, (id, v))))
                        .arrange_by_key()
                        .join_core(c, |_, &(id, v), &x| Some((id, v, x)));
                    let sink = Sink::default();
                    deliver(out, &sink, &p);
                    taker(sink)
                }
                "group_sum" => {
                    let sink = Sink::default();
                    deliver(a.explode(|r| Some((r.1, r.2 as isize))).count_total(), &sink, &p);
                    taker(sink)
                }
                "count" => {
                    let sink = Sink::default();
                    deliver(a.filter(|r| r.2 < 500).map(|_| ()).count_total(), &sink, &p);
                    taker(sink)
                }
                "top10" => {
                    // Hierarchical, as a careful hand-written top-k would be: buckets by id bits.
                    let mut top = a.map(|r| (std::cmp::Reverse(r.2), r.0));
                    for bits in [16u32, 12, 8, 4, 0] {
                        top = top
                            .map(move |x| (x.1 & ((1u64 << bits) - 1), x))
                            .reduce(|_, vals, out: &mut Vec<((std::cmp::Reverse<i64>, u64), isize)>| {
                                for (v, _) in vals.iter().take(10) {
                                    out.push((**v, 1));
                                }
                            })
                            .map(|(_, x)| x);
                    }
                    let sink = Sink::default();
                    deliver(top, &sink, &p);
                    taker(sink)
                }
                "pipeline" => {
                    let b = b.map(|r| (r.0, r.1 % 100)).arrange_by_key();
                    let out = a
                        .filter(|r| r.2 < 500)
                        .map(|r| (r.3, r.2))
                        .arrange_by_key()
                        .join_core(b, |_, &v, &g| Some((g, v)))
                        .explode(|(g, v)| Some((g, v as isize)))
                        .count_total();
                    let sink = Sink::default();
                    deliver(out, &sink, &p);
                    taker(sink)
                }
                other => panic!("unknown query {other}"),
            }
        });
        for r in &data.a {
            a.insert(*r);
        }
        for i in 0..data.n {
            b.insert(data.b(i));
            c.insert(data.c(i));
        }
        let mut h = Handwritten { worker, a, b, c, probe, take_output, time: 0 };
        h.advance();
        h.flush();
        h.step();
        (h.take_output)();
        h
    }

    /// Moves every input to the next timestamp.
    fn advance(&mut self) {
        self.time += 1;
        self.a.advance_to(self.time);
        self.b.advance_to(self.time);
        self.c.advance_to(self.time);
    }

    fn flush(&mut self) {
        self.a.flush();
        self.b.flush();
        self.c.flush();
    }

    fn step(&mut self) {
        let t = self.time;
        let probe = self.probe.clone();
        self.worker.step_while(|| probe.less_than(&t));
    }

    /// Time to apply `size` random updates (making them is not timed).
    fn timed_update(&mut self, data: &mut Data, size: usize) -> Duration {
        let updates = data.updates(size);
        let t = Instant::now();
        self.apply(&updates);
        t.elapsed()
    }

    fn apply(&mut self, updates: &[(A, A)]) {
        self.apply_all([updates]);
    }

    /// Applies transactions in one step, each at its own timestamp (as the engine does).
    fn apply_all<'u>(&mut self, txs: impl IntoIterator<Item = &'u [(A, A)]>) {
        for tx in txs {
            for (o, n) in tx {
                self.a.remove(*o);
                self.a.insert(*n);
            }
            self.advance();
        }
        self.flush();
        self.step();
        (self.take_output)();
    }
}

/// Whether `SLUICE_BENCH_ONLY` (a comma-separated list of query names) selects `name`.
fn selected(name: &str) -> bool {
    std::env::var("SLUICE_BENCH_ONLY").map_or(true, |only| only.split(',').any(|o| o.trim() == name))
}

fn per_transaction(c: &mut Criterion) {
    let n = rows();
    for (name, sql) in QUERIES.into_iter().filter(|(name, _)| selected(name)) {
        let mut data = Data::new(n);
        let mut s = Sluice::load(&data);
        let plan = s.plan(sql);
        let mut group = c.benchmark_group(format!("{name}/{n}"));
        group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
        let sub = s.subscribe(&plan);
        for size in [1usize, 1000] {
            group.bench_function(BenchmarkId::new("sluice", size), |bch| {
                bch.iter_custom(|iters| (0..iters).map(|_| s.timed_update(&mut data, size)).sum())
            });
        }
        s.engine.unsubscribe(sub.id).unwrap();
        group.bench_function(BenchmarkId::new("recompute", 1), |bch| {
            bch.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let u = data.updates(1);
                        let tx = s.tx(&u);
                        let applied = s.apply(vec![tx]);
                        let t = Instant::now();
                        let sub = s.subscribe(&plan);
                        s.engine.unsubscribe(sub.id).unwrap();
                        applied + t.elapsed()
                    })
                    .sum()
            })
        });
        drop(s);
        let mut h = Handwritten::new(name, &data);
        for size in [1usize, 1000] {
            group.bench_function(BenchmarkId::new("handwritten", size), |bch| {
                bch.iter_custom(|iters| (0..iters).map(|_| h.timed_update(&mut data, size)).sum())
            });
        }
        group.finish();
    }
}

/// Input row changes per second through join + filter + GROUP BY: batches of 100
/// transactions of 1000 updates (2000 row changes) each, applied in one call.
fn throughput(c: &mut Criterion) {
    if !selected("pipeline") {
        return;
    }
    let n = rows();
    let mut data = Data::new(n);
    let mut s = Sluice::load(&data);
    let plan = s.plan(PIPELINE);
    s.subscribe(&plan);
    let mut group = c.benchmark_group(format!("pipeline/{n}"));
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(5));
    group.throughput(criterion::Throughput::Elements(100 * 2000));
    group.bench_function("sluice", |bch| {
        bch.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let txs: Vec<Transaction> = (0..100).map(|_| data.updates(1000)).map(|u| s.tx(&u)).collect();
                    s.apply(txs)
                })
                .sum()
        })
    });
    drop(s);
    let mut h = Handwritten::new("pipeline", &data);
    group.bench_function("handwritten", |bch| {
        bch.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let txs: Vec<Vec<(A, A)>> = (0..100).map(|_| data.updates(1000)).collect();
                    let t = Instant::now();
                    h.apply_all(txs.iter().map(Vec::as_slice));
                    t.elapsed()
                })
                .sum()
        })
    });
    group.finish();
}

/// Cost per change against group size: one group of all rows vs 1000 groups, for
/// accumulable (SUM, AVG) and hierarchical (MAX) aggregates. A rescan of the group would
/// make the single group ~1000x slower.
fn group_scaling(c: &mut Criterion) {
    if !selected("group_size") {
        return;
    }
    let n = rows();
    let mut data = Data::new(n);
    let mut s = Sluice::load(&data);
    let mut group = c.benchmark_group(format!("group_size/{n}"));
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    for (name, sql) in [
        ("sum_1_group", "SELECT SUM(v), AVG(v) FROM a"),
        ("sum_1000_groups", "SELECT g, SUM(v), AVG(v) FROM a GROUP BY g"),
        ("max_1_group", "SELECT MAX(v) FROM a"),
        ("max_1000_groups", "SELECT g, MAX(v) FROM a GROUP BY g"),
    ] {
        let plan = s.plan(sql);
        let sub = s.subscribe(&plan);
        group.bench_function(name, |bch| {
            bch.iter_custom(|iters| (0..iters).map(|_| s.timed_update(&mut data, 1)).sum())
        });
        s.engine.unsubscribe(sub.id).unwrap();
    }
    group.finish();
}

criterion_group!(benches, per_transaction, throughput, group_scaling);
criterion_main!(benches);
