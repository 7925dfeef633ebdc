//! Reducer arguments: JSON from outside, checked against the reducer's declared parameter
//! types and turned into values (then one encoded row, the module's view of them).

use crate::module_def::{Field, TypeName};
use serde_json::Value as Json;
use sluice_data::Value;
use std::sync::Arc;

/// Converts a JSON array (positional) or object (by parameter name) into typed values.
pub fn from_json(reducer: &str, params: &[Field], text: &str) -> Result<Vec<Value>, String> {
    let json: Json =
        serde_json::from_str(text).map_err(|e| format!("reducer `{reducer}`: arguments are not JSON: {e}"))?;
    let items: Vec<Json> = match json {
        Json::Array(items) => items,
        Json::Object(mut map) => {
            let mut items = Vec::with_capacity(params.len());
            for p in params {
                items.push(map.remove(&p.name).unwrap_or(Json::Null));
            }
            if let Some(extra) = map.keys().next() {
                return Err(format!("reducer `{reducer}` has no parameter `{extra}`"));
            }
            items
        }
        _ if params.is_empty() => Vec::new(),
        other => return Err(format!("reducer `{reducer}`: arguments must be a JSON array or object, not {other}")),
    };
    if items.len() != params.len() {
        return Err(format!("reducer `{reducer}` takes {} arguments, got {}", params.len(), items.len()));
    }
    params.iter().zip(items).map(|(p, j)| value(reducer, p, j)).collect()
}

fn value(reducer: &str, p: &Field, j: Json) -> Result<Value, String> {
    let bad = |j: &Json| format!("reducer `{reducer}`, argument `{}`: expected {}, got {j}", p.name, type_name(p));
    if j.is_null() {
        return if p.nullable { Ok(Value::Null) } else { Err(bad(&j)) };
    }
    let v = match p.ty {
        TypeName::Bool => j.as_bool().map(Value::Bool),
        TypeName::I64 => j.as_i64().map(Value::Int),
        TypeName::U64 => j.as_u64().map(Value::UInt),
        TypeName::F64 => j.as_f64().map(Value::Real),
        TypeName::String => j.as_str().map(Value::text),
        TypeName::Bytes => j.as_array().and_then(|a| {
            a.iter()
                .map(|b| b.as_u64().filter(|b| *b <= 255).map(|b| b as u8))
                .collect::<Option<Vec<u8>>>()
                .map(|b| Value::Bytes(Arc::from(b)))
        }),
    };
    v.ok_or_else(|| bad(&j))
}

fn type_name(p: &Field) -> String {
    let t = match p.ty {
        TypeName::Bool => "a boolean",
        TypeName::I64 => "a signed 64-bit integer",
        TypeName::U64 => "an unsigned 64-bit integer",
        TypeName::F64 => "a number",
        TypeName::String => "a string",
        TypeName::Bytes => "an array of bytes",
    };
    if p.nullable {
        format!("{t} or null")
    } else {
        t.to_string()
    }
}

/// Values as a JSON array, as a client would pass them (bytes as arrays of numbers).
pub fn to_json(values: &[Value]) -> String {
    let items: Vec<Json> = values
        .iter()
        .map(|v| match v {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::from(*b),
            Value::Int(i) => Json::from(*i),
            Value::UInt(u) => Json::from(*u),
            Value::Real(r) => Json::from(*r),
            Value::Text(s) => Json::from(&**s),
            Value::Bytes(b) => Json::from(b.to_vec()),
        })
        .collect();
    Json::Array(items).to_string()
}
