//! SQL → typed logical plan: the binder. `Planner` turns SELECT statements into `QueryPlan`s
//! and DML statements into `Dml` plans, against a catalog.

mod dml;
mod expr;
mod from;
pub(crate) mod join_order;
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
use sqlparser::parser::Parser;

/// Plans SQL against a catalog, with values for named parameters (`:sender`).
pub struct Planner<'a> {
    catalog: &'a Catalog,
    params: Vec<(String, Value)>,
}

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

/// Parses SQL text with the dialect Sluice speaks (SQLite's, which is close to standard SQL).
pub fn parse(sql: &str) -> Result<Vec<ast::Statement>> {
    Parser::parse_sql(&SQLiteDialect {}, sql).map_err(|e| {
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

impl<'a> Planner<'a> {
    pub fn new(catalog: &'a Catalog) -> Planner<'a> {
        Planner { catalog, params: Vec::new() }
    }

    /// Binds the parameter `:name` to a value wherever a query uses it.
    pub fn with_param(mut self, name: &str, value: Value) -> Planner<'a> {
        self.params.push((name.to_string(), value));
        self
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
        let columns = planned.scope.cols[..planned.visible_end].iter().map(|c| (c.name.clone(), c.ty)).collect();
        Ok(QueryPlan { plan: planned.plan, columns, order_by: planned.order })
    }
}
