//! Hostile and generated SQL against the planner's bounds: deep and long statements plan or
//! get a clear error, within the stack a database thread has, and never overflow it.

use sluice_planner::{Catalog, Dml, Planner, QueryPlan, Value};

fn catalog() -> Catalog {
    let mut c = Catalog::new();
    let stmt = &sluice_planner::parse("CREATE TABLE t (id INTEGER PRIMARY KEY, x INTEGER, s TEXT)").unwrap()[0];
    let Dml::CreateTable(s) = Planner::new(&c).plan_statement(stmt).unwrap() else { panic!("ddl") };
    c.add_table(s).unwrap();
    c
}

/// Plans `sql` on a thread with a small stack (Rust's default for new threads): the planner
/// grows its stack on the heap where it recurses, so it needs no more.
fn plan(sql: String) -> Result<QueryPlan, String> {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || Planner::new(&catalog()).plan_sql(&sql).map_err(|e| e.to_string()))
        .unwrap()
        .join()
        .expect("planning does not overflow the stack")
}

fn chain(first: &str, op: &str, term: impl Fn(usize) -> String, n: usize) -> String {
    let mut s = String::from(first);
    for i in 0..n {
        s.push_str(op);
        s.push_str(&term(i));
    }
    s
}

#[test]
fn thousands_of_or_and_and_terms_plan() {
    let ors = chain("SELECT id FROM t WHERE id = -1", " OR ", |i| format!("id = {i}"), 6000);
    plan(ors).unwrap();
    let ands = chain("SELECT id FROM t WHERE x <> -1", " AND ", |i| format!("x <> {i}"), 10_000);
    plan(ands).unwrap();
}

#[test]
fn chains_within_the_bound_plan() {
    plan(chain("SELECT 1", " + ", |_| "x".into(), 990).replace("SELECT 1", "SELECT x FROM t WHERE x = 1")).unwrap();
    plan(chain("SELECT 1", " UNION ", |i| format!("SELECT {i}"), 990)).unwrap();
    plan(chain("SELECT s FROM t WHERE s = 'b'", " || ", |_| "'a'".into(), 990)).unwrap();
}

#[test]
fn long_operator_chains_are_refused_clearly() {
    for sql in [
        chain("SELECT 1", " + ", |_| "1".into(), 50_000),
        chain("SELECT id FROM t WHERE s = 'a'", " || ", |_| "'a'".into(), 20_000),
        chain("SELECT 1", " UNION ", |i| format!("SELECT {i}"), 10_000),
        chain("SELECT x FROM t WHERE x", " IS NULL", |_| String::new(), 20_000),
    ] {
        let e = plan(sql).unwrap_err();
        assert!(e.contains("nests too deeply: more than 1000 levels"), "{e}");
    }
}

#[test]
fn deep_parentheses_plan_up_to_the_limit() {
    let nested = |n: usize| format!("SELECT {}x{} FROM t", "(".repeat(n), ")".repeat(n));
    plan(nested(300)).unwrap();
    let e = plan(nested(5000)).unwrap_err();
    assert!(e.contains("nests too deeply"), "{e}");
    let subqueries = |n: usize| format!("SELECT {}1{}", "(SELECT ".repeat(n), " LIMIT 1)".repeat(n));
    plan(subqueries(8)).unwrap();
    assert!(plan(subqueries(2000)).unwrap_err().contains("nests too deeply"));
}

#[test]
fn nested_subqueries_are_planned_within_a_bounded_number_of_steps() {
    // Each level is planned about three times over: 30 levels unbounded would take years.
    let subqueries = |n: usize| format!("SELECT {}1{}", "(SELECT ".repeat(n), " LIMIT 1)".repeat(n));
    let e = plan(subqueries(30)).unwrap_err();
    assert!(e.contains("too complex to plan"), "{e}");
}

#[test]
fn operands_copied_by_nested_rewrites_are_bounded() {
    // Each IS DISTINCT FROM reads both operands twice: nested 40 deep, 2^40 copies.
    let e = plan(chain("SELECT 1 FROM t WHERE x", " IS DISTINCT FROM ", |_| "x".into(), 40)).unwrap_err();
    assert!(e.contains("too large once expanded"), "{e}");
    // Derived tables that each read their input column twice are not fused into one
    // exponentially large projection.
    let mut sql = "SELECT x AS c FROM t".to_string();
    for _ in 0..40 {
        sql = format!("SELECT c + c AS c FROM ({sql})");
    }
    let p = plan(sql).unwrap();
    let mut size = 0;
    p.plan.visit(&mut |n| {
        if let sluice_planner::Plan::Project { exprs, .. } = n {
            size += exprs.iter().map(sluice_planner::Expr::size).sum::<usize>();
        }
    });
    assert!(size < 1000, "projections of {size} nodes");
}

#[test]
fn joins_are_bounded_per_from_clause() {
    let from = |n: usize| (0..n).map(|i| format!("t t{i}")).collect::<Vec<_>>().join(", ");
    plan(format!("SELECT t0.id FROM {}", from(64))).unwrap();
    let e = plan(format!("SELECT t0.id FROM {}", from(65))).unwrap_err();
    assert!(e.contains("at most 64 tables"), "{e}");
}

#[test]
fn a_balanced_chain_keeps_its_meaning() {
    // The balanced OR of equalities accepts exactly its terms, NULL as SQL says.
    let sql = chain("SELECT id FROM t WHERE x = -1", " OR ", |i| format!("x = {}", i * 2), 100);
    let QueryPlan { plan, .. } = plan(sql).unwrap();
    let mut filters = Vec::new();
    plan.visit(&mut |p| {
        if let sluice_planner::Plan::Filter { predicate, .. } = p {
            filters.push(predicate.clone());
        }
    });
    let [predicate] = &filters[..] else { panic!("one filter in {plan:?}") };
    assert!(predicate.depth() < 20, "balanced: {}", predicate.depth());
    for x in -3..250 {
        let row = [Value::Int(1), Value::Int(x), Value::Null];
        let want = x == -1 || (x >= 0 && x % 2 == 0 && x < 200);
        assert_eq!(predicate.eval(&row), Value::Bool(want), "x = {x}");
    }
    let row = [Value::Int(1), Value::Null, Value::Null];
    assert_eq!(predicate.eval(&row), Value::Null);
}
