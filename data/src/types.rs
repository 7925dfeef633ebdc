//! The data model: column types, values and rows.
//!
//! `Value` is a dynamically tagged SQL value with a total order (NULL first, then by type,
//! floats by `total_cmp`) so it can be sorted, hashed and used as a dataflow key. SQL comparison
//! semantics (numeric promotion, three-valued logic) live in the planner's `expr`, not here;
//! rows in `row`.

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// A column type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DataType {
    Bool,
    /// Signed 64-bit integer (SQL INTEGER / BIGINT).
    Int,
    /// Unsigned 64-bit integer.
    UInt,
    /// 64-bit IEEE float (SQL REAL / DOUBLE).
    Real,
    Text,
    Bytes,
    /// The type of a bare `NULL` literal before it meets a typed context.
    Null,
}

impl DataType {
    /// True for INTEGER, UNSIGNED and REAL.
    pub fn is_numeric(self) -> bool {
        matches!(self, DataType::Int | DataType::UInt | DataType::Real)
    }

    /// The SQL spelling of the type.
    pub fn name(self) -> &'static str {
        match self {
            DataType::Bool => "BOOLEAN",
            DataType::Int => "INTEGER",
            DataType::UInt => "UNSIGNED",
            DataType::Real => "REAL",
            DataType::Text => "TEXT",
            DataType::Bytes => "BYTES",
            DataType::Null => "NULL",
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One SQL value.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Real(f64),
    Text(Arc<str>),
    Bytes(Arc<[u8]>),
}

impl Value {
    #[inline]
    fn rank(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Int(_) => 2,
            Value::UInt(_) => 3,
            Value::Real(_) => 4,
            Value::Text(_) => 5,
            Value::Bytes(_) => 6,
        }
    }

    #[inline]
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value's own type (`Null` for NULL).
    pub fn data_type(&self) -> DataType {
        match self {
            Value::Null => DataType::Null,
            Value::Bool(_) => DataType::Bool,
            Value::Int(_) => DataType::Int,
            Value::UInt(_) => DataType::UInt,
            Value::Real(_) => DataType::Real,
            Value::Text(_) => DataType::Text,
            Value::Bytes(_) => DataType::Bytes,
        }
    }

    pub fn text(s: &str) -> Value {
        Value::Text(Arc::from(s))
    }

    /// The value as f64 if it is numeric.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::UInt(u) => Some(*u as f64),
            Value::Real(r) => Some(*r),
            _ => None,
        }
    }

    /// The value as i128 if it is an integer.
    pub fn as_i128(&self) -> Option<i128> {
        match self {
            Value::Int(i) => Some(*i as i128),
            Value::UInt(u) => Some(*u as i128),
            _ => None,
        }
    }
}

impl PartialEq for Value {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Value {}

impl PartialOrd for Value {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Value {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Value::Int(a), Value::Int(b)) => a.cmp(b),
            (Value::Null, Value::Null) => Ordering::Equal,
            (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
            (Value::UInt(a), Value::UInt(b)) => a.cmp(b),
            (Value::Real(a), Value::Real(b)) => canonical(*a).total_cmp(&canonical(*b)),
            (Value::Text(a), Value::Text(b)) => a.cmp(b),
            (Value::Bytes(a), Value::Bytes(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

/// Folds -0.0 into 0.0 so equal numbers compare and hash equal.
#[inline]
fn canonical(f: f64) -> f64 {
    if f == 0.0 {
        0.0
    } else {
        f
    }
}

impl Hash for Value {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            Value::Null => state.write_u8(0),
            Value::Bool(b) => state.write_u8(2 + *b as u8),
            Value::Int(i) => state.write_i64(*i),
            Value::UInt(u) => state.write_u64(*u),
            Value::Real(r) => state.write_u64(canonical(*r).to_bits()),
            Value::Text(s) => s.hash(state),
            Value::Bytes(b) => b.hash(state),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::UInt(u) => write!(f, "{u}"),
            Value::Real(r) => write!(f, "{r}"),
            Value::Text(s) => f.write_str(s),
            Value::Bytes(b) => {
                f.write_str("x'")?;
                for byte in b.iter() {
                    write!(f, "{byte:02x}")?;
                }
                f.write_str("'")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_order_null_first_and_numbers_by_value() {
        let mut v = vec![Value::Int(3), Value::Null, Value::Int(-1), Value::text("a")];
        v.sort();
        assert_eq!(v, vec![Value::Null, Value::Int(-1), Value::Int(3), Value::text("a")]);
    }

    #[test]
    fn negative_zero_equals_zero() {
        assert_eq!(Value::Real(-0.0), Value::Real(0.0));
        use std::collections::hash_map::DefaultHasher;
        let h = |v: &Value| {
            let mut s = DefaultHasher::new();
            v.hash(&mut s);
            s.finish()
        };
        assert_eq!(h(&Value::Real(-0.0)), h(&Value::Real(0.0)));
    }
}
