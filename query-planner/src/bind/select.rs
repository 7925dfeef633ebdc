//! SELECT blocks and set operations: projection, WHERE, GROUP BY / HAVING, DISTINCT,
//! ORDER BY (with hidden sort columns) and LIMIT / OFFSET as a maintained top-k.

use super::expr::{unify, SubqueryKind, AGG_BASE, SUBQUERY_BASE};
use super::scope::{Outer, Scope, ScopeCol};
use super::{Planned, Planner};
use crate::error::{PlanError, Result};
use crate::expr::Expr;
use crate::plan::{AggCall, AggFunc, Plan, SetOpKind, SortKey};
use crate::row::Row;
use crate::types::{DataType, Value};
use sqlparser::ast::{self, Spanned};
use std::cell::RefCell;

/// LIMIT and OFFSET of a query.
#[derive(Clone, Copy, Default)]
struct Limit {
    limit: Option<u64>,
    offset: u64,
}

impl Limit {
    fn is_some(&self) -> bool {
        self.limit.is_some() || self.offset > 0
    }
}

/// The decorrelation prefix: distinct values of the enclosing query's referenced columns.
pub(crate) type Prefix = (Plan, Scope);

impl Planner<'_> {
    /// Plans a query; with `prefix`, planned once per prefix row (decorrelated), the prefix
    /// columns first in the output.
    #[recursive::recursive]
    pub(crate) fn query(&self, q: &ast::Query, outer: Option<&Outer>, prefix: Option<Prefix>) -> Result<Planned> {
        self.count_planned_query()?;
        if let Some(w) = &q.with {
            return Err(PlanError::at("WITH (common table expressions) is not supported", w.span()));
        }
        if q.fetch.is_some() || !q.locks.is_empty() {
            return Err(PlanError::new("FETCH and locking clauses are not supported"));
        }
        let limit = self.limit(q)?;
        let order_by: &[ast::OrderByExpr] = match &q.order_by {
            None => &[],
            Some(ob) => match &ob.kind {
                ast::OrderByKind::Expressions(v) => v,
                ast::OrderByKind::All(_) => return Err(PlanError::new("ORDER BY ALL is not supported")),
            },
        };
        match &*q.body {
            ast::SetExpr::Select(s) => self.select(s, order_by, limit, outer, prefix),
            ast::SetExpr::Query(inner) if order_by.is_empty() && !limit.is_some() => self.query(inner, outer, prefix),
            body => {
                if prefix.is_some() {
                    return Err(PlanError::at(
                        "correlated subqueries with UNION / INTERSECT / EXCEPT / VALUES are not supported",
                        body.span(),
                    ));
                }
                let mut planned = self.set_expr(body, outer)?;
                self.order_and_limit_output(&mut planned, order_by, limit)?;
                Ok(planned)
            }
        }
    }

    fn limit(&self, q: &ast::Query) -> Result<Limit> {
        let number = |e: &ast::Expr| -> Result<u64> {
            match e {
                ast::Expr::Value(v) => match &v.value {
                    ast::Value::Number(n, _) => n.parse::<u64>().ok(),
                    _ => None,
                },
                _ => None,
            }
            .ok_or_else(|| PlanError::at("LIMIT and OFFSET must be non-negative integer literals", e.span()))
        };
        match &q.limit_clause {
            None => Ok(Limit::default()),
            Some(ast::LimitClause::LimitOffset { limit, offset, limit_by }) => {
                if !limit_by.is_empty() {
                    return Err(PlanError::new("LIMIT BY is not supported"));
                }
                Ok(Limit {
                    limit: limit.as_ref().map(number).transpose()?,
                    offset: offset.as_ref().map(|o| number(&o.value)).transpose()?.unwrap_or(0),
                })
            }
            Some(ast::LimitClause::OffsetCommaLimit { offset, limit }) => {
                Ok(Limit { limit: Some(number(limit)?), offset: number(offset)? })
            }
        }
    }

    /// Plans UNION / INTERSECT / EXCEPT / VALUES / parenthesised bodies (never correlated).
    #[recursive::recursive]
    fn set_expr(&self, body: &ast::SetExpr, outer: Option<&Outer>) -> Result<Planned> {
        match body {
            ast::SetExpr::Select(s) => self.select(s, &[], Limit::default(), outer, None),
            ast::SetExpr::Query(q) => {
                let mut p = self.query(q, outer, None)?;
                let visible: Vec<usize> = (0..p.visible_end).collect();
                p.plan = p.plan.select_columns(&visible);
                p.scope.cols.truncate(p.visible_end);
                p.order.clear();
                Ok(p)
            }
            ast::SetExpr::Values(v) => self.values(v, outer),
            ast::SetExpr::SetOperation { left, op, set_quantifier, right } => {
                let l = self.set_expr(left, outer)?;
                let r = self.set_expr(right, outer)?;
                if l.visible_end != r.visible_end {
                    return Err(PlanError::at(
                        format!("{op} operands have {} and {} columns", l.visible_end, r.visible_end),
                        body.span(),
                    ));
                }
                let mut cols = Vec::new();
                for (a, b) in l.scope.cols.iter().zip(&r.scope.cols) {
                    let ty = unify(a.ty, b.ty).map_err(|m| PlanError::at(format!("{op}: {m}"), body.span()))?;
                    cols.push(ScopeCol::new(None, a.name.clone(), ty));
                }
                let all = match set_quantifier {
                    ast::SetQuantifier::All => true,
                    ast::SetQuantifier::Distinct | ast::SetQuantifier::None => false,
                    other => return Err(PlanError::at(format!("unsupported set quantifier {other}"), body.span())),
                };
                let plan = match op {
                    ast::SetOperator::Union => {
                        let u = Plan::Union { inputs: vec![l.plan, r.plan] };
                        if all {
                            u
                        } else {
                            Plan::Distinct { input: Box::new(u) }
                        }
                    }
                    ast::SetOperator::Intersect | ast::SetOperator::Except | ast::SetOperator::Minus => Plan::SetOp {
                        op: if matches!(op, ast::SetOperator::Intersect) {
                            SetOpKind::Intersect
                        } else {
                            SetOpKind::Except
                        },
                        all,
                        left: Box::new(l.plan),
                        right: Box::new(r.plan),
                    },
                };
                let n = cols.len();
                Ok(Planned {
                    plan,
                    scope: Scope::new(cols),
                    prefix: 0,
                    visible_end: n,
                    order: vec![],
                    empty_row: None,
                    single_row: false,
                })
            }
            other => Err(PlanError::at(format!("unsupported query body {other}"), other.span())),
        }
    }

    fn values(&self, v: &ast::Values, outer: Option<&Outer>) -> Result<Planned> {
        let empty = Scope::default();
        let ctx = self.expr_ctx(&empty, outer, None, None, "VALUES");
        let mut rows = Vec::new();
        let mut types: Vec<DataType> = Vec::new();
        for row in &v.rows {
            let mut vals = Vec::new();
            for (i, e) in row.iter().enumerate() {
                let (x, t) = ctx.bind(e)?;
                if !x.columns().is_empty() {
                    return Err(PlanError::at("VALUES entries must be constants", e.span()));
                }
                if types.len() <= i {
                    types.push(t);
                } else {
                    types[i] = unify(types[i], t).map_err(|m| PlanError::at(m, e.span()))?;
                }
                vals.push(x.eval(&[]));
            }
            if !rows.is_empty() && vals.len() != types.len() {
                return Err(PlanError::new("VALUES rows have different numbers of columns"));
            }
            rows.push(Row::new(vals));
        }
        let cols: Vec<ScopeCol> =
            types.iter().enumerate().map(|(i, t)| ScopeCol::new(None, format!("column{}", i + 1), *t)).collect();
        let n = cols.len();
        Ok(Planned {
            plan: Plan::Constant { rows, arity: n },
            scope: Scope::new(cols),
            prefix: 0,
            visible_end: n,
            order: vec![],
            empty_row: None,
            single_row: false,
        })
    }

    /// ORDER BY / LIMIT over the output columns of a set operation.
    fn order_and_limit_output(&self, p: &mut Planned, order_by: &[ast::OrderByExpr], limit: Limit) -> Result<()> {
        let mut keys = Vec::new();
        for ob in order_by {
            let col = match &ob.expr {
                ast::Expr::Value(v) => {
                    ordinal(&v.value, p.visible_end).map_err(|m| PlanError::at(m, ob.expr.span()))?
                }
                ast::Expr::Identifier(id) => p.scope.cols[..p.visible_end]
                    .iter()
                    .position(|c| c.name.eq_ignore_ascii_case(&id.value))
                    .ok_or_else(|| {
                        PlanError::at(
                            format!("ORDER BY term {} does not match a result column", id.value),
                            ob.expr.span(),
                        )
                    })?,
                other => {
                    return Err(PlanError::at("ORDER BY of a set operation must name a result column", other.span()));
                }
            };
            keys.push(sort_key(col, &ob.options));
        }
        if limit.is_some() {
            p.plan = Plan::TopK {
                input: Box::new(p.plan.clone()),
                group: vec![],
                order: keys.clone(),
                limit: limit.limit,
                offset: limit.offset,
            };
        }
        p.order = keys;
        Ok(())
    }

    fn select(
        &self,
        s: &ast::Select,
        order_by: &[ast::OrderByExpr],
        limit: Limit,
        outer: Option<&Outer>,
        prefix: Option<Prefix>,
    ) -> Result<Planned> {
        if s.having.is_some()
            && matches!(&s.group_by, ast::GroupByExpr::Expressions(g, _) if g.is_empty())
            && prefix.is_some()
        {
            return Err(PlanError::at("HAVING without GROUP BY in a correlated subquery is not supported", s.span()));
        }
        reject_unsupported(s)?;
        let prefix_width = prefix.as_ref().map_or(0, |p| p.1.len());
        let mut from = self.plan_from(&s.from, outer, prefix)?;
        let scope = from.scope.clone();

        // WHERE: plain conjuncts join the FROM pool (for pushdown and join keys); those with
        // subqueries are applied after the subqueries are attached.
        let subs = RefCell::new(Vec::new());
        let mut post_where = Vec::new();
        if let Some(w) = &s.selection {
            let ctx = self.expr_ctx(&scope, outer, None, Some(&subs), "WHERE");
            for c in ctx.bind_condition(w)?.conjuncts() {
                if mentions(&c, SUBQUERY_BASE) {
                    post_where.push(c);
                } else {
                    from.pool.push(c);
                }
            }
        }
        let pinned = !s.from.is_empty() && self.pins_primary_key(&s.from, &from.pool, prefix_width);
        let rel = from.finish();
        let subs = subs.into_inner();
        // An EXISTS that is a conjunct of its own keeps rows by a semijoin (see `attach`).
        let semi: Vec<usize> = post_where
            .iter()
            .filter_map(|c| match c {
                Expr::Column(i) if *i >= SUBQUERY_BASE => Some(*i - SUBQUERY_BASE),
                _ => None,
            })
            .filter(|&i| matches!(subs[i].kind, SubqueryKind::Exists))
            .collect();
        let (mut rel, where_scope, repl) = self.attach(rel, &scope, subs, &semi, outer)?;
        if !post_where.is_empty() {
            rel = rel.filter(Expr::and_all(post_where.iter().map(|c| replace_subqueries(c, &repl)).collect()));
        }

        // SELECT list, possibly with aggregates.
        let aggs = RefCell::new(Vec::new());
        let select_subs = RefCell::new(Vec::new());
        let ctx = self.expr_ctx(&where_scope, outer, Some(&aggs), Some(&select_subs), "SELECT");
        let mut items: Vec<(Expr, DataType, String)> = Vec::new();
        for item in &s.projection {
            self.select_item(&ctx, &where_scope, item, &mut items)?;
        }
        let group_exprs: Vec<Expr> = match &s.group_by {
            ast::GroupByExpr::Expressions(g, mods) if mods.is_empty() => {
                let gctx = self.expr_ctx(&where_scope, outer, None, None, "GROUP BY");
                g.iter().map(|e| self.group_expr(&gctx, e, &items)).collect::<Result<_>>()?
            }
            _ => return Err(PlanError::at("unsupported GROUP BY form", s.span())),
        };
        let having_subs = RefCell::new(Vec::new());
        let having = match &s.having {
            Some(h) => {
                let hctx = self.expr_ctx(&where_scope, outer, Some(&aggs), Some(&having_subs), "HAVING");
                Some(hctx.bind_condition(h)?)
            }
            None => None,
        };
        // ORDER BY terms, bound like SELECT items.
        let order_subs = RefCell::new(Vec::new());
        let octx = self.expr_ctx(&where_scope, outer, Some(&aggs), Some(&order_subs), "ORDER BY");
        let mut order_terms: Vec<(OrderTerm, &ast::OrderByOptions)> = Vec::new();
        for ob in order_by {
            order_terms.push((self.order_term(&octx, &ob.expr, &items)?, &ob.options));
        }
        if !order_subs.borrow().is_empty() {
            return Err(PlanError::new("subqueries in ORDER BY are not supported"));
        }

        let is_agg = !group_exprs.is_empty() || !aggs.borrow().is_empty() || having.is_some();
        let mut select_subs = select_subs.into_inner();
        let mut having_subs = having_subs.into_inner();
        let (rel, rel_scope, mut exprs, having, empty_row, single_row) = if is_agg {
            // Group by the decorrelation prefix as well, so each enclosing row gets its groups.
            let mut groups: Vec<Expr> = (0..prefix_width).map(Expr::Column).collect();
            groups.extend(group_exprs.iter().cloned());
            let aggs = aggs.into_inner();
            let post = |e: &Expr| post_aggregate(e, &groups, &where_scope);
            let mut exprs: Vec<Expr> = Vec::new();
            for (e, _, _) in &items {
                exprs.push(post(e)?);
            }
            for t in &mut order_terms {
                if let OrderTerm::Expr(e) = &mut t.0 {
                    *e = post(e)?;
                }
            }
            let having = having.as_ref().map(&post).transpose()?;
            for p in select_subs.iter_mut().chain(having_subs.iter_mut()) {
                if let super::expr::SubqueryKind::In(x) = &mut p.kind {
                    *x = post(x)?;
                }
            }
            let mut agg_cols: Vec<ScopeCol> = groups
                .iter()
                .map(|g| match g {
                    Expr::Column(c) => where_scope.cols[*c].clone(),
                    _ => ScopeCol::new(None, "?group", DataType::Null),
                })
                .collect();
            agg_cols.extend(aggs.iter().map(|a| ScopeCol::new(None, "?agg", a.ty)));
            let global = group_exprs.is_empty();
            let empty_row = (global && having.is_none() && prefix_width > 0)
                .then(|| empty_aggregate_row(&exprs, prefix_width, &aggs))
                .flatten();
            let plan = Plan::Aggregate { input: Box::new(rel), group_by: groups, aggs };
            (plan, Scope::new(agg_cols), exprs, having, empty_row, global)
        } else {
            let exprs = items.iter().map(|(e, _, _)| e.clone()).collect();
            (rel, where_scope.clone(), exprs, None, None, false)
        };

        // Attach SELECT and HAVING subqueries to the (aggregated) relation.
        let n_select = select_subs.len();
        select_subs.append(&mut having_subs);
        let (mut rel, _, repl) = self.attach(rel, &rel_scope, select_subs, &[], outer)?;
        let shift = |e: &Expr, base: usize| {
            e.rewrite(&|x| match x {
                Expr::Column(c) if *c >= SUBQUERY_BASE => Some(repl[*c - SUBQUERY_BASE + base].clone()),
                _ => None,
            })
        };
        for e in &mut exprs {
            *e = shift(e, 0);
        }
        if let Some(h) = having {
            rel = rel.filter(shift(&h, n_select));
        }

        // Output columns: prefix, visible items, hidden ORDER BY terms.
        let mut out: Vec<Expr> = (0..prefix_width).map(Expr::Column).collect();
        let mut cols: Vec<ScopeCol> = rel_scope.cols[..prefix_width].to_vec();
        for (e, (_, ty, name)) in exprs.iter().zip(&items) {
            out.push(e.clone());
            cols.push(ScopeCol::new(None, name.clone(), *ty));
        }
        let visible_end = out.len();
        let distinct = match &s.distinct {
            None | Some(ast::Distinct::All) => false,
            Some(ast::Distinct::Distinct) => true,
            Some(ast::Distinct::On(_)) => return Err(PlanError::new("DISTINCT ON is not supported")),
        };
        let mut keys = Vec::new();
        for (term, opts) in order_terms {
            let col = match term {
                OrderTerm::Output(i) => prefix_width + i,
                OrderTerm::Expr(e) => match out[prefix_width..visible_end].iter().position(|x| *x == e) {
                    Some(i) => prefix_width + i,
                    None if distinct => {
                        return Err(PlanError::new(
                            "with SELECT DISTINCT, ORDER BY terms must appear in the select list",
                        ));
                    }
                    None => {
                        out.push(e);
                        cols.push(ScopeCol::new(None, "?order", DataType::Null));
                        out.len() - 1
                    }
                },
            };
            keys.push(sort_key(col, opts));
        }
        let mut plan = rel.project(out);
        if distinct {
            plan = Plan::Distinct { input: Box::new(plan) };
        }
        let single_row = single_row || (pinned && !is_agg) || limit.limit.is_some_and(|l| l <= 1);
        if limit.is_some() {
            plan = Plan::TopK {
                input: Box::new(plan),
                group: (0..prefix_width).collect(),
                order: keys.clone(),
                limit: limit.limit,
                offset: limit.offset,
            };
        }
        Ok(Planned {
            plan,
            scope: Scope::new(cols),
            prefix: prefix_width,
            visible_end,
            order: keys,
            empty_row,
            single_row,
        })
    }

    /// True if FROM is one table whose every primary-key column is equated by a conjunct to
    /// a constant or an enclosing-query value: at most one row per prefix value.
    fn pins_primary_key(&self, from: &[ast::TableWithJoins], conjuncts: &[Expr], prefix: usize) -> bool {
        let [twj] = from else { return false };
        let ast::TableFactor::Table { name, .. } = &twj.relation else { return false };
        if !twj.joins.is_empty() {
            return false;
        }
        let Some(table) = crate::catalog::object_name(name).ok().and_then(|n| self.catalog.table(&n)) else {
            return false;
        };
        !table.primary_key.is_empty()
            && table.primary_key.iter().all(|&pk| {
                let col = Expr::Column(prefix + pk);
                conjuncts.iter().any(|c| match c {
                    Expr::Binary(crate::expr::BinOp::Eq, a, b) => {
                        let outside = |e: &Expr| e.columns().iter().all(|&x| x < prefix);
                        (**a == col && outside(b)) || (**b == col && outside(a))
                    }
                    _ => false,
                })
            })
    }

    fn select_item(
        &self,
        ctx: &super::expr::ExprCtx,
        scope: &Scope,
        item: &ast::SelectItem,
        out: &mut Vec<(Expr, DataType, String)>,
    ) -> Result<()> {
        match item {
            ast::SelectItem::UnnamedExpr(e) => {
                let (x, t) = ctx.bind(e)?;
                out.push((x, t, output_name(e)));
            }
            ast::SelectItem::ExprWithAlias { expr, alias } => {
                let (x, t) = ctx.bind(expr)?;
                out.push((x, t, alias.value.clone()));
            }
            ast::SelectItem::Wildcard(_) => {
                let before = out.len();
                for (i, c) in scope.cols.iter().enumerate() {
                    if !c.outer && !c.using_dup && !c.name.starts_with('?') {
                        out.push((Expr::Column(i), c.ty, c.name.clone()));
                    }
                }
                if out.len() == before {
                    return Err(PlanError::new("SELECT * with no tables"));
                }
            }
            ast::SelectItem::QualifiedWildcard(kind, _) => {
                let q = match kind {
                    ast::SelectItemQualifiedWildcardKind::ObjectName(n) => crate::catalog::object_name(n)?,
                    ast::SelectItemQualifiedWildcardKind::Expr(e) => {
                        return Err(PlanError::at("unsupported qualified wildcard", e.span()));
                    }
                };
                let before = out.len();
                for (i, c) in scope.cols.iter().enumerate() {
                    if !c.outer && c.qualifier.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(&q)) {
                        out.push((Expr::Column(i), c.ty, c.name.clone()));
                    }
                }
                if out.len() == before {
                    return Err(PlanError::new(format!("unknown table or alias {q} in {q}.*")));
                }
            }
            other => return Err(PlanError::at(format!("unsupported select item {other}"), other.span())),
        }
        Ok(())
    }

    /// A GROUP BY term: an ordinal, an output alias, or an expression over the input.
    fn group_expr(
        &self,
        ctx: &super::expr::ExprCtx,
        e: &ast::Expr,
        items: &[(Expr, DataType, String)],
    ) -> Result<Expr> {
        if let Some(i) = ordinal_term(e, items.len()) {
            return Ok(items[i?].0.clone());
        }
        match ctx.bind(e) {
            Ok((x, _)) => Ok(x),
            Err(err) => {
                if let ast::Expr::Identifier(id) = e {
                    if let Some((x, _, _)) = items.iter().find(|(_, _, n)| n.eq_ignore_ascii_case(&id.value)) {
                        if x.columns().iter().all(|&c| c < AGG_BASE) {
                            return Ok(x.clone());
                        }
                    }
                }
                Err(err)
            }
        }
    }

    fn order_term(
        &self,
        ctx: &super::expr::ExprCtx,
        e: &ast::Expr,
        items: &[(Expr, DataType, String)],
    ) -> Result<OrderTerm> {
        if let Some(i) = ordinal_term(e, items.len()) {
            return i.map(OrderTerm::Output);
        }
        if let ast::Expr::Identifier(id) = e {
            if let Some(i) = items.iter().position(|(_, _, n)| n.eq_ignore_ascii_case(&id.value)) {
                return Ok(OrderTerm::Output(i));
            }
        }
        Ok(OrderTerm::Expr(ctx.bind(e)?.0))
    }
}

