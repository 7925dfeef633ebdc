//! Statements other than queries: CREATE / DROP TABLE, INSERT, UPDATE and DELETE, planned into
//! typed operations that a datastore executes as transactions.

use super::scope::{Scope, ScopeCol};
use super::Planner;
use crate::catalog::{object_name, schema_from_create, Column, TableSchema};
use crate::error::{PlanError, Result};
use crate::expr::Expr;
use crate::plan::QueryPlan;
use crate::row::Row;
use crate::types::{DataType, Value};
use sqlparser::ast::{self, Spanned};

/// A planned statement.
#[derive(Clone, Debug)]
pub enum Dml {
    Query(QueryPlan),
    CreateTable(TableSchema),
    DropTable {
        name: String,
        if_exists: bool,
    },
    /// An index on an existing table (query plans do not use indexes; accepted for
    /// compatibility with SQL scripts).
    CreateIndex {
        table: String,
    },
    /// Rows already coerced to the table's column types.
    Insert {
        table: String,
        rows: Vec<Row>,
    },
    /// Rows from a query, laid out as `columns` (positions in the table; others NULL).
    InsertSelect {
        table: String,
        columns: Vec<usize>,
        query: QueryPlan,
    },
    /// For each row where `filter` holds, set `assignments` (evaluated on the old row, and
    /// converted to the column's type by `coerce`).
    Update {
        table: String,
        assignments: Vec<(usize, Expr)>,
        filter: Expr,
    },
    Delete {
        table: String,
        filter: Expr,
    },
}

impl Planner<'_> {
    /// Plans one parsed statement.
    pub fn plan_statement(&self, stmt: &ast::Statement) -> Result<Dml> {
        match stmt {
            ast::Statement::Query(q) => Ok(Dml::Query(self.plan_query(q)?)),
            ast::Statement::CreateTable(ct) => Ok(Dml::CreateTable(schema_from_create(ct)?)),
            ast::Statement::Drop { object_type: ast::ObjectType::Table, if_exists, names, .. } => {
                match names.as_slice() {
                    [n] => Ok(Dml::DropTable { name: object_name(n)?, if_exists: *if_exists }),
                    _ => Err(PlanError::new("DROP TABLE takes one table")),
                }
            }
            ast::Statement::CreateIndex(ci) => Ok(Dml::CreateIndex { table: self.table(&ci.table_name)?.name.clone() }),
            ast::Statement::Insert(ins) => self.insert(ins),
            ast::Statement::Update(u) => self.update(u),
            ast::Statement::Delete(d) => self.delete(d),
            other => {
                Err(PlanError::at(format!("unsupported statement: {}", first_words(&other.to_string())), other.span()))
            }
        }
    }

    fn table(&self, name: &ast::ObjectName) -> Result<&TableSchema> {
        let n = object_name(name)?;
        self.catalog.table(&n).ok_or_else(|| PlanError::at(format!("unknown table {n}"), name.span()))
    }

    fn insert(&self, ins: &ast::Insert) -> Result<Dml> {
        let name = match &ins.table {
            ast::TableObject::TableName(n) => n,
            other => return Err(PlanError::new(format!("unsupported INSERT target {other}"))),
        };
        let table = self.table(name)?;
        if ins.on.is_some() || ins.returning.is_some() || ins.or.is_some() {
            return Err(PlanError::at("INSERT with ON CONFLICT / OR / RETURNING is not supported", ins.span()));
        }
        let columns: Vec<usize> = if ins.columns.is_empty() {
            (0..table.columns.len()).collect()
        } else {
            ins.columns
                .iter()
                .map(|c| {
                    let n = object_name(c)?;
                    table
                        .column_index(&n)
                        .ok_or_else(|| PlanError::at(format!("unknown column {n} in table {}", table.name), c.span()))
                })
                .collect::<Result<_>>()?
        };
        let Some(source) = &ins.source else {
            return Err(PlanError::at("INSERT needs VALUES or a SELECT", ins.span()));
        };
        if let ast::SetExpr::Values(values) = &*source.body {
            let empty = Scope::default();
            let ctx = self.expr_ctx(&empty, None, None, None, "VALUES");
            let mut rows = Vec::with_capacity(values.rows.len());
            for row in &values.rows {
                if row.len() != columns.len() {
                    return Err(PlanError::at(
                        format!("INSERT has {} values for {} columns", row.len(), columns.len()),
                        row.first().map_or(ins.span(), |e| e.span()),
                    ));
                }
                let mut vals = vec![Value::Null; table.columns.len()];
                for (e, &c) in row.iter().zip(&columns) {
                    let (x, _) = ctx.bind(e)?;
                    if !x.columns().is_empty() {
                        return Err(PlanError::at("INSERT values must be constants", e.span()));
                    }
                    vals[c] = coerce(x.eval(&[]), &table.columns[c]).map_err(|m| PlanError::at(m, e.span()))?;
                }
                check_not_null(table, &vals)?;
                rows.push(Row::new(vals));
            }
            return Ok(Dml::Insert { table: table.name.clone(), rows });
        }
        let query = self.plan_query(source)?;
        if query.columns.len() != columns.len() {
            return Err(PlanError::at(
                format!("INSERT … SELECT returns {} columns for {} target columns", query.columns.len(), columns.len()),
                source.span(),
            ));
        }
        Ok(Dml::InsertSelect { table: table.name.clone(), columns, query })
    }

    fn table_scope(table: &TableSchema, alias: Option<&str>) -> Scope {
        let q = alias.unwrap_or(&table.name).to_string();
        Scope::new(table.columns.iter().map(|c| ScopeCol::new(Some(q.clone()), c.name.clone(), c.ty)).collect())
    }

    fn update(&self, u: &ast::Update) -> Result<Dml> {
        if u.from.is_some() || u.returning.is_some() || !u.table.joins.is_empty() {
            return Err(PlanError::at("UPDATE with FROM, joins or RETURNING is not supported", u.span()));
        }
        let ast::TableFactor::Table { name, alias, .. } = &u.table.relation else {
            return Err(PlanError::at("unsupported UPDATE target", u.span()));
        };
        let table = self.table(name)?;
        let scope = Self::table_scope(table, alias.as_ref().map(|a| a.name.value.as_str()));
        let ctx = self.expr_ctx(&scope, None, None, None, "UPDATE");
        let mut assignments = Vec::new();
        for a in &u.assignments {
            let cname = match &a.target {
                ast::AssignmentTarget::ColumnName(n) => n.0.last().map(|p| p.to_string()).unwrap_or_default(),
                other => return Err(PlanError::new(format!("unsupported assignment target {other}"))),
            };
            let c = table.column_index(&cname).ok_or_else(|| {
                PlanError::at(format!("unknown column {cname} in table {}", table.name), a.value.span())
            })?;
            let (x, t) = ctx.bind(&a.value)?;
            assignable(t, &table.columns[c]).map_err(|m| PlanError::at(m, a.value.span()))?;
            // Stored as `coerce` converts it, row by row: exactly, or refused (never a REAL cut
            // down to an INTEGER, nor an overflowed sum clamped).
            assignments.push((c, x));
        }
        let filter = match &u.selection {
            Some(w) => self.expr_ctx(&scope, None, None, None, "UPDATE … WHERE").bind_condition(w)?,
            None => Expr::Literal(Value::Bool(true)),
        };
        Ok(Dml::Update { table: table.name.clone(), assignments, filter })
    }

    fn delete(&self, d: &ast::Delete) -> Result<Dml> {
        let from = match &d.from {
            ast::FromTable::WithFromKeyword(v) | ast::FromTable::WithoutKeyword(v) => v,
        };
        let [twj] = from.as_slice() else {
            return Err(PlanError::at("DELETE takes one table", d.span()));
        };
        if !twj.joins.is_empty() || d.using.is_some() || d.returning.is_some() {
            return Err(PlanError::at("DELETE with joins, USING or RETURNING is not supported", d.span()));
        }
        let ast::TableFactor::Table { name, alias, .. } = &twj.relation else {
            return Err(PlanError::at("unsupported DELETE target", d.span()));
        };
        let table = self.table(name)?;
        let scope = Self::table_scope(table, alias.as_ref().map(|a| a.name.value.as_str()));
        let filter = match &d.selection {
            Some(w) => self.expr_ctx(&scope, None, None, None, "DELETE … WHERE").bind_condition(w)?,
            None => Expr::Literal(Value::Bool(true)),
        };
        Ok(Dml::Delete { table: table.name.clone(), filter })
    }
}

