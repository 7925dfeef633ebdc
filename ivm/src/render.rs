//! Rendering logical plans as differential dataflow over `Row` collections.
//!
//! Base tables come in as shared arrangements: per join key used by any query, a table's rows
//! arranged by that key — or, where the join side is filtered, by that key over the rows
//! passing the filter, so a selective query arranges and joins only its rows. Join sides
//! import them instead of building their own copies. A query reading a table's rows as a
//! collection gets an input of its own, loaded with the current rows (read from the caller's
//! `TableSource`) and then fed each change, so it costs nothing per transaction beyond those
//! changes.

use crate::aggregate::render_aggregate;
use crate::delta::{Diff, Offset};
use crate::layout::{arrange_by_key, arrange_by_self, RowValSpine};
use crate::source::TableSource;
use crate::topk::render_topk;
use differential_dataflow::input::InputSession;
use differential_dataflow::operators::arrange::{Arranged, TraceAgent};
use differential_dataflow::{AsCollection, VecCollection};
use sluice_planner::expr::{canonical_key, plain_columns, reads_in_place, truth};
use sluice_planner::{BinOp, Expr, IntColumn, JoinKey, JoinKind, Plan, Row, RowRef, SetOpKind, Value};
use std::collections::HashMap;
use timely::dataflow::operators::vec::ToStream;
use timely::dataflow::Scope;

/// A collection of rows in a query dataflow.
pub type Coll<'s> = VecCollection<'s, Offset, Row, Diff>;
/// A trace of rows arranged by a key row.
pub type KeyedTrace = TraceAgent<RowValSpine>;
type KeyedArranged<'s> = Arranged<'s, KeyedTrace>;

/// What a shared by-key arrangement holds: the table's rows passing `filter` (all of them
/// without one), arranged by the values of `cols` (canonical key form).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SharedKey {
    pub cols: Vec<usize>,
    pub filter: Option<Expr>,
}

/// A filter on rows (none admits every row), reading them in place or decoded, whichever its
/// column reads make cheaper. A conjunction of integer columns compared with integer
/// literals (`v < 500 AND g = 3`) is first tried on the columns' integers, making no values.
#[derive(Clone)]
pub struct Predicate {
    expr: Option<Expr>,
    in_place: bool,
    ints: Vec<IntCompare>,
}

/// `column op value` where the column holds an INTEGER and `value` is one.
#[derive(Clone, Copy, Debug)]
struct IntCompare {
    column: usize,
    op: BinOp,
    value: i64,
}

impl IntCompare {
    /// The comparison if `e` is an integer column against an integer literal, either way round.
    fn of(e: &Expr) -> Option<IntCompare> {
        let Expr::Binary(op, a, b) = e else { return None };
        let flipped = match op {
            BinOp::Lt => BinOp::Gt,
            BinOp::LtEq => BinOp::GtEq,
            BinOp::Gt => BinOp::Lt,
            BinOp::GtEq => BinOp::LtEq,
            BinOp::Eq | BinOp::NotEq => *op,
            _ => return None,
        };
        match (&**a, &**b) {
            (Expr::Column(column), Expr::Literal(Value::Int(value))) => {
                Some(IntCompare { column: *column, op: *op, value: *value })
            }
            (Expr::Literal(Value::Int(value)), Expr::Column(column)) => {
                Some(IntCompare { column: *column, op: flipped, value: *value })
            }
            _ => None,
        }
    }

    #[inline]
    fn holds(&self, x: i64) -> bool {
        match self.op {
            BinOp::Lt => x < self.value,
            BinOp::LtEq => x <= self.value,
            BinOp::Gt => x > self.value,
            BinOp::GtEq => x >= self.value,
            BinOp::Eq => x == self.value,
            _ => x != self.value,
        }
    }
}

impl Predicate {
    pub fn new(expr: Option<Expr>) -> Predicate {
        let in_place = reads_in_place(expr.iter());
        let conjuncts = expr.clone().map(Expr::conjuncts).unwrap_or_default();
        let ints = conjuncts.iter().map(IntCompare::of).collect::<Option<Vec<_>>>().unwrap_or_default();
        Predicate { expr, in_place, ints }
    }

