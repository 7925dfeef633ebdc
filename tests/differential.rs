//! Randomised differential test: Sluice's incrementally maintained subscriptions against
//! SQLite as the oracle.
//!
//! Each case creates 2–3 random tables (t0, t1, t2) in both a Sluice `Database` and an
//! in-memory SQLite connection, subscribes ~8–15 random queries (plus one `SELECT *` mirror per
//! table; some only half way through, one re-subscribed, one shared by a second subscriber and
//! then a third, who starts from the result the engine keeps once a query is shared),
//! keeps a client-side cache of every subscription (initial rows, then every delta), and runs
//! 40 random INSERT / INSERT … SELECT / UPDATE / DELETE transactions against both databases,
//! which must agree on success and on the number of rows changed. After every transaction each
//! cache must equal SQLite's answer to the same SQL, as a multiset of normalised rows (numbers
//! compared by value rounded to 6 decimals, so INTEGER 2 and REAL 2.0 are equal; booleans as
//! 0/1). Initial rows of a query with ORDER BY must also come in SQLite's order, and deltas
//! must be consolidated (no empty delta, no row both inserted and deleted).
//!
//! Queries: filters (comparisons, AND / OR / NOT, IS [NOT] NULL, IS [NOT] DISTINCT FROM,
//! IS TRUE / FALSE, IN lists, BETWEEN, LIKE), arithmetic (integer `/` and `%`), CASE,
//! COALESCE / IFNULL / NULLIF, scalar MIN / MAX, string and CAST functions; joins of up to
//! three items (base tables, self-joins under an alias, derived tables) by equality, inner,
//! LEFT, RIGHT, FULL, comma or USING; GROUP BY with COUNT / SUM / AVG / MIN / MAX (also
//! DISTINCT) and HAVING, global aggregates; DISTINCT; UNION [ALL] / EXCEPT / INTERSECT;
//! [NOT] IN / [NOT] EXISTS / scalar subqueries, correlated or not, nested two deep, in WHERE,
//! SELECT and HAVING; ORDER BY … LIMIT / OFFSET, also inside subqueries and derived tables.
//!
//! Reproducing: every failure prints its seed and a SQL script. Environment variables:
//! - `SLUICE_DIFF_SEED=N`   run only case N;
//! - `SLUICE_DIFF_CASES=M`  run cases 1..=M instead of the default list (for longer fuzzing);
//! - `SLUICE_DIFF_VERBOSE=1` print every generated query and Sluice's planning refusals
//!   (with `-- --nocapture`);
//! - `SLUICE_DIFF_WORKERS=N` run Sluice with N timely workers (default 1);
//!
//! The generator stays within what both engines agree on by construction: TEXT is never
//! compared with numbers, `%` only sees integers, REAL values are multiples of 1/4 (exact in
//! binary, so sums do not depend on order), INTEGER columns are only assigned INTEGER
//! expressions (SQLite would keep a REAL in an INTEGER column), primary keys are never updated
//! (SQLite checks uniqueness row by row), set operations take two operands of identical column
//! types and never mix operators (SQLite and the standard disagree on INTERSECT precedence),
//! and every ORDER BY ends with all selected columns: rows tied on the whole ORDER BY are then
//! identical, so LIMIT / OFFSET results and the presentation order are fully determined.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rusqlite::types::ValueRef;
use rusqlite::Connection;
use sluice::db::{Database, Outcome};
use sluice_ivm::{QueryDelta, QueryId, SubscriptionId};
use sluice_planner::{Row, Value};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

/// The default cases when no seed is given.
const DEFAULT_CASES: u64 = 32;
/// Transactions per case.
const TXS: usize = 40;
/// Largest tolerated share of generated queries that Sluice refuses to plan.
const MAX_REFUSED: f64 = 0.10;

const TEXTS: [&str; 9] = ["a", "b", "c", "ab", "B", "", "é", " a", "12"];

// ---------------------------------------------------------------------------------------------
// Schemas and scopes.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ty {
    Int,
    Real,
    Text,
    Bool,
}

#[derive(Clone, Debug)]
struct ColDef {
    name: String,
    ty: Ty,
    nullable: bool,
}

#[derive(Clone, Debug)]
struct TableDef {
    name: String,
    /// When true, `cols[0]` is `id INTEGER PRIMARY KEY`.
    pk: bool,
    cols: Vec<ColDef>,
}

impl TableDef {
    fn ddl(&self) -> String {
        let cols: Vec<String> = self
            .cols
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if self.pk && i == 0 {
                    format!("{} INTEGER PRIMARY KEY", c.name)
                } else {
                    let ty = match c.ty {
                        Ty::Int => "INTEGER",
                        Ty::Real => "REAL",
                        Ty::Text => "TEXT",
                        Ty::Bool => unreachable!("no BOOLEAN columns"),
                    };
                    format!("{} {}{}", c.name, ty, if c.nullable { "" } else { " NOT NULL" })
                }
            })
            .collect();
        format!("CREATE TABLE {} ({})", self.name, cols.join(", "))
    }

    /// The columns as seen under `qualifier` (or unqualified, for DML).
    fn scope(&self, qualifier: Option<&str>) -> Vec<SCol> {
        self.cols
            .iter()
            .map(|c| SCol {
                sql: match qualifier {
                    Some(q) => format!("{q}.{}", c.name),
                    None => c.name.clone(),
                },
                ty: c.ty,
                nullable: c.nullable,
            })
            .collect()
    }
}

/// A column (or group-key expression) visible to an expression.
#[derive(Clone, Debug)]
struct SCol {
    sql: String,
    ty: Ty,
    nullable: bool,
}

/// A select-list item.
#[derive(Clone, Debug)]
struct Item {
    sql: String,
    /// Whether ORDER BY may repeat the expression (it mentions a column and no subquery);
    /// otherwise ORDER BY uses its ordinal.
    by_expr: bool,
}

impl Item {
    fn new(sql: String, scope: &[SCol]) -> Item {
        let by_expr = scope.iter().any(|c| sql.contains(&c.sql)) && !sql.contains("SELECT");
        Item { sql, by_expr }
    }
}

fn fmt_real(quarters: i64) -> String {
    let x = quarters as f64 / 4.0;
    if x < 0.0 {
        format!("({x:.2})")
    } else {
        format!("{x:.2}")
    }
}

