//! The datastore's transactions, constraints, indexes and commit records, including a random
//! operation stream checked against a plain model of the table.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sluice_data::{Column, DataType, Row, TableSchema, Value};
use sluice_runtime::{CommitMeta, Datastore, DatastoreError, IndexDef, IndexKind, TableDef};
use std::collections::BTreeMap;
use std::ops::Bound;

fn col(name: &str, ty: DataType, nullable: bool) -> Column {
    Column { name: name.into(), ty, nullable }
}

/// `person(id UNSIGNED PK auto_inc, email TEXT UNIQUE, age INTEGER, city TEXT NULL)` with a
/// btree index on age and one on (city, age).
fn person() -> TableDef {
    let schema = TableSchema {
        name: "person".into(),
        columns: vec![
            col("id", DataType::UInt, false),
            col("email", DataType::Text, false),
            col("age", DataType::Int, false),
            col("city", DataType::Text, true),
        ],
        primary_key: vec![0],
    };
    TableDef {
        schema,
        indexes: vec![
            IndexDef { name: "email".into(), columns: vec![1], kind: IndexKind::Unique },
            IndexDef { name: "age".into(), columns: vec![2], kind: IndexKind::BTree },
            IndexDef { name: "city_age".into(), columns: vec![3, 2], kind: IndexKind::BTree },
        ],
        auto_inc: Some(0),
        public: true,
    }
}

fn p(id: u64, email: &str, age: i64, city: Option<&str>) -> Vec<Value> {
    vec![Value::UInt(id), Value::text(email), Value::Int(age), city.map_or(Value::Null, Value::text)]
}

fn meta(name: &str) -> CommitMeta {
    CommitMeta { reducer: name.into(), ..CommitMeta::default() }
}

fn ids(rows: &[Row]) -> Vec<Value> {
    rows.iter().map(|r| r.get(0)).collect()
}

#[test]
fn commit_records_net_changes_at_consecutive_offsets() {
    let mut ds = Datastore::new();
    let t = ds.create_table(person()).unwrap();
    ds.begin().unwrap();
    let a = ds.insert(t, p(0, "a@x", 30, Some("Oslo"))).unwrap();
    let b = ds.insert(t, p(0, "b@x", 40, None)).unwrap();
    assert_eq!((a.get(0), b.get(0)), (Value::UInt(1), Value::UInt(2)), "auto-increment fills 0");
    // A transaction sees its own writes.
    assert_eq!(ds.find_by_pk(t, &[Value::UInt(2)]).unwrap(), Some(b.clone()));
    let tx1 = ds.commit(meta("seed")).unwrap();
    assert_eq!(tx1.offset, 1);
    assert_eq!(tx1.meta.reducer, "seed");
    assert_eq!(tx1.changes.len(), 1);
    assert_eq!(tx1.changes[0].table, "person");
    assert_eq!(tx1.changes[0].inserts.len(), 2);

    ds.begin().unwrap();
    let a2 = ds.update(t, p(1, "a@x", 31, Some("Oslo"))).unwrap();
    let c = ds.insert(t, p(0, "c@x", 50, None)).unwrap();
    assert!(ds.delete(t, &c).unwrap(), "insert then delete in one transaction");
    let tx2 = ds.commit(meta("birthday")).unwrap();
    assert_eq!(tx2.offset, 2);
    assert_eq!(tx2.changes[0].inserts, vec![a2], "the update's new row; c cancelled out");
    assert_eq!(tx2.changes[0].deletes, vec![a]);

    ds.begin().unwrap();
    let tx3 = ds.commit(meta("noop")).unwrap();
    assert_eq!((tx3.offset, tx3.is_empty()), (3, true));
    assert_eq!(ds.offset(), 3);
}

