//! Planner rewrites (pushdown, join keys and order, decorrelation) and its errors.

use sluice_planner::{Catalog, Dml, Expr, JoinKind, Plan, PlanError, Planner};

fn catalog() -> Catalog {
    let mut c = Catalog::new();
    for ddl in [
        "CREATE TABLE a (id INTEGER PRIMARY KEY, x INTEGER, name TEXT)",
        "CREATE TABLE b (id INTEGER PRIMARY KEY, a_id INTEGER, y REAL)",
        "CREATE TABLE c (id INTEGER PRIMARY KEY, b_id INTEGER, z INTEGER)",
    ] {
        let stmt = &sluice_planner::parse(ddl).unwrap()[0];
        let Dml::CreateTable(s) = Planner::new(&c).plan_statement(stmt).unwrap() else { panic!("ddl") };
        c.add_table(s).unwrap();
    }
    c
}

fn plan(sql: &str) -> Plan {
    Planner::new(&catalog()).plan_sql(sql).unwrap_or_else(|e| panic!("{sql}: {e}")).plan
}

fn err(sql: &str) -> PlanError {
    Planner::new(&catalog()).plan_sql(sql).expect_err(sql)
}

fn joins(p: &Plan) -> Vec<(JoinKind, usize)> {
    let mut out = Vec::new();
    p.visit(&mut |n| {
        if let Plan::Join { kind, keys, .. } = n {
            out.push((*kind, keys.len()));
        }
    });
    out
}

/// True if some Filter sits directly on a Get of `table`.
fn filter_on(p: &Plan, table: &str) -> bool {
    let mut found = false;
    p.visit(&mut |n| {
        if let Plan::Filter { input, .. } = n {
            if matches!(&**input, Plan::Get { table: t, .. } if t == table) {
                found = true;
            }
        }
    });
    found
}

#[test]
fn single_table_predicates_are_pushed_below_joins() {
    let p = plan("SELECT a.name FROM a, b WHERE a.id = b.a_id AND a.x > 3 AND b.y < 1.5");
    assert!(filter_on(&p, "a") && filter_on(&p, "b"), "{p:#?}");
    assert_eq!(joins(&p), vec![(JoinKind::Inner, 1)]);
}

#[test]
fn equi_join_keys_are_found_in_where_and_no_cross_product_is_formed() {
    // FROM order a, c, b: a and c are not directly related; b links them.
    let p = plan("SELECT a.id, c.id FROM a, c, b WHERE c.b_id = b.id AND b.a_id = a.id");
    assert_eq!(joins(&p), vec![(JoinKind::Inner, 1), (JoinKind::Inner, 1)], "{p:#?}");
    // Keys may be expressions, on either side of `=`.
    let p = plan("SELECT 1 FROM a JOIN b ON b.a_id = a.x + 1");
    assert_eq!(joins(&p), vec![(JoinKind::Inner, 1)]);
    // A genuine cross join stays one, with no keys.
    assert_eq!(joins(&plan("SELECT 1 FROM a CROSS JOIN b")), vec![(JoinKind::Inner, 0)]);
}

#[test]
fn outer_joins_keep_their_kind_and_right_joins_become_left_joins() {
    assert_eq!(joins(&plan("SELECT * FROM a LEFT JOIN b ON a.id = b.a_id")), vec![(JoinKind::Left, 1)]);
    assert_eq!(joins(&plan("SELECT * FROM a RIGHT JOIN b ON a.id = b.a_id")), vec![(JoinKind::Left, 1)]);
    assert_eq!(joins(&plan("SELECT * FROM a FULL OUTER JOIN b ON a.id = b.a_id")), vec![(JoinKind::Full, 1)]);
    // RIGHT JOIN output keeps a's columns first.
    let q = Planner::new(&catalog()).plan_sql("SELECT * FROM a RIGHT JOIN b ON a.id = b.a_id").unwrap();
    let names: Vec<&str> = q.columns.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names, ["id", "x", "name", "id", "a_id", "y"]);
}

