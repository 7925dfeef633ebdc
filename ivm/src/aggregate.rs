//! GROUP BY and aggregates as differential dataflow.
//!
//! COUNT / SUM / AVG (without DISTINCT) are accumulable: each row contributes an `Accum`
//! (or, when every aggregate is COUNT(*), just its count) to its group, and `group_totals`
//! keeps each group's total in a hash table, O(1) per change. MIN / MAX are a maintained top-1 of the
//! group's non-NULL values (ordered state, O(log n) per change); DISTINCT forms work on the
//! distinct (group, value) pairs. No aggregate rescans its group. A global aggregate (no GROUP
//! BY) always has exactly one row, also over empty input.

use crate::delta::{Diff, Offset};
use crate::group_totals::group_totals;
use crate::render::Coll;
use crate::topk::render_topk;
use differential_dataflow::difference::{IsZero, Multiply, Semigroup};
use differential_dataflow::{AsCollection, ExchangeData, VecCollection};
use serde::{Deserialize, Serialize};
use sluice_planner::expr::{plain_columns, reads_in_place};
use sluice_planner::{AggCall, AggFunc, Columns, DataType, Expr, Row, SortKey, Value};
use std::cmp::Ordering;
use timely::dataflow::operators::vec::ToStream;
use timely::dataflow::Scope;

/// Running totals of one accumulable aggregate argument (COUNT(x), SUM, AVG). The integer
/// total is 128 bits kept as two words, so the column is 8-byte aligned and 40 bytes: every
/// input row makes one, and the batcher moves them about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Column {
    nonnull: i64,
    int_lo: u64,
    int_hi: i64,
    real_sum: f64,
    reals: i64,
}

impl Column {
    fn int_sum(&self) -> i128 {
        ((self.int_hi as i128) << 64) | self.int_lo as i128
    }

    fn set_int_sum(&mut self, x: i128) {
        self.int_lo = x as u64;
        self.int_hi = (x >> 64) as i64;
    }

    fn of_value(v: Value) -> Column {
        let mut c = Column::default();
        match v {
            Value::Null => {}
            Value::Real(r) => (c.nonnull, c.real_sum, c.reals) = (1, r, 1),
            v => {
                c.nonnull = 1;
                c.set_int_sum(v.as_i128().unwrap_or(0));
            }
        }
        c
    }
}

/// The difference type of accumulable aggregates: row count plus per-argument totals (none
/// for COUNT(*), which is the row count).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Accum {
    rows: i64,
    cols: Cols,
}

/// Per-argument totals of an `Accum`. One is made per input row and the batcher and the
/// totals clone and add them, so the usual case of a single argument is a plain value (a
/// 48-byte copy to clone); two or more are on the heap. Always the smallest form for its
/// length, so equal totals are equal values.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
enum Cols {
    #[default]
    None,
    One(Column),
    Many(Vec<Column>),
}

impl Cols {
    /// Extends with empty totals to `n` columns.
    fn grow_to(&mut self, n: usize) {
        if self.len() < n {
            let mut all = self.to_vec();
            all.resize(n, Column::default());
            *self = all.into_iter().collect();
        }
    }
}

impl std::ops::Deref for Cols {
    type Target = [Column];
    fn deref(&self) -> &[Column] {
        match self {
            Cols::None => &[],
            Cols::One(c) => std::slice::from_ref(c),
            Cols::Many(v) => v,
        }
    }
}

impl std::ops::DerefMut for Cols {
    fn deref_mut(&mut self) -> &mut [Column] {
        match self {
            Cols::None => &mut [],
            Cols::One(c) => std::slice::from_mut(c),
            Cols::Many(v) => v,
        }
    }
}

impl PartialEq for Cols {
    fn eq(&self, other: &Cols) -> bool {
        **self == **other
    }
}

impl FromIterator<Column> for Cols {
    fn from_iter<I: IntoIterator<Item = Column>>(iter: I) -> Cols {
        let mut it = iter.into_iter();
        let Some(first) = it.next() else { return Cols::None };
        let Some(second) = it.next() else { return Cols::One(first) };
        Cols::Many([first, second].into_iter().chain(it).collect())
    }
}