    /// Whether the filter is true of a row.
    #[inline]
    pub fn admits(&self, row: RowRef<'_>) -> bool {
        let Some(p) = &self.expr else { return true };
        if !self.ints.is_empty() {
            let mut all_ints = true;
            for c in &self.ints {
                match row.int_at(c.column) {
                    IntColumn::Int(x) if !c.holds(x) => return false,
                    IntColumn::Int(_) => {}
                    // A NULL comparison is not true, so neither is the conjunction.
                    IntColumn::Null => return false,
                    IntColumn::Other => all_ints = false,
                }
            }
            if all_ints {
                return true;
            }
        }
        truth(&p.eval_on(&row.reader(self.in_place))) == Some(true)
    }
}

/// One base table's state in a worker: its shared arrangements.
pub struct Base {
    pub by_key: HashMap<SharedKey, KeyedTrace>,
}

impl Base {
    /// The arrangement a join side on `want` uses among those that exist: the exact one, or
    /// else the unfiltered one by the same columns (the filter is then applied as rows
    /// match). `None` if neither exists.
    pub fn choose(&self, want: &SharedKey) -> Option<SharedKey> {
        if self.by_key.contains_key(want) {
            return Some(want.clone());
        }
        let all = SharedKey { cols: want.cols.clone(), filter: None };
        self.by_key.contains_key(&all).then_some(all)
    }
}

/// Evaluates join keys, reading the row in place or decoded as `in_place` says; `None` when a
/// non-NULL-safe key is NULL (such rows never match).
fn eval_key(keys: &[(Expr, bool)], in_place: bool, row: &Row) -> Option<Row> {
    let mut out = Vec::with_capacity(keys.len());
    let cols = row.reader(in_place);
    for (e, null_safe) in keys {
        let v = canonical_key(e.eval_on(&cols));
        if v.is_null() && !null_safe {
            return None;
        }
        out.push(v);
    }
    Some(Row::new(out))
}

/// Key of a shared base-table arrangement on plain columns.
pub fn column_key(cols: &[usize], row: &Row) -> Row {
    // Project the encoded bytes; re-encode only values whose canonical form differs.
    let key = row.project(cols);
    if key.iter().all(|v| matches!(v, Value::Null | Value::Int(_) | Value::Text(_) | Value::Bytes(_))) {
        key
    } else {
        key.iter().map(canonical_key).collect()
    }
}

/// If a join input is a base table (optionally filtered) joined on plain columns, returns the
/// table, the filter and the key columns: it can use a shared arrangement.
pub fn shared_side<'p>(plan: &'p Plan, keys: &[Expr]) -> Option<(&'p str, Option<&'p Expr>, Vec<usize>)> {
    let (table, filter) = match plan {
        Plan::Get { table, .. } => (table, None),
        Plan::Filter { input, predicate } => match &**input {
            Plan::Get { table, .. } => (table, Some(predicate)),
            _ => return None,
        },
        _ => return None,
    };
    Some((table.as_str(), filter, plain_columns(keys)?))
}

/// Every shared arrangement a plan's inner joins would use, filtered as their sides are.
pub fn shared_arrangements(plan: &Plan) -> Vec<(String, SharedKey)> {
    let mut out = Vec::new();
    plan.visit(&mut |p| {
        if let Plan::Join { left, right, kind: JoinKind::Inner, keys, .. } = p {
            let lk: Vec<Expr> = keys.iter().map(|k| k.left.clone()).collect();
            let rk: Vec<Expr> = keys.iter().map(|k| k.right.clone()).collect();
            for (side, k) in [(&**left, lk), (&**right, rk)] {
                if let Some((t, filter, cols)) = shared_side(side, &k) {
                    out.push((t.to_string(), SharedKey { cols, filter: filter.cloned() }));
                }
            }
        }
    });
    out.sort();
    out.dedup();
    out
}