#[test]
fn rollback_restores_rows_indexes_and_sequences() {
    let mut ds = Datastore::new();
    let t = ds.create_table(person()).unwrap();
    ds.begin().unwrap();
    ds.insert(t, p(0, "a@x", 30, Some("Oslo"))).unwrap();
    ds.commit(meta("seed")).unwrap();
    let before: Vec<Row> = ds.scan(t).unwrap().cloned().collect();

    ds.begin().unwrap();
    ds.insert(t, p(0, "b@x", 20, None)).unwrap();
    ds.update(t, p(1, "a2@x", 99, Some("Rome"))).unwrap();
    ds.delete_by(t, 0, &[Value::UInt(2)]).unwrap();
    ds.insert(t, p(0, "c@x", 25, None)).unwrap();
    ds.rollback().unwrap();

    assert_eq!(ds.scan(t).unwrap().cloned().collect::<Vec<_>>(), before);
    assert_eq!(ds.offset(), 1, "a rollback takes no offset");
    let email = ds.index_id(t, "email").unwrap();
    assert!(ds.find(t, email, &[Value::text("a@x")]).unwrap().is_some());
    assert!(ds.find(t, email, &[Value::text("a2@x")]).unwrap().is_none());
    let age = ds.index_id(t, "age").unwrap();
    assert_eq!(ids(&ds.range(t, age, Bound::Unbounded, Bound::Unbounded).unwrap()), vec![Value::UInt(1)]);
    ds.begin().unwrap();
    let next = ds.insert(t, p(0, "d@x", 1, None)).unwrap();
    assert_eq!(next.get(0), Value::UInt(2), "the sequence was rolled back too");
}

#[test]
fn constraint_violations_are_errors_that_change_nothing() {
    let mut ds = Datastore::new();
    let t = ds.create_table(person()).unwrap();
    ds.begin().unwrap();
    ds.insert(t, p(7, "a@x", 30, None)).unwrap();
    let dup_pk = ds.insert(t, p(7, "b@x", 30, None)).unwrap_err();
    assert_eq!(dup_pk.to_string(), "table `person`: duplicate primary key (7)");
    let dup_email = ds.insert(t, p(8, "a@x", 30, None)).unwrap_err();
    assert_eq!(dup_email.to_string(), "table `person`: duplicate key ('a@x') violates unique constraint `email`");
    let null = ds.insert(t, vec![Value::UInt(9), Value::Null, Value::Int(1), Value::Null]).unwrap_err();
    assert!(matches!(null, DatastoreError::Null { ref column, .. } if column == "email"));
    let ty = ds.insert(t, vec![Value::UInt(9), Value::Int(5), Value::Int(1), Value::Null]).unwrap_err();
    assert_eq!(ty.to_string(), "table `person`, column `email`: expected TEXT, got INTEGER");
    let arity = ds.insert(t, vec![Value::UInt(9)]).unwrap_err();
    assert!(matches!(arity, DatastoreError::Arity { expected: 4, got: 1, .. }));
    // An update that would break a unique index leaves the old row in place.
    ds.insert(t, p(8, "b@x", 40, None)).unwrap();
    let clash = ds.update(t, p(8, "a@x", 41, None)).unwrap_err();
    assert!(matches!(clash, DatastoreError::Unique { ref constraint, .. } if constraint == "email"), "{clash}");
    assert_eq!(ds.find_by_pk(t, &[Value::UInt(8)]).unwrap().unwrap().get(2), Value::Int(40));
    let missing = ds.update(t, p(99, "z@x", 1, None)).unwrap_err();
    assert_eq!(missing.to_string(), "table `person`: no row with key (99)");
    let tx = ds.commit(meta("t")).unwrap();
    assert_eq!(tx.changes[0].inserts.len(), 2);
    assert!(tx.changes[0].deletes.is_empty(), "failed operations left nothing in the record");
    assert!(matches!(ds.insert(t, p(1, "q", 1, None)), Err(DatastoreError::NoTransaction)));
}

