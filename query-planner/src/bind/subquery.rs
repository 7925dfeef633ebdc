//! Subqueries in expressions, decorrelated into joins and aggregates.
//!
//! A subquery is first bound once to discover which enclosing columns it references. If none,
//! it is planned on its own. Otherwise the distinct values of those columns (the *prefix*) are
//! joined into the subquery's FROM and carried through its grouping, so it is planned once per
//! enclosing row value; the result is left-joined back on the prefix (NULL-safe):
//! - `EXISTS`: COUNT(*) per prefix, true when positive; where the EXISTS is a WHERE conjunct
//!   of its own, an inner join on the distinct prefixes the subquery has (a semijoin) instead;
//! - scalar: the single value per prefix (or the empty-input value of a global aggregate);
//! - `x IN`: matches per (prefix, x), plus row and non-NULL counts per prefix for SQL's NULL rules.

use super::expr::{PendingSubquery, SubqueryKind};
use super::scope::{Outer, Scope, ScopeCol};
use super::{Planned, Planner};
use crate::error::{PlanError, Result};
use crate::expr::{BinOp, Expr, Func};
use crate::plan::{AggCall, AggFunc, JoinKey, JoinKind, Plan};
use crate::types::{DataType, Value};
use sqlparser::ast::{self, Spanned};

impl Planner<'_> {
    /// The type of a scalar subquery's single column.
    pub(crate) fn scalar_subquery_type(
        &self,
        q: &ast::Query,
        scope: &Scope,
        outer: Option<&Outer>,
    ) -> Result<DataType> {
        let probe = Outer::new(scope, outer);
        let p = self.query(q, Some(&probe), None)?;
        single_column(&p, q)?;
        Ok(p.scope.cols[p.prefix].ty)
    }

    /// Joins each pending subquery's result to `rel`, returning the widened relation and scope
    /// and, per subquery, the expression (over the widened relation) that replaces it. The
    /// subqueries numbered in `semi` are EXISTS conditions every row of the result must meet
    /// (WHERE conjuncts of their own), so rows failing them may be dropped here.
    pub(crate) fn attach(
        &self,
        mut rel: Plan,
        scope: &Scope,
        pending: Vec<PendingSubquery>,
        semi: &[usize],
        outer: Option<&Outer>,
    ) -> Result<(Plan, Scope, Vec<Expr>)> {
        let mut scope = scope.clone();
        let mut repl = Vec::new();
        for (index, p) in pending.into_iter().enumerate() {
            let probe = Outer::new(&scope, outer);
            let aggregated = scope.cols.iter().any(|c| c.name == "?agg" || c.name == "?group");
            self.query(&p.query, Some(&probe), None).map_err(|e| {
                if aggregated && e.message.starts_with("unknown") {
                    let hint = "in a grouped query a subquery may refer only to GROUP BY columns, not expressions";
                    PlanError { message: format!("{} ({hint})", e.message), ..e }
                } else {
                    e
                }
            })?;
            let used: Vec<usize> = probe.used.into_inner().into_iter().collect();
            let sub = if used.is_empty() {
                self.query(&p.query, outer, None)?
            } else {
                let prefix_plan = Plan::Distinct { input: Box::new(rel.clone().select_columns(&used)) };
                let prefix_scope = Scope::new(
                    used.iter().map(|&i| ScopeCol { outer: true, using_dup: false, ..scope.cols[i].clone() }).collect(),
                );
                let chain = Outer::new(&scope, outer);
                self.query(&p.query, Some(&chain), Some((prefix_plan, prefix_scope)))?
            };
            let keys: Vec<JoinKey> = used
                .iter()
                .enumerate()
                .map(|(j, &i)| JoinKey { left: Expr::Column(i), right: Expr::Column(j), null_safe: true })
                .collect();
            let d = used.len();
            let (new_rel, expr) = match p.kind {
                SubqueryKind::Exists => {
                    // A WHERE conjunct of its own keeps the rows with a partner among distinct
                    // values (an inner join, so each matches at most once): the values the
                    // subquery compares them with where it is correlated by equalities alone
                    // (no prefix carried through it), else the prefixes it has a row for.
                    let semijoin = (sub.empty_row.is_none() && semi.contains(&index))
                        .then(|| {
                            self.semijoin_on_equalities(&p.query, &scope, outer).or_else(|| {
                                let prefixes: Vec<usize> = (0..d).collect();
                                let present = sub.plan.clone().select_columns(&prefixes);
                                (d > 0).then(|| (Plan::Distinct { input: Box::new(present) }, keys.clone()))
                            })
                        })
                        .flatten();
                    if sub.empty_row.is_some() {
                        // A correlated global aggregate always has a row.
                        (rel, Expr::Literal(Value::Bool(true)))
                    } else if let Some((present, keys)) = semijoin {
                        let rel = Plan::Join {
                            left: Box::new(rel),
                            right: Box::new(present),
                            kind: JoinKind::Inner,
                            keys,
                            residual: None,
                        };
                        (rel, Expr::Literal(Value::Bool(true)))
                    } else {
                        let counts = count_per_prefix(sub.plan, d, vec![]);
                        let w = rel.arity();
                        let rel = left_join(rel, counts, keys);
                        (rel, positive(Expr::Column(w + d)))
                    }
                }
                SubqueryKind::Scalar => {
                    single_column(&sub, &p.query)?;
                    let (rel, value, _) = attach_scalar(rel, sub, keys, &p.query)?;
                    (rel, value)
                }
                SubqueryKind::In(x) => {
                    single_column(&sub, &p.query)?;
                    if sub.single_row {
                        // At most one row: `x IN (s)` is `x = s`, but FALSE when s has no row.
                        let always_a_row = sub.empty_row.is_some();
                        let (rel, value, present) = attach_scalar(rel, sub, keys, &p.query)?;
                        let eq = Expr::binary(BinOp::Eq, x, value);
                        let expr = if always_a_row {
                            eq
                        } else {
                            Expr::Case {
                                branches: vec![(Expr::IsNull(Box::new(present)), Expr::Literal(Value::Bool(false)))],
                                else_: Box::new(eq),
                            }
                        };
                        (rel, expr)
                    } else {
                        attach_in(rel, sub, &used, keys, x)
                    }
                }
            };
            rel = new_rel;
            while scope.len() < rel.arity() {
                scope.cols.push(ScopeCol::new(None, "?subquery", DataType::Null));
            }
            repl.push(expr);
        }
        Ok((rel, scope, repl))
    }
}