impl Eq for Accum {}
impl PartialOrd for Accum {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Accum {
    fn cmp(&self, other: &Self) -> Ordering {
        self.rows.cmp(&other.rows).then_with(|| {
            for (a, b) in self.cols.iter().zip(other.cols.iter()) {
                let o = a
                    .nonnull
                    .cmp(&b.nonnull)
                    .then(a.int_sum().cmp(&b.int_sum()))
                    .then(a.real_sum.total_cmp(&b.real_sum))
                    .then(a.reals.cmp(&b.reals));
                if o != Ordering::Equal {
                    return o;
                }
            }
            self.cols.len().cmp(&other.cols.len())
        })
    }
}

impl IsZero for Accum {
    // Every field counts: an update can change only a real total. (Float residue left when a
    // group's last row goes is handled where totals are read: a group with no rows is absent.)
    fn is_zero(&self) -> bool {
        self.rows == 0
            && self.cols.iter().all(|c| c.nonnull == 0 && c.int_sum() == 0 && c.reals == 0 && c.real_sum == 0.0)
    }
}

impl Semigroup for Accum {
    fn plus_equals(&mut self, rhs: &Self) {
        self.rows += rhs.rows;
        self.cols.grow_to(rhs.cols.len());
        for (a, b) in self.cols.iter_mut().zip(rhs.cols.iter()) {
            a.nonnull += b.nonnull;
            a.set_int_sum(a.int_sum() + b.int_sum());
            a.real_sum += b.real_sum;
            a.reals += b.reals;
        }
    }
}

impl Multiply<Diff> for Accum {
    type Output = Accum;
    fn multiply(mut self, rhs: &Diff) -> Accum {
        let m = *rhs as i64;
        self.rows *= m;
        for c in self.cols.iter_mut() {
            c.nonnull *= m;
            c.set_int_sum(c.int_sum() * m as i128);
            c.real_sum *= m as f64;
            c.reals *= m;
        }
        self
    }
}

impl Accum {
    /// One row's contribution.
    fn of_row<C: Columns + ?Sized>(aggs: &[AggCall], row: &C) -> Accum {
        let cols = aggs
            .iter()
            .filter(|a| a.func != AggFunc::CountStar)
            .map(|a| Column::of_value(a.arg.eval_on(row)))
            .collect();
        Accum { rows: 1, cols }
    }

    fn finish(&self, aggs: &[AggCall]) -> Vec<Value> {
        let mut cols = self.cols.iter().copied().chain(std::iter::repeat(Column::default()));
        aggs.iter()
            .map(|a| {
                if a.func == AggFunc::CountStar {
                    return Value::Int(self.rows);
                }
                let c = cols.next().expect("endless");
                match a.func {
                    AggFunc::Count => Value::Int(c.nonnull),
                    AggFunc::Sum | AggFunc::Avg if c.nonnull == 0 => Value::Null,
                    AggFunc::Sum if c.reals > 0 => Value::Real(c.real_sum + c.int_sum() as f64),
                    AggFunc::Sum => int_or_real(c.int_sum()),
                    AggFunc::Avg => Value::Real((c.real_sum + c.int_sum() as f64) / c.nonnull as f64),
                    AggFunc::CountStar | AggFunc::Min | AggFunc::Max => unreachable!("not accumulable"),
                }
            })
            .collect()
    }
}

fn int_or_real(x: i128) -> Value {
    i64::try_from(x).map_or(Value::Real(x as f64), Value::Int)
}

/// Renders an aggregate: output rows are group values followed by aggregate values.
pub fn render_aggregate<'s>(
    input: Coll<'s>,
    group_by: &[Expr],
    aggs: &[AggCall],
    scope: Scope<'s, Offset>,
    worker: usize,
) -> Coll<'s> {
    let group = GroupKey::new(group_by);
    let result = if aggs.iter().all(|a| a.func == AggFunc::CountStar) {
        // Counts only: the row count is the difference itself, no totals to carry.
        let in_place = reads_in_place(group.exprs());
        let n = aggs.len();
        group_totals(
            input,
            move |r: &Row| (group.of(r, &r.reader(in_place)), 1 as Diff),
            |count| *count != 0,
            move |k, count| k.concat(&Row::new(vec![Value::Int(*count as i64); n])),
        )
    } else if aggs.iter().all(|a| a.func.is_accumulable() && !a.distinct) {
        // Each row read once, for its group and its contribution.
        let (aggs_in, aggs_out) = (aggs.to_vec(), aggs.to_vec());
        let in_place = reads_in_place(group.exprs().chain(aggs.iter().map(|a| &a.arg)));
        let contribute = move |r: &Row| {
            let cols = r.reader(in_place);
            (group.of(r, &cols), Accum::of_row(&aggs_in, &cols))
        };
        totals(input, contribute, move |k, acc| k.concat(&Row::new(acc.finish(&aggs_out))))
    } else {
        let in_place = reads_in_place(group.exprs());
        let keyed = input.map(move |r| (group.of(&r, &r.reader(in_place)), r));
        combined(keyed, group_by.len(), aggs)
    };
    if !group_by.is_empty() {
        return result;
    }
    // Exactly one row without GROUP BY: the default row stands in while no group exists.
    let default = Row::new(aggs.iter().map(empty_value).collect());
    let data: Vec<(Row, Offset, Diff)> = if worker == 0 { vec![(default.clone(), 0, 1)] } else { vec![] };
    let constant = data.to_stream(scope).as_collection();
    let present = result.clone().map(move |_| default.clone()).negate();
    result.concat(constant).concat(present)
}