#[test]
fn btree_indexes_answer_point_prefix_and_range_lookups_in_value_order() {
    let mut ds = Datastore::new();
    let t = ds.create_table(person()).unwrap();
    ds.begin().unwrap();
    let people = [(-5, "Oslo"), (3, "Rome"), (3, "Oslo"), (200, "Oslo"), (-70, "Rome"), (40, "Oslo")];
    for (i, (age, city)) in people.iter().enumerate() {
        ds.insert(t, p(0, &format!("{i}@x"), *age, Some(city))).unwrap();
    }
    let age = ds.index_id(t, "age").unwrap();
    let ages = |rows: Vec<Row>| rows.iter().map(|r| r.get(2)).collect::<Vec<_>>();
    let int = Value::Int;
    // Numeric order, not byte order: -70 < -5 < 3 < 40 < 200.
    let all = ds.range(t, age, Bound::Unbounded, Bound::Unbounded).unwrap();
    assert_eq!(ages(all), vec![int(-70), int(-5), int(3), int(3), int(40), int(200)]);
    let mid = ds.range(t, age, Bound::Included(&[int(-5)]), Bound::Excluded(&[int(40)])).unwrap();
    assert_eq!(ages(mid), vec![int(-5), int(3), int(3)]);
    let open = ds.range(t, age, Bound::Excluded(&[int(3)]), Bound::Unbounded).unwrap();
    assert_eq!(ages(open), vec![int(40), int(200)]);
    let point = ds.range(t, age, Bound::Included(&[int(3)]), Bound::Included(&[int(3)])).unwrap();
    assert_eq!(point.len(), 2);
    // A two-column index: a prefix (city) and a range within it (age).
    let ca = ds.index_id(t, "city_age").unwrap();
    let oslo = [Value::text("Oslo")];
    let in_oslo = ds.range(t, ca, Bound::Included(&oslo), Bound::Included(&oslo)).unwrap();
    assert_eq!(ages(in_oslo), vec![int(-5), int(3), int(40), int(200)]);
    let lo = [Value::text("Oslo"), int(0)];
    let hi = [Value::text("Oslo"), int(100)];
    let young = ds.range(t, ca, Bound::Included(&lo), Bound::Included(&hi)).unwrap();
    assert_eq!(ages(young), vec![int(3), int(40)]);
    let wrong = ds.range(t, ca, Bound::Included(&[int(1), int(2), int(3)]), Bound::Unbounded).unwrap_err();
    assert!(matches!(wrong, DatastoreError::KeyArity { expected: 2, got: 3, .. }));
    assert!(matches!(ds.index_id(t, "nope"), Err(DatastoreError::NoSuchIndex { .. })));
}

#[test]
fn tables_without_primary_key_are_bags() {
    let mut ds = Datastore::new();
    let schema = TableSchema { name: "log".into(), columns: vec![col("x", DataType::Int, true)], primary_key: vec![] };
    let t = ds.create_table(TableDef::new(schema)).unwrap();
    ds.begin().unwrap();
    for _ in 0..3 {
        ds.insert(t, vec![Value::Int(1)]).unwrap();
    }
    assert!(ds.delete(t, &Row::new(vec![Value::Int(1)])).unwrap());
    assert!(!ds.delete(t, &Row::new(vec![Value::Int(2)])).unwrap());
    assert_eq!(ds.count(t).unwrap(), 2);
    let tx = ds.commit(meta("t")).unwrap();
    assert_eq!(tx.changes[0].inserts.len(), 2);
    assert!(matches!(ds.update(t, vec![Value::Int(1)]), Err(DatastoreError::NoPrimaryKey { .. })));
    let again = ds.create_table(TableDef::new(TableSchema {
        name: "LOG".into(),
        columns: vec![col("x", DataType::Int, true)],
        primary_key: vec![],
    }));
    assert!(matches!(again, Err(DatastoreError::TableExists(_))));
}