fn fmt_int(i: i64) -> String {
    if i < 0 {
        format!("({i})")
    } else {
        i.to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// The generator.

struct Gen {
    rng: StdRng,
    tables: Vec<TableDef>,
    next_alias: usize,
    /// Nesting depth of the subquery being generated.
    sub_depth: usize,
}

impl Gen {
    fn new(seed: u64) -> Gen {
        Gen { rng: StdRng::seed_from_u64(seed), tables: Vec::new(), next_alias: 0, sub_depth: 0 }
    }

    fn p(&mut self, x: f64) -> bool {
        self.rng.random_bool(x)
    }

    fn n(&mut self, lo: usize, hi: usize) -> usize {
        self.rng.random_range(lo..=hi)
    }

    fn pick<T: Clone>(&mut self, v: &[T]) -> T {
        v[self.rng.random_range(0..v.len())].clone()
    }

    fn dir(&mut self) -> &'static str {
        if self.p(0.5) {
            ""
        } else if self.p(0.5) {
            " ASC"
        } else {
            " DESC"
        }
    }

    // ---- schemas and data ----

    fn gen_tables(&mut self) {
        let n = self.n(2, 3);
        let names = ["a", "b", "c", "d"];
        for i in 0..n {
            let pk = self.p(0.6);
            let mut cols = Vec::new();
            if pk {
                cols.push(ColDef { name: "id".into(), ty: Ty::Int, nullable: false });
            }
            let k = self.n(2, 4);
            for (j, name) in names.iter().enumerate().take(k) {
                let ty = if j == 0 {
                    Ty::Int
                } else {
                    match self.n(0, 9) {
                        0..=3 => Ty::Int,
                        4..=6 => Ty::Real,
                        _ => Ty::Text,
                    }
                };
                let nullable = self.p(0.5);
                cols.push(ColDef { name: name.to_string(), ty, nullable });
            }
            self.tables.push(TableDef { name: format!("t{i}"), pk, cols });
        }
    }

    fn value(&mut self, ty: Ty, nullable: bool) -> String {
        if nullable && self.p(0.2) {
            return "NULL".into();
        }
        match ty {
            Ty::Int => fmt_int(self.rng.random_range(-1..=6)),
            Ty::Real => fmt_real(self.rng.random_range(-4..=14)),
            Ty::Text => format!("'{}'", self.pick(&TEXTS)),
            Ty::Bool => unreachable!(),
        }
    }

    /// An INSERT of 1–3 rows with fresh primary keys (`ids`: keys currently in the table).
    fn insert(&mut self, t: usize, ids: &[i64], existing: &[Vec<String>], nrows: usize) -> String {
        let table = self.tables[t].clone();
        let mut used: Vec<i64> = ids.to_vec();
        // Sometimes name the columns and leave nullable ones out (they default to NULL).
        let omit: Vec<bool> = if self.p(0.15) {
            table.cols.iter().enumerate().map(|(i, c)| !(table.pk && i == 0) && c.nullable && self.p(0.5)).collect()
        } else {
            vec![false; table.cols.len()]
        };
        let mut rows = Vec::new();
        for _ in 0..nrows {
            // Bag tables sometimes get an exact duplicate of an existing row.
            if !table.pk && !existing.is_empty() && !omit.contains(&true) && self.p(0.25) {
                let r = self.pick(existing);
                rows.push(format!("({})", r.join(", ")));
                continue;
            }
            let mut vals = Vec::new();
            for (i, c) in table.cols.iter().enumerate() {
                if omit[i] {
                    continue;
                }
                if table.pk && i == 0 {
                    let hi = 60.max(2 * used.len() as i64 + 20);
                    let mut id = self.rng.random_range(1..=hi);
                    while used.contains(&id) {
                        id = self.rng.random_range(1..=hi);
                    }
                    used.push(id);
                    vals.push(id.to_string());
                } else if !c.nullable && self.p(0.01) {
                    vals.push("NULL".into()); // both must refuse the whole statement
                } else {
                    vals.push(self.value(c.ty, c.nullable));
                }
            }
            rows.push(format!("({})", vals.join(", ")));
        }
        let cols = if omit.contains(&true) {
            let names: Vec<&str> =
                table.cols.iter().zip(&omit).filter(|(_, o)| !**o).map(|(c, _)| c.name.as_str()).collect();
            format!(" ({})", names.join(", "))
        } else {
            String::new()
        };
        format!("INSERT INTO {}{} VALUES {}", table.name, cols, rows.join(", "))
    }

    /// A bounded new value for column `c` of a row (keeps values in a small domain).
    fn set_expr(&mut self, c: &ColDef, scope: &[SCol]) -> String {
        if c.nullable && self.p(0.08) {
            return "NULL".into();
        }
        let n = &c.name;
        match c.ty {
            Ty::Int => match self.n(0, 7) {
                0 | 1 => self.value(Ty::Int, false),
                2 => format!("{n} + 1"),
                3 => format!("{n} - 1"),
                4 => format!("({n} + {}) % 7", self.n(1, 5)),
                5 => {
                    let ints: Vec<SCol> = scope.iter().filter(|s| s.ty == Ty::Int).cloned().collect();
                    let o = self.pick(&ints);
                    format!("({} * 2 + {n}) % 5", o.sql)
                }
                6 => {
                    let p = self.pred(scope, 1, None);
                    let v = self.value(Ty::Int, false);
                    format!("CASE WHEN {p} THEN {v} ELSE {n} END")
                }
                _ => {
                    let ints: Vec<SCol> = scope.iter().filter(|s| s.ty == Ty::Int).cloned().collect();
                    self.pick(&ints).sql
                }
            },
            Ty::Real => match self.n(0, 6) {
                0 | 1 => self.value(Ty::Real, false),
                2 => format!("{n} + 0.25"),
                3 => format!("{n} - 0.5"),
                4 => format!("{n} * 2"),
                5 => {
                    let nums: Vec<SCol> =
                        scope.iter().filter(|s| matches!(s.ty, Ty::Int | Ty::Real)).cloned().collect();
                    let o = self.pick(&nums);
                    if o.ty == Ty::Int {
                        format!("{} * 0.5", o.sql)
                    } else {
                        o.sql
                    }
                }
                _ => {
                    let p = self.pred(scope, 1, None);
                    let v = self.value(Ty::Real, false);
                    format!("CASE WHEN {p} THEN {v} ELSE {n} END")
                }
            },
            Ty::Text => match self.n(0, 6) {
                0 | 1 => self.value(Ty::Text, false),
                2 => format!("UPPER({n})"),
                3 => format!("LOWER({n})"),
                4 => format!("SUBSTR({n} || 'x', 1, 2)"),
                5 => {
                    let texts: Vec<SCol> = scope.iter().filter(|s| s.ty == Ty::Text).cloned().collect();
                    self.pick(&texts).sql
                }
                _ => {
                    let p = self.pred(scope, 1, None);
                    let v = self.value(Ty::Text, false);
                    format!("CASE WHEN {p} THEN {v} ELSE {n} END")
                }
            },
            Ty::Bool => unreachable!(),
        }
    }

    /// INSERT … SELECT: into a bag table from any table, or into a keyed table from itself
    /// with its keys shifted past the largest one (`ids`: the keys in the table).
    fn insert_select(&mut self, t: usize, ids: &[i64]) -> String {
        let target = self.tables[t].clone();
        let j = self.n(0, self.tables.len() - 1);
        let src = if target.pk { target.clone() } else { self.tables[j].clone() };
        let scope = src.scope(Some(&src.name));
        let mut items = Vec::new();
        for (i, c) in target.cols.iter().enumerate() {
            if target.pk && i == 0 {
                items.push(format!("{}.id + {}", src.name, ids.iter().max().copied().unwrap_or(0)));
                continue;
            }
            let same = Self::cols_of(&scope, c.ty);
            items.push(if !same.is_empty() && self.p(0.8) { self.pick(&same).sql } else { self.lit(c.ty) });
        }
        let mut sql = format!("INSERT INTO {} SELECT {} FROM {}", target.name, items.join(", "), src.name);
        if self.p(0.8) {
            sql += &format!(" WHERE {}", self.pred(&scope, 1, None));
        }
        sql
    }

    fn update(&mut self, t: usize) -> String {
        let table = self.tables[t].clone();
        let scope = table.scope(None);
        let targets: Vec<ColDef> = table.cols.iter().skip(usize::from(table.pk)).cloned().collect();
        let mut chosen: Vec<ColDef> = Vec::new();
        for _ in 0..(if self.p(0.25) { 2 } else { 1 }) {
            let c = self.pick(&targets);
            if !chosen.iter().any(|x| x.name == c.name) {
                chosen.push(c);
            }
        }
        let mut sets: Vec<String> =
            chosen.iter().map(|c| format!("{} = {}", c.name, self.set_expr(c, &scope))).collect();
        let pairs: Vec<(String, String)> = targets
            .iter()
            .flat_map(|x| targets.iter().map(move |y| (x, y)))
            .filter(|(x, y)| x.name < y.name && x.ty == y.ty && x.nullable == y.nullable)
            .map(|(x, y)| (x.name.clone(), y.name.clone()))
            .collect();
        if !pairs.is_empty() && self.p(0.1) {
            // Both right-hand sides read the old row.
            let (x, y) = self.pick(&pairs);
            sets = vec![format!("{x} = {y}"), format!("{y} = {x}")];
        }
        let mut sql = format!("UPDATE {} SET {}", table.name, sets.join(", "));
        if self.p(0.9) {
            sql += &format!(" WHERE {}", self.pred(&scope, 2, None));
        }
        sql
    }

    fn delete(&mut self, t: usize) -> String {
        let table = self.tables[t].clone();
        let scope = table.scope(None);
        if self.p(0.03) {
            return format!("DELETE FROM {}", table.name);
        }
        format!("DELETE FROM {} WHERE {}", table.name, self.pred(&scope, 2, None))
    }

    // ---- expressions ----

    fn lit(&mut self, ty: Ty) -> String {
        match ty {
            Ty::Int => fmt_int(self.rng.random_range(-1..=6)),
            Ty::Real => fmt_real(self.rng.random_range(-4..=16)),
            Ty::Text => format!("'{}'", self.pick(&TEXTS)),
            Ty::Bool => (if self.p(0.5) { "TRUE" } else { "FALSE" }).into(),
        }
    }

    fn cols_of(scope: &[SCol], ty: Ty) -> Vec<SCol> {
        scope.iter().filter(|c| c.ty == ty).cloned().collect()
    }

    /// An expression of type `ty` over `scope` (no subqueries).
    fn expr(&mut self, ty: Ty, scope: &[SCol], depth: u32) -> String {
        if ty == Ty::Bool {
            return format!("({})", self.pred(scope, depth, None));
        }
        let cols = Self::cols_of(scope, ty);
        if depth == 0 || self.p(0.55) {
            if !cols.is_empty() && self.p(0.85) {
                return self.pick(&cols).sql;
            }
            if ty == Ty::Real && self.p(0.5) {
                let ints = Self::cols_of(scope, Ty::Int);
                if !ints.is_empty() {
                    let c = self.pick(&ints).sql;
                    return format!("({c} * 0.5)");
                }
            }
            return self.lit(ty);
        }
        let d = depth - 1;
        match ty {
            Ty::Int => match self.n(0, 16) {
                0 => format!("({} + {})", self.expr(Ty::Int, scope, d), self.expr(Ty::Int, scope, d)),
                1 => format!("({} - {})", self.expr(Ty::Int, scope, d), self.expr(Ty::Int, scope, d)),
                2 => format!("({} * {})", self.expr(Ty::Int, scope, d), self.lit(Ty::Int)),
                3 => format!("({} / {})", self.expr(Ty::Int, scope, d), self.expr(Ty::Int, scope, d)),
                4 => format!("({} % {})", self.expr(Ty::Int, scope, d), self.expr(Ty::Int, scope, d)),
                5 => self.case(Ty::Int, scope, d),
                6 => format!("COALESCE({}, {})", self.expr(Ty::Int, scope, d), self.lit(Ty::Int)),
                7 => format!("LENGTH({})", self.expr(Ty::Text, scope, d)),
                8 => format!("ABS({})", self.expr(Ty::Int, scope, d)),
                9 => format!("NULLIF({}, {})", self.expr(Ty::Int, scope, d), self.lit(Ty::Int)),
                10 => format!("IFNULL({}, {})", self.expr(Ty::Int, scope, d), self.expr(Ty::Int, scope, d)),
                11 => self.min_max(Ty::Int, scope, d),
                12 => format!("INSTR({}, '{}')", self.expr(Ty::Text, scope, d), self.pick(&["a", "b", "2", ""])),
                13 => format!("CAST({} AS INTEGER)", self.expr(Ty::Text, scope, d)),
                14 => format!("CAST({} AS INTEGER)", self.expr(Ty::Real, scope, d)),
                15 => format!("SIGN({})", self.expr(Ty::Int, scope, d)),
                _ => format!("(-{})", self.expr(Ty::Int, scope, d)),
            },
            Ty::Real => match self.n(0, 11) {
                0 => format!("({} + {})", self.expr(Ty::Real, scope, d), self.expr(Ty::Real, scope, d)),
                1 => format!("({} - {})", self.expr(Ty::Real, scope, d), self.expr(Ty::Int, scope, d)),
                2 => format!("({} * {})", self.expr(Ty::Real, scope, d), self.n(0, 3)),
                3 => {
                    let t = if self.p(0.5) { Ty::Int } else { Ty::Real };
                    format!("({} / 2.0)", self.expr(t, scope, d))
                }
                4 => self.case(Ty::Real, scope, d),
                5 => format!("COALESCE({}, {})", self.expr(Ty::Real, scope, d), self.lit(Ty::Real)),
                6 => self.min_max(Ty::Real, scope, d),
                7 => format!("IFNULL({}, {})", self.expr(Ty::Real, scope, d), self.lit(Ty::Real)),
                8 => format!("CAST({} AS REAL)", self.expr(Ty::Int, scope, d)),
                9 => format!("ABS({})", self.expr(Ty::Real, scope, d)),
                10 => format!("ROUND({}, {})", self.expr(Ty::Real, scope, d), self.n(0, 1)),
                _ => format!("({} + {})", self.expr(Ty::Int, scope, d), self.expr(Ty::Real, scope, d)),
            },
            Ty::Text => match self.n(0, 12) {
                0 => format!("UPPER({})", self.expr(Ty::Text, scope, d)),
                1 => format!("LOWER({})", self.expr(Ty::Text, scope, d)),
                2 => format!("({} || {})", self.expr(Ty::Text, scope, d), self.expr(Ty::Text, scope, d)),
                3 => format!("COALESCE({}, {})", self.expr(Ty::Text, scope, d), self.lit(Ty::Text)),
                4 => self.case(Ty::Text, scope, d),
                5 => self.min_max(Ty::Text, scope, d),
                6 => format!("NULLIF({}, {})", self.expr(Ty::Text, scope, d), self.lit(Ty::Text)),
                7 => {
                    let f = self.pick(&["TRIM", "LTRIM", "RTRIM"]);
                    format!("{f}({})", self.expr(Ty::Text, scope, d))
                }
                8 => format!("REPLACE({}, 'a', '{}')", self.expr(Ty::Text, scope, d), self.pick(&["", "b", "aa"])),
                9 => format!("CAST({} AS TEXT)", self.expr(Ty::Int, scope, d)),
                10 => format!("({} || {})", self.expr(Ty::Text, scope, d), self.expr(Ty::Int, scope, d)),
                // Known bug 5: REAL is formatted unlike SQLite (exponents, -0.0).
                11 => format!("CAST({} AS TEXT)", self.expr(Ty::Real, scope, d)),
                _ => format!("SUBSTR({}, 1, {})", self.expr(Ty::Text, scope, d), self.n(1, 2)),
            },
            Ty::Bool => unreachable!(),
        }
    }

    /// Scalar MIN / MAX of two or three values (NULL if any is NULL).
    fn min_max(&mut self, ty: Ty, scope: &[SCol], d: u32) -> String {
        let args: Vec<String> = (0..self.n(2, 3)).map(|_| self.expr(ty, scope, d)).collect();
        format!("{}({})", if self.p(0.5) { "MIN" } else { "MAX" }, args.join(", "))
    }

    fn case(&mut self, ty: Ty, scope: &[SCol], d: u32) -> String {
        let p = self.pred(scope, d.min(1), None);
        let a = self.expr(ty, scope, d);
        if self.p(0.2) {
            return format!("CASE WHEN {p} THEN {a} END");
        }
        let b = self.expr(ty, scope, d);
        format!("CASE WHEN {p} THEN {a} ELSE {b} END")
    }

    /// A type to compare in, among those present in `scope`.
    fn cmp_type(&mut self, scope: &[SCol]) -> Ty {
        let has = |t: Ty| scope.iter().any(|c| c.ty == t);
        loop {
            let t = match self.n(0, 9) {
                0..=4 => Ty::Int,
                5 | 6 => Ty::Real,
                _ => Ty::Text,
            };
            if has(t) || (t == Ty::Int && !has(Ty::Text)) {
                return t;
            }
        }
    }

    /// A predicate over `scope`; with `outer = Some(scope)` it may contain subqueries
    /// correlated with that scope.
    fn pred(&mut self, scope: &[SCol], depth: u32, outer: Option<&[SCol]>) -> String {
        let r = self.n(0, 99);
        if let Some(o) = outer {
            if r < 20 {
                return self.sub_pred(o);
            }
        }
        if depth > 0 && (20..45).contains(&r) {
            let d = depth - 1;
            return match self.n(0, 4) {
                0 | 1 => format!("({} AND {})", self.pred(scope, d, outer), self.pred(scope, d, outer)),
                2 | 3 => format!("({} OR {})", self.pred(scope, d, outer), self.pred(scope, d, outer)),
                _ => format!("NOT ({})", self.pred(scope, d, outer)),
            };
        }
        let d = depth.min(1);
        match self.n(0, 15) {
            0..=5 => self.cmp(scope, d),
            6 => {
                let nullable: Vec<SCol> = scope.iter().filter(|c| c.nullable).cloned().collect();
                let x = if !nullable.is_empty() && self.p(0.8) {
                    self.pick(&nullable).sql
                } else {
                    let t = self.cmp_type(scope);
                    self.expr(t, scope, d)
                };
                format!("{x} IS {}NULL", if self.p(0.5) { "NOT " } else { "" })
            }
            7 | 8 => {
                let t = self.cmp_type(scope);
                let x = self.expr(t, scope, d);
                let mut items: Vec<String> =
                    (0..self.n(1, 4)).map(|_| if self.p(0.8) { self.lit(t) } else { self.expr(t, scope, 0) }).collect();
                if self.p(0.1) {
                    items.push("NULL".into());
                }
                items.shuffle(&mut self.rng);
                format!("({x} {}IN ({}))", if self.p(0.3) { "NOT " } else { "" }, items.join(", "))
            }
            9 => {
                let t = self.cmp_type(scope);
                let x = self.expr(t, scope, d);
                let (lo, hi) = (self.lit(t), self.lit(t));
                format!("({x} {}BETWEEN {lo} AND {hi})", if self.p(0.25) { "NOT " } else { "" })
            }
            10 if scope.iter().any(|c| c.ty == Ty::Text) => {
                let x = self.expr(Ty::Text, scope, d);
                let pat = self.pick(&["a%", "%b", "_", "A%", "%", "_b%", "ab", "%A%", ""]);
                format!("({x} {}LIKE '{pat}')", if self.p(0.25) { "NOT " } else { "" })
            }
            11 => {
                let t = self.cmp_type(scope);
                let x = self.expr(t, scope, d);
                let y = if self.p(0.5) { self.lit(t) } else { self.expr(t, scope, d) };
                format!("({x} IS {}DISTINCT FROM {y})", if self.p(0.5) { "NOT " } else { "" })
            }
            12 => {
                let x = self.pred(scope, d, None);
                let not = if self.p(0.5) { "NOT " } else { "" };
                format!("(({x}) IS {not}{})", if self.p(0.5) { "TRUE" } else { "FALSE" })
            }
            // Known bug 4: NOT and IS TRUE / IS FALSE of a number.
            13 => {
                let t = if self.p(0.7) { Ty::Int } else { Ty::Real };
                let x = self.expr(t, scope, d);
                if self.p(0.5) {
                    format!("NOT ({x})")
                } else {
                    let not = if self.p(0.5) { "NOT " } else { "" };
                    format!("({x} IS {not}{})", if self.p(0.5) { "TRUE" } else { "FALSE" })
                }
            }
            14 => {
                // A number as a condition, combined with AND / OR.
                let t = if self.p(0.7) { Ty::Int } else { Ty::Real };
                let x = self.expr(t, scope, d);
                let y = self.pred(scope, d, None);
                format!("({x} {} {y})", if self.p(0.5) { "AND" } else { "OR" })
            }
            _ => self.cmp(scope, d),
        }
    }

    fn cmp_op(&mut self) -> &'static str {
        self.pick(&["=", "<>", "<", "<=", ">", ">="])
    }

    fn cmp(&mut self, scope: &[SCol], depth: u32) -> String {
        let t = self.cmp_type(scope);
        let l = self.expr(t, scope, depth);
        let rt = match t {
            Ty::Int if self.p(0.15) => Ty::Real,
            Ty::Real if self.p(0.3) => Ty::Int,
            t => t,
        };
        let r = if self.p(0.55) { self.lit(rt) } else { self.expr(rt, scope, depth) };
        let op = self.cmp_op();
        format!("{l} {op} {r}")
    }

    fn alias(&mut self) -> String {
        self.next_alias += 1;
        format!("u{}", self.next_alias)
    }

    /// A correlation condition between an inner and an outer scope, if they share a type.
    fn correlation(&mut self, inner: &[SCol], outer: &[SCol]) -> Option<String> {
        let mut pairs = Vec::new();
        for i in inner {
            for o in outer {
                let ok = i.ty == o.ty || (self.p(0.1) && i.ty != Ty::Text && o.ty != Ty::Text);
                if ok && i.ty != Ty::Bool && o.ty != Ty::Bool {
                    pairs.push((i.sql.clone(), o.sql.clone(), i.ty == Ty::Text || o.ty == Ty::Text));
                }
            }
        }
        if pairs.is_empty() {
            return None;
        }
        let (i, o, text) = self.pick(&pairs);
        let op = if text || self.p(0.8) { "=" } else { self.pick(&["<", ">", "<>", "<=", ">="]) };
        Some(format!("{i} {op} {o}"))
    }

    /// The WHERE clause of a subquery: a correlation with `outer` (with probability `corr`)
    /// and a predicate over the inner scope, which may itself hold a (doubly nested) subquery
    /// correlated with either level.
    fn sub_where(&mut self, inner: &[SCol], outer: &[SCol], corr: f64) -> String {
        let mut parts = Vec::new();
        if self.p(corr) {
            if let Some(c) = self.correlation(inner, outer) {
                parts.push(c);
            }
        }
        if self.p(0.5) {
            if self.sub_depth < 2 && self.p(0.15) {
                let both: Vec<SCol> = inner.iter().chain(outer).cloned().collect();
                parts.push(self.sub_pred(&both));
            } else {
                parts.push(self.pred(inner, 1, None));
            }
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", parts.join(" AND "))
        }
    }

    fn sub_table(&mut self) -> (TableDef, Vec<SCol>, String) {
        let t = self.n(0, self.tables.len() - 1);
        let alias = self.alias();
        let scope = self.tables[t].scope(Some(&alias));
        (self.tables[t].clone(), scope, alias)
    }

    /// A scalar subquery that yields at most one row, and its type: a global aggregate, a
    /// lookup by primary key, or the first value in the order of the selected column.
    fn scalar_sub(&mut self, outer: &[SCol]) -> (String, Ty) {
        self.sub_depth += 1;
        let (table, inner, alias) = self.sub_table();
        let name = &table.name;
        let out = match self.n(0, 9) {
            0..=6 => {
                let nums: Vec<SCol> = inner.iter().filter(|c| c.ty == Ty::Int || c.ty == Ty::Real).cloned().collect();
                let (agg, ty) = match self.n(0, 6) {
                    0 | 1 => ("COUNT(*)".to_string(), Ty::Int),
                    2 => (format!("COUNT({})", self.pick(&inner).sql), Ty::Int),
                    3 => {
                        let c = self.pick(&nums);
                        (format!("SUM({})", c.sql), c.ty)
                    }
                    4 => (format!("AVG({})", self.pick(&nums).sql), Ty::Real),
                    _ => {
                        let c = self.pick(&inner);
                        (format!("{}({})", if self.p(0.5) { "MIN" } else { "MAX" }, c.sql), c.ty)
                    }
                };
                let w = self.sub_where(&inner, outer, 0.75);
                (format!("(SELECT {agg} FROM {name} AS {alias}{w})"), ty)
            }
            7 | 8 if table.pk => {
                let c = self.pick(&inner[1..]);
                let key = self.expr(Ty::Int, outer, 1);
                (format!("(SELECT {} FROM {name} AS {alias} WHERE {alias}.id = {key})", c.sql), c.ty)
            }
            _ => {
                let c = self.pick(&inner);
                let w = self.sub_where(&inner, outer, 0.75);
                let dir = self.dir();
                (format!("(SELECT {0} FROM {name} AS {alias}{w} ORDER BY {0}{dir} LIMIT 1)", c.sql), c.ty)
            }
        };
        self.sub_depth -= 1;
        out
    }

    /// IN / NOT IN / EXISTS / NOT EXISTS / scalar-comparison subquery predicates.
    fn sub_pred(&mut self, outer: &[SCol]) -> String {
        self.sub_depth += 1;
        let out = match self.n(0, 11) {
            0..=4 => {
                let (table, inner, alias) = self.sub_table();
                let mut t = self.cmp_type(outer);
                if !inner.iter().any(|c| c.ty == t) {
                    t = Ty::Int;
                }
                let lhs = self.expr(t, outer, 1);
                let col = self.pick(&Self::cols_of(&inner, t)).sql;
                let not = if self.p(0.4) { "NOT " } else { "" };
                if self.p(0.15) {
                    // A set operation of two uncorrelated selects.
                    let (table2, inner2, alias2) = self.sub_table();
                    let col2 = match Self::cols_of(&inner2, t) {
                        c if c.is_empty() => self.lit(t),
                        c => self.pick(&c).sql,
                    };
                    let w1 = if self.p(0.5) { format!(" WHERE {}", self.pred(&inner, 1, None)) } else { String::new() };
                    let w2 =
                        if self.p(0.5) { format!(" WHERE {}", self.pred(&inner2, 1, None)) } else { String::new() };
                    let op = self.pick(&["UNION", "UNION ALL", "EXCEPT", "INTERSECT"]);
                    format!(
                        "({lhs} {not}IN (SELECT {col} FROM {} AS {alias}{w1} {op} SELECT {col2} FROM {} AS {alias2}{w2}))",
                        table.name, table2.name
                    )
                } else {
                    let w = self.sub_where(&inner, outer, 0.35);
                    // A top-k subquery: ordered by the selected column, so ties are equal values.
                    let limit = if self.p(0.15) {
                        let n = self.n(1, 3);
                        format!(" ORDER BY {col}{} LIMIT {n}", self.dir())
                    } else {
                        String::new()
                    };
                    format!("({lhs} {not}IN (SELECT {col} FROM {} AS {alias}{w}{limit}))", table.name)
                }
            }
            5..=7 => {
                let (table, inner, alias) = self.sub_table();
                let w = self.sub_where(&inner, outer, 0.85);
                let not = if self.p(0.4) { "NOT " } else { "" };
                format!("{not}EXISTS (SELECT 1 FROM {} AS {alias}{w})", table.name)
            }
            _ => {
                let (sub, ty) = self.scalar_sub(outer);
                let op = self.cmp_op();
                let rhs = if sub.starts_with("(SELECT COUNT") {
                    self.n(0, 3).to_string()
                } else if self.p(0.5) || !outer.iter().any(|c| c.ty == ty) {
                    self.lit(ty)
                } else {
                    self.expr(ty, outer, 0)
                };
                format!("{sub} {op} {rhs}")
            }
        };
        self.sub_depth -= 1;
        out
    }

    // ---- queries ----

    /// A FROM clause of 1..=max items (base tables, a table again under an alias, derived
    /// tables) joined by equalities: INNER, LEFT, RIGHT or FULL joins, or a final comma join
    /// whose equality is returned (third element) for the WHERE clause.
    fn from(&mut self, max: usize) -> (String, Vec<SCol>, Vec<String>) {
        let want = match self.n(0, 19) {
            0..=9 => 1,
            10..=16 => 2,
            _ => 3,
        }
        .min(max);
        let mut used = Vec::new();
        let (mut sql, mut scope) = self.table_item(&mut used);
        let mut conds = Vec::new();
        for i in 1..want {
            let (item, mut right) = self.table_item(&mut used);
            let mut cond = self.join_eq(&scope, &right);
            if self.p(0.25) {
                let extra = if self.p(0.5) {
                    self.pred(&right, 0, None)
                } else {
                    let all: Vec<SCol> = scope.iter().chain(&right).cloned().collect();
                    self.pred(&all, 0, None)
                };
                cond = format!("{cond} AND {extra}");
            }
            let kind = self.n(0, 99);
            if kind >= 94 && i == want - 1 {
                sql += &format!(", {item}");
                conds.push(cond);
            } else {
                let kind = match kind {
                    0..=54 => "",
                    55..=79 => "LEFT ",
                    80..=87 => "RIGHT ",
                    _ => "FULL ",
                };
                let base = |x: &str| x.len() == 2 && x.starts_with('t');
                if i == 1 && kind.is_empty() && base(&sql) && base(&item) && self.p(0.2) {
                    sql += &format!(" JOIN {item} USING (a)");
                    scope.extend(right);
                    continue;
                }
                if kind == "LEFT " || kind == "FULL " {
                    right.iter_mut().for_each(|c| c.nullable = true);
                }
                if kind == "RIGHT " || kind == "FULL " {
                    scope.iter_mut().for_each(|c| c.nullable = true);
                }
                sql += &format!(" {kind}JOIN {item} ON {cond}");
            }
            scope.extend(right);
        }
        (sql, scope, conds)
    }

    /// One FROM item: a base table (under an alias when it is already in this FROM) or,
    /// sometimes, a derived table.
    fn table_item(&mut self, used: &mut Vec<usize>) -> (String, Vec<SCol>) {
        if self.p(0.1) {
            return self.derived();
        }
        let nt = self.tables.len();
        let unused: Vec<usize> = (0..nt).filter(|i| !used.contains(i)).collect();
        let t = if unused.is_empty() || self.p(0.1) { self.n(0, nt - 1) } else { self.pick(&unused) };
        let table = self.tables[t].clone();
        let again = used.contains(&t);
        used.push(t);
        if again {
            self.next_alias += 1;
            let a = format!("s{}", self.next_alias);
            (format!("{} AS {a}", table.name), table.scope(Some(&a)))
        } else {
            (table.name.clone(), table.scope(Some(&table.name)))
        }
    }

    /// A derived table over one base table: a (DISTINCT, filtered, top-k) projection or a
    /// GROUP BY aggregate. Its first column is always INTEGER, so it can be joined.
    fn derived(&mut self) -> (String, Vec<SCol>) {
        let j = self.n(0, self.tables.len() - 1);
        let table = self.tables[j].clone();
        let inner = table.scope(Some(&table.name));
        self.next_alias += 1;
        let alias = format!("v{}", self.next_alias);
        let ints = Self::cols_of(&inner, Ty::Int);
        let key = self.pick(&ints);
        let mut cols: Vec<(String, Ty, bool)> = vec![(key.sql.clone(), Ty::Int, key.nullable)];
        let filter = |g: &mut Gen| {
            if g.p(0.5) {
                format!(" WHERE {}", g.pred(&inner, 1, None))
            } else {
                String::new()
            }
        };
        let sql = if self.p(0.1) {
            // A global aggregate: exactly one row.
            cols[0] = ("COUNT(*)".into(), Ty::Int, false);
            cols.push((format!("MAX({})", key.sql), Ty::Int, true));
            format!("SELECT COUNT(*) AS k0, MAX({}) AS k1 FROM {}{}", key.sql, table.name, filter(self))
        } else if self.p(0.1) {
            // A set operation of two single-column selects.
            let j2 = self.n(0, self.tables.len() - 1);
            let other = self.tables[j2].clone();
            let oscope = other.scope(Some(&other.name));
            let c2 = self.pick(&Self::cols_of(&oscope, Ty::Int));
            cols[0].2 = key.nullable || c2.nullable;
            let op = self.pick(&["UNION", "UNION ALL", "EXCEPT", "INTERSECT"]);
            format!(
                "SELECT {} AS k0 FROM {}{} {op} SELECT {} FROM {}",
                key.sql,
                table.name,
                filter(self),
                c2.sql,
                other.name
            )
        } else if self.p(0.5) {
            for _ in 0..self.n(0, 2) {
                if self.p(0.75) {
                    let c = self.pick(&inner);
                    cols.push((c.sql, c.ty, c.nullable));
                } else {
                    let ty = self.cmp_type(&inner);
                    cols.push((self.expr(ty, &inner, 1), ty, true));
                }
            }
            let list: Vec<String> = cols.iter().enumerate().map(|(i, c)| format!("{} AS k{i}", c.0)).collect();
            let distinct = if self.p(0.3) { "DISTINCT " } else { "" };
            let mut q = format!("SELECT {distinct}{} FROM {}{}", list.join(", "), table.name, filter(self));
            if self.p(0.2) {
                // Top-k ordered by every column: ties are identical rows.
                let mut order: Vec<String> = Vec::new();
                for i in 1..=cols.len() {
                    order.push(format!("{i}{}", self.dir()));
                }
                order.shuffle(&mut self.rng);
                q += &format!(" ORDER BY {} LIMIT {}", order.join(", "), self.n(1, 4));
            }
            q
        } else {
            for _ in 0..self.n(1, 2) {
                let c = self.pick(&inner);
                cols.push(match self.n(0, 3) {
                    0 => ("COUNT(*)".into(), Ty::Int, false),
                    1 => (format!("COUNT({})", c.sql), Ty::Int, false),
                    2 => (format!("SUM({})", self.pick(&ints).sql), Ty::Int, true),
                    _ => (format!("{}({})", if self.p(0.5) { "MIN" } else { "MAX" }, c.sql), c.ty, true),
                });
            }
            let list: Vec<String> = cols.iter().enumerate().map(|(i, c)| format!("{} AS k{i}", c.0)).collect();
            let having = if self.p(0.2) { " HAVING COUNT(*) > 1" } else { "" };
            format!("SELECT {} FROM {}{} GROUP BY {}{having}", list.join(", "), table.name, filter(self), key.sql)
        };
        let scope = cols
            .into_iter()
            .enumerate()
            .map(|(i, (_, ty, nullable))| SCol { sql: format!("{alias}.k{i}"), ty, nullable })
            .collect();
        (format!("({sql}) AS {alias}"), scope)
    }

    /// WHERE from the FROM clause's comma-join conditions and an optional predicate.
    fn where_clause(conds: Vec<String>, pred: Option<String>) -> String {
        let parts: Vec<String> = conds.into_iter().chain(pred.map(|p| format!("({p})"))).collect();
        if parts.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", parts.join(" AND "))
        }
    }

    fn join_eq(&mut self, left: &[SCol], right: &[SCol]) -> String {
        let mut pairs = Vec::new();
        let mut mixed = Vec::new();
        for l in left {
            for r in right {
                if l.ty == r.ty {
                    pairs.push((l.sql.clone(), r.sql.clone()));
                } else if l.ty != Ty::Text && r.ty != Ty::Text {
                    mixed.push((l.sql.clone(), r.sql.clone()));
                }
            }
        }
        let mut eqs = Vec::new();
        for _ in 0..(if self.p(0.12) { 2 } else { 1 }) {
            let (l, r) = if !mixed.is_empty() && self.p(0.08) { self.pick(&mixed) } else { self.pick(&pairs) };
            eqs.push(if self.p(0.5) { format!("{l} = {r}") } else { format!("{r} = {l}") });
        }
        eqs.join(" AND ")
    }

    /// ORDER BY over all `items` (optionally after a hidden key from `hidden`), mostly with
    /// LIMIT / OFFSET. Ties can then only be between identical rows.
    fn order_limit(&mut self, items: &[Item], hidden: Option<&[SCol]>, ordinals_only: bool) -> String {
        let mut terms = Vec::new();
        if let Some(scope) = hidden {
            if self.p(0.3) {
                let c = self.pick(scope).sql;
                terms.push(format!("{c}{}", self.dir()));
            }
        }
        let mut idx: Vec<usize> = (0..items.len()).collect();
        idx.shuffle(&mut self.rng);
        for i in idx {
            let t = if !ordinals_only && items[i].by_expr && self.p(0.5) {
                items[i].sql.clone()
            } else {
                (i + 1).to_string()
            };
            let nulls = match self.n(0, 19) {
                0 => " NULLS FIRST",
                1 => " NULLS LAST",
                _ => "",
            };
            terms.push(format!("{t}{}{nulls}", self.dir()));
        }
        let mut s = format!(" ORDER BY {}", terms.join(", "));
        if self.p(0.85) {
            s += &format!(" LIMIT {}", self.n(0, 6));
            if self.p(0.4) {
                s += &format!(" OFFSET {}", self.n(1, 3));
            }
        }
        s
    }

    fn query(&mut self) -> String {
        match self.n(0, 99) {
            0..=39 => self.plain_select(),
            40..=64 => self.group_select(),
            65..=74 => self.global_agg(),
            _ => self.set_op(),
        }
    }

    fn plain_select(&mut self) -> String {
        let (from, scope, conds) = self.from(3);
        let distinct = self.p(0.2);
        let mut items = Vec::new();
        for _ in 0..self.n(1, 4) {
            let sql = match self.n(0, 99) {
                0..=64 => self.pick(&scope).sql,
                65..=84 => {
                    let t = self.cmp_type(&scope);
                    self.expr(t, &scope, 2)
                }
                85..=91 => format!("({})", self.pred(&scope, 1, None)),
                _ => self.scalar_sub(&scope).0,
            };
            items.push(Item::new(sql, &scope));
        }
        let mut sql = format!(
            "SELECT {}{} FROM {from}",
            if distinct { "DISTINCT " } else { "" },
            items.iter().map(|i| i.sql.as_str()).collect::<Vec<_>>().join(", ")
        );
        let pred = if self.p(0.8) { Some(self.pred(&scope, 2, Some(&scope))) } else { None };
        sql += &Self::where_clause(conds, pred);
        if self.p(0.35) {
            let hidden = if distinct { None } else { Some(scope.as_slice()) };
            sql += &self.order_limit(&items, hidden, false);
        }
        sql
    }

    /// An aggregate call (or simple arithmetic over aggregates) and its type.
    fn agg(&mut self, scope: &[SCol]) -> (String, Ty) {
        let nums: Vec<SCol> = scope.iter().filter(|c| matches!(c.ty, Ty::Int | Ty::Real)).cloned().collect();
        // Arguments of SUM / AVG.
        let sum_arg = |g: &mut Gen| -> (String, Ty) {
            if g.p(0.8) {
                let c = g.pick(&nums);
                (c.sql, c.ty)
            } else {
                let t = if g.p(0.6) { Ty::Int } else { Ty::Real };
                (g.expr(t, scope, 1), t)
            }
        };
        match self.n(0, 11) {
            0 | 1 => ("COUNT(*)".into(), Ty::Int),
            2 => (format!("COUNT({})", self.pick(scope).sql), Ty::Int),
            3 => (format!("COUNT(DISTINCT {})", self.pick(scope).sql), Ty::Int),
            4 | 5 => {
                let (a, t) = sum_arg(self);
                (format!("SUM({a})"), t)
            }
            6 => {
                let (a, _) = sum_arg(self);
                (format!("AVG({a})"), Ty::Real)
            }
            7..=9 => {
                let c = self.pick(scope);
                (format!("{}({})", if self.p(0.5) { "MIN" } else { "MAX" }, c.sql), c.ty)
            }
            10 => {
                let c = self.pick(&nums);
                (format!("SUM(DISTINCT {})", c.sql), c.ty)
            }
            _ => {
                let c = self.pick(&nums);
                (format!("(MAX({0}) - MIN({0}) + COUNT(*))", c.sql), c.ty)
            }
        }
    }

    /// GROUP BY keys: mostly columns, sometimes simple expressions over a column.
    fn group_keys(&mut self, scope: &[SCol]) -> Vec<SCol> {
        let mut keys: Vec<SCol> = Vec::new();
        for _ in 0..self.n(1, 2) {
            let c = self.pick(scope);
            let k = if self.p(0.2) {
                match c.ty {
                    Ty::Int if self.p(0.3) => {
                        SCol { sql: format!("({} > {})", c.sql, self.n(0, 4)), ty: Ty::Bool, ..c }
                    }
                    Ty::Int => SCol { sql: format!("({} % {})", c.sql, self.n(2, 3)), ..c },
                    Ty::Real => SCol { sql: format!("({} * 2)", c.sql), ..c },
                    Ty::Text => SCol { sql: format!("UPPER({})", c.sql), ..c },
                    Ty::Bool => c,
                }
            } else {
                c
            };
            if !keys.iter().any(|x| x.sql == k.sql) {
                keys.push(k);
            }
        }
        keys
    }

    fn having(&mut self, scope: &[SCol], keys: &[SCol], depth: u32) -> String {
        let r = self.n(0, 99);
        if depth > 0 && r < 20 {
            let op = if self.p(0.5) { "AND" } else { "OR" };
            return format!("({} {op} {})", self.having(scope, keys, depth - 1), self.having(scope, keys, depth - 1));
        }
        if r < 70 || keys.is_empty() {
            let (a, t) = self.agg(scope);
            let rhs = if a == "COUNT(*)" || a.starts_with("COUNT(") { self.n(0, 3).to_string() } else { self.lit(t) };
            let op = self.cmp_op();
            return format!("{a} {op} {rhs}");
        }
        if r < 80 {
            return self.pred(keys, 0, None);
        }
        if r < 88 {
            // A subquery correlated with the group keys, or compared with an aggregate.
            if self.p(0.5) {
                return self.sub_pred(keys);
            }
            let (sub, ty) = self.scalar_sub(keys);
            let (a, at) = self.agg(scope);
            let numeric = |t: Ty| matches!(t, Ty::Int | Ty::Real);
            if at == ty || (numeric(at) && numeric(ty)) {
                return format!("{a} {} {sub}", self.cmp_op());
            }
            return format!("{sub} IS NOT NULL");
        }
        let c = self.pick(scope);
        format!("MIN({0}) {1} MAX({0})", c.sql, self.pick(&["<", "=", "<>"]))
    }

    fn group_select(&mut self) -> String {
        let (from, scope, conds) = self.from(3);
        let keys = self.group_keys(&scope);
        let mut items: Vec<Item> = keys.iter().map(|k| Item::new(k.sql.clone(), &scope)).collect();
        if items.len() > 1 && self.p(0.1) {
            items.pop(); // a group key that is not selected
        }
        if self.p(0.1) && keys.iter().all(|k| k.ty != Ty::Bool) {
            // An expression over a group key.
            let k = self.pick(&keys);
            items.push(Item::new(
                match k.ty {
                    Ty::Int => format!("({} + 1)", k.sql),
                    Ty::Real => format!("({} * 2)", k.sql),
                    _ => format!("LOWER({})", k.sql),
                },
                &scope,
            ));
        }
        for _ in 0..self.n(1, 3) {
            let (a, _) = self.agg(&scope);
            items.push(Item::new(a, &scope));
        }
        if self.p(0.08) {
            // A scalar subquery correlated with the group keys.
            let (sub, _) = self.scalar_sub(&keys);
            items.push(Item::new(sub, &scope));
        }
        items.shuffle(&mut self.rng);
        let mut sql = format!(
            "SELECT {}{} FROM {from}",
            if self.p(0.05) { "DISTINCT " } else { "" },
            items.iter().map(|i| i.sql.as_str()).collect::<Vec<_>>().join(", ")
        );
        let pred = if self.p(0.5) { Some(self.pred(&scope, 2, Some(&scope))) } else { None };
        sql += &Self::where_clause(conds, pred);
        sql += &format!(" GROUP BY {}", keys.iter().map(|k| k.sql.as_str()).collect::<Vec<_>>().join(", "));
        if self.p(0.35) {
            sql += &format!(" HAVING {}", self.having(&scope, &keys, 1));
        }
        if self.p(0.3) {
            sql += &self.order_limit(&items, None, false);
        }
        sql
    }

    fn global_agg(&mut self) -> String {
        let (from, scope, conds) = self.from(3);
        let items: Vec<String> = (0..self.n(1, 3)).map(|_| self.agg(&scope).0).collect();
        let mut sql = format!("SELECT {} FROM {from}", items.join(", "));
        let pred = if self.p(0.6) { Some(self.pred(&scope, 2, Some(&scope))) } else { None };
        sql += &Self::where_clause(conds, pred);
        if self.p(0.1) {
            sql += &format!(" HAVING {}", self.having(&scope, &[], 0));
        }
        sql
    }

    /// Select items over `scope` with the same types as `cols`, for another set-operation
    /// operand: mostly a column of the type, else an expression of it.
    fn matching_items(&mut self, cols: &[SCol], scope: &[SCol]) -> Vec<String> {
        cols.iter()
            .map(|c| {
                let same = Self::cols_of(scope, c.ty);
                if !same.is_empty() && self.p(0.85) {
                    self.pick(&same).sql
                } else {
                    self.expr(c.ty, scope, 1)
                }
            })
            .collect()
    }

    fn set_op(&mut self) -> String {
        let (from1, scope1, conds1) = self.from(2);
        let k = self.n(1, 3);
        let cols1: Vec<SCol> = (0..k).map(|_| self.pick(&scope1)).collect();
        let (from2, scope2, conds2) = self.from(2);
        let cols2 = self.matching_items(&cols1, &scope2);
        let operand = |g: &mut Gen, items: &[String], from: &str, scope: &[SCol], conds: Vec<String>| {
            let s = format!("SELECT {}{} FROM {from}", if g.p(0.15) { "DISTINCT " } else { "" }, items.join(", "));
            let pred = if g.p(0.6) {
                let outer = if g.p(0.3) { Some(scope) } else { None };
                Some(g.pred(scope, 1, outer))
            } else {
                None
            };
            s + &Self::where_clause(conds, pred)
        };
        let items1: Vec<String> = cols1.iter().map(|c| c.sql.clone()).collect();
        let a = operand(self, &items1, &from1, &scope1, conds1);
        let b = operand(self, &cols2, &from2, &scope2, conds2);
        let op = self.pick(&["UNION", "UNION ALL", "EXCEPT", "INTERSECT"]);
        let mut sql = format!("{a} {op} {b}");
        if self.p(0.15) {
            // A third operand with the same operator (SQLite and the standard differ on the
            // precedence of mixed operators).
            let (from3, scope3, conds3) = self.from(1);
            let cols3 = self.matching_items(&cols1, &scope3);
            let c = operand(self, &cols3, &from3, &scope3, conds3);
            sql = format!("{sql} {op} {c}");
        }
        if self.p(0.3) {
            let items: Vec<Item> = items1.into_iter().map(|i| Item::new(i, &scope1)).collect();
            sql += &self.order_limit(&items, None, true);
        }
        sql
    }
}