/// How a row's group is found: its group columns' bytes copied where the groups are plain
/// columns (no decoding), else the expressions evaluated.
#[derive(Clone)]
enum GroupKey {
    Columns(Vec<usize>),
    Exprs(Vec<Expr>),
}

impl GroupKey {
    fn new(group_by: &[Expr]) -> GroupKey {
        plain_columns(group_by).map_or_else(|| GroupKey::Exprs(group_by.to_vec()), GroupKey::Columns)
    }

    /// The expressions it evaluates on each row (none for plain columns).
    fn exprs(&self) -> impl Iterator<Item = &Expr> {
        match self {
            GroupKey::Columns(_) => [].iter(),
            GroupKey::Exprs(e) => e.iter(),
        }
    }

    /// The group of `row`, whose columns `cols` reads.
    fn of<C: Columns + ?Sized>(&self, row: &Row, cols: &C) -> Row {
        match self {
            GroupKey::Columns(c) => row.project(c),
            GroupKey::Exprs(e) => e.iter().map(|g| g.eval_on(cols)).collect(),
        }
    }
}

type Keyed<'s> = VecCollection<'s, Offset, (Row, Row), Diff>;
/// One aggregate's value per group: (group key, (aggregate index, value)).
type AggValues<'s> = VecCollection<'s, Offset, (Row, (usize, Value)), Diff>;

/// Per-group totals of accumulable aggregates, O(1) per change.
fn accumulate<'s>(keyed: Keyed<'s>, aggs: &[AggCall]) -> VecCollection<'s, Offset, (Row, Accum), Diff> {
    let aggs = aggs.to_vec();
    let in_place = reads_in_place(aggs.iter().map(|a| &a.arg));
    let contribute = move |(k, r): &(Row, Row)| (k.clone(), Accum::of_row(&aggs, &r.reader(in_place)));
    totals(keyed, contribute, |k, acc| (k.clone(), acc.clone()))
}

/// Each group's total of its records' contributions, for the groups that have rows, as
/// `finish(group, total)`.
fn totals<'s, D: ExchangeData, O: ExchangeData>(
    input: VecCollection<'s, Offset, D, Diff>,
    contribute: impl Fn(&D) -> (Row, Accum) + Clone + 'static,
    finish: impl Fn(&Row, &Accum) -> O + 'static,
) -> VecCollection<'s, Offset, O, Diff> {
    group_totals(input, contribute, |acc| acc.rows != 0, finish)
}

