//! The in-memory database as a user drives it: types the SQL corpus cannot cover (SQLite has
//! no unsigned type), constraint errors that leave nothing behind, and errors with positions.

use sluice::db::{Database, Outcome};
use sluice_planner::{Row, Value};

fn rows(db: &mut Database, sql: &str) -> Vec<Row> {
    match db.execute(sql).unwrap_or_else(|e| panic!("{sql}: {e}")) {
        Outcome::Rows { rows, .. } => rows,
        other => panic!("{sql}: not a query: {other:?}"),
    }
}

#[test]
fn unsigned_columns_keep_their_full_range() {
    let mut db = Database::new(1);
    db.execute("CREATE TABLE u (id INTEGER PRIMARY KEY, x UNSIGNED NOT NULL)").unwrap();
    db.execute("INSERT INTO u VALUES (1, 18446744073709551615), (2, 7)").unwrap();
    let sub = db.subscribe(&db.plan("SELECT x, x / 2 FROM u WHERE x > 9223372036854775807").unwrap()).unwrap();
    assert_eq!(sub.initial, vec![Row::new(vec![Value::UInt(u64::MAX), Value::UInt(u64::MAX / 2)])]);
    assert_eq!(rows(&mut db, "SELECT SUM(x) FROM u WHERE id = 2"), vec![Row::new(vec![Value::Int(7)])]);
    assert!(db
        .execute("INSERT INTO u VALUES (3, -1)")
        .unwrap_err()
        .to_string()
        .contains("cannot store INTEGER value -1"));
}

#[test]
fn constraint_violations_change_nothing() {
    let mut db = Database::new(1);
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)").unwrap();
    db.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')").unwrap();
    let before = db.offset();
    let err = db.execute("INSERT INTO t VALUES (3, 'c'), (1, 'dup')").unwrap_err().to_string();
    assert!(err.contains("duplicate primary key"), "{err}");
    let err = db.execute("UPDATE t SET id = 1").unwrap_err().to_string();
    assert!(err.contains("duplicate primary key"), "{err}");
    let err = db.execute("UPDATE t SET v = NULL WHERE id = 2").unwrap_err().to_string();
    assert!(err.contains("NOT NULL"), "{err}");
    assert_eq!(db.offset(), before, "no transaction was committed");
    assert_eq!(rows(&mut db, "SELECT id, v FROM t ORDER BY id").len(), 2);
    // Swapping keys within one statement is fine: the check is on the resulting state.
    db.execute("UPDATE t SET id = 3 - id").unwrap();
    assert_eq!(
        rows(&mut db, "SELECT id, v FROM t ORDER BY id"),
        vec![Row::new(vec![Value::Int(1), Value::text("b")]), Row::new(vec![Value::Int(2), Value::text("a")])]
    );
}

#[test]
fn errors_carry_positions_and_the_database_keeps_serving() {
    let mut db = Database::new(1);
    db.execute("CREATE TABLE t (a INTEGER)").unwrap();
    let err = db.execute("SELECT a FROM t WHERE\n  b = 1").unwrap_err().to_string();
    assert_eq!(err, "unknown column b at line 2, column 3");
    let err = db.execute("SELECT FROM WHERE").unwrap_err().to_string();
    assert!(err.starts_with("syntax error"), "{err}");
    assert!(db.execute("DROP TABLE nope").is_err());
    db.execute("INSERT INTO t VALUES (1)").unwrap();
    assert_eq!(rows(&mut db, "SELECT a FROM t"), vec![Row::new(vec![Value::Int(1)])]);
}

#[test]
fn an_update_stores_its_value_exactly_or_is_refused() {
    let mut db = Database::new(1);
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, x INTEGER NOT NULL, r REAL)").unwrap();
    db.execute("INSERT INTO t VALUES (1, 9223372036854775807, 0.5), (2, 1, 2.0)").unwrap();
    let before = db.offset();
    // An overflowing product is not clamped to the largest INTEGER, nor 0.5 cut to 0.
    for sql in ["UPDATE t SET x = x * 2 WHERE id = 1", "UPDATE t SET x = x + 1", "UPDATE t SET x = r"] {
        let err = db.execute(sql).unwrap_err().to_string();
        assert!(err.contains("cannot store REAL value") && err.contains("column x of type INTEGER"), "{sql}: {err}");
    }
    assert_eq!(db.offset(), before, "nothing committed");
    db.execute("UPDATE t SET x = r WHERE id = 2").unwrap();
    assert_eq!(
        rows(&mut db, "SELECT id, x FROM t"),
        vec![Row::new(vec![Value::Int(1), Value::Int(i64::MAX)]), Row::new(vec![Value::Int(2), Value::Int(2)])]
    );
}

#[test]
fn an_integer_result_that_overflows_is_an_error_never_a_real() {
    let mut db = Database::new(1);
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, x INTEGER NOT NULL)").unwrap();
    db.execute("INSERT INTO t VALUES (1, 9223372036854775807), (2, 1), (3, -9223372036854775808)").unwrap();
    for sql in [
        "SELECT 9223372036854775807 * 2",
        "SELECT -(-9223372036854775808)",
        "SELECT ABS(-9223372036854775808)",
        "SELECT ABS(x) FROM t",
        "SELECT SUM(x) FROM t WHERE id < 3",
        "SELECT id, x + 1 FROM t",
        "SELECT id, x * 2 FROM t ORDER BY id LIMIT 1",
    ] {
        let err = db.execute(sql).unwrap_err().to_string();
        assert!(err.contains("integer overflow") && err.contains("INTEGER"), "{sql}: {err}");
        assert!(db.subscribe(&db.plan(sql).unwrap()).is_err(), "{sql}");
    }
    // Inside a query an overflowed value goes on as a REAL, as in SQLite, where the result
    // does not claim it is an INTEGER.
    assert_eq!(
        rows(&mut db, "SELECT id FROM t WHERE x * 2 > 0"),
        vec![Row::new(vec![Value::Int(1)]), Row::new(vec![Value::Int(2)])]
    );
    assert_eq!(rows(&mut db, "SELECT x * 2.0 FROM t WHERE id = 2"), vec![Row::new(vec![Value::Real(2.0)])]);
    assert_eq!(rows(&mut db, "SELECT SUM(x) FROM t"), vec![Row::new(vec![Value::Int(0)])]);
    // A live query that a later change makes overflow is ended, and sends nothing wrong.
    let live = db.subscribe(&db.plan("SELECT id, x * 2 FROM t WHERE id = 2").unwrap()).unwrap();
    let other = db.subscribe(&db.plan("SELECT id FROM t").unwrap()).unwrap();
    match db.execute("UPDATE t SET x = 4611686018427387904 WHERE id = 2").unwrap() {
        Outcome::Changed { deltas, .. } => {
            assert!(deltas.iter().all(|d| d.query != live.query), "{deltas:?}");
            assert!(deltas.iter().all(|d| d.query != other.query), "no change to `other`'s rows");
        }
        other => panic!("{other:?}"),
    }
    let failed = db.take_failed();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0, live.query);
    assert!(failed[0].1.contains("integer overflow"), "{}", failed[0].1);
    assert!(db.unsubscribe(live.id).is_err(), "its subscription is gone");
    db.execute("INSERT INTO t VALUES (4, 4)").unwrap();
    db.unsubscribe(other.id).unwrap();
}
