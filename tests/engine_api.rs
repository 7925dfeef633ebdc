//! The engine's API contracts: offsets, silence, shared dataflows, bad input.

use sluice_ivm::{Engine, EngineConfig, EngineError, QueryDelta, Subscription, TableChange, TableRows, Transaction};
use sluice_planner::{Catalog, Planner, Row, Value};

/// An engine over table `t`, with the store its subscriptions read rows from kept beside it.
struct Db {
    catalog: Catalog,
    engine: Engine,
    rows: TableRows,
}

impl Db {
    fn new(workers: usize) -> Db {
        let mut catalog = Catalog::new();
        let stmt = &sluice_planner::parse("CREATE TABLE t (id INTEGER PRIMARY KEY, g INTEGER, v INTEGER)").unwrap()[0];
        let sluice_planner::Dml::CreateTable(schema) = Planner::new(&catalog).plan_statement(stmt).unwrap() else {
            panic!()
        };
        catalog.add_table(schema.clone()).unwrap();
        let mut engine = Engine::new(EngineConfig { workers });
        engine.create_table(&schema).unwrap();
        let mut rows = TableRows::new();
        rows.create_table("t", schema.primary_key.clone());
        Db { catalog, engine, rows }
    }

    /// Applies transactions to the engine and, once it takes them, to the store.
    fn apply(&mut self, txs: Vec<Transaction>) -> Result<Vec<QueryDelta>, EngineError> {
        let deltas = self.engine.apply(txs.clone())?;
        txs.iter().for_each(|tx| self.rows.apply(tx));
        Ok(deltas)
    }

    fn subscribe(&mut self, sql: &str) -> Subscription {
        let plan = Planner::new(&self.catalog).plan_sql(sql).unwrap();
        self.engine.subscribe(&plan, &self.rows).unwrap()
    }

    fn evaluate(&mut self, sql: &str) -> Vec<Row> {
        let plan = Planner::new(&self.catalog).plan_sql(sql).unwrap();
        self.engine.evaluate(&plan, &self.rows).unwrap()
    }
}

fn row(v: &[i64]) -> Row {
    Row::new(v.iter().map(|&x| Value::Int(x)).collect())
}

fn insert(offset: u64, rows: Vec<Row>) -> Transaction {
    Transaction { offset, changes: vec![TableChange { table: "t".into(), inserts: rows, deletes: vec![] }] }
}

#[test]
fn each_transaction_of_a_batch_is_its_own_offset_and_silent_ones_send_nothing() {
    let mut db = Db::new(1);
    let sub = db.subscribe("SELECT g, SUM(v) FROM t WHERE v > 0 GROUP BY g");
    assert!(sub.initial.is_empty());
    let deltas = db
        .apply(vec![
            insert(1, vec![row(&[1, 1, 10])]),
            insert(2, vec![row(&[2, 1, -5])]), // filtered out: silent
            insert(3, vec![row(&[3, 1, 5])]),
        ])
        .unwrap();
    let offsets: Vec<u64> = deltas.iter().map(|d| d.offset).collect();
    assert_eq!(offsets, vec![1, 3]);
    assert_eq!(deltas[0].inserts, vec![row(&[1, 10])]);
    assert_eq!(deltas[1].deletes, vec![row(&[1, 10])]);
    assert_eq!(deltas[1].inserts, vec![row(&[1, 15])]);
    assert_eq!(db.engine.rows(sub.id, &db.rows).unwrap(), vec![row(&[1, 15])]);
}