enum OrderTerm {
    Output(usize),
    Expr(Expr),
}

fn reject_unsupported(s: &ast::Select) -> Result<()> {
    let bad = if s.top.is_some() {
        Some("TOP")
    } else if s.into.is_some() {
        Some("SELECT INTO")
    } else if !s.lateral_views.is_empty() {
        Some("LATERAL VIEW")
    } else if s.qualify.is_some() {
        Some("QUALIFY")
    } else if !s.named_window.is_empty() {
        Some("WINDOW")
    } else if s.prewhere.is_some() {
        Some("PREWHERE")
    } else if !s.connect_by.is_empty() {
        Some("CONNECT BY")
    } else {
        None
    };
    match bad {
        Some(what) => Err(PlanError::at(format!("{what} is not supported"), s.span())),
        None => Ok(()),
    }
}

/// A 1-based ordinal into `n` result columns, as a 0-based index.
fn ordinal(v: &ast::Value, n: usize) -> std::result::Result<usize, String> {
    match v {
        ast::Value::Number(s, _) => match s.parse::<usize>() {
            Ok(i) if i >= 1 && i <= n => Ok(i - 1),
            _ => Err(format!("column position {s} is out of range 1..{n}")),
        },
        other => Err(format!("cannot order or group by constant {other}")),
    }
}

