//! The FROM clause: tables, derived tables, inner and outer joins (ON, USING, NATURAL).
//! Inner joins are collected as units plus a conjunct pool and ordered by `join_order`;
//! an outer join first collapses what is to its left into one relation.

use super::expr::ExprCtx;
use super::join_order::{join_units, split_equi, Unit};
use super::scope::{Outer, Scope, ScopeCol};
use super::Planner;
use crate::catalog::object_name;
use crate::error::{PlanError, Result};
use crate::expr::{BinOp, Expr};
use crate::plan::{JoinKey, JoinKind, Plan};
use sqlparser::ast::{self, Spanned};

/// FROM items gathered so far: inner-join units over one column layout, plus conjuncts.
pub(crate) struct FromBuilder {
    units: Vec<Unit>,
    /// Whether `units[0]` is the decorrelation prefix relation.
    has_prefix: bool,
    pub scope: Scope,
    pub pool: Vec<Expr>,
}

impl FromBuilder {
    /// Starts a FROM clause, optionally with the decorrelation prefix relation as first unit.
    pub fn new(prefix: Option<(Plan, Scope)>) -> FromBuilder {
        let mut b =
            FromBuilder { units: Vec::new(), has_prefix: prefix.is_some(), scope: Scope::default(), pool: Vec::new() };
        if let Some((plan, scope)) = prefix {
            b.push(plan, scope);
        }
        b
    }

    fn push(&mut self, plan: Plan, scope: Scope) {
        self.units.push(Unit { plan, offset: self.scope.len(), width: scope.len() });
        self.scope = self.scope.concat(&scope);
    }

    fn prefix_width(&self) -> usize {
        if self.has_prefix {
            self.units[0].width
        } else {
            0
        }
    }

    /// Joins every non-prefix unit into one, applying the pool conjuncts that only they touch.
    fn collapse(&mut self) -> (Plan, usize) {
        let start = usize::from(self.has_prefix);
        let offset = self.prefix_width();
        let units: Vec<Unit> = self.units.drain(start..).collect();
        let (mine, keep): (Vec<Expr>, Vec<Expr>) =
            self.pool.drain(..).partition(|c| c.columns().iter().all(|&x| x >= offset));
        self.pool = keep;
        (join_units(units, mine), offset)
    }

    /// Joins everything under the pool conjuncts; columns in scope order.
    pub fn finish(mut self) -> Plan {
        let pool = std::mem::take(&mut self.pool);
        join_units(self.units, pool)
    }
}

/// How many tables one FROM clause may join (SQLite's limit too).
pub const MAX_JOINED_TABLES: usize = 64;

