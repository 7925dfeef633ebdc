//! The engine's API contracts: offsets, silence, shared dataflows, bad input.

use sluice_ivm::{Engine, EngineConfig, EngineError, TableChange, Transaction};
use sluice_planner::{Catalog, Planner, Row, Value};

fn setup() -> (Catalog, Engine) {
    let mut catalog = Catalog::new();
    let stmt = &sluice_planner::parse("CREATE TABLE t (id INTEGER PRIMARY KEY, g INTEGER, v INTEGER)").unwrap()[0];
    let sluice_planner::Dml::CreateTable(schema) = Planner::new(&catalog).plan_statement(stmt).unwrap() else {
        panic!()
    };
    catalog.add_table(schema.clone()).unwrap();
    let mut engine = Engine::new(EngineConfig::default());
    engine.create_table(&schema).unwrap();
    (catalog, engine)
}

fn row(v: &[i64]) -> Row {
    Row::new(v.iter().map(|&x| Value::Int(x)).collect())
}

fn insert(offset: u64, rows: Vec<Row>) -> Transaction {
    Transaction { offset, changes: vec![TableChange { table: "t".into(), inserts: rows, deletes: vec![] }] }
}

#[test]
fn each_transaction_of_a_batch_is_its_own_offset_and_silent_ones_send_nothing() {
    let (catalog, mut engine) = setup();
    let plan = Planner::new(&catalog).plan_sql("SELECT g, SUM(v) FROM t WHERE v > 0 GROUP BY g").unwrap();
    let sub = engine.subscribe(&plan).unwrap();
    assert!(sub.initial.is_empty());
    let deltas = engine
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
    assert_eq!(engine.rows(sub.id).unwrap(), vec![row(&[1, 15])]);
}

#[test]
fn identical_queries_share_one_dataflow_and_late_subscribers_get_current_rows() {
    let (catalog, mut engine) = setup();
    let p = Planner::new(&catalog);
    let a = engine.subscribe(&p.plan_sql("SELECT id FROM t WHERE v > 1").unwrap()).unwrap();
    engine.apply(vec![insert(1, vec![row(&[1, 1, 2]), row(&[2, 1, 0])])]).unwrap();
    let b = engine.subscribe(&p.plan_sql("select ID from T where V > 1").unwrap()).unwrap();
    assert_eq!(a.query, b.query);
    assert_eq!(engine.query_count(), 1);
    assert_eq!(b.initial, vec![row(&[1])]);
    assert_eq!(b.offset, 1);
    // A from-scratch evaluation builds its own dataflow and leaves the shared one alone.
    assert_eq!(engine.evaluate(&p.plan_sql("SELECT id FROM t WHERE v > 1").unwrap()).unwrap(), vec![row(&[1])]);
    assert_eq!(engine.query_count(), 1);
    engine.unsubscribe(a.id).unwrap();
    assert_eq!(engine.query_count(), 1);
    engine.unsubscribe(b.id).unwrap();
    assert_eq!(engine.query_count(), 0);
    assert_eq!(engine.unsubscribe(b.id), Err(EngineError::UnknownSubscription(b.id.0)));
}

#[test]
fn bad_input_is_refused_without_changing_state() {
    let (_, mut engine) = setup();
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
        let (catalog, _) = setup();
        let schema = catalog.table("t").unwrap().clone();
        let mut engine = Engine::new(EngineConfig { workers });
        engine.create_table(&schema).unwrap();
        // A join adds a shared by-key arrangement; it must be compacted too.
        let plan = Planner::new(&catalog).plan_sql("SELECT x.id FROM t x JOIN t y ON x.g = y.id").unwrap();
        engine.subscribe(&plan).unwrap();
        let n = 500;
        engine.apply(vec![insert(1, (0..n).map(|i| row(&[i, i, 0])).collect())]).unwrap();
        // Update every row 200 times, one transaction per round; sample the record count.
        let live = 2 * n as usize; // by row and by key
        let mut samples = Vec::new();
        for (offset, round) in (2..).zip(0..200) {
            let change = TableChange {
                table: "t".into(),
                deletes: (0..n).map(|i| row(&[i, i, round])).collect(),
                inserts: (0..n).map(|i| row(&[i, i, round + 1])).collect(),
            };
            engine.apply(vec![Transaction { offset, changes: vec![change] }]).unwrap();
            if round % 50 == 49 {
                samples.push(engine.base_arrangement_records());
            }
        }
        // The history is 2 * 401 * n records; what is kept stays a small multiple of the live
        // rows (batches not yet merged), and does not grow with the number of rounds.
        let records = *samples.iter().max().unwrap();
        eprintln!("{workers} workers: records {samples:?} for {live} live");
        assert!(records <= 12 * live, "{workers} workers: {samples:?} records for {live} live rows");
        assert!(samples[3] <= 2 * samples[0], "{workers} workers: grows with history: {samples:?}");
        let records = engine.base_arrangement_records();
        assert!(records >= live);
    }
}

#[test]
fn filtered_join_sides_arrange_only_their_rows_and_arrangements_go_with_their_last_query() {
    let (catalog, mut engine) = setup();
    let n: i64 = 100;
    engine.apply(vec![insert(1, (0..n).map(|i| row(&[i, (i + 1) % n, i % 10])).collect())]).unwrap();
    let rows = n as usize;
    assert_eq!(engine.base_arrangement_records(), rows, "the table's rows, nothing arranged yet");
    let p = Planner::new(&catalog);
    let filtered = |k: i64| format!("SELECT x.id, y.id FROM t x JOIN t y ON x.g = y.id WHERE x.v < {k}");
    let mut subs = Vec::new();
    for k in 0..10 {
        let sub = engine.subscribe(&p.plan_sql(&filtered(k)).unwrap()).unwrap();
        assert_eq!(sub.initial.len(), (n / 10 * k) as usize);
        subs.push(sub);
    }
    // Each filter's arrangement of x by g holds only the rows passing it; y by id holds all.
    let admitted: usize = (0..10).map(|k| (n / 10 * k) as usize).sum();
    assert_eq!(engine.base_arrangement_records(), rows + admitted + rows);
    // Moving a row across a filter changes exactly the queries whose filter it crosses.
    let change = TableChange { table: "t".into(), deletes: vec![row(&[5, 6, 5])], inserts: vec![row(&[5, 6, 1])] };
    let deltas = engine.apply(vec![Transaction { offset: 2, changes: vec![change] }]).unwrap();
    let changed: Vec<_> = deltas.iter().map(|d| d.query).collect();
    let expected: Vec<_> = subs[2..=5].iter().map(|s| s.query).collect();
    assert_eq!(changed.len(), 4);
    assert!(expected.iter().all(|q| changed.contains(q)), "{deltas:?}");
    for s in subs.drain(..) {
        engine.unsubscribe(s.id).unwrap();
    }
    assert_eq!(engine.base_arrangement_records(), rows, "arrangements are dropped with their last query");
    // Where the unfiltered arrangement exists, a filtered side uses it instead of another.
    let all = engine.subscribe(&p.plan_sql("SELECT x.id FROM t x JOIN t y ON x.g = y.id").unwrap()).unwrap();
    let with_all = engine.base_arrangement_records();
    let some = engine.subscribe(&p.plan_sql(&filtered(3)).unwrap()).unwrap();
    assert_eq!(some.initial.len(), 31, "row 5 now has v = 1");
    assert_eq!(engine.base_arrangement_records(), with_all);
    engine.unsubscribe(all.id).unwrap();
    engine.unsubscribe(some.id).unwrap();
    assert_eq!(engine.base_arrangement_records(), rows);
}