impl Planner<'_> {
    /// For `EXISTS (SELECT … FROM f WHERE o1 = e1 AND … AND rest)` whose only references to the
    /// enclosing relation are the columns `o1…` compared for equality with expressions `e1…`
    /// of its own (of the same type): the distinct `(e1, …)` of `SELECT e1, … FROM f WHERE
    /// rest`, planned on its own, and the join keys `oi = ei` (never NULL-safe: `=` is not
    /// true on NULL) that keep exactly the enclosing rows the EXISTS is true for. `None` when
    /// the subquery has another shape (grouping, LIMIT, another correlation), which the
    /// general decorrelation handles.
    fn semijoin_on_equalities(
        &self,
        q: &ast::Query,
        scope: &Scope,
        outer: Option<&Outer>,
    ) -> Option<(Plan, Vec<JoinKey>)> {
        let ast::SetExpr::Select(s) = &*q.body else { return None };
        let plain_group = matches!(&s.group_by, ast::GroupByExpr::Expressions(g, m) if g.is_empty() && m.is_empty());
        if q.with.is_some() || q.order_by.is_some() || q.limit_clause.is_some() || q.fetch.is_some() {
            return None;
        }
        if !plain_group || s.having.is_some() || s.selection.is_none() {
            return None;
        }
        // The same subquery with another SELECT list and WHERE clause.
        let with = |projection: Vec<ast::Expr>, selection: Option<ast::Expr>| {
            let mut select = (**s).clone();
            select.projection = projection.into_iter().map(ast::SelectItem::UnnamedExpr).collect();
            select.selection = selection;
            ast::Query { body: Box::new(ast::SetExpr::Select(Box::new(select))), ..q.clone() }
        };
        // The enclosing column a plain column name refers to from inside the subquery.
        let enclosing = |e: &ast::Expr| -> Option<usize> {
            if !matches!(e, ast::Expr::Identifier(_) | ast::Expr::CompoundIdentifier(_)) {
                return None;
            }
            let probe = Outer::new(scope, outer);
            self.query(&with(vec![e.clone()], None), Some(&probe), None).ok()?;
            let used = probe.used.into_inner();
            (used.len() == 1).then(|| *used.first().expect("one"))
        };
        let mut conjuncts = Vec::new();
        split_and(s.selection.as_ref().expect("checked"), &mut conjuncts);
        let (mut outer_cols, mut inner, mut rest) = (Vec::new(), Vec::new(), Vec::new());
        for c in conjuncts {
            if let ast::Expr::BinaryOp { left, op: ast::BinaryOperator::Eq, right } = c {
                if let Some(i) = enclosing(left) {
                    outer_cols.push(i);
                    inner.push((**right).clone());
                    continue;
                }
                if let Some(i) = enclosing(right) {
                    outer_cols.push(i);
                    inner.push((**left).clone());
                    continue;
                }
            }
            rest.push(c.clone());
        }
        if outer_cols.is_empty() {
            return None;
        }
        let selection = rest.into_iter().reduce(|a, b| ast::Expr::BinaryOp {
            left: Box::new(a),
            op: ast::BinaryOperator::And,
            right: Box::new(b),
        });
        let rewritten = with(inner, selection);
        // Nothing else may refer to the enclosing relation (references further out are
        // decorrelated by the query that encloses this one, as for any subquery); then the
        // plan bound past `probe` is the subquery's own.
        let probe = Outer::new(scope, outer);
        let sub = self.query(&rewritten, Some(&probe), None).ok()?;
        if !probe.used.into_inner().is_empty() {
            return None;
        }
        let n = outer_cols.len();
        if (0..n).any(|k| sub.scope.cols[k].ty != scope.cols[outer_cols[k]].ty) {
            return None;
        }
        let keys = outer_cols
            .iter()
            .enumerate()
            .map(|(k, &i)| JoinKey { left: Expr::Column(i), right: Expr::Column(k), null_safe: false })
            .collect();
        let cols: Vec<usize> = (0..n).collect();
        Some((Plan::Distinct { input: Box::new(sub.plan.select_columns(&cols)) }, keys))
    }
}

