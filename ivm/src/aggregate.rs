//! GROUP BY and aggregates as differential dataflow.
//!
//! COUNT / SUM / AVG (without DISTINCT) are accumulable: each row contributes an `Accum`
//! difference and `count_total` maintains the per-group total in O(1) per change. Other
//! aggregates (MIN, MAX, DISTINCT forms) use a per-group reduce. A global aggregate (no GROUP
//! BY) always has exactly one row, also over empty input.

use crate::delta::{Diff, Offset};
use crate::render::Coll;
use differential_dataflow::difference::{IsZero, Multiply, Semigroup};
use differential_dataflow::operators::count::CountTotal;
use differential_dataflow::AsCollection;
use serde::{Deserialize, Serialize};
use sluice_planner::expr::sql_cmp;
use sluice_planner::{AggCall, AggFunc, Expr, Row, Value};
use std::cmp::Ordering;
use timely::dataflow::operators::vec::ToStream;
use timely::dataflow::Scope;

/// Running totals of one accumulable aggregate argument.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Column {
    nonnull: i64,
    int_sum: i128,
    real_sum: f64,
    reals: i64,
}

/// The difference type of accumulable aggregates: row count plus per-argument totals.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Accum {
    rows: i64,
    cols: Vec<Column>,
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
            for (a, b) in self.cols.iter().zip(&other.cols) {
                let o = a
                    .nonnull
                    .cmp(&b.nonnull)
                    .then(a.int_sum.cmp(&b.int_sum))
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
    // Float residue left after all values are retracted does not keep a group alive.
    fn is_zero(&self) -> bool {
        self.rows == 0 && self.cols.iter().all(|c| c.nonnull == 0 && c.int_sum == 0 && c.reals == 0)
    }
}

impl Semigroup for Accum {
    fn plus_equals(&mut self, rhs: &Self) {
        self.rows += rhs.rows;
        if self.cols.len() < rhs.cols.len() {
            self.cols.resize(rhs.cols.len(), Column::default());
        }
        for (a, b) in self.cols.iter_mut().zip(&rhs.cols) {
            a.nonnull += b.nonnull;
            a.int_sum += b.int_sum;
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
        for c in &mut self.cols {
            c.nonnull *= m;
            c.int_sum *= m as i128;
            c.real_sum *= m as f64;
            c.reals *= m;
        }
        self
    }
}

impl Accum {
    fn of_row(aggs: &[AggCall], row: &Row) -> Accum {
        let cols = aggs
            .iter()
            .map(|a| match a.func {
                AggFunc::CountStar => Column::default(),
                _ => match a.arg.eval(row.values()) {
                    Value::Null => Column::default(),
                    Value::Real(r) => Column { nonnull: 1, real_sum: r, reals: 1, ..Column::default() },
                    v => Column { nonnull: 1, int_sum: v.as_i128().unwrap_or(0), ..Column::default() },
                },
            })
            .collect();
        Accum { rows: 1, cols }
    }

    fn finish(&self, aggs: &[AggCall]) -> Vec<Value> {
        aggs.iter()
            .zip(self.cols.iter().chain(std::iter::repeat(&Column::default())))
            .map(|(a, c)| match a.func {
                AggFunc::CountStar => Value::Int(self.rows),
                AggFunc::Count => Value::Int(c.nonnull),
                AggFunc::Sum if c.nonnull == 0 => Value::Null,
                AggFunc::Sum if c.reals > 0 => Value::Real(c.real_sum + c.int_sum as f64),
                AggFunc::Sum => int_or_real(c.int_sum),
                AggFunc::Avg if c.nonnull == 0 => Value::Null,
                AggFunc::Avg => Value::Real((c.real_sum + c.int_sum as f64) / c.nonnull as f64),
                AggFunc::Min | AggFunc::Max => unreachable!("not accumulable"),
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
    let groups = group_by.to_vec();
    let key = move |r: &Row| Row::new(groups.iter().map(|g| g.eval(r.values())).collect());
    let aggs_v = aggs.to_vec();
    let result = if aggs.iter().all(|a| a.func.is_accumulable() && !a.distinct) {
        let aggs_in = aggs_v.clone();
        input
            .explode(move |r| {
                let k = key(&r);
                Some((k, Accum::of_row(&aggs_in, &r)))
            })
            .count_total()
            .map(move |(k, acc)| k.concat(&Row::new(acc.finish(&aggs_v))))
    } else {
        input
            .map(move |r| (key(&r), r))
            .reduce(move |k, vals: &[(&Row, Diff)], out: &mut Vec<(Row, Diff)>| {
                out.push((k.concat(&Row::new(compute(&aggs_v, vals))), 1));
            })
            .map(|(_, row)| row)
    };
    if !group_by.is_empty() {
        return result;
    }
    // Exactly one row without GROUP BY: the default row stands in while no group exists.
    let default = Row::new(compute(aggs, &[]));
    let data: Vec<(Row, Offset, Diff)> = if worker == 0 { vec![(default.clone(), 0, 1)] } else { vec![] };
    let constant = data.to_stream(scope).as_collection();
    let present = result.clone().map(move |_| default.clone()).negate();
    result.concat(constant).concat(present)
}

/// Computes aggregates over a group's rows with multiplicities (also for an empty group).
fn compute(aggs: &[AggCall], vals: &[(&Row, Diff)]) -> Vec<Value> {
    aggs.iter()
        .map(|a| {
            let mut args: Vec<(Value, Diff)> = vals
                .iter()
                .map(|(r, d)| {
                    (if a.func == AggFunc::CountStar { Value::Bool(true) } else { a.arg.eval(r.values()) }, *d)
                })
                .filter(|(v, _)| !v.is_null())
                .collect();
            if a.distinct {
                args.sort();
                args.dedup_by(|x, y| x.0 == y.0);
                for x in &mut args {
                    x.1 = 1;
                }
            }
            match a.func {
                AggFunc::CountStar | AggFunc::Count => Value::Int(args.iter().map(|(_, d)| *d as i64).sum()),
                AggFunc::Sum | AggFunc::Avg => {
                    if args.is_empty() {
                        return Value::Null;
                    }
                    let n: i64 = args.iter().map(|(_, d)| *d as i64).sum();
                    let any_real = args.iter().any(|(v, _)| matches!(v, Value::Real(_)));
                    if any_real || a.func == AggFunc::Avg {
                        let s: f64 = args.iter().map(|(v, d)| v.as_f64().unwrap_or(0.0) * *d as f64).sum();
                        Value::Real(if a.func == AggFunc::Avg { s / n as f64 } else { s })
                    } else {
                        int_or_real(args.iter().map(|(v, d)| v.as_i128().unwrap_or(0) * *d as i128).sum())
                    }
                }
                AggFunc::Min | AggFunc::Max => {
                    let pick = |best: Value, v: Value| {
                        let o = sql_cmp(&v, &best).unwrap_or_else(|| v.cmp(&best));
                        let better = if a.func == AggFunc::Min { o == Ordering::Less } else { o == Ordering::Greater };
                        if better {
                            v
                        } else {
                            best
                        }
                    };
                    args.into_iter().map(|(v, _)| v).reduce(pick).unwrap_or(Value::Null)
                }
            }
        })
        .collect()
}
