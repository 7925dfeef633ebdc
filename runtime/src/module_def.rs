//! A module's self-description, read from its per-table and per-reducer description exports:
//! tables (columns, primary key, indexes, auto-increment, visibility, the reducer a schedule
//! table drives) and reducers (parameter types, lifecycle role). JSON on the wire; checked and
//! turned into datastore table definitions here.

use crate::schema::{IndexDef, IndexKind, TableDef};
use serde::{Deserialize, Serialize};
use sluice_data::{Column, DataType, TableSchema};

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
    /// For a schedule table, the reducer each of its rows runs (see `SCHEDULED_AT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled: Option<String>,
}

/// A schedule table's column holding when a row next runs (microseconds since the Unix epoch).
pub const SCHEDULED_AT: &str = "scheduled_at";
/// A schedule table's column holding the interval between runs in microseconds; 0 runs once.
pub const REPEAT_MICROS: &str = "repeat_micros";
/// The index the host adds to a schedule table over `scheduled_at`.
pub const SCHEDULE_INDEX: &str = "sluice_schedule";

/// When the host runs a lifecycle reducer instead of a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    /// Once, when the module is first loaded into an empty database.
    Init,
    /// When a client connects, as that client.
    ClientConnected,
    /// When a client disconnects, as that client.
    ClientDisconnected,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReducerDesc {
    pub name: String,
    pub params: Vec<Field>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,
}

/// Everything a module declares.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleDesc {
    pub tables: Vec<TableDesc>,
    pub reducers: Vec<ReducerDesc>,
}

impl ModuleDesc {
    /// Refuses two tables or two reducers of one name, two reducers of one lifecycle role,
    /// lifecycle reducers with parameters, and schedule tables that do not fit their reducer.
    pub fn check(&self) -> Result<(), String> {
        for (i, r) in self.reducers.iter().enumerate() {
            if self.reducers[..i].iter().any(|o| o.name == r.name) {
                return Err(format!("two reducers are named `{}`", r.name));
            }
            if let Some(role) = r.lifecycle {
                if let Some(o) = self.reducers[..i].iter().find(|o| o.lifecycle == Some(role)) {
                    return Err(format!("reducers `{}` and `{}` are both the {role:?} reducer", o.name, r.name));
                }
                if !r.params.is_empty() {
                    return Err(format!("lifecycle reducer `{}` must take no arguments", r.name));
                }
            }
        }
        for (i, t) in self.tables.iter().enumerate() {
            if self.tables[..i].iter().any(|o| o.name.eq_ignore_ascii_case(&t.name)) {
                return Err(format!("two tables are named `{}`", t.name));
            }
            if let Some(reducer) = &t.scheduled {
                self.check_schedule(t, reducer)?;
            }
        }
        Ok(())
    }

    /// The reducer that runs a lifecycle event, if the module has one.
    pub fn lifecycle(&self, role: Lifecycle) -> Option<usize> {
        self.reducers.iter().position(|r| r.lifecycle == Some(role))
    }

    /// A schedule table needs a primary key and the two schedule columns, as unsigned
    /// integers; its reducer takes one of its rows (the table's columns as parameters).
    fn check_schedule(&self, t: &TableDesc, reducer: &str) -> Result<(), String> {
        let bad = |why: String| Err(format!("schedule table `{}`: {why}", t.name));
        let Some(r) = self.reducers.iter().find(|r| r.name == reducer) else {
            return bad(format!("no reducer named `{reducer}`"));
        };
        if t.primary_key.is_empty() {
            return bad("needs a primary key".into());
        }
        for name in [SCHEDULED_AT, REPEAT_MICROS] {
            if !t.columns.iter().any(|c| c.name == name && c.ty == TypeName::U64 && !c.nullable) {
                return bad(format!("needs a column `{name}` of type u64"));
            }
        }
        let types = |fs: &[Field]| fs.iter().map(|f| (f.ty, f.nullable)).collect::<Vec<_>>();
        if r.lifecycle.is_some() || types(&r.params) != types(&t.columns) {
            return bad(format!("reducer `{reducer}` must take exactly one of its rows"));
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
        let mut indexes: Vec<IndexDef> = self
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
        if self.scheduled.is_some() {
            indexes.push(IndexDef {
                name: SCHEDULE_INDEX.into(),
                columns: vec![col(SCHEDULED_AT)?],
                kind: IndexKind::BTree,
            });
        }
        let auto_inc = self.auto_inc.as_deref().map(col).transpose()?;
        Ok(TableDef {
            schema: TableSchema { name: self.name.clone(), columns, primary_key },
            indexes,
            auto_inc,
            public: self.public,
        })
    }
}