/// Aggregates that are not all plain accumulable ones, each maintained without scanning its
/// group: accumulable ones (plus COUNT(*) for the group's presence) by `accumulate`; DISTINCT
/// ones over the distinct (group, value) pairs; MIN / MAX as a maintained top-1, O(log n)
/// per change. A final reduce per group assembles the row from one value
/// per aggregate.
fn combined<'s>(keyed: Keyed<'s>, width: usize, aggs: &[AggCall]) -> Coll<'s> {
    let n = aggs.len();
    let mut parts: Vec<AggValues<'s>> = Vec::new();
    // Index `n` stands for the presence of the group.
    let mut acc_idx: Vec<usize> = vec![n];
    let mut sub =
        vec![AggCall { func: AggFunc::CountStar, arg: Expr::Literal(Value::Null), distinct: false, ty: DataType::Int }];
    for (i, a) in aggs.iter().enumerate() {
        if a.func.is_accumulable() && !a.distinct {
            acc_idx.push(i);
            sub.push(a.clone());
        }
    }
    parts.push(accumulate(keyed.clone(), &sub).flat_map(move |(k, acc)| {
        let vals = acc.finish(&sub);
        acc_idx.iter().zip(vals).map(|(&i, v)| (k.clone(), (i, v))).collect::<Vec<_>>()
    }));
    for (i, a) in aggs.iter().enumerate().filter(|(_, a)| a.func.is_accumulable() && a.distinct) {
        let arg = a.arg.clone();
        let in_place = reads_in_place([&arg]);
        let one = AggCall { distinct: false, ..a.clone() };
        let distinct_values = keyed
            .clone()
            .flat_map(move |(k, r)| {
                let v = arg.eval_on(&r.reader(in_place));
                (!v.is_null()).then(|| (k, Row::new(vec![v])))
            })
            .distinct();
        let calls = vec![AggCall { arg: Expr::Column(0), ..one }];
        parts.push(accumulate(distinct_values, &calls).map(move |(k, acc)| (k, (i, acc.finish(&calls).remove(0)))));
    }
    for (i, a) in aggs.iter().enumerate().filter(|(_, a)| !a.func.is_accumulable()) {
        // MIN / MAX: the first non-NULL value of the group in ascending / descending order,
        // a maintained top-1 (ordered state, O(log n) per change).
        let arg = a.arg.clone();
        let order = [SortKey { column: width, desc: a.func == AggFunc::Max, nulls_first: false }];
        let in_place = reads_in_place([&arg]);
        let values = keyed.clone().flat_map(move |(k, r)| {
            let v = arg.eval_on(&r.reader(in_place));
            (!v.is_null()).then(|| k.concat(&Row::new(vec![v])))
        });
        let group: Vec<usize> = (0..width).collect();
        let peers = values.scope().peers();
        parts.push(render_topk(values, &group, &order, Some(1), 0, peers).map(move |r| {
            let mut vals = r.values();
            let v = vals.pop().expect("the value column");
            (Row::new(vals.to_vec()), (i, v))
        }));
    }
    let aggs = aggs.to_vec();
    let mut all = parts.pop().expect("at least the presence part");
    for p in parts {
        all = all.concat(p);
    }
    all.reduce(move |_, vals: &[(&(usize, Value), Diff)], out: &mut Vec<(Row, Diff)>| {
        let mut row: Vec<Value> = aggs.iter().map(empty_value).collect();
        for (x, _) in vals.iter().filter(|(x, _)| x.0 < n) {
            row[x.0] = x.1.clone();
        }
        out.push((Row::new(row), 1));
    })
    .map(|(k, aggs)| k.concat(&aggs))
}

/// An aggregate's value over no rows: 0 for COUNT, NULL otherwise.
fn empty_value(a: &AggCall) -> Value {
    match a.func {
        AggFunc::Count | AggFunc::CountStar => Value::Int(0),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(func: AggFunc) -> AggCall {
        AggCall { func, arg: Expr::Column(0), distinct: false, ty: DataType::Int }
    }

    #[test]
    fn totals_are_exact_past_64_bits_and_cancel_to_zero() {
        for x in [0i128, 1, -1, i64::MAX as i128 * 3, i64::MIN as i128 * 5, i128::MAX / 2, i128::MIN / 2] {
            let mut c = Column::default();
            c.set_int_sum(x);
            assert_eq!(c.int_sum(), x);
        }
        let aggs = [call(AggFunc::CountStar), call(AggFunc::Sum), call(AggFunc::Avg)];
        let row = [Value::Int(i64::MAX)];
        let one = Accum::of_row(&aggs, &row[..]);
        assert_eq!(one.cols.len(), 2, "COUNT(*) carries no column");
        assert!(matches!(one.cols, Cols::Many(_)));
        let mut total = one.clone();
        total.plus_equals(&one);
        let sum = 2.0 * i64::MAX as f64;
        assert_eq!(total.finish(&aggs), vec![Value::Int(2), Value::Real(sum), Value::Real(sum / 2.0)]);
        // Taking both rows back leaves nothing.
        total.plus_equals(&one.clone().multiply(&-2));
        assert!(total.is_zero());
        assert_eq!(total.finish(&aggs), vec![Value::Int(0), Value::Null, Value::Null]);
    }

    #[test]
    fn one_argument_totals_stay_inline_and_totals_grow_to_their_rows_columns() {
        let aggs = [call(AggFunc::Sum)];
        let one = Accum::of_row(&aggs, &[Value::Int(4)][..]);
        assert!(matches!(one.cols, Cols::One(_)));
        let mut total = Accum::default();
        total.plus_equals(&one);
        total.plus_equals(&one);
        assert!(matches!(total.cols, Cols::One(_)));
        assert_eq!(total, one.clone().multiply(&2));
        assert_eq!(total.finish(&aggs), vec![Value::Int(8)]);
        let mut cols = Cols::None;
        cols.grow_to(1);
        assert!(matches!(cols, Cols::One(_)));
        cols.grow_to(3);
        assert!(matches!(&cols, Cols::Many(v) if v.len() == 3));
        assert_eq!(cols, [Column::default(); 3].into_iter().collect());
    }
}
