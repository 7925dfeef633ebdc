//! Printing result values as sqllogictest expects them, and result hashing.

use crate::slt::parse::Sort;
use md5::{Digest, Md5};
use sluice_planner::expr::text_of;
use sluice_planner::{Row, Value};

/// One value printed for column type `ty` (`I`, `R` or `T`).
pub fn format_value(v: &Value, ty: char) -> String {
    match (v, ty) {
        (Value::Null, _) => "NULL".to_string(),
        (Value::Text(s), _) if s.is_empty() => "(empty)".to_string(),
        (Value::Bool(b), 'I' | 'R') => format_number(*b as i64 as f64, Some(*b as i64), ty),
        (Value::Int(i), _) if ty != 'T' => format_number(*i as f64, Some(*i), ty),
        (Value::UInt(u), _) if ty != 'T' => format_number(*u as f64, i64::try_from(*u).ok(), ty),
        (Value::Real(r), _) if ty != 'T' => format_number(*r, None, ty),
        (Value::Text(s), _) => s.to_string(),
        (other, _) => text_of(other),
    }
}

fn format_number(f: f64, exact: Option<i64>, ty: char) -> String {
    match ty {
        'R' => format!("{f:.3}"),
        _ => match exact {
            Some(i) => i.to_string(),
            None => format!("{}", f.trunc() as i64),
        },
    }
}

/// Printed values of `rows`, sorted as `sort` says, flattened row by row.
pub fn format_rows(rows: &[Row], types: &str, sort: Sort) -> Vec<String> {
    let tys: Vec<char> = types.chars().collect();
    let mut printed: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.values().iter().enumerate().map(|(i, v)| format_value(v, tys.get(i).copied().unwrap_or('T'))).collect()
        })
        .collect();
    if sort == Sort::Rows {
        printed.sort();
    }
    let mut flat: Vec<String> = printed.into_iter().flatten().collect();
    if sort == Sort::Values {
        flat.sort();
    }
    flat
}

/// The md5 of values, each followed by a newline (the sqllogictest hash).
pub fn hash_values(values: &[String]) -> String {
    let mut h = Md5::new();
    for v in values {
        h.update(v.as_bytes());
        h.update(b"\n");
    }
    format!("{:x}", h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_type_letter() {
        assert_eq!(format_value(&Value::Real(2.5), 'R'), "2.500");
        assert_eq!(format_value(&Value::Int(3), 'R'), "3.000");
        assert_eq!(format_value(&Value::Real(-3.7), 'I'), "-3");
        assert_eq!(format_value(&Value::Null, 'I'), "NULL");
        assert_eq!(format_value(&Value::text(""), 'T'), "(empty)");
        assert_eq!(format_value(&Value::Bool(true), 'I'), "1");
    }

    #[test]
    fn hash_matches_sqllogictest() {
        // md5("1\n2\n")
        assert_eq!(hash_values(&["1".into(), "2".into()]), "6ddb4095eb719e2a9f0a3f95677d24e0");
    }
}