// ---------------------------------------------------------------------------------------------
// Normalised values and result comparison.

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum NV {
    Null,
    /// A number times 10^6, rounded.
    Num(i128),
    Text(String),
    Blob(Vec<u8>),
}

impl fmt::Display for NV {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NV::Null => f.write_str("NULL"),
            NV::Num(n) if n % 1_000_000 == 0 => write!(f, "{}", n / 1_000_000),
            NV::Num(n) => write!(f, "{}", *n as f64 / 1e6),
            NV::Text(s) => write!(f, "'{s}'"),
            NV::Blob(b) => write!(f, "x'{}'", b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
        }
    }
}

fn nv_real(x: f64) -> NV {
    if x.is_nan() {
        return NV::Null; // SQLite stores NaN as NULL
    }
    if x.fract() == 0.0 && x.abs() < 1e15 {
        return NV::Num(x as i128 * 1_000_000);
    }
    NV::Num((x * 1e6).round() as i128)
}

fn nv_sluice(v: &Value) -> NV {
    match v {
        Value::Null => NV::Null,
        Value::Bool(b) => NV::Num(i128::from(*b) * 1_000_000),
        Value::Int(i) => NV::Num(i128::from(*i) * 1_000_000),
        Value::UInt(u) => NV::Num(i128::from(*u) * 1_000_000),
        Value::Real(r) => nv_real(*r),
        Value::Text(s) => NV::Text(s.to_string()),
        Value::Bytes(b) => NV::Blob(b.to_vec()),
    }
}