impl Planner<'_> {
    /// Plans a whole FROM clause into a builder (WHERE conjuncts may still be added).
    pub(crate) fn plan_from(
        &self,
        from: &[ast::TableWithJoins],
        outer: Option<&Outer>,
        prefix: Option<(Plan, Scope)>,
    ) -> Result<FromBuilder> {
        let tables: usize = from.iter().map(|twj| 1 + twj.joins.len()).sum();
        if tables > MAX_JOINED_TABLES {
            return Err(PlanError::new(format!(
                "a FROM clause may join at most {MAX_JOINED_TABLES} tables; this one joins {tables}"
            )));
        }
        let mut b = FromBuilder::new(prefix);
        for twj in from {
            self.table_with_joins(&mut b, twj, outer)?;
        }
        Ok(b)
    }

    fn table_with_joins(&self, b: &mut FromBuilder, twj: &ast::TableWithJoins, outer: Option<&Outer>) -> Result<()> {
        let (plan, scope) = self.factor(&twj.relation, outer)?;
        b.push(plan, scope);
        for join in &twj.joins {
            use ast::JoinOperator as J;
            let (kind, constraint) = match &join.join_operator {
                J::Join(c) | J::Inner(c) => (None, c),
                J::CrossJoin(c) => (None, c),
                J::Left(c) | J::LeftOuter(c) => (Some((JoinKind::Left, false)), c),
                J::Right(c) | J::RightOuter(c) => (Some((JoinKind::Left, true)), c),
                J::FullOuter(c) => (Some((JoinKind::Full, false)), c),
                other => {
                    return Err(PlanError::at(format!("unsupported join {other:?}"), join.relation.span()));
                }
            };
            let (rplan, rscope) = self.factor(&join.relation, outer)?;
            match kind {
                None => {
                    let start = b.scope.len();
                    b.push(rplan, rscope);
                    let conds = self.join_condition(&b.scope, start, constraint, outer)?;
                    Self::mark_using(&mut b.scope, &conds, start, constraint);
                    b.pool.extend(conds);
                }
                Some((kind, swap)) => self.outer_join(b, kind, swap, rplan, rscope, constraint, outer)?,
            }
        }
        Ok(())
    }

    /// The conjuncts of a join constraint over `scope`, whose columns from `start` on are the
    /// right side. USING columns of the right side are marked as duplicates.
    fn join_condition(
        &self,
        scope: &Scope,
        start: usize,
        c: &ast::JoinConstraint,
        outer: Option<&Outer>,
    ) -> Result<Vec<Expr>> {
        match c {
            ast::JoinConstraint::None => Ok(vec![]),
            ast::JoinConstraint::On(e) => {
                let ctx = self.expr_ctx(scope, outer, None, None, "ON");
                Ok(ctx.bind_condition(e)?.conjuncts())
            }
            ast::JoinConstraint::Using(names) => {
                let names: Vec<String> = names.iter().map(object_name).collect::<Result<_>>()?;
                self.using(scope, start, &names)
            }
            ast::JoinConstraint::Natural => {
                let names: Vec<String> = scope.cols[start..]
                    .iter()
                    .filter(|r| scope.cols[..start].iter().any(|l| !l.outer && l.name.eq_ignore_ascii_case(&r.name)))
                    .map(|r| r.name.clone())
                    .collect();
                self.using(scope, start, &names)
            }
            ast::JoinConstraint::UsingAlias(..) => Err(PlanError::new("USING … AS is not supported")),
        }
    }

    fn using(&self, scope: &Scope, start: usize, names: &[String]) -> Result<Vec<Expr>> {
        let mut out = Vec::new();
        for n in names {
            let find = |range: std::ops::Range<usize>| -> Result<usize> {
                let hits: Vec<usize> = range
                    .filter(|&i| {
                        !scope.cols[i].outer && !scope.cols[i].using_dup && scope.cols[i].name.eq_ignore_ascii_case(n)
                    })
                    .collect();
                match hits.as_slice() {
                    [one] => Ok(*one),
                    [] => Err(PlanError::new(format!("USING column {n} not found on both sides of the join"))),
                    _ => Err(PlanError::new(format!("USING column {n} is ambiguous"))),
                }
            };
            let l = find(0..start)?;
            let r = find(start..scope.len())?;
            out.push(Expr::binary(BinOp::Eq, Expr::Column(l), Expr::Column(r)));
        }
        Ok(out)
    }

    /// Marks the right-hand USING columns as duplicates in the builder's scope.
    fn mark_using(scope: &mut Scope, conds: &[Expr], start: usize, c: &ast::JoinConstraint) {
        if matches!(c, ast::JoinConstraint::Using(_) | ast::JoinConstraint::Natural) {
            for cond in conds {
                if let Expr::Binary(BinOp::Eq, _, r) = cond {
                    if let Expr::Column(i) = **r {
                        if i >= start {
                            scope.cols[i].using_dup = true;
                        }
                    }
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn outer_join(
        &self,
        b: &mut FromBuilder,
        kind: JoinKind,
        swap: bool,
        rplan: Plan,
        rscope: Scope,
        c: &ast::JoinConstraint,
        outer: Option<&Outer>,
    ) -> Result<()> {
        let (lplan, loff) = b.collapse();
        let start = b.scope.len();
        let mut scope = b.scope.concat(&rscope);
        let conds = self.join_condition(&scope, start, c, outer)?;
        if conds.iter().any(|e| e.columns().iter().any(|&x| x < loff)) {
            return Err(PlanError::new("a correlated reference in an outer join's ON clause is not supported"));
        }
        Self::mark_using(&mut scope, &conds, start, c);
        // Local layout: left columns 0..lw, right lw..lw+rw.
        let lw = start - loff;
        let rw = rscope.len();
        let local: Vec<Expr> = conds.iter().map(|e| e.map_columns(&|g| g - loff)).collect();
        // Normalise RIGHT to LEFT by swapping sides.
        let (pres_plan, other_plan, pw, local) = if swap {
            let remap = |x: usize| if x < lw { x + rw } else { x - lw };
            (rplan, lplan, rw, local.iter().map(|e| e.map_columns(&remap)).collect::<Vec<_>>())
        } else {
            (lplan, rplan, lw, local)
        };
        let mut keys = Vec::new();
        let mut residual = Vec::new();
        let mut other_filter = Vec::new();
        for e in local {
            let cols = e.columns();
            let in_other = |x: usize| x >= pw;
            if kind == JoinKind::Left && !cols.is_empty() && cols.iter().all(|&x| in_other(x)) {
                other_filter.push(e.map_columns(&|x| x - pw));
            } else if let Some((l, r)) = split_equi(&e, &in_other) {
                keys.push(JoinKey { left: l, right: r.map_columns(&|x| x - pw), null_safe: false });
            } else {
                residual.push(e);
            }
        }
        let joined = Plan::Join {
            left: Box::new(pres_plan),
            right: Box::new(other_plan.filter(Expr::and_all(other_filter))),
            kind,
            keys,
            residual: (!residual.is_empty()).then(|| Expr::and_all(residual)),
        };
        let plan = if swap {
            // Back to left-then-right column order.
            let order: Vec<usize> = (rw..rw + lw).chain(0..rw).collect();
            joined.select_columns(&order)
        } else {
            joined
        };
        b.units.push(Unit { plan, offset: loff, width: lw + rw });
        b.scope = scope;
        Ok(())
    }

    /// Plans one FROM item into a relation and its scope.
    fn factor(&self, f: &ast::TableFactor, outer: Option<&Outer>) -> Result<(Plan, Scope)> {
        match f {
            ast::TableFactor::Table { name, alias, args: None, .. } => {
                let tname = object_name(name)?;
                let table = self
                    .catalog
                    .table(&tname)
                    .ok_or_else(|| PlanError::at(format!("unknown table {tname}"), name.span()))?;
                let qualifier = alias.as_ref().map_or(table.name.clone(), |a| a.name.value.clone());
                let mut cols: Vec<ScopeCol> = table
                    .columns
                    .iter()
                    .map(|c| ScopeCol::new(Some(qualifier.clone()), c.name.clone(), c.ty))
                    .collect();
                if let Some(a) = alias {
                    rename(&mut cols, a)?;
                }
                Ok((Plan::Get { table: table.name.clone(), arity: table.columns.len() }, Scope::new(cols)))
            }
            ast::TableFactor::Derived { lateral: false, subquery, alias, .. } => {
                let planned = self.query(subquery, None, None).map_err(|e| {
                    if e.message.starts_with("unknown column") && outer.is_some() {
                        PlanError {
                            message: format!("{} (derived tables cannot reference enclosing queries)", e.message),
                            ..e
                        }
                    } else {
                        e
                    }
                })?;
                let visible: Vec<usize> = (0..planned.visible_end).collect();
                let qualifier = alias.as_ref().map(|a| a.name.value.clone());
                let mut cols: Vec<ScopeCol> = planned.scope.cols[..planned.visible_end]
                    .iter()
                    .map(|c| ScopeCol::new(qualifier.clone(), c.name.clone(), c.ty))
                    .collect();
                if let Some(a) = alias {
                    rename(&mut cols, a)?;
                }
                Ok((planned.plan.select_columns(&visible), Scope::new(cols)))
            }
            ast::TableFactor::NestedJoin { table_with_joins, alias } => {
                let mut b = FromBuilder::new(None);
                self.table_with_joins(&mut b, table_with_joins, outer)?;
                let mut scope = b.scope.clone();
                if let Some(a) = alias {
                    for c in &mut scope.cols {
                        c.qualifier = Some(a.name.value.clone());
                    }
                }
                Ok((b.finish(), scope))
            }
            other => Err(PlanError::at(format!("unsupported FROM item {other}"), other.span())),
        }
    }

    /// An expression context over `scope`.
    pub(crate) fn expr_ctx<'s>(
        &'s self,
        scope: &'s Scope,
        outer: Option<&'s Outer<'s>>,
        aggs: Option<&'s std::cell::RefCell<Vec<crate::plan::AggCall>>>,
        subqueries: Option<&'s std::cell::RefCell<Vec<super::expr::PendingSubquery>>>,
        clause: &'static str,
    ) -> ExprCtx<'s> {
        ExprCtx { scope, outer, aggs, subqueries, planner: self, clause }
    }
}

/// Applies `AS alias(c1, c2, …)` column renames.
fn rename(cols: &mut [ScopeCol], alias: &ast::TableAlias) -> Result<()> {
    if alias.columns.len() > cols.len() {
        return Err(PlanError::at(
            format!("alias {} names more columns than the table has", alias.name.value),
            alias.name.span,
        ));
    }
    for (c, a) in cols.iter_mut().zip(&alias.columns) {
        c.name = a.name.value.clone();
    }
    Ok(())
}