/// Renders plans within one query dataflow.
pub struct Renderer<'s, 'b> {
    pub scope: Scope<'s, Offset>,
    pub tables: &'b mut HashMap<String, Base>,
    pub worker_index: usize,
    /// The offset the query starts at: scans are loaded with the rows as of it.
    now: Offset,
    /// The tables' rows as of `now`.
    source: &'b dyn TableSource,
    /// Per table and filter, the collection the query's scan of it produces (self-joins
    /// share it).
    scanned: HashMap<(String, Option<Expr>), Coll<'s>>,
    /// The scans of tables, for the worker to advance (once the dataflow is built) and feed.
    pub scans: Vec<(String, Scan)>,
}

/// The input of a query's scan of a base table.
pub type ScanInput = InputSession<Offset, Row, Diff>;

/// A query's scan of a base table: the rows its filter admits (all rows without one) enter
/// its input, so a rejected row costs the filter's test and nothing in the dataflow.
pub struct Scan {
    pub admit: Predicate,
    pub input: ScanInput,
}

/// `n` NULLs.
pub fn nulls(n: usize) -> Row {
    Row::new(vec![Value::Null; n])
}

impl<'s, 'b> Renderer<'s, 'b> {
    pub fn new(
        scope: Scope<'s, Offset>,
        tables: &'b mut HashMap<String, Base>,
        worker_index: usize,
        now: Offset,
        source: &'b dyn TableSource,
    ) -> Self {
        Renderer { scope, tables, worker_index, now, source, scanned: HashMap::new(), scans: Vec::new() }
    }

    fn base(&mut self, table: &str) -> &mut Base {
        self.tables.get_mut(table).expect("planned tables exist in the engine")
    }