fn nv_sqlite(v: ValueRef<'_>) -> NV {
    match v {
        ValueRef::Null => NV::Null,
        ValueRef::Integer(i) => NV::Num(i128::from(i) * 1_000_000),
        ValueRef::Real(r) => nv_real(r),
        ValueRef::Text(t) => NV::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => NV::Blob(b.to_vec()),
    }
}

type Bag = BTreeMap<Vec<NV>, i64>;

fn show_row(r: &[NV]) -> String {
    format!("({})", r.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", "))
}

/// SQLite's answer: its width and its rows in order.
fn sqlite_rows(conn: &Connection, sql: &str) -> Result<(usize, Vec<Vec<NV>>), String> {
    let mut stmt = conn.prepare_cached(sql).map_err(|e| format!("SQLite rejected the query: {e}"))?;
    let n = stmt.column_count();
    let mut rows = stmt.query([]).map_err(|e| format!("SQLite failed: {e}"))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(|e| format!("SQLite failed: {e}"))? {
        out.push((0..n).map(|i| nv_sqlite(r.get_ref(i).expect("column in range"))).collect());
    }
    Ok((n, out))
}

fn sqlite_query(conn: &Connection, sql: &str) -> Result<(usize, Bag), String> {
    let (n, rows) = sqlite_rows(conn, sql)?;
    let mut bag = Bag::new();
    for row in rows {
        *bag.entry(row).or_insert(0) += 1;
    }
    Ok((n, bag))
}

