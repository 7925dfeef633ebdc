//! SQL → typed logical plan: the binder. `Planner` turns SELECT statements into `QueryPlan`s
//! and DML statements into `Dml` plans, against a catalog.

mod dml;
mod expr;
mod from;
pub(crate) mod join_order;
pub mod nesting;
mod scope;
mod select;
mod subquery;

pub use dml::{coerce, Dml};
pub use scope::{Scope, ScopeCol};

use crate::catalog::Catalog;
use crate::error::{PlanError, Result};
use crate::plan::{Plan, QueryPlan, SortKey};
use crate::types::Value;
use sqlparser::ast;
use sqlparser::dialect::SQLiteDialect;
use sqlparser::parser::{Parser, ParserError};

/// Plans SQL against a catalog, with values for named parameters (`:sender`).
pub struct Planner<'a> {
    catalog: &'a Catalog,
    params: Vec<(String, Value)>,
    /// Expression nodes copied so far while binding (see [`MAX_COPIED_NODES`]).
    copied: std::cell::Cell<usize>,
    /// Queries and subqueries planned so far (see [`MAX_PLANNED_QUERIES`]).
    planned: std::cell::Cell<usize>,
}

/// How many times planning one statement may plan a query or subquery. A subquery is planned
/// more than once (to learn its type and the enclosing columns it reads, then for real), so
/// nested subqueries cost a power of their depth: this bounds the time a statement can take
/// to plan (nine levels of nested scalar subqueries fit).
pub const MAX_PLANNED_QUERIES: usize = 20_000;

/// How many expression nodes binding one statement may copy, where an operand is read twice.
pub const MAX_COPIED_NODES: usize = 100_000;

/// A relation being built while planning a query: its plan and its output scope.
pub(crate) struct Planned {
    pub plan: Plan,
    /// All output columns: decorrelation prefix, visible columns, then hidden sort keys.
    pub scope: Scope,
    /// Width of the decorrelation prefix (columns carried in from the enclosing query).
    pub prefix: usize,
    /// End of the visible columns (`prefix..visible_end`).
    pub visible_end: usize,
    /// Presentation order over the output columns.
    pub order: Vec<SortKey>,
    /// A global aggregate over no rows has one row; when planned per enclosing row
    /// (decorrelated), this is that row's visible values, used where no group exists.
    pub empty_row: Option<Vec<Value>>,
    /// At most one row per prefix value (global aggregate, or LIMIT 1).
    pub single_row: bool,
}

/// How deeply sqlparser may recurse: deep enough for generated SQL with many levels of
/// parentheses, and well within [`nesting::MAX_NESTING`], which bounds the tree it builds.
const PARSER_RECURSION_LIMIT: usize = 500;

/// Parses SQL text with the dialect Sluice speaks (SQLite's, which is close to standard SQL).
/// The statements it returns nest at most [`nesting::MAX_NESTING`] levels deep.
pub fn parse(sql: &str) -> Result<Vec<ast::Statement>> {
    let mut statements = parse_unbounded(sql)?;
    nesting::bound(&mut statements)?;
    Ok(statements)
}

fn parse_unbounded(sql: &str) -> Result<Vec<ast::Statement>> {
    let parsed = Parser::new(&SQLiteDialect {})
        .with_recursion_limit(PARSER_RECURSION_LIMIT)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statements());
    parsed.map_err(|e| {
        if let ParserError::RecursionLimitExceeded = e {
            return PlanError::new(format!(
                "the statement nests too deeply: more than {PARSER_RECURSION_LIMIT} levels of parentheses, \
                 subqueries or operators"
            ));
        }
        let msg = e.to_string();
        // sqlparser reports "... at Line: L, Column: C"; turn that into our position.
        let pos = msg.rfind("at Line: ").and_then(|i| {
            let rest = &msg[i + 9..];
            let (line, col) = rest.split_once(", Column: ")?;
            Some(crate::error::Position { line: line.trim().parse().ok()?, column: col.trim().parse().ok()? })
        });
        let message = match msg.rfind(" at Line: ") {
            Some(i) => msg[..i].to_string(),
            None => msg,
        };
        PlanError {
            message: format!("syntax error: {}", message.trim_start_matches("sql parser error: ")),
            position: pos,
        }
    })
}

/// Adds `n` to one of a statement's budgets, refusing with `why` once it passes `max`.
fn spend(counter: &std::cell::Cell<usize>, n: usize, max: usize, why: impl FnOnce() -> String) -> Result<()> {
    let total = counter.get() + n;
    counter.set(total);
    if total > max {
        return Err(PlanError::new(why()));
    }
    Ok(())
}

impl<'a> Planner<'a> {
    pub fn new(catalog: &'a Catalog) -> Planner<'a> {
        Planner { catalog, params: Vec::new(), copied: std::cell::Cell::new(0), planned: std::cell::Cell::new(0) }
    }

    /// Binds the parameter `:name` to a value wherever a query uses it.
    pub fn with_param(mut self, name: &str, value: Value) -> Planner<'a> {
        self.params.push((name.to_string(), value));
        self
    }

    /// Counts `nodes` more copied expression nodes, refusing past [`MAX_COPIED_NODES`].
    pub(crate) fn count_copied(&self, nodes: usize) -> Result<()> {
        spend(&self.copied, nodes, MAX_COPIED_NODES, || {
            format!(
                "the statement is too large once expanded: BETWEEN, IS DISTINCT FROM and CASE x WHEN \
                 copy their operand, and nested they copy more than {MAX_COPIED_NODES} nodes"
            )
        })
    }

    /// Counts one more query planned, refusing past [`MAX_PLANNED_QUERIES`].
    pub(crate) fn count_planned_query(&self) -> Result<()> {
        spend(&self.planned, 1, MAX_PLANNED_QUERIES, || {
            format!(
                "the statement is too complex to plan: its nested subqueries take more than \
                 {MAX_PLANNED_QUERIES} planning steps; nest fewer of them"
            )
        })
    }

    /// The value bound to a placeholder such as `:sender`.
    pub(crate) fn param(&self, placeholder: &str) -> Option<&Value> {
        let name = placeholder.strip_prefix([':', '$', '@'])?;
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Plans a single SELECT statement.
    pub fn plan_sql(&self, sql: &str) -> Result<QueryPlan> {
        let stmts = parse(sql)?;
        match stmts.as_slice() {
            [ast::Statement::Query(q)] => self.plan_query(q),
            [_] => Err(PlanError::new("expected a SELECT query")),
            _ => Err(PlanError::new("expected exactly one statement")),
        }
    }

    /// Plans a parsed query.
    pub fn plan_query(&self, q: &ast::Query) -> Result<QueryPlan> {
        let planned = self.query(q, None, None)?;
        let depth = planned.plan.depth();
        if depth > crate::plan::MAX_PLAN_DEPTH {
            return Err(PlanError::new(format!(
                "the query's plan is {depth} levels deep, more than the {} allowed: use fewer joins, \
                 subqueries or set operations",
                crate::plan::MAX_PLAN_DEPTH
            )));
        }
        let columns = planned.scope.cols[..planned.visible_end].iter().map(|c| (c.name.clone(), c.ty)).collect();
        Ok(QueryPlan { plan: planned.plan, columns, order_by: planned.order })
    }
}
