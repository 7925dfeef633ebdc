//! The catalog of table schemas, built from `CREATE TABLE` SQL or from a module's schema.

use crate::error::{PlanError, Result};
use crate::types::DataType;
use serde::{Deserialize, Serialize};
pub use sluice_data::schema::{Column, TableSchema};
use sqlparser::ast::{self, ColumnOption, Spanned, TableConstraint};
use std::collections::BTreeMap;

/// All tables of one database, keyed by lower-cased name.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Catalog {
    tables: BTreeMap<String, TableSchema>,
}

impl Catalog {
    pub fn new() -> Catalog {
        Catalog::default()
    }

    pub fn table(&self, name: &str) -> Option<&TableSchema> {
        self.tables.get(&name.to_ascii_lowercase())
    }

    pub fn tables(&self) -> impl Iterator<Item = &TableSchema> {
        self.tables.values()
    }

    /// Adds a table; refuses a name already taken.
    pub fn add_table(&mut self, schema: TableSchema) -> Result<()> {
        let key = schema.name.to_ascii_lowercase();
        if self.tables.contains_key(&key) {
            return Err(PlanError::new(format!("table {} already exists", schema.name)));
        }
        self.tables.insert(key, schema);
        Ok(())
    }

    /// Removes a table, returning its schema.
    pub fn remove_table(&mut self, name: &str) -> Option<TableSchema> {
        self.tables.remove(&name.to_ascii_lowercase())
    }
}

/// Maps a SQL type name to a column type.
pub fn sql_type(t: &ast::DataType) -> Result<DataType> {
    let name = t.to_string().to_ascii_uppercase();
    let base = name.split('(').next().unwrap_or("").trim();
    Ok(match base {
        "BOOLEAN" | "BOOL" => DataType::Bool,
        "INTEGER" | "INT" | "BIGINT" | "SMALLINT" | "TINYINT" | "INT8" | "INT4" | "INT2" | "INT64" | "I64" => {
            DataType::Int
        }
        "BIGINT UNSIGNED" | "INT UNSIGNED" | "INTEGER UNSIGNED" | "UNSIGNED" | "UBIGINT" | "U64" => DataType::UInt,
        "REAL" | "DOUBLE" | "DOUBLE PRECISION" | "FLOAT" | "FLOAT8" | "FLOAT64" | "F64" | "NUMERIC" | "DECIMAL" => {
            DataType::Real
        }
        "TEXT" | "VARCHAR" | "CHAR" | "STRING" | "CHARACTER VARYING" | "CHARACTER" => DataType::Text,
        "BLOB" | "BYTES" | "BYTEA" | "VARBINARY" | "BINARY" => DataType::Bytes,
        _ => return Err(PlanError::new(format!("unsupported column type {t}"))),
    })
}

/// Builds a table schema from a parsed `CREATE TABLE`.
pub fn schema_from_create(ct: &ast::CreateTable) -> Result<TableSchema> {
    let name = object_name(&ct.name)?;
    if ct.columns.is_empty() {
        return Err(PlanError::at(format!("table {name} needs at least one column"), ct.name.span()));
    }
    let mut columns: Vec<Column> = Vec::new();
    let mut primary_key = Vec::new();
    for (i, c) in ct.columns.iter().enumerate() {
        let ty = sql_type(&c.data_type).map_err(|e| e.or_at(c.name.span))?;
        if columns.iter().any(|x| x.name.eq_ignore_ascii_case(&c.name.value)) {
            return Err(PlanError::at(format!("duplicate column {}", c.name.value), c.name.span));
        }
        let mut nullable = true;
        for opt in &c.options {
            match &opt.option {
                ColumnOption::NotNull => nullable = false,
                ColumnOption::Null => nullable = true,
                ColumnOption::PrimaryKey(_) => {
                    if !primary_key.is_empty() {
                        return Err(PlanError::at("more than one primary key", c.name.span));
                    }
                    primary_key.push(i);
                    nullable = false;
                }
                ColumnOption::Unique(_) | ColumnOption::Default(_) => {}
                other => {
                    return Err(PlanError::at(format!("unsupported column option {other}"), c.name.span));
                }
            }
        }
        columns.push(Column { name: c.name.value.clone(), ty, nullable });
    }
    for constraint in &ct.constraints {
        match constraint {
            TableConstraint::PrimaryKey(pk) => {
                if !primary_key.is_empty() {
                    return Err(PlanError::at("more than one primary key", ct.name.span()));
                }
                for col in &pk.columns {
                    let cname = col.column.expr.to_string();
                    let idx = columns
                        .iter()
                        .position(|c| c.name.eq_ignore_ascii_case(&cname))
                        .ok_or_else(|| PlanError::at(format!("unknown primary key column {cname}"), ct.name.span()))?;
                    columns[idx].nullable = false;
                    primary_key.push(idx);
                }
            }
            TableConstraint::Unique(_) => {}
            other => return Err(PlanError::at(format!("unsupported table constraint {other}"), ct.name.span())),
        }
    }
    Ok(TableSchema { name, columns, primary_key })
}

/// The single-part name of a table (schema-qualified names are refused).
pub fn object_name(n: &ast::ObjectName) -> Result<String> {
    match n.0.as_slice() {
        [part] => Ok(part.as_ident().map(|i| i.value.clone()).unwrap_or_else(|| part.to_string())),
        _ => Err(PlanError::at(format!("qualified table names are not supported: {n}"), n.span())),
    }
}