/// The operands of a chain of ANDs (through parentheses), in order.
fn split_and<'e>(e: &'e ast::Expr, out: &mut Vec<&'e ast::Expr>) {
    match e {
        ast::Expr::BinaryOp { left, op: ast::BinaryOperator::And, right } => {
            split_and(left, out);
            split_and(right, out);
        }
        ast::Expr::Nested(inner) => split_and(inner, out),
        _ => out.push(e),
    }
}

fn single_column(p: &Planned, q: &ast::Query) -> Result<()> {
    let n = p.visible_end - p.prefix;
    if n != 1 {
        return Err(PlanError::at(format!("subquery must return exactly one column, it returns {n}"), q.span()));
    }
    Ok(())
}

/// `COALESCE(e, 0) > 0`.
fn positive(e: Expr) -> Expr {
    Expr::binary(
        BinOp::Gt,
        Expr::Func(Func::Coalesce, vec![e, Expr::Literal(Value::Int(0))]),
        Expr::Literal(Value::Int(0)),
    )
}

/// Per prefix value: COUNT(*) followed by `extra` aggregates.
fn count_per_prefix(plan: Plan, d: usize, extra: Vec<AggCall>) -> Plan {
    let mut aggs =
        vec![AggCall { func: AggFunc::CountStar, arg: Expr::Literal(Value::Null), distinct: false, ty: DataType::Int }];
    aggs.extend(extra);
    Plan::Aggregate { input: Box::new(plan), group_by: (0..d).map(Expr::Column).collect(), aggs }
}

fn left_join(left: Plan, right: Plan, keys: Vec<JoinKey>) -> Plan {
    Plan::Join { left: Box::new(left), right: Box::new(right), kind: JoinKind::Left, keys, residual: None }
}