/// Random inserts, updates and deletes in random transactions, each committed or rolled back,
/// against a model (a map from primary key to row). After every transaction the table equals
/// the model, and replaying the commit records on a copy of the previous state gives the new one.
#[test]
fn random_transactions_match_a_model() {
    let mut rng = StdRng::seed_from_u64(11);
    let mut ds = Datastore::new();
    let t = ds.create_table(person()).unwrap();
    let mut model: BTreeMap<u64, Row> = BTreeMap::new();
    let mut replayed: BTreeMap<Row, usize> = BTreeMap::new();
    for round in 0..300 {
        ds.begin().unwrap();
        let mut shadow = model.clone();
        for _ in 0..rng.random_range(1..8) {
            let id = rng.random_range(1..40u64);
            let email = format!("{}@x", rng.random_range(0..60));
            let row = p(id, &email, rng.random_range(-50..50), None);
            let taken = |m: &BTreeMap<u64, Row>, except: u64| {
                m.iter().any(|(k, r)| *k != except && r.get(1) == Value::text(&email))
            };
            match rng.random_range(0..3) {
                0 => {
                    let res = ds.insert(t, row.clone());
                    let ok = !shadow.contains_key(&id) && !taken(&shadow, u64::MAX);
                    assert_eq!(res.is_ok(), ok, "round {round}: insert {row:?}: {res:?}");
                    if ok {
                        shadow.insert(id, Row::from_values(&row));
                    }
                }
                1 => {
                    let res = ds.update(t, row.clone());
                    let ok = shadow.contains_key(&id) && !taken(&shadow, id);
                    assert_eq!(res.is_ok(), ok, "round {round}: update {row:?}: {res:?}");
                    if ok {
                        shadow.insert(id, Row::from_values(&row));
                    }
                }
                _ => {
                    let gone = ds.delete_by(t, 0, &[Value::UInt(id)]).unwrap();
                    assert_eq!(gone, shadow.remove(&id));
                }
            }
        }
        if rng.random_bool(0.3) {
            ds.rollback().unwrap();
        } else {
            let tx = ds.commit(meta("random")).unwrap();
            for c in &tx.changes {
                for r in &c.deletes {
                    let n = replayed.get_mut(r).expect("a deleted row existed");
                    *n -= 1;
                    if *n == 0 {
                        replayed.remove(r);
                    }
                }
                for r in &c.inserts {
                    *replayed.entry(r.clone()).or_default() += 1;
                }
            }
            model = shadow;
        }
        let mut stored: Vec<Row> = ds.scan(t).unwrap().cloned().collect();
        stored.sort();
        let mut expected: Vec<Row> = model.values().cloned().collect();
        expected.sort();
        assert_eq!(stored, expected, "round {round}");
        let replay: Vec<Row> = replayed.keys().cloned().collect();
        assert_eq!(replay, expected, "round {round}: commit records replay to the state");
    }
}

#[test]
fn auto_increment_skips_past_explicit_values() {
    let mut ds = Datastore::new();
    let t = ds.create_table(person()).unwrap();
    ds.begin().unwrap();
    assert_eq!(ds.insert(t, p(0, "a", 1, None)).unwrap().get(0), Value::UInt(1));
    assert_eq!(ds.insert(t, p(10, "b", 1, None)).unwrap().get(0), Value::UInt(10));
    assert_eq!(ds.insert(t, p(0, "c", 1, None)).unwrap().get(0), Value::UInt(11));
    assert_eq!(ds.insert(t, p(5, "d", 1, None)).unwrap().get(0), Value::UInt(5), "below the sequence: kept");
    assert_eq!(ds.insert(t, p(0, "e", 1, None)).unwrap().get(0), Value::UInt(12));
}

