//! The typed logical plan: relational operators over positional columns.
//!
//! Every node's output is a bag of rows; `arity` gives its width. Plans are hashable and
//! comparable so that identical queries (after planning) can share one dataflow.

use crate::expr::Expr;
use crate::row::Row;
use crate::types::DataType;
use serde::{Deserialize, Serialize};

/// An aggregate function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AggFunc {
    CountStar,
    Count,
    Sum,
    Avg,
    Min,
    Max,
}

impl AggFunc {
    /// COUNT, SUM and AVG can be maintained by accumulating differences.
    pub fn is_accumulable(self) -> bool {
        matches!(self, AggFunc::CountStar | AggFunc::Count | AggFunc::Sum | AggFunc::Avg)
    }
}

/// One aggregate call: `func([DISTINCT] arg)`; `ty` is the result type.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AggCall {
    pub func: AggFunc,
    pub arg: Expr,
    pub distinct: bool,
    pub ty: DataType,
}

/// One sort key of ORDER BY, over the input's columns.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SortKey {
    pub column: usize,
    pub desc: bool,
    /// NULLs sort first when true (SQLite's default for ASC).
    pub nulls_first: bool,
}

/// One equality of an equi-join: `left` (over the left input) equals `right` (over the right).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct JoinKey {
    pub left: Expr,
    pub right: Expr,
    /// NULL matches NULL (used for decorrelation); otherwise NULL keys never match.
    /// Keys compare in canonical form (`expr::canonical_key`), so `1 = 1.0` matches.
    pub null_safe: bool,
}

/// Join kinds after normalisation (RIGHT joins become LEFT joins with a reordering project).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum JoinKind {
    Inner,
    Left,
    Full,
}

/// A logical plan node.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Plan {
    /// All rows of a base table.
    Get { table: String, arity: usize },
    /// A fixed bag of rows.
    Constant { rows: Vec<Row>, arity: usize },
    /// Each output row is `exprs` evaluated over an input row.
    Project { input: Box<Plan>, exprs: Vec<Expr> },
    /// Keeps rows where `predicate` is true.
    Filter { input: Box<Plan>, predicate: Expr },
    /// Output columns are the left's followed by the right's; `residual` is over that concatenation
    /// and is part of the match condition (it matters for outer joins).
    Join { left: Box<Plan>, right: Box<Plan>, kind: JoinKind, keys: Vec<JoinKey>, residual: Option<Expr> },
    /// Output: group values followed by aggregate values. With no group keys, exactly one row.
    Aggregate { input: Box<Plan>, group_by: Vec<Expr>, aggs: Vec<AggCall> },
    /// Removes duplicate rows.
    Distinct { input: Box<Plan> },
    /// Per group (rows equal on `group` columns): rows sorted by `order` then by the whole row,
    /// skipping `offset` and keeping `limit`.
    TopK { input: Box<Plan>, group: Vec<usize>, order: Vec<SortKey>, limit: Option<u64>, offset: u64 },
    /// Bag union (UNION ALL).
    Union { inputs: Vec<Plan> },
    /// Rows of `left` whose whole row appears (`Intersect`) or does not appear (`Except`) in
    /// `right`; `all` keeps multiplicities (min / difference of counts) instead of distinct rows.
    SetOp { op: SetOpKind, all: bool, left: Box<Plan>, right: Box<Plan> },
}

/// INTERSECT or EXCEPT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SetOpKind {
    Intersect,
    Except,
}

impl Plan {
    /// Number of output columns.
    pub fn arity(&self) -> usize {
        match self {
            Plan::Get { arity, .. } | Plan::Constant { arity, .. } => *arity,
            Plan::Project { exprs, .. } => exprs.len(),
            Plan::Filter { input, .. } | Plan::Distinct { input } | Plan::TopK { input, .. } => input.arity(),
            Plan::Join { left, right, .. } => left.arity() + right.arity(),
            Plan::Aggregate { group_by, aggs, .. } => group_by.len() + aggs.len(),
            Plan::Union { inputs } => inputs.first().map_or(0, Plan::arity),
            Plan::SetOp { left, .. } => left.arity(),
        }
    }

    /// Wraps in a filter, merging with an existing filter and skipping TRUE.
    pub fn filter(self, predicate: Expr) -> Plan {
        if predicate == Expr::Literal(crate::types::Value::Bool(true)) {
            return self;
        }
        match self {
            Plan::Filter { input, predicate: p } => {
                Plan::Filter { input, predicate: Expr::binary(crate::expr::BinOp::And, p, predicate) }
            }
            other => Plan::Filter { input: Box::new(other), predicate },
        }
    }

