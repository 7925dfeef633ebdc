//! A module's self-description, read from its per-table and per-reducer description exports:
//! tables (columns, primary key, indexes, auto-increment, visibility) and reducers with their
//! parameter types. JSON on the wire; checked and turned into datastore table definitions here.

use crate::schema::{IndexDef, IndexKind, TableDef};
use serde::{Deserialize, Serialize};
use sluice_planner::{Column, DataType, TableSchema};

/// A column or parameter type as a module names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TypeName {
    Bool,
    I64,
    U64,
    F64,
    String,
    Bytes,
}

impl TypeName {
    pub fn data_type(self) -> DataType {
        match self {
            TypeName::Bool => DataType::Bool,
            TypeName::I64 => DataType::Int,
            TypeName::U64 => DataType::UInt,
            TypeName::F64 => DataType::Real,
            TypeName::String => DataType::Text,
            TypeName::Bytes => DataType::Bytes,
        }
    }
}

/// A typed column or parameter; `nullable` for `Option<T>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: TypeName,
    #[serde(default)]
    pub nullable: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexDesc {
    pub name: String,
    /// Column names.
    pub columns: Vec<String>,
    pub unique: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDesc {
    pub name: String,
    pub columns: Vec<Field>,
    /// Column names of the primary key (empty: none).
    #[serde(default)]
    pub primary_key: Vec<String>,
    #[serde(default)]
    pub indexes: Vec<IndexDesc>,
    #[serde(default)]
    pub auto_inc: Option<String>,
    #[serde(default = "yes")]
    pub public: bool,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReducerDesc {
    pub name: String,
    pub params: Vec<Field>,
}

/// Everything a module declares.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleDesc {
    pub tables: Vec<TableDesc>,
    pub reducers: Vec<ReducerDesc>,
}

impl ModuleDesc {
    /// Refuses two tables or two reducers of one name.
    pub fn check(&self) -> Result<(), String> {
        for (i, r) in self.reducers.iter().enumerate() {
            if self.reducers[..i].iter().any(|o| o.name == r.name) {
                return Err(format!("two reducers are named `{}`", r.name));
            }
        }
        for (i, t) in self.tables.iter().enumerate() {
            if self.tables[..i].iter().any(|o| o.name.eq_ignore_ascii_case(&t.name)) {
                return Err(format!("two tables are named `{}`", t.name));
            }
        }
        Ok(())
    }
}

impl TableDesc {
    /// The datastore definition; errors name the unknown column.
    pub fn to_def(&self) -> Result<TableDef, String> {
        let col = |name: &str| {
            self.columns
                .iter()
                .position(|c| c.name == name)
                .ok_or_else(|| format!("table `{}`: no column named `{name}`", self.name))
        };
        let columns = self
            .columns
            .iter()
            .map(|c| Column { name: c.name.clone(), ty: c.ty.data_type(), nullable: c.nullable })
            .collect();
        let primary_key = self.primary_key.iter().map(|c| col(c)).collect::<Result<_, _>>()?;
        let indexes = self
            .indexes
            .iter()
            .map(|ix| {
                Ok(IndexDef {
                    name: ix.name.clone(),
                    columns: ix.columns.iter().map(|c| col(c)).collect::<Result<_, String>>()?,
                    kind: if ix.unique { IndexKind::Unique } else { IndexKind::BTree },
                })
            })
            .collect::<Result<_, String>>()?;
        let auto_inc = self.auto_inc.as_deref().map(col).transpose()?;
        Ok(TableDef {
            schema: TableSchema { name: self.name.clone(), columns, primary_key },
            indexes,
            auto_inc,
            public: self.public,
        })
    }
}