/// Paging through an index range, `limit` rows after the last row seen, yields exactly the
/// unpaged answer, for btree and unique indexes, over a keyed table and a bag.
#[test]
fn pages_resume_after_the_last_row_and_add_up_to_the_whole() {
    let mut ds = Datastore::new();
    let t = ds.create_table(person()).unwrap();
    let mut bag = TableDef::new(TableSchema {
        name: "bag".into(),
        columns: vec![col("x", DataType::Int, false)],
        primary_key: vec![],
    });
    bag.indexes.push(IndexDef { name: "x".into(), columns: vec![0], kind: IndexKind::BTree });
    let b = ds.create_table(bag).unwrap();
    ds.begin().unwrap();
    let mut rng = StdRng::seed_from_u64(5);
    for i in 0..200 {
        ds.insert(t, p(0, &format!("{i}@x"), rng.random_range(-20..20), Some("Oslo"))).unwrap();
        ds.insert(b, vec![Value::Int(rng.random_range(0..30))]).unwrap();
    }
    let pages = |next: &dyn Fn(Option<&Row>) -> Vec<Row>| {
        let mut all: Vec<Row> = Vec::new();
        loop {
            let page = next(all.last());
            if page.is_empty() {
                return all;
            }
            all.extend(page);
        }
    };
    for limit in [1, 7, 64, 1000] {
        for index in ["age", "email", "primary_key", "city_age"] {
            let ix = ds.index_id(t, index).unwrap();
            let (lo, hi) = (Bound::Unbounded, Bound::Unbounded);
            let whole = ds.range(t, ix, lo, hi).unwrap();
            assert_eq!(whole.len(), 200);
            let paged = pages(&|after| ds.range_page(t, ix, (lo, hi), after, limit).unwrap());
            assert_eq!(paged, whole, "{index}, limit {limit}");
        }
        let all = (Bound::Unbounded, Bound::Unbounded);
        let bag_rows = ds.range(b, 0, all.0, all.1).unwrap();
        assert_eq!(bag_rows.len(), 200, "duplicates included");
        assert_eq!(pages(&|after| ds.range_page(b, 0, all, after, limit).unwrap()), bag_rows);
        let age = ds.index_id(t, "age").unwrap();
        let bounds = (Bound::Excluded(&[Value::Int(-3)][..]), Bound::Included(&[Value::Int(11)][..]));
        let whole = ds.range(t, age, bounds.0, bounds.1).unwrap();
        assert_eq!(pages(&|after| ds.range_page(t, age, bounds, after, limit).unwrap()), whole);
    }
}

/// Rolling back to a savepoint undoes only what came after it; the transaction commits the rest.
#[test]
fn savepoints_undo_part_of_a_transaction() {
    let mut ds = Datastore::new();
    let t = ds.create_table(person()).unwrap();
    ds.begin().unwrap();
    ds.insert(t, p(0, "a@x", 1, None)).unwrap();
    let sp = ds.savepoint().unwrap();
    ds.insert(t, p(0, "b@x", 2, None)).unwrap();
    ds.delete_by(t, 0, &[Value::UInt(1)]).unwrap();
    ds.rollback_to(sp).unwrap();
    ds.insert(t, p(0, "c@x", 3, None)).unwrap();
    let tx = ds.commit(meta("sp")).unwrap();
    let emails: Vec<Value> = tx.changes[0].inserts.iter().map(|r| r.get(1)).collect();
    assert_eq!(emails, vec![Value::text("a@x"), Value::text("c@x")]);
    assert_eq!(ids(&tx.changes[0].inserts), vec![Value::UInt(1), Value::UInt(2)], "the sequence was rolled back too");
    assert!(tx.changes[0].deletes.is_empty());
}

/// A primary key's columns are NOT NULL: a keyed table's rows live in its primary key.
#[test]
fn nullable_primary_key_columns_are_refused() {
    let mut def = person();
    def.schema.columns[0].nullable = true;
    let err = Datastore::new().create_table(def).unwrap_err();
    assert_eq!(err.to_string(), "invalid table definition `person`: primary key column `id` must be NOT NULL");
}