    /// Renders a plan to a collection of rows.
    #[recursive::recursive]
    pub fn render(&mut self, plan: &Plan) -> Coll<'s> {
        match plan {
            Plan::Get { table, .. } => self.scan(table, None),
            Plan::Constant { rows, .. } => {
                let data: Vec<(Row, Offset, Diff)> =
                    if self.worker_index == 0 { rows.iter().map(|r| (r.clone(), 0, 1)).collect() } else { Vec::new() };
                data.to_stream(self.scope).as_collection()
            }
            Plan::Project { input, exprs } => {
                if let Some(cols) = plain_columns(exprs) {
                    // Plain columns: copy their encoded bytes, decoding nothing.
                    return self.render(input).map(move |r| r.project(&cols));
                }
                let exprs = exprs.clone();
                let in_place = reads_in_place(&exprs);
                self.render(input).map(move |r| {
                    let cols = r.reader(in_place);
                    exprs.iter().map(|e| e.eval_on(&cols)).collect()
                })
            }
            Plan::Filter { input, predicate } => {
                if let Plan::Get { table, .. } = &**input {
                    return self.scan(table, Some(predicate));
                }
                let p = Predicate::new(Some(predicate.clone()));
                self.render(input).filter(move |r| p.admits(r.as_row_ref()))
            }
            Plan::Join { left, right, kind, keys, residual } => self.join(left, right, *kind, keys, residual),
            Plan::Aggregate { input, group_by, aggs } => {
                let c = self.render(input);
                render_aggregate(c, group_by, aggs, self.scope, self.worker_index)
            }
            Plan::Distinct { input } => self.render(input).distinct(),
            Plan::TopK { input, group, order, limit, offset } => {
                let c = self.render(input);
                render_topk(c, group, order, *limit, *offset, self.scope.peers())
            }
            Plan::Union { inputs } => {
                let mut parts = inputs.iter().map(|p| self.render(p));
                let first = parts.next().expect("union has inputs");
                parts.fold(first, |acc, c| acc.concat(c))
            }
            Plan::SetOp { op, all, left, right } => {
                let l = self.render(left);
                let r = self.render(right);
                set_op(l, r, *op, *all)
            }
        }
    }

    /// The rows of `table` that pass `filter`, from the query's scan of them.
    fn scan(&mut self, table: &str, filter: Option<&Expr>) -> Coll<'s> {
        let key = (table.to_string(), filter.cloned());
        if let Some(c) = self.scanned.get(&key) {
            return c.clone();
        }
        let admit = Predicate::new(filter.cloned());
        let now = self.now;
        let mut input = ScanInput::new();
        self.source.for_each_row(table, &mut |row| {
            if admit.admits(row.as_row_ref()) {
                input.update_at(row.clone(), now, 1);
            }
        });
        let c = input.to_collection(self.scope);
        self.scans.push((key.0.clone(), Scan { admit, input }));
        self.scanned.insert(key, c.clone());
        c
    }

    /// A join input arranged by its keys: a shared base arrangement where allowed and
    /// possible (returning the filter still to apply), else arranged here.
    fn keyed(&mut self, plan: &Plan, keys: &[(Expr, bool)], shared_ok: bool) -> (KeyedArranged<'s>, Predicate) {
        if shared_ok {
            let exprs: Vec<Expr> = keys.iter().map(|(e, _)| e.clone()).collect();
            if let Some((table, filter, cols)) = shared_side(plan, &exprs) {
                let scope = self.scope;
                let want = SharedKey { cols, filter: filter.cloned() };
                let base = self.base(table);
                if let Some(key) = base.choose(&want) {
                    // A filter the arrangement does not apply is applied as rows match.
                    let rest = if key.filter.is_some() { None } else { want.filter };
                    let trace = base.by_key.get_mut(&key).expect("chosen among existing");
                    return (trace.import(scope), Predicate::new(rest));
                }
            }
        }
        (arrange_keyed(self.render(plan), keys), Predicate::new(None))
    }

    fn join(
        &mut self,
        left: &Plan,
        right: &Plan,
        kind: JoinKind,
        keys: &[JoinKey],
        residual: &Option<Expr>,
    ) -> Coll<'s> {
        let lw = left.arity();
        let rw = right.arity();
        let lkeys: Vec<(Expr, bool)> = keys.iter().map(|k| (k.left.clone(), k.null_safe)).collect();
        let rkeys: Vec<(Expr, bool)> = keys.iter().map(|k| (k.right.clone(), k.null_safe)).collect();
        let res = Predicate::new(residual.clone());
        if kind == JoinKind::Inner {
            let (larr, lfilter) = self.keyed(left, &lkeys, true);
            let (rarr, rfilter) = self.keyed(right, &rkeys, true);
            // Shared arrangements hold rows with NULL keys too; those never match.
            let null_unsafe: Vec<bool> = keys.iter().map(|k| !k.null_safe).collect();
            return larr.join_core(rarr, move |k: RowRef, l: RowRef, r: RowRef| {
                if k.null_where(&null_unsafe) || !lfilter.admits(l) || !rfilter.admits(r) {
                    return None;
                }
                let row = l.concat(r);
                res.admits(row.as_row_ref()).then_some(row)
            });
        }
        let lc = self.render(left);
        let rc = self.render(right);
        let larr = arrange_keyed(lc.clone(), &lkeys);
        let rarr = arrange_keyed(rc.clone(), &rkeys);
        let inner = larr.clone().join_core(rarr.clone(), move |_k, l: RowRef, r: RowRef| {
            let row = l.concat(r);
            res.admits(row.as_row_ref()).then_some(row)
        });
        let has_res = residual.is_some();
        let mut out = inner.clone().concat(unmatched(lc, larr.clone(), rarr.clone(), &inner, has_res, 0..lw, rw, true));
        if kind == JoinKind::Full {
            out = out.concat(unmatched(rc, rarr, larr, &inner, has_res, lw..lw + rw, lw, false));
        }
        out
    }
}

/// Arranges rows by their join key, dropping rows whose non-NULL-safe key is NULL.
fn arrange_keyed<'s>(c: Coll<'s>, keys: &[(Expr, bool)]) -> KeyedArranged<'s> {
    let keys = keys.to_vec();
    let in_place = reads_in_place(keys.iter().map(|(e, _)| e));
    arrange_by_key(c.flat_map(move |r| eval_key(&keys, in_place, &r).map(|k| (k, r))))
}