#[test]
fn identical_queries_share_one_dataflow_and_late_subscribers_get_current_rows() {
    let mut db = Db::new(1);
    let a = db.subscribe("SELECT id FROM t WHERE v > 1");
    db.apply(vec![insert(1, vec![row(&[1, 1, 2]), row(&[2, 1, 0])])]).unwrap();
    let b = db.subscribe("select ID from T where V > 1");
    assert_eq!(a.query, b.query);
    assert_eq!(db.engine.query_count(), 1);
    assert_eq!(b.initial, vec![row(&[1])]);
    assert_eq!(b.offset, 1);
    // A from-scratch evaluation builds its own dataflow and leaves the shared one alone.
    assert_eq!(db.evaluate("SELECT id FROM t WHERE v > 1"), vec![row(&[1])]);
    assert_eq!(db.engine.query_count(), 1);
    // From the second subscriber on, the result is kept current through inserts, updates
    // and deletes, and a third subscriber starts from it.
    db.apply(vec![
        insert(2, vec![row(&[3, 1, 5])]),
        Transaction {
            offset: 3,
            changes: vec![TableChange {
                table: "t".into(),
                inserts: vec![row(&[2, 1, 9])],
                deletes: vec![row(&[1, 1, 2]), row(&[2, 1, 0])],
            }],
        },
    ])
    .unwrap();
    let c = db.subscribe("SELECT id FROM t WHERE v > 1");
    assert_eq!((c.query, c.offset), (a.query, 3));
    assert_eq!(c.initial, vec![row(&[2]), row(&[3])]);
    assert_eq!(db.engine.rows(a.id, &TableRows::new()).unwrap(), vec![row(&[2]), row(&[3])], "kept: no rows read");
    db.engine.unsubscribe(a.id).unwrap();
    db.engine.unsubscribe(c.id).unwrap();
    assert_eq!(db.engine.query_count(), 1);
    db.engine.unsubscribe(b.id).unwrap();
    assert_eq!(db.engine.query_count(), 0);
    assert_eq!(db.engine.unsubscribe(b.id), Err(EngineError::UnknownSubscription(b.id.0)));
}

#[test]
fn a_second_subscriber_of_a_top_k_gets_its_window_and_a_lagging_store_is_refused() {
    let mut db = Db::new(2);
    let sql = "SELECT id FROM t ORDER BY v DESC LIMIT 2";
    let a = db.subscribe(sql);
    db.apply(vec![insert(1, (1..=5).map(|i| row(&[i, 0, i * 10])).collect())]).unwrap();
    // Until a second subscriber needs it the result is not kept, so its rows come from the
    // store, which must be as of the engine's offset.
    let plan = Planner::new(&db.catalog).plan_sql(sql).unwrap();
    assert_eq!(
        db.engine.subscribe(&plan, &TableRows::new()).unwrap_err(),
        EngineError::SourceOffset { rows: 0, engine: 1 }
    );
    assert_eq!(db.engine.rows(a.id, &TableRows::new()).unwrap_err(), EngineError::SourceOffset { rows: 0, engine: 1 });
    let b = db.subscribe(sql);
    assert_eq!(b.initial, vec![row(&[5]), row(&[4])], "the hidden sort column is cut off");
    let deltas = db.apply(vec![insert(2, vec![row(&[6, 0, 45])])]).unwrap();
    assert_eq!(deltas.len(), 1);
    assert_eq!((&deltas[0].inserts, &deltas[0].deletes), (&vec![row(&[6])], &vec![row(&[4])]));
    assert_eq!(db.engine.rows(a.id, &TableRows::new()).unwrap(), vec![row(&[5]), row(&[6])]);
}

#[test]
fn a_new_query_reads_rows_as_of_the_engines_offset_or_is_refused() {
    let mut db = Db::new(1);
    db.apply(vec![insert(1, vec![row(&[1, 1, 2])])]).unwrap();
    let plan = Planner::new(&db.catalog).plan_sql("SELECT id FROM t").unwrap();
    // A store one transaction behind the engine would give the query a wrong start.
    let behind = TableRows::new();
    assert_eq!(db.engine.subscribe(&plan, &behind).unwrap_err(), EngineError::SourceOffset { rows: 0, engine: 1 });
    assert!(matches!(db.engine.evaluate(&plan, &behind), Err(EngineError::SourceOffset { .. })));
    assert_eq!(db.engine.query_count(), 0);
    // An engine resumed at a store's offset serves the store's rows, then its changes.
    let mut resumed = Engine::at(EngineConfig::default(), 1);
    resumed.create_table(db.catalog.table("t").unwrap()).unwrap();
    let sub = resumed.subscribe(&plan, &db.rows).unwrap();
    assert_eq!((sub.offset, sub.initial), (1, vec![row(&[1])]));
    let deltas = resumed.apply(vec![insert(2, vec![row(&[2, 1, 3])])]).unwrap();
    assert_eq!((deltas[0].offset, deltas[0].inserts.clone()), (2, vec![row(&[2])]));
}