/// If `e` is an integer literal, the 0-based result column it names (GROUP BY 1, ORDER BY 2).
fn ordinal_term(e: &ast::Expr, n: usize) -> Option<Result<usize>> {
    let ast::Expr::Value(v) = e else { return None };
    matches!(v.value, ast::Value::Number(..)).then(|| ordinal(&v.value, n).map_err(|m| PlanError::at(m, e.span())))
}

fn sort_key(column: usize, o: &ast::OrderByOptions) -> SortKey {
    let desc = matches!(o.sort, Some(ast::OrderBySort::Desc));
    // SQLite: NULLs are the smallest values.
    SortKey { column, desc, nulls_first: o.nulls_first.unwrap_or(!desc) }
}

/// The result-column name SQLite would give an unaliased expression.
fn output_name(e: &ast::Expr) -> String {
    match e {
        ast::Expr::Identifier(id) => id.value.clone(),
        ast::Expr::CompoundIdentifier(parts) => parts.last().map_or(String::new(), |p| p.value.clone()),
        other => other.to_string(),
    }
}

/// True if `e` reads a column index at or above `base` (placeholders).
fn mentions(e: &Expr, base: usize) -> bool {
    e.columns().iter().any(|&c| c >= base)
}

/// Replaces subquery placeholders with their attached expressions.
pub(crate) fn replace_subqueries(e: &Expr, repl: &[Expr]) -> Expr {
    e.rewrite(&|x| match x {
        Expr::Column(c) if *c >= SUBQUERY_BASE => Some(repl[*c - SUBQUERY_BASE].clone()),
        _ => None,
    })
}

