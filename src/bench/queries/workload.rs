//! The query benchmarks' data and workload: tables `a(id, g, v, b_id)`, `b(id, c_id, w)` and
//! `c(id, x)` of n rows each (INTEGER columns), the query classes over them as SQL, and the
//! transactions: random updates of `a`'s `g` and `v`, each one delete plus one insert.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sluice_ivm::{Engine, EngineConfig, Subscription, TableChange, TableRows, Transaction};
use sluice_planner::{Catalog, Dml, Planner, QueryPlan, Row, Value};
use std::time::{Duration, Instant};

/// Distinct values of `a.g`.
pub const GROUPS: u64 = 1000;
/// `a.v` is drawn from 0..VALUES.
pub const VALUES: i64 = 1000;

/// The tables, as SQL.
pub const TABLES: [&str; 3] = [
    "CREATE TABLE a (id INTEGER PRIMARY KEY, g INTEGER, v INTEGER, b_id INTEGER)",
    "CREATE TABLE b (id INTEGER PRIMARY KEY, c_id INTEGER, w INTEGER)",
    "CREATE TABLE c (id INTEGER PRIMARY KEY, x INTEGER)",
];

/// The query classes: a name and the query.
pub const CLASSES: [(&str, &str); 10] = [
    ("filter", "SELECT id, v FROM a WHERE v < 100"),
    ("join2", "SELECT a.id, a.v, b.w FROM a JOIN b ON a.b_id = b.id"),
    ("join3", "SELECT a.id, a.v, c.x FROM a JOIN b ON a.b_id = b.id JOIN c ON b.c_id = c.id"),
    ("outer_join", "SELECT b.id, a.id, a.v FROM b LEFT JOIN a ON a.b_id = b.id"),
    ("group_sum", "SELECT g, SUM(v) FROM a GROUP BY g"),
    ("count", "SELECT COUNT(*) FROM a WHERE v < 500"),
    ("distinct", "SELECT DISTINCT g FROM a WHERE v < 10"),
    ("exists", "SELECT b.id, b.w FROM b WHERE EXISTS (SELECT 1 FROM a WHERE a.b_id = b.id AND a.v < 10)"),
    ("top10", "SELECT id, v FROM a ORDER BY v DESC, id LIMIT 10"),
    ("pipeline", "SELECT b.c_id % 100, SUM(a.v) FROM a JOIN b ON a.b_id = b.id WHERE a.v < 500 GROUP BY b.c_id % 100"),
];

/// The SQL of a class.
pub fn sql(class: &str) -> Option<&'static str> {
    CLASSES.iter().find(|(name, _)| *name == class).map(|(_, sql)| *sql)
}

/// Row of table a: (id, g, v, b_id).
pub type A = (u64, u64, i64, u64);
/// Row of table b: (id, c_id, w).
pub type B = (u64, u64, i64);
/// Row of table c: (id, x).
pub type C = (u64, i64);

/// The tables' rows: a's as they stand after the updates drawn so far; b's and c's fixed.
pub struct Data {
    pub n: u64,
    pub a: Vec<A>,
    rng: StdRng,
}

impl Data {
    /// n rows per table, drawn from a fixed seed.
    pub fn new(n: u64) -> Data {
        let mut rng = StdRng::seed_from_u64(7);
        let a = (0..n)
            .map(|id| (id, rng.random_range(0..GROUPS), rng.random_range(0..VALUES), rng.random_range(0..n)))
            .collect();
        Data { n, a, rng }
    }

    pub fn b(&self, id: u64) -> B {
        (id, (id * 7919) % self.n, (id % 97) as i64)
    }

    pub fn c(&self, id: u64) -> C {
        (id, (id % 13) as i64)
    }

    /// `k` random updates of a's g and v: (old, new) pairs, applied to the data.
    pub fn updates(&mut self, k: usize) -> Vec<(A, A)> {
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

pub fn row_a(r: &A) -> Row {
    Row::new(vec![int(r.0), int(r.1), Value::Int(r.2), int(r.3)])
}

fn row_b(r: &B) -> Row {
    Row::new(vec![int(r.0), int(r.1), Value::Int(r.2)])
}

fn row_c(r: &C) -> Row {
    Row::new(vec![int(r.0), Value::Int(r.1)])
}

/// An engine over the tables, beside the store holding their rows (what a datastore does in
/// the server: it is kept up to date outside the timed sections).
pub struct Sluice {
    pub engine: Engine,
    pub rows: TableRows,
    pub catalog: Catalog,
    offset: u64,
}

impl Sluice {
    /// The engine and store loaded with `data`, in transactions of 100,000 rows per table.
    pub fn load(data: &Data) -> Sluice {
        let mut catalog = Catalog::new();
        let mut engine = Engine::new(EngineConfig::default());
        let mut rows = TableRows::new();
        for ddl in TABLES {
            let stmt = &sluice_planner::parse(ddl).expect("valid DDL")[0];
            let Ok(Dml::CreateTable(s)) = Planner::new(&catalog).plan_statement(stmt) else {
                unreachable!("CREATE TABLE plans as a table")
            };
            engine.create_table(&s).expect("a new table");
            rows.create_table(&s.name, s.primary_key.clone());
            catalog.add_table(s).expect("a new table");
        }
        let mut s = Sluice { engine, rows, catalog, offset: 0 };
        let chunk = 100_000u64;
        for start in (0..data.n).step_by(chunk as usize) {
            let ids = start..(start + chunk).min(data.n);
            let a = ids.clone().map(|i| row_a(&data.a[i as usize])).collect();
            let b = ids.clone().map(|i| row_b(&data.b(i))).collect();
            let c = ids.map(|i| row_c(&data.c(i))).collect();
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

    /// The next transaction: `updates` of table a.
    pub fn tx(&mut self, updates: &[(A, A)]) -> Transaction {
        self.offset += 1;
        let change = TableChange {
            table: "a".into(),
            deletes: updates.iter().map(|(o, _)| row_a(o)).collect(),
            inserts: updates.iter().map(|(_, n)| row_a(n)).collect(),
        };
        Transaction { offset: self.offset, changes: vec![change] }
    }

    /// Applies transactions to the store, then to the engine; returns the engine's time.
    pub fn apply(&mut self, txs: Vec<Transaction>) -> Duration {
        txs.iter().for_each(|tx| self.rows.apply(tx));
        let t = Instant::now();
        self.engine.apply(txs).expect("offsets increase and rows fit the tables");
        t.elapsed()
    }

    /// Time to apply one transaction of `size` random updates (drawing them is not timed).
    pub fn timed_update(&mut self, data: &mut Data, size: usize) -> Duration {
        let updates = data.updates(size);
        let tx = self.tx(&updates);
        self.apply(vec![tx])
    }

    pub fn plan(&self, sql: &str) -> QueryPlan {
        Planner::new(&self.catalog).plan_sql(sql).expect("the benchmark's queries plan")
    }

    pub fn subscribe(&mut self, plan: &QueryPlan) -> Subscription {
        self.engine.subscribe(plan, &self.rows).expect("the store is at the engine's offset")
    }

    /// Time to evaluate `plan` from scratch on the current state (a dataflow of its own,
    /// arrangements included, built and dropped).
    pub fn timed_recompute(&mut self, plan: &QueryPlan) -> Duration {
        let t = Instant::now();
        self.engine.evaluate(plan, &self.rows).expect("the store is at the engine's offset");
        t.elapsed()
    }
}