/// Whether the query itself (not just a subquery) has an ORDER BY.
fn top_level_order(sql: &str) -> bool {
    let mut depth = 0i32;
    let b = sql.as_bytes();
    for i in 0..b.len() {
        match b[i] {
            b'(' => depth += 1,
            b')' => depth -= 1,
            b' ' if depth == 0 && sql[i..].starts_with(" ORDER BY ") => return true,
            _ => {}
        }
    }
    false
}

/// Differences between Sluice's and SQLite's bags, one line per row whose counts differ.
fn diff(got: &Bag, want: &Bag) -> Vec<String> {
    let mut out = Vec::new();
    for (r, &g) in got {
        let w = want.get(r).copied().unwrap_or(0);
        if g != w {
            out.push(format!("  {}  sluice x{g}, sqlite x{w}", show_row(r)));
        }
    }
    for (r, &w) in want {
        if !got.contains_key(r) {
            out.push(format!("  {}  sluice x0, sqlite x{w}", show_row(r)));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// One case.

struct Sub {
    sql: String,
    id: SubscriptionId,
    query: QueryId,
    cache: HashMap<Row, i64>,
    active: bool,
    /// Length of the script when it subscribed (where the query goes in a repro script).
    at: usize,
}

#[derive(Default)]
struct Stats {
    cases: usize,
    generated: usize,
    refused: usize,
    refusals: BTreeMap<String, usize>,
    subscribed: usize,
    txs: usize,
    txs_rejected_by_both: usize,
    checks: usize,
    order_checks: usize,
    deltas: usize,
}

/// Everything a failure message needs.
struct Ctx {
    seed: u64,
    /// DDL and committed DML so far: a reproducing script.
    script: Vec<String>,
    tx: String,
}

impl Ctx {
    fn fail(&self, what: String) -> String {
        format!(
            "seed {} (rerun with SLUICE_DIFF_SEED={}), {}\n{what}\n-- script so far:\n{};",
            self.seed,
            self.seed,
            self.tx,
            self.script.join(";\n")
        )
    }

    /// A failure of one subscription: the script shows the query where it was subscribed.
    fn fail_sub(&self, sub: &Sub, what: String) -> String {
        let mut script = self.script.clone();
        script.insert(sub.at, format!("{} -- the failing subscription", sub.sql));
        format!(
            "seed {} (rerun with SLUICE_DIFF_SEED={}), {}\nquery: {}\n{what}\n-- script (replay it with \
             SLUICE_DIFF_REPLAY=<file> cargo test --test differential replay -- --ignored --nocapture):\n{};",
            self.seed,
            self.seed,
            self.tx,
            sub.sql,
            script.join(";\n")
        )
    }
}

fn bag_of<'a>(rows: impl Iterator<Item = (&'a Row, i64)>) -> Bag {
    let mut bag = Bag::new();
    for (row, n) in rows {
        if n != 0 {
            *bag.entry(row.values().iter().map(nv_sluice).collect()).or_insert(0) += n;
        }
    }
    bag
}

/// Evaluates `sql` in a new Sluice database loaded with the current contents of every table
/// (identical plans share dataflows, so the live database cannot evaluate from scratch).
fn fresh_eval(db: &Database, conn: &Connection, sql: &str) -> anyhow::Result<Vec<Row>> {
    let mut fresh = Database::new(1);
    let schemas: Vec<sluice_planner::TableSchema> = db.catalog().tables().cloned().collect();
    for schema in schemas {
        let cols: Vec<String> = schema
            .columns
            .iter()
            .map(|c| {
                let ty = match c.ty {
                    sluice_planner::DataType::Int => "INTEGER",
                    sluice_planner::DataType::Real => "REAL",
                    _ => "TEXT",
                };
                let pk = schema.primary_key.len() == 1 && schema.columns[schema.primary_key[0]].name == c.name;
                format!("{} {ty}{}", c.name, if pk { " PRIMARY KEY" } else { "" })
            })
            .collect();
        fresh.execute(&format!("CREATE TABLE {} ({})", schema.name, cols.join(", ")))?;
        let rows = literals(conn, &schema.name);
        if !rows.is_empty() {
            let values: Vec<String> = rows.iter().map(|r| format!("({})", r.join(", "))).collect();
            fresh.execute(&format!("INSERT INTO {} VALUES {}", schema.name, values.join(", ")))?;
        }
    }
    let plan = fresh.plan(sql)?;
    fresh.evaluate(&plan)
}

/// Compares a subscription's cache with SQLite's answer; on a difference, also says whether a
/// fresh evaluation by Sluice is right (a maintenance bug) or wrong too (a planning bug).
fn check(sub: &Sub, db: &mut Database, conn: &Connection, ctx: &Ctx, st: &mut Stats) -> Result<(), String> {
    st.checks += 1;
    let (ncols, want) = sqlite_query(conn, &sub.sql).map_err(|e| ctx.fail_sub(sub, e))?;
    if let Some(row) = sub.cache.keys().find(|r| r.len() != ncols) {
        return Err(ctx.fail_sub(sub, format!("Sluice row {row:?} has {} columns, SQLite's have {ncols}", row.len())));
    }
    let got = bag_of(sub.cache.iter().map(|(r, &n)| (r, n)));
    if got != want {
        let fresh = match fresh_eval(db, conn, &sub.sql) {
            Ok(rows) => {
                let fresh = bag_of(rows.iter().map(|r| (r, 1)));
                if fresh == want {
                    "a fresh evaluation by Sluice agrees with SQLite (incremental maintenance bug)".to_string()
                } else if fresh == got {
                    "a fresh evaluation by Sluice gives the same wrong answer".to_string()
                } else {
                    format!("a fresh evaluation by Sluice differs from both:\n{}", diff(&fresh, &want).join("\n"))
                }
            }
            Err(e) => format!("a fresh evaluation by Sluice fails: {e}"),
        };
        return Err(ctx.fail_sub(
            sub,
            format!("subscription cache differs from SQLite:\n{}\n{fresh}", diff(&got, &want).join("\n")),
        ));
    }
    Ok(())
}

/// Subscribes; the new subscription's initial rows must come in SQLite's order when the
/// query has an ORDER BY (which the generator always makes total up to identical rows).
fn subscribe(db: &mut Database, conn: &Connection, sql: &str, ctx: &Ctx, st: &mut Stats) -> Result<Sub, String> {
    let plan = db.plan(sql).map_err(|e| ctx.fail(format!("query: {sql}\nre-planning failed: {e}")))?;
    let s = db.subscribe(&plan).map_err(|e| ctx.fail(format!("query: {sql}\nsubscribe failed: {e}")))?;
    st.subscribed += 1;
    let mut cache = HashMap::new();
    for r in &s.initial {
        *cache.entry(r.clone()).or_insert(0) += 1;
    }
    let sub = Sub { sql: sql.to_string(), id: s.id, query: s.query, cache, active: true, at: ctx.script.len() };
    if top_level_order(sql) {
        st.order_checks += 1;
        let got: Vec<Vec<NV>> = s.initial.iter().map(|r| r.values().iter().map(nv_sluice).collect()).collect();
        if let Ok((_, want)) = sqlite_rows(conn, sql) {
            // Equal as bags but in another order: the bag check reports other differences.
            let mut a = got.clone();
            let mut b = want.clone();
            a.sort();
            b.sort();
            if a == b && got != want {
                let show = |rows: &[Vec<NV>]| rows.iter().map(|r| show_row(r)).collect::<Vec<_>>().join(" ");
                return Err(ctx.fail_sub(
                    &sub,
                    format!("initial rows in the wrong order:\n  sluice: {}\n  sqlite: {}", show(&got), show(&want)),
                ));
            }
        }
    }
    Ok(sub)
}

/// One more subscriber to the SQL of `subs[i]`, which must share its dataflow; checked
/// against SQLite like any subscription.
fn subscribe_again(
    db: &mut Database,
    conn: &Connection,
    subs: &mut Vec<Sub>,
    i: usize,
    ctx: &Ctx,
    st: &mut Stats,
) -> Result<(), String> {
    let sql = subs[i].sql.clone();
    let s = subscribe(db, conn, &sql, ctx, st)?;
    if s.query != subs[i].query {
        return Err(ctx.fail(format!("query: {sql}\nidentical SQL got a new dataflow")));
    }
    check(&s, db, conn, ctx, st)?;
    subs.push(s);
    Ok(())
}

fn apply_deltas(subs: &mut [Sub], deltas: &[QueryDelta], ctx: &Ctx, st: &mut Stats) -> Result<(), String> {
    for d in deltas {
        st.deltas += 1;
        let Some(first) = subs.iter().find(|s| s.query == d.query) else { continue };
        if d.inserts.is_empty() && d.deletes.is_empty() {
            return Err(ctx.fail_sub(first, format!("an empty delta was sent: {d:?}")));
        }
        if let Some(r) = d.inserts.iter().find(|r| d.deletes.contains(r)) {
            return Err(ctx.fail_sub(first, format!("delta inserts and deletes the same row {r:?}: {d:?}")));
        }
        for s in subs.iter_mut().filter(|s| s.active && s.query == d.query) {
            for r in &d.deletes {
                match s.cache.get_mut(r) {
                    Some(n) if *n > 0 => {
                        *n -= 1;
                        if *n == 0 {
                            s.cache.remove(r);
                        }
                    }
                    _ => {
                        return Err(ctx.fail_sub(
                            s,
                            format!("delta deletes row {r:?}, which the subscription does not hold\ndelta: {d:?}"),
                        ))
                    }
                }
            }
            for r in &d.inserts {
                *s.cache.entry(r.clone()).or_insert(0) += 1;
            }
        }
    }
    Ok(())
}

/// Runs one DML statement in both databases; they must agree on success and row count.
fn exec_both(
    db: &mut Database,
    conn: &Connection,
    sql: &str,
    ctx: &mut Ctx,
    st: &mut Stats,
) -> Result<Vec<QueryDelta>, String> {
    let lite = conn.execute(sql, []);
    let ours = db.execute(sql);
    match (lite, ours) {
        (Ok(n), Ok(Outcome::Changed { rows, deltas })) => {
            if n != rows {
                return Err(ctx.fail(format!("SQLite changed {n} rows, Sluice {rows}")));
            }
            ctx.script.push(sql.to_string());
            Ok(deltas)
        }
        (Ok(_), Ok(other)) => Err(ctx.fail(format!("unexpected outcome {other:?}"))),
        (Ok(_), Err(e)) => Err(ctx.fail(format!("Sluice failed where SQLite succeeded: {e}"))),
        (Err(e), Ok(_)) => Err(ctx.fail(format!("SQLite failed ({e}) where Sluice succeeded"))),
        (Err(_), Err(_)) => {
            st.txs_rejected_by_both += 1;
            Ok(Vec::new())
        }
    }
}

fn table_ids(conn: &Connection, t: &TableDef) -> Vec<i64> {
    if !t.pk {
        return Vec::new();
    }
    let mut stmt = conn.prepare(&format!("SELECT id FROM {}", t.name)).expect("id query");
    stmt.query_map([], |r| r.get::<_, i64>(0)).expect("id query").map(|r| r.expect("id")).collect()
}

/// Existing rows of a bag table as SQL literals (for exact duplicates).
fn table_literals(conn: &Connection, t: &TableDef) -> Vec<Vec<String>> {
    if t.pk {
        return Vec::new();
    }
    literals(conn, &t.name)
}

/// A table's rows in SQLite as SQL literals.
fn literals(conn: &Connection, table: &str) -> Vec<Vec<String>> {
    let mut stmt = conn.prepare(&format!("SELECT * FROM {table}")).expect("row query");
    let n = stmt.column_count();
    let mut out = Vec::new();
    let mut rows = stmt.query([]).expect("row query");
    while let Some(r) = rows.next().expect("row") {
        out.push(
            (0..n)
                .map(|i| match r.get_ref(i).expect("col") {
                    ValueRef::Null => "NULL".to_string(),
                    ValueRef::Integer(x) => fmt_int(x),
                    ValueRef::Real(x) if x < 0.0 => format!("({x:?})"),
                    ValueRef::Real(x) => format!("{x:?}"),
                    ValueRef::Text(s) => format!("'{}'", String::from_utf8_lossy(s)),
                    ValueRef::Blob(_) => unreachable!(),
                })
                .collect(),
        );
    }
    out
}

fn run_case(seed: u64, st: &mut Stats, verbose: bool) -> Result<(), String> {
    let mut g = Gen::new(seed);
    g.gen_tables();
    let tables = g.tables.clone();
    let mut db = Database::new(workers());
    let conn = Connection::open_in_memory().expect("sqlite opens");
    conn.set_prepared_statement_cache_capacity(64);
    let mut ctx = Ctx { seed, script: Vec::new(), tx: "setup".into() };
    for t in &tables {
        let ddl = t.ddl();
        conn.execute_batch(&ddl).map_err(|e| ctx.fail(format!("SQLite DDL {ddl}: {e}")))?;
        db.execute(&ddl).map_err(|e| ctx.fail(format!("Sluice DDL {ddl}: {e}")))?;
        ctx.script.push(ddl);
    }
    // Some initial rows: a few, or (in a quarter of the cases) tens per table.
    let big = g.p(0.25);
    for (i, t) in tables.iter().enumerate() {
        for _ in 0..g.n(1, 3) {
            let nrows = if big { g.n(8, 20) } else { g.n(1, 3) };
            let sql = g.insert(i, &table_ids(&conn, t), &table_literals(&conn, t), nrows);
            ctx.tx = format!("initial data: {sql}");
            exec_both(&mut db, &conn, &sql, &mut ctx, st)?;
        }
    }

    // Generate and plan queries; those Sluice refuses are counted and skipped.
    let want = g.n(8, 15);
    let mut queries: Vec<String> = Vec::new();
    let mut attempts = 0;
    while queries.len() < want && attempts < want * 4 {
        attempts += 1;
        let sql = g.query();
        st.generated += 1;
        let lite = conn.prepare(&sql).map(|_| ());
        match (db.plan(&sql), lite) {
            (Ok(_), Ok(())) => {
                if verbose {
                    eprintln!("[seed {seed}] {sql}");
                }
                queries.push(sql);
            }
            (Ok(_), Err(e)) => {
                return Err(ctx.fail(format!("query: {sql}\nSluice accepts it but SQLite rejects it: {e}")));
            }
            (Err(e), lite) => {
                st.refused += 1;
                let mut key = e.to_string();
                if let Some(i) = key.find(" at line ") {
                    key.truncate(i); // group refusals by message, not position or names
                }
                key = key
                    .split(' ')
                    .map(|w| if w.chars().any(|c| c.is_ascii_digit()) { "_" } else { w })
                    .collect::<Vec<_>>()
                    .join(" ");
                if let Err(le) = lite {
                    key = format!("[SQLite also rejects: {le}] {key}");
                }
                if verbose {
                    eprintln!("[seed {seed}] REFUSED {sql}\n    {key}");
                }
                key.truncate(90);
                *st.refusals.entry(key).or_insert(0) += 1;
            }
        }
    }
    // Table mirrors, then two thirds of the queries now and the rest half way through.
    let mut subs: Vec<Sub> = Vec::new();
    for t in &tables {
        let s = subscribe(&mut db, &conn, &format!("SELECT * FROM {}", t.name), &ctx, st)?;
        check(&s, &mut db, &conn, &ctx, st)?;
        subs.push(s);
    }
    let early = (queries.len() * 2).div_ceil(3);
    for sql in &queries[..early] {
        ctx.tx = "initial subscription".into();
        let s = subscribe(&mut db, &conn, sql, &ctx, st)?;
        check(&s, &mut db, &conn, &ctx, st)?;
        subs.push(s);
    }

    // The query given a second subscriber at a quarter of the run.
    let mut shared: Option<usize> = None;
    for tx in 1..=TXS {
        if tx == TXS / 2 {
            for sql in &queries[early..] {
                ctx.tx = format!("late subscription before transaction {tx}");
                let s = subscribe(&mut db, &conn, sql, &ctx, st)?;
                check(&s, &mut db, &conn, &ctx, st)?;
                subs.push(s);
            }
        }
        if tx == 3 * TXS / 4 {
            // A third subscriber to the query shared half a run ago, if it still lives: its
            // initial rows are the result the engine has kept since the second subscriber.
            if let Some(i) = shared.filter(|&i| subs[i].active) {
                ctx.tx = format!("third subscriber before transaction {tx}");
                subscribe_again(&mut db, &conn, &mut subs, i, &ctx, st)?;
            }
        }
        if tx == TXS / 4 || tx == 3 * TXS / 4 {
            // A second subscriber to a live query (shares its dataflow), and an unsubscribe
            // followed by a fresh subscription to the same SQL.
            let live: Vec<usize> = (0..subs.len()).filter(|&i| subs[i].active).collect();
            let i = g.pick(&live);
            shared = Some(i);
            ctx.tx = format!("second subscriber before transaction {tx}");
            subscribe_again(&mut db, &conn, &mut subs, i, &ctx, st)?;
            let j = g.pick(&live);
            db.unsubscribe(subs[j].id).map_err(|e| ctx.fail(format!("unsubscribe: {e}")))?;
            subs[j].active = false;
            let sql = subs[j].sql.clone();
            ctx.tx = format!("re-subscription before transaction {tx}");
            let s = subscribe(&mut db, &conn, &sql, &ctx, st)?;
            check(&s, &mut db, &conn, &ctx, st)?;
            subs.push(s);
        }

        let t = g.n(0, tables.len() - 1);
        let sql = match g.n(0, 99) {
            0..=4 => g.insert_select(t, &table_ids(&conn, &tables[t])),
            5..=44 => {
                let nrows = g.n(1, 3);
                g.insert(t, &table_ids(&conn, &tables[t]), &table_literals(&conn, &tables[t]), nrows)
            }
            45..=74 => g.update(t),
            _ => g.delete(t),
        };
        ctx.tx = format!("transaction {tx}: {sql}");
        st.txs += 1;
        let deltas = exec_both(&mut db, &conn, &sql, &mut ctx, st)?;
        apply_deltas(&mut subs, &deltas, &ctx, st)?;
        for s in subs.iter().filter(|s| s.active) {
            check(s, &mut db, &conn, &ctx, st)?;
        }
    }
    st.cases += 1;
    Ok(())
}

/// Timely workers per database (`SLUICE_DIFF_WORKERS`, default 1).
fn workers() -> usize {
    std::env::var("SLUICE_DIFF_WORKERS").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(1)
}

fn seeds() -> Vec<u64> {
    if let Ok(s) = std::env::var("SLUICE_DIFF_SEED") {
        return vec![s.trim().parse().expect("SLUICE_DIFF_SEED must be an integer")];
    }
    let n = std::env::var("SLUICE_DIFF_CASES")
        .ok()
        .map(|s| s.trim().parse().expect("SLUICE_DIFF_CASES must be an integer"))
        .unwrap_or(DEFAULT_CASES);
    (1..=n).collect()
}

#[test]
fn subscriptions_match_sqlite() {
    let verbose = std::env::var("SLUICE_DIFF_VERBOSE").is_ok_and(|v| v != "0");
    let start = Instant::now();
    let mut st = Stats::default();
    let mut failures: Vec<(u64, String)> = Vec::new();
    for seed in seeds() {
        let r = catch_unwind(AssertUnwindSafe(|| run_case(seed, &mut st, verbose)));
        match r {
            Ok(Ok(())) => {}
            Ok(Err(msg)) => failures.push((seed, msg)),
            Err(p) => {
                let m = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push((seed, format!("seed {seed} (rerun with SLUICE_DIFF_SEED={seed}): panic: {m}")));
            }
        }
    }
    let refused_share = st.refused as f64 / st.generated.max(1) as f64;
    // Written to stderr directly so that it shows even when the test passes.
    let mut summary = format!(
        "differential: {} cases ok of {} in {:.1}s; {} queries generated, {} refused by Sluice ({:.1}%), \
         {} subscriptions; {} transactions ({} rejected by both); {} deltas; {} result checks \
         ({} of initial order)\n",
        st.cases,
        st.cases + failures.len(),
        start.elapsed().as_secs_f64(),
        st.generated,
        st.refused,
        100.0 * refused_share,
        st.subscribed,
        st.txs,
        st.txs_rejected_by_both,
        st.deltas,
        st.checks,
        st.order_checks,
    );
    for (msg, n) in &st.refusals {
        summary += &format!("  refused x{n}: {msg}\n");
    }
    let _ = std::io::stderr().write_all(summary.as_bytes());

    if !failures.is_empty() {
        // One line per failing case, then the first few in full.
        let brief: Vec<String> = failures
            .iter()
            .map(|(_, m)| {
                let mut lines = m.lines();
                let head = lines.next().unwrap_or_default();
                match lines.next() {
                    Some(q) if q.starts_with("query: ") => format!("  {head}\n      {q}"),
                    _ => format!("  {head}"),
                }
            })
            .collect();
        let shown: Vec<&str> = failures.iter().take(3).map(|(_, m)| m.as_str()).collect();
        panic!("{} failing case(s):\n{}\n\n{}", failures.len(), brief.join("\n"), shown.join("\n\n"));
    }
    assert!(
        refused_share <= MAX_REFUSED,
        "Sluice refused {:.1}% of generated queries (more than {:.0}%): the generator has drifted",
        100.0 * refused_share,
        100.0 * MAX_REFUSED
    );
}

/// Replays a failure script (as printed by a failing case, possibly hand-minimised): runs its
/// statements in both databases, subscribes each SELECT where it appears, and after every
/// statement reports each subscription whose cache differs from SQLite. A debugging aid:
/// `SLUICE_DIFF_REPLAY=<file> cargo test --test differential replay -- --ignored --nocapture`.
#[test]
#[ignore]
fn replay() {
    let path = std::env::var("SLUICE_DIFF_REPLAY").expect("set SLUICE_DIFF_REPLAY to a script file");
    let text = std::fs::read_to_string(&path).expect("script file is readable");
    let mut db = Database::new(workers());
    let conn = Connection::open_in_memory().expect("sqlite opens");
    let mut ctx = Ctx { seed: 0, script: Vec::new(), tx: String::new() };
    let mut st = Stats::default();
    let mut subs: Vec<Sub> = Vec::new();
    let mut bad = 0;
    for stmt in text.split(";\n") {
        let stmt = stmt.trim().trim_end_matches(';').trim();
        let stmt = stmt.split(" -- ").next().unwrap_or_default().trim();
        if stmt.is_empty() || stmt.starts_with("--") {
            continue;
        }
        ctx.tx = format!("after: {stmt}");
        let mut check_from = 0;
        if stmt.to_ascii_uppercase().starts_with("SELECT") {
            check_from = subs.len();
            match subscribe(&mut db, &conn, stmt, &ctx, &mut st) {
                Ok(s) => subs.push(s),
                Err(e) => println!("{e}"),
            }
        } else if stmt.to_ascii_uppercase().starts_with("CREATE") {
            conn.execute_batch(stmt).expect("SQLite DDL");
            db.execute(stmt).expect("Sluice DDL");
        } else {
            match exec_both(&mut db, &conn, stmt, &mut ctx, &mut st) {
                Ok(deltas) => {
                    if let Err(e) = apply_deltas(&mut subs, &deltas, &ctx, &mut st) {
                        println!("{e}");
                    }
                }
                Err(e) => println!("{e}"),
            }
        }
        for s in &subs[check_from..] {
            if let Err(e) = check(s, &mut db, &conn, &ctx, &mut st) {
                bad += 1;
                // Only the head of the message: the script is the input.
                println!("{}\n", e.split("\n-- script").next().unwrap_or_default());
            }
        }
    }
    println!("{} statements replayed, {bad} mismatching checks", ctx.script.len());
}