/// Rows of `side` with no partner, padded with `pad` NULLs (after them if `side_first`).
#[allow(clippy::too_many_arguments)]
fn unmatched<'s>(
    side: Coll<'s>,
    side_arr: KeyedArranged<'s>,
    other_arr: KeyedArranged<'s>,
    inner: &Coll<'s>,
    has_residual: bool,
    side_cols: std::ops::Range<usize>,
    pad: usize,
    side_first: bool,
) -> Coll<'s> {
    let matched = if has_residual {
        // A row is matched if some partner also satisfies the residual condition.
        let cols: Vec<usize> = side_cols.collect();
        let partners = inner.clone().map(move |r| r.project(&cols)).distinct();
        side.clone().map(|r| (r, ())).semijoin(partners).map(|(r, ())| r)
    } else {
        let other_keys = arrange_by_self(other_arr.as_collection(|k, _| k.to_row()).distinct());
        side_arr.join_core(other_keys, |_k, r: RowRef, _| Some(r.to_row()))
    };
    side.concat(matched.negate()).map(move |r| if side_first { r.concat(&nulls(pad)) } else { nulls(pad).concat(&r) })
}

fn set_op<'s>(l: Coll<'s>, r: Coll<'s>, op: SetOpKind, all: bool) -> Coll<'s> {
    match (op, all) {
        (SetOpKind::Intersect, false) => l.distinct().map(|x| (x, ())).semijoin(r.distinct()).map(|(x, ())| x),
        (SetOpKind::Except, false) => l.distinct().map(|x| (x, ())).antijoin(r.distinct()).map(|(x, ())| x),
        (SetOpKind::Except, true) => except_all(l, r),
        (SetOpKind::Intersect, true) => {
            // min(a, b) = a - max(a - b, 0)
            let e = except_all(l.clone(), r);
            l.concat(e.negate())
        }
    }
}

/// Multiplicity max(a - b, 0) per row.
fn except_all<'s>(l: Coll<'s>, r: Coll<'s>) -> Coll<'s> {
    l.concat(r.negate()).threshold(|_, c| if *c > 0 { *c } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(i: usize) -> Expr {
        Expr::Column(i)
    }

    fn int(x: i64) -> Expr {
        Expr::Literal(Value::Int(x))
    }

    #[test]
    fn integer_comparisons_agree_with_evaluating_the_expression() {
        let values = [
            Value::Null,
            Value::Int(-2),
            Value::Int(0),
            Value::Int(3),
            Value::Int(i64::MAX),
            Value::Real(0.5),
            Value::text("3"),
        ];
        let ops = [BinOp::Lt, BinOp::LtEq, BinOp::Gt, BinOp::GtEq, BinOp::Eq, BinOp::NotEq];
        let mut predicates = Vec::new();
        for op in ops {
            for k in [-2, 0, 3] {
                predicates.push(Expr::binary(op, col(0), int(k)));
                predicates.push(Expr::binary(op, int(k), col(1)));
                predicates.push(Expr::binary(
                    BinOp::And,
                    Expr::binary(op, col(1), int(k)),
                    Expr::binary(BinOp::GtEq, col(0), int(0)),
                ));
            }
        }
        // Not integer comparisons: evaluated as before.
        predicates.push(Expr::binary(BinOp::Lt, col(0), Expr::Literal(Value::Real(0.7))));
        predicates.push(Expr::binary(
            BinOp::Or,
            Expr::binary(BinOp::Lt, col(0), int(0)),
            Expr::binary(BinOp::Eq, col(1), int(3)),
        ));
        for p in predicates {
            let pred = Predicate::new(Some(p.clone()));
            for a in &values {
                for b in &values {
                    let row = Row::new(vec![a.clone(), b.clone()]);
                    let want = truth(&p.eval_on(&row)) == Some(true);
                    assert_eq!(pred.admits(row.as_row_ref()), want, "{p:?} on {row:?}");
                }
            }
        }
        assert_eq!(Predicate::new(Some(Expr::binary(BinOp::Lt, int(1), col(2)))).ints.len(), 1);
        assert!(Predicate::new(Some(Expr::binary(BinOp::Add, col(0), int(1)))).ints.is_empty());
    }
}