/// Left-joins a single-row-per-prefix subquery; returns the value expression and a marker
/// expression that is NULL where the subquery has no row.
fn attach_scalar(rel: Plan, sub: Planned, keys: Vec<JoinKey>, q: &ast::Query) -> Result<(Plan, Expr, Expr)> {
    if !sub.single_row {
        return Err(PlanError::at(
            "a scalar subquery must return at most one row: use an aggregate, or ORDER BY … LIMIT 1",
            q.span(),
        ));
    }
    let d = sub.prefix;
    let w = rel.arity();
    // (prefix…, value, TRUE): the marker tells a missing row from a NULL value.
    let mut cols: Vec<Expr> = (0..=d).map(Expr::Column).collect();
    cols.push(Expr::Literal(Value::Bool(true)));
    let rel = left_join(rel, sub.plan.project(cols), keys);
    let value = Expr::Column(w + d);
    let present = Expr::Column(w + d + 1);
    let expr = match sub.empty_row {
        Some(row) => Expr::Case {
            branches: vec![(Expr::IsNull(Box::new(present.clone())), Expr::Literal(row[0].clone()))],
            else_: Box::new(value),
        },
        None => value,
    };
    Ok((rel, expr, present))
}

/// `x IN (sub)` with SQL's NULL semantics:
/// TRUE if some row equals x; FALSE if there are no rows; NULL if x is NULL or a row is NULL;
/// else FALSE.
fn attach_in(rel: Plan, sub: Planned, used: &[usize], keys: Vec<JoinKey>, x: Expr) -> (Plan, Expr) {
    let d = sub.prefix;
    let y = Expr::Column(d);
    // Distinct (prefix…, x) values of the enclosing relation, matched against the subquery.
    let mut probe_cols: Vec<Expr> = used.iter().map(|&i| Expr::Column(i)).collect();
    probe_cols.push(x.clone());
    let probes = Plan::Distinct { input: Box::new(rel.clone().project(probe_cols)) };
    let mut match_keys: Vec<JoinKey> =
        (0..d).map(|j| JoinKey { left: Expr::Column(j), right: Expr::Column(j), null_safe: true }).collect();
    match_keys.push(JoinKey { left: Expr::Column(d), right: y.clone(), null_safe: false });
    let matched = Plan::Join {
        left: Box::new(probes),
        right: Box::new(sub.plan.clone()),
        kind: JoinKind::Inner,
        keys: match_keys,
        residual: None,
    };
    let matches = count_per_prefix(matched, d + 1, vec![]);
    let w = rel.arity();
    let mut rel_keys = keys.clone();
    rel_keys.push(JoinKey { left: x.clone(), right: Expr::Column(d), null_safe: false });
    let rel = left_join(rel, matches, rel_keys);
    let m = Expr::Column(w + d + 1);
    // Row and non-NULL counts per prefix.
    let nonnull = AggCall { func: AggFunc::Count, arg: y, distinct: false, ty: DataType::Int };
    let stats = count_per_prefix(sub.plan, d, vec![nonnull]);
    let w2 = rel.arity();
    let rel = left_join(rel, stats, keys);
    let cnt = Expr::Func(Func::Coalesce, vec![Expr::Column(w2 + d), Expr::Literal(Value::Int(0))]);
    let nonnull = Expr::Func(Func::Coalesce, vec![Expr::Column(w2 + d + 1), Expr::Literal(Value::Int(0))]);
    let lit = |b: Option<bool>| Expr::Literal(b.map_or(Value::Null, Value::Bool));
    let expr = Expr::Case {
        branches: vec![
            (positive(m), lit(Some(true))),
            (Expr::binary(BinOp::Eq, cnt.clone(), Expr::Literal(Value::Int(0))), lit(Some(false))),
            (Expr::IsNull(Box::new(x)), lit(None)),
            (Expr::binary(BinOp::Gt, cnt, nonnull), lit(None)),
        ],
        else_: Box::new(lit(Some(false))),
    };
    (rel, expr)
}