/// Rewrites an expression over the aggregate's input into one over its output
/// (group values, then aggregate values).
fn post_aggregate(e: &Expr, groups: &[Expr], scope: &Scope) -> Result<Expr> {
    let err: RefCell<Option<PlanError>> = RefCell::new(None);
    let out = e.rewrite(&|x| {
        if let Some(i) = groups.iter().position(|g| g == x) {
            return Some(Expr::Column(i));
        }
        match x {
            Expr::Column(c) if *c >= SUBQUERY_BASE => Some(x.clone()),
            Expr::Column(c) if *c >= AGG_BASE => Some(Expr::Column(groups.len() + (*c - AGG_BASE))),
            Expr::Column(c) => {
                let name = scope.cols.get(*c).map_or("?".to_string(), |col| match &col.qualifier {
                    Some(q) => format!("{q}.{}", col.name),
                    None => col.name.clone(),
                });
                err.borrow_mut().get_or_insert_with(|| {
                    PlanError::new(format!("column {name} must appear in GROUP BY or be used in an aggregate function"))
                });
                Some(x.clone())
            }
            _ => None,
        }
    });
    match err.into_inner() {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// The visible row of a global aggregate over no input: COUNT is 0, other aggregates NULL.
/// `None` if the row depends on the decorrelation prefix.
fn empty_aggregate_row(exprs: &[Expr], prefix: usize, aggs: &[AggCall]) -> Option<Vec<Value>> {
    if exprs.iter().any(|e| e.columns().iter().any(|&c| c < prefix)) {
        return None;
    }
    let mut row = vec![Value::Null; prefix];
    row.extend(aggs.iter().map(|a| match a.func {
        AggFunc::Count | AggFunc::CountStar => Value::Int(0),
        _ => Value::Null,
    }));
    Some(exprs.iter().map(|e| e.eval(&row)).collect())
}