#[test]
fn bad_input_is_refused_without_changing_state() {
    let Db { mut engine, .. } = Db::new(1);
    engine.apply(vec![insert(5, vec![row(&[1, 1, 1])])]).unwrap();
    assert_eq!(engine.apply(vec![insert(5, vec![])]), Err(EngineError::OffsetNotIncreasing { got: 5, current: 5 }));
    let short = insert(6, vec![row(&[1])]);
    assert!(matches!(engine.apply(vec![short]), Err(EngineError::RowArity { .. })));
    let unknown = Transaction { offset: 6, changes: vec![TableChange { table: "nope".into(), ..Default::default() }] };
    assert_eq!(engine.apply(vec![unknown]), Err(EngineError::UnknownTable("nope".into())));
    assert_eq!(engine.offset(), 5);
}

#[test]
fn arrangements_are_compacted_as_offsets_advance() {
    for workers in [1, 2] {
        let mut db = Db::new(workers);
        // A join adds shared by-key arrangements; they must be compacted.
        db.subscribe("SELECT x.id FROM t x JOIN t y ON x.g = y.id");
        let n = 500;
        db.apply(vec![insert(1, (0..n).map(|i| row(&[i, i, 0])).collect())]).unwrap();
        // Update every row 200 times, one transaction per round; sample the record count.
        let live = 2 * n as usize; // by g and by id
        let mut samples = Vec::new();
        for (offset, round) in (2..).zip(0..200) {
            let change = TableChange {
                table: "t".into(),
                deletes: (0..n).map(|i| row(&[i, i, round])).collect(),
                inserts: (0..n).map(|i| row(&[i, i, round + 1])).collect(),
            };
            db.apply(vec![Transaction { offset, changes: vec![change] }]).unwrap();
            if round % 50 == 49 {
                samples.push(db.engine.base_arrangement_records());
            }
        }
        // The history is 2 * 401 * n records; what is kept stays a small multiple of the live
        // rows (batches not yet merged), and does not grow with the number of rounds.
        let records = *samples.iter().max().unwrap();
        eprintln!("{workers} workers: records {samples:?} for {live} live");
        assert!(records <= 12 * live, "{workers} workers: {samples:?} records for {live} live rows");
        assert!(samples[3] <= 2 * samples[0], "{workers} workers: grows with history: {samples:?}");
        let records = db.engine.base_arrangement_records();
        assert!(records >= live);
    }
}