#[test]
fn correlated_subqueries_are_decorrelated_into_null_safe_joins_and_aggregates() {
    // Under OR the EXISTS is a value: a COUNT per prefix, left-joined back.
    let p = plan("SELECT a.id FROM a WHERE EXISTS (SELECT 1 FROM b WHERE b.a_id = a.id AND b.y > 0.5) OR a.x > 1");
    let mut null_safe_join = false;
    let mut aggregate = false;
    let mut distinct_prefix = false;
    p.visit(&mut |n| match n {
        Plan::Join { keys, .. } if keys.iter().any(|k| k.null_safe) => null_safe_join = true,
        Plan::Aggregate { .. } => aggregate = true,
        Plan::Distinct { .. } => distinct_prefix = true,
        _ => {}
    });
    assert!(null_safe_join && aggregate && distinct_prefix, "{p:#?}");
    assert!(joins(&p).contains(&(JoinKind::Left, 1)), "{p:#?}");
    // The correlation predicate becomes an equi-join key between the prefix and b.
    assert!(joins(&p).iter().filter(|(k, n)| *k == JoinKind::Inner && *n == 1).count() >= 1, "{p:#?}");
}

/// Aggregates, Distincts and the joins' (kind, key count, any NULL-safe key) of a plan.
fn shape(p: &Plan) -> (usize, usize, Vec<(JoinKind, usize, bool)>) {
    let (mut aggregates, mut distincts, mut joins) = (0, 0, Vec::new());
    p.visit(&mut |n| match n {
        Plan::Aggregate { .. } => aggregates += 1,
        Plan::Distinct { .. } => distincts += 1,
        Plan::Join { kind, keys, .. } => joins.push((*kind, keys.len(), keys.iter().any(|k| k.null_safe))),
        _ => {}
    });
    (aggregates, distincts, joins)
}

#[test]
fn an_exists_conjunct_correlated_by_equalities_is_a_semijoin_on_the_values_compared() {
    // The distinct b.a_id of the rows passing b.y > 0.5, joined on a.id = b.a_id.
    let p = plan("SELECT a.id FROM a WHERE EXISTS (SELECT 1 FROM b WHERE b.a_id = a.id AND b.y > 0.5) AND a.x > 1");
    assert_eq!(shape(&p), (0, 1, vec![(JoinKind::Inner, 1, false)]), "{p:#?}");
    // Either side of the equality, two of them, parentheses.
    let two = plan("SELECT a.id FROM a WHERE EXISTS (SELECT 1 FROM c WHERE (a.id = c.b_id AND c.z = a.x))");
    assert_eq!(shape(&two), (0, 1, vec![(JoinKind::Inner, 2, false)]), "{two:#?}");
}

#[test]
fn an_exists_conjunct_correlated_otherwise_is_a_semijoin_on_distinct_prefixes() {
    // A correlation that is not an equality: the prefixes go through the subquery.
    let p = plan("SELECT a.id FROM a WHERE EXISTS (SELECT 1 FROM b WHERE b.a_id = a.id AND b.y > a.x)");
    let (aggregates, distincts, kinds) = shape(&p);
    assert_eq!((aggregates, distincts), (0, 2), "the prefixes, and those the subquery has: {p:#?}");
    assert!(kinds.iter().all(|(k, _, _)| *k == JoinKind::Inner), "no outer join: {p:#?}");
    // Values of different types (REAL against INTEGER) are compared as SQL does, not as keys.
    let mixed = plan("SELECT a.id FROM a WHERE EXISTS (SELECT 1 FROM b WHERE b.y = a.x)");
    assert_eq!(shape(&mixed).1, 2, "{mixed:#?}");
    // A grouped subquery keeps the general form.
    let grouped = plan("SELECT a.id FROM a WHERE EXISTS (SELECT b.a_id FROM b WHERE b.a_id = a.id GROUP BY b.a_id)");
    assert_eq!(shape(&grouped).1, 2, "{grouped:#?}");
    // NOT EXISTS still needs the count of every prefix, missing ones included.
    let not = plan("SELECT a.id FROM a WHERE NOT EXISTS (SELECT 1 FROM b WHERE b.a_id = a.id)");
    assert!(joins(&not).contains(&(JoinKind::Left, 1)), "{not:#?}");
}

#[test]
fn uncorrelated_scalar_subquery_joins_a_single_row() {
    let p = plan("SELECT id FROM a WHERE x > (SELECT COUNT(*) FROM b)");
    assert_eq!(joins(&p), vec![(JoinKind::Left, 0)], "{p:#?}");
}

#[test]
fn constant_arithmetic_is_folded() {
    let p = plan("SELECT id FROM a WHERE x > 2 * 3");
    let mut folded = false;
    p.visit(&mut |n| {
        if let Plan::Filter { predicate: Expr::Binary(_, _, r), .. } = n {
            folded = matches!(**r, Expr::Literal(sluice_planner::Value::Int(6)));
        }
    });
    assert!(folded, "{p:#?}");
}