    /// Wraps in a projection, skipping identities and fusing with a projection below.
    pub fn project(self, exprs: Vec<Expr>) -> Plan {
        let identity = exprs.len() == self.arity() && exprs.iter().enumerate().all(|(i, e)| *e == Expr::Column(i));
        if identity {
            return self;
        }
        match self {
            Plan::Project { input, exprs: inner } => {
                let fused: Vec<Expr> = exprs.iter().map(|e| e.substitute(&inner)).collect();
                // Fusing copies an inner expression wherever the outer one reads it: fused
                // projections many levels deep could grow exponentially, so a fusion that
                // grows the expressions, or makes one deeper than SQL may nest, is not made.
                let size = |es: &[Expr]| es.iter().map(Expr::size).sum::<usize>();
                let within = size(&fused) <= size(&exprs) + size(&inner)
                    && fused.iter().all(|e| e.depth() <= crate::bind::nesting::MAX_NESTING);
                if within {
                    Plan::Project { input, exprs: fused }
                } else {
                    Plan::Project { input: Box::new(Plan::Project { input, exprs: inner }), exprs }
                }
            }
            other => Plan::Project { input: Box::new(other), exprs },
        }
    }

    /// Projects onto the given columns.
    pub fn select_columns(self, cols: &[usize]) -> Plan {
        self.project(cols.iter().map(|&c| Expr::Column(c)).collect())
    }

    /// Names of the base tables this plan reads, sorted and deduplicated.
    pub fn tables(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.visit(&mut |p| {
            if let Plan::Get { table, .. } = p {
                out.push(table.clone());
            }
        });
        out.sort();
        out.dedup();
        out
    }

    /// Output columns that hold a base table's primary key, where the plan keeps one row per
    /// key of a single table (a filter or projection of it): clients tell updates by them.
    pub fn primary_key(&self, catalog: &crate::catalog::Catalog) -> Option<Vec<usize>> {
        match self {
            Plan::Get { table, .. } => {
                let key = &catalog.table(table)?.primary_key;
                (!key.is_empty()).then(|| key.clone())
            }
            Plan::Filter { input, .. } | Plan::TopK { input, .. } | Plan::Distinct { input } => {
                input.primary_key(catalog)
            }
            Plan::Project { input, exprs } => {
                input.primary_key(catalog)?.iter().map(|&k| exprs.iter().position(|e| *e == Expr::Column(k))).collect()
            }
            _ => None,
        }
    }

    /// How many levels this plan has, counted without recursion (a plan is checked against
    /// [`MAX_PLAN_DEPTH`] before anything walks it recursively).
    pub fn depth(&self) -> usize {
        let (mut deepest, mut stack) = (0, vec![(self, 1)]);
        while let Some((plan, depth)) = stack.pop() {
            deepest = deepest.max(depth);
            plan.visit_children(&mut |child| stack.push((child, depth + 1)));
        }
        deepest
    }

    /// Calls `f` on every node, parents before children.
    pub fn visit(&self, f: &mut impl FnMut(&Plan)) {
        f(self);
        self.visit_children(&mut |child| child.visit(f));
    }

    /// Calls `f` on each direct input.
    fn visit_children<'p>(&'p self, f: &mut impl FnMut(&'p Plan)) {
        match self {
            Plan::Get { .. } | Plan::Constant { .. } => {}
            Plan::Project { input, .. }
            | Plan::Filter { input, .. }
            | Plan::Aggregate { input, .. }
            | Plan::Distinct { input }
            | Plan::TopK { input, .. } => f(input),
            Plan::Join { left, right, .. } | Plan::SetOp { left, right, .. } => {
                f(left);
                f(right);
            }
            Plan::Union { inputs } => inputs.iter().for_each(f),
        }
    }
}

/// How many levels a query's plan may have: joins, subqueries and set operations each add
/// some, and rendering and evaluating a plan walk it recursively.
pub const MAX_PLAN_DEPTH: usize = 2000;

/// A planned query: the plan, its visible output columns and presentation order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct QueryPlan {
    pub plan: Plan,
    /// Names and types of the visible columns (the first `columns.len()` of the plan's output;
    /// any further columns are hidden sort keys).
    pub columns: Vec<(String, DataType)>,
    /// Order in which to present rows (over the plan's output columns); empty = unordered.
    pub order_by: Vec<SortKey>,
}