#[test]
fn filtered_join_sides_arrange_only_their_rows_and_arrangements_go_with_their_last_query() {
    let mut db = Db::new(1);
    let n: i64 = 100;
    db.apply(vec![insert(1, (0..n).map(|i| row(&[i, (i + 1) % n, i % 10])).collect())]).unwrap();
    let rows = n as usize;
    assert_eq!(db.engine.base_arrangement_records(), 0, "nothing arranged yet: the rows are the store's");
    let filtered = |k: i64| format!("SELECT x.id, y.id FROM t x JOIN t y ON x.g = y.id WHERE x.v < {k}");
    let mut subs = Vec::new();
    for k in 0..10 {
        let sub = db.subscribe(&filtered(k));
        assert_eq!(sub.initial.len(), (n / 10 * k) as usize);
        subs.push(sub);
    }
    // Each filter's arrangement of x by g holds only the rows passing it; y by id holds all.
    let admitted: usize = (0..10).map(|k| (n / 10 * k) as usize).sum();
    assert_eq!(db.engine.base_arrangement_records(), admitted + rows);
    // Moving a row across a filter changes exactly the queries whose filter it crosses.
    let change = TableChange { table: "t".into(), deletes: vec![row(&[5, 6, 5])], inserts: vec![row(&[5, 6, 1])] };
    let deltas = db.apply(vec![Transaction { offset: 2, changes: vec![change] }]).unwrap();
    let changed: Vec<_> = deltas.iter().map(|d| d.query).collect();
    let expected: Vec<_> = subs[2..=5].iter().map(|s| s.query).collect();
    assert_eq!(changed.len(), 4);
    assert!(expected.iter().all(|q| changed.contains(q)), "{deltas:?}");
    for s in subs.drain(..) {
        db.engine.unsubscribe(s.id).unwrap();
    }
    assert_eq!(db.engine.base_arrangement_records(), 0, "arrangements are dropped with their last query");
    // Where the unfiltered arrangement exists, a filtered side uses it instead of another.
    let all = db.subscribe("SELECT x.id FROM t x JOIN t y ON x.g = y.id");
    let with_all = db.engine.base_arrangement_records();
    assert_eq!(with_all, 2 * rows, "x by g and y by id");
    let some = db.subscribe(&filtered(3));
    assert_eq!(some.initial.len(), 31, "row 5 now has v = 1");
    assert_eq!(db.engine.base_arrangement_records(), with_all);
    db.engine.unsubscribe(all.id).unwrap();
    db.engine.unsubscribe(some.id).unwrap();
    assert_eq!(db.engine.base_arrangement_records(), 0);
}

#[test]
fn a_query_past_its_budget_is_stopped_and_the_engine_carries_on() {
    use std::time::Duration;
    for workers in [1, 2] {
        let mut db = Db::new(workers);
        db.apply(vec![insert(1, (0..150).map(|i| row(&[i, i % 3, i])).collect())]).unwrap();
        let live = db.subscribe("SELECT g, COUNT(*) FROM t GROUP BY g");
        // 150^3 = 3.4 million rows from a triple cross join: past the row limit long before
        // they are all made.
        db.engine.set_budget(sluice_ivm::QueryBudget { time: Duration::from_secs(3600), rows: 10_000 });
        let cross = Planner::new(&db.catalog).plan_sql("SELECT a.id, b.id, c.id FROM t a, t b, t c").unwrap();
        let e = db.engine.evaluate(&cross, &db.rows).unwrap_err();
        assert!(e.to_string().contains("more than 10000 rows, its row limit"), "{workers} workers: {e}");
        let e = db.engine.subscribe(&cross, &db.rows).unwrap_err();
        assert!(e.to_string().contains("row limit"), "{e}");
        // Its COUNT has one row, but the work behind it runs past the time limit.
        db.engine.set_budget(sluice_ivm::QueryBudget { time: Duration::from_millis(1), rows: 10_000 });
        let count = Planner::new(&db.catalog).plan_sql("SELECT COUNT(*) FROM t a, t b, t c").unwrap();
        let e = db.engine.evaluate(&count, &db.rows).unwrap_err();
        assert!(e.to_string().contains("its time limit"), "{workers} workers: {e}");
        // Nothing of the stopped queries is left behind, and the engine goes on as before.
        assert_eq!(db.engine.query_count(), 1);
        let deltas = db.apply(vec![insert(2, vec![row(&[1000, 0, 1])])]).unwrap();
        assert_eq!(deltas.len(), 1, "{deltas:?}");
        assert_eq!(deltas[0].query, live.query);
        db.engine.set_budget(sluice_ivm::QueryBudget::default());
        assert_eq!(db.evaluate("SELECT COUNT(*) FROM t a, t b WHERE a.id = b.id"), vec![row(&[151])]);
    }
}