#[test]
fn errors_name_the_construct_and_position() {
    let e = err("SELECT nope FROM a");
    assert_eq!(e.message, "unknown column nope");
    assert_eq!(e.position.map(|p| (p.line, p.column)), Some((1, 8)));

    let e = err("SELECT id FROM a\nWHERE zz.x = 1");
    assert!(e.message.contains("unknown table or alias zz"), "{e}");
    assert_eq!(e.position.map(|p| p.line), Some(2));

    assert!(err("SELECT * FROM missing").message.contains("unknown table missing"));
    assert!(err("SELEC id FROM a").message.starts_with("syntax error"));
    assert!(err("SELECT id FROM a WHERE name > 3").message.contains("cannot compare TEXT with INTEGER"));
    assert!(err("SELECT id FROM a WHERE COUNT(*) > 1")
        .message
        .contains("aggregate function count is not allowed in WHERE"));
    assert!(err("SELECT x, COUNT(*) FROM a GROUP BY name").message.contains("column a.x must appear in GROUP BY"));
    assert!(err("SELECT id FROM a, b WHERE id = 1").message.contains("ambiguous"));
    assert!(err("SELECT id, (SELECT y FROM b) FROM a").message.contains("scalar subquery must return at most one row"));
    assert!(err("SELECT ROW_NUMBER() OVER () FROM a").message.contains("window function"));
    assert!(err("WITH q AS (SELECT 1) SELECT * FROM q").message.contains("WITH"));
    assert!(err("SELECT id FROM a UNION SELECT id, x FROM a").message.contains("operands have 1 and 2 columns"));
    assert!(err("SELECT SUM(name) FROM a").message.contains("needs a numeric operand"));
    assert!(err("SELECT id FROM a LIMIT -1").message.contains("LIMIT"));
    let e = err("SELECT x % 2, (SELECT COUNT(*) FROM b WHERE b.a_id = a.x % 2) FROM a GROUP BY x % 2");
    assert!(e.message.contains("may refer only to GROUP BY columns"), "{e}");
    // A plain grouped column is fine.
    plan("SELECT x, (SELECT COUNT(*) FROM b WHERE b.a_id = a.x) FROM a GROUP BY x");
}

#[test]
fn dml_is_typed_against_the_table() {
    let c = catalog();
    let p = Planner::new(&c);
    let stmt = |s: &str| p.plan_statement(&sluice_planner::parse(s).unwrap()[0]);
    assert!(matches!(stmt("INSERT INTO a VALUES (1, 2, 'x')"), Ok(Dml::Insert { .. })));
    assert!(stmt("INSERT INTO a VALUES (1, 'x', 'x')").unwrap_err().message.contains("cannot store TEXT"));
    assert!(stmt("INSERT INTO a VALUES (NULL, 1, 'x')").unwrap_err().message.contains("NOT NULL"));
    assert!(stmt("INSERT INTO a (id) VALUES (1, 2)").unwrap_err().message.contains("2 values for 1 columns"));
    assert!(stmt("UPDATE a SET name = 3").unwrap_err().message.contains("cannot store INTEGER"));
    assert!(matches!(stmt("DELETE FROM b WHERE y > 1"), Ok(Dml::Delete { .. })));
}

#[test]
fn named_parameters_bind_to_literals_and_unbound_ones_are_refused() {
    let c = catalog();
    let bound = Planner::new(&c).with_param("sender", sluice_planner::Value::Int(7));
    let p = bound.plan_sql("SELECT name FROM a WHERE id = :sender").unwrap().plan;
    let mut literals = Vec::new();
    p.visit(&mut |n| {
        if let Plan::Filter { predicate, .. } = n {
            literals.push(format!("{predicate:?}"));
        }
    });
    assert!(literals.iter().any(|l| l.contains("Int(7)")), "{p:#?}");
    let e = Planner::new(&c).plan_sql("SELECT name FROM a WHERE id = :sender").unwrap_err();
    assert!(e.to_string().contains("unbound parameter :sender"), "{e}");
}

#[test]
fn primary_key_is_found_through_filters_and_projections_only() {
    let c = catalog();
    let key = |sql: &str| Planner::new(&c).plan_sql(sql).unwrap().plan.primary_key(&c);
    assert_eq!(key("SELECT * FROM a WHERE x > 1"), Some(vec![0]));
    assert_eq!(key("SELECT name, id FROM a"), Some(vec![1]));
    assert_eq!(key("SELECT name FROM a"), None);
    assert_eq!(key("SELECT a.id FROM a JOIN b ON a.id = b.a_id"), None);
    assert_eq!(key("SELECT x, COUNT(*) FROM a GROUP BY x"), None);
}