fn first_words(s: &str) -> String {
    s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// Checks that a value of type `t` may be stored in `col`.
fn assignable(t: DataType, col: &Column) -> std::result::Result<(), String> {
    let ok = t == col.ty
        || t == DataType::Null
        || (t.is_numeric() && col.ty.is_numeric())
        || (col.ty == DataType::Bool && matches!(t, DataType::Int | DataType::UInt));
    if ok {
        Ok(())
    } else {
        Err(format!("cannot store {t} in column {} of type {}", col.name, col.ty))
    }
}

/// Converts a constant to a column's type, refusing lossy or mistyped values.
pub fn coerce(v: Value, col: &Column) -> std::result::Result<Value, String> {
    let bad = |v: &Value| format!("cannot store {} value {v} in column {} of type {}", v.data_type(), col.name, col.ty);
    let out = match (&v, col.ty) {
        (Value::Null, _) => Value::Null,
        (_, t) if v.data_type() == t => v,
        (Value::Int(i), DataType::Real) => Value::Real(*i as f64),
        (Value::UInt(u), DataType::Real) => Value::Real(*u as f64),
        (Value::Int(i), DataType::UInt) if *i >= 0 => Value::UInt(*i as u64),
        (Value::UInt(u), DataType::Int) if *u <= i64::MAX as u64 => Value::Int(*u as i64),
        (Value::Real(r), DataType::Int) if r.fract() == 0.0 && r.abs() < 9.2e18 => Value::Int(*r as i64),
        (Value::Int(i @ (0 | 1)), DataType::Bool) => Value::Bool(*i == 1),
        _ => return Err(bad(&v)),
    };
    if out.is_null() && !col.nullable {
        return Err(format!("NULL value in NOT NULL column {}", col.name));
    }
    Ok(out)
}

fn check_not_null(table: &TableSchema, vals: &[Value]) -> Result<()> {
    for (c, v) in table.columns.iter().zip(vals) {
        if v.is_null() && !c.nullable {
            return Err(PlanError::new(format!("NULL value in NOT NULL column {}.{}", table.name, c.name)));
        }
    }
    Ok(())
}
