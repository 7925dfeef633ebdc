//! The WebSocket protocol's messages (docs/PROTOCOL.md), shared by the server and the client.
//! Two encodings, chosen by subprotocol: JSON text frames (`sluice.json.v1`) and MessagePack
//! binary frames (`sluice.msgpack.v2`). Messages are maps tagged by `"type"` in both, except
//! that MessagePack sends the two transaction messages, nearly all of a busy connection's
//! bytes, as positional arrays (`positional`). Values are JSON's own (bytes as hex strings) or
//! MessagePack's (bytes as bin); a row's meaning is fixed by its query's column types, sent
//! once when the subscription is applied.

pub mod positional;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The subprotocol of JSON text frames.
pub const JSON_PROTOCOL: &str = "sluice.json.v1";
/// The subprotocol of MessagePack binary frames.
pub const MSGPACK_PROTOCOL: &str = "sluice.msgpack.v2";

/// How messages are encoded on one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    Json,
    MessagePack,
}

impl Encoding {
    /// The encoding a subprotocol names.
    pub fn from_protocol(name: &str) -> Option<Encoding> {
        match name {
            JSON_PROTOCOL => Some(Encoding::Json),
            MSGPACK_PROTOCOL => Some(Encoding::MessagePack),
            _ => None,
        }
    }

    pub fn protocol(self) -> &'static str {
        match self {
            Encoding::Json => JSON_PROTOCOL,
            Encoding::MessagePack => MSGPACK_PROTOCOL,
        }
    }

    /// Encodes a message (in MessagePack, the transaction messages positionally).
    pub fn encode<T: Serialize>(self, message: &T) -> Vec<u8> {
        match self {
            Encoding::Json => serde_json::to_vec(message).expect("messages encode as JSON"),
            Encoding::MessagePack => rmp_serde::to_vec_named(message).expect("messages encode as MessagePack"),
        }
    }

    /// Decodes a message; the error says what was wrong with it. Nesting is refused past
    /// [`MAX_DEPTH`] levels in both encodings, so a hostile frame cannot overflow the stack.
    pub fn decode<T: for<'de> Deserialize<'de>>(self, bytes: &[u8]) -> Result<T, String> {
        match self {
            Encoding::Json => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
            Encoding::MessagePack => {
                let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
                de.set_max_depth(MAX_DEPTH);
                T::deserialize(&mut de).map_err(|e| e.to_string())
            }
        }
    }
}

/// How deeply a message may nest (serde_json's own limit, applied to MessagePack too:
/// rmp-serde's default of 1024 levels overflows a 2 MiB stack in unoptimised builds).
pub const MAX_DEPTH: usize = 128;

/// What a client sends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ClientMessage {
    /// Subscribe to queries, all applied at one offset (or none, on any error).
    Subscribe { request_id: u64, queries: Vec<String> },
    /// End this connection's subscription to a query.
    Unsubscribe { request_id: u64, query_id: u64 },
    /// Call a reducer; `args` is a JSON array (positional) or object (by name).
    CallReducer { request_id: u64, reducer: String, args: serde_json::Value },
    /// Evaluate a query once, on the current state.
    OneOffQuery { request_id: u64, sql: String },
}

/// A column of a query's result: its name and SQL type (`INTEGER`, `UNSIGNED`, `REAL`,
/// `TEXT`, `BYTES`, `BOOLEAN`, `NULL`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
}

/// One query of an applied subscription: its shared id, columns and current rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppliedQuery {
    /// Identical queries share one id (and one dataflow) on the server.
    pub query_id: u64,
    pub sql: String,
    pub columns: Vec<ColumnInfo>,
    /// Columns holding a base table's primary key, where the result has one row per key:
    /// a delete and an insert of one key in one transaction are an update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_key: Option<Vec<usize>>,
    pub rows: Vec<Row>,
}

/// One query's rows that entered and left its result in one transaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueryUpdate {
    pub query_id: u64,
    pub inserts: Vec<Row>,
    pub deletes: Vec<Row>,
}

/// What a reducer call came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Committed,
    Failed,
}

/// What the server sends. Its serde form is a map tagged by `"type"`, except that an encoding
/// that is not human-readable (MessagePack) takes the transaction messages as `positional`
/// arrays.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", remote = "Self")]
pub enum ServerMessage {
    /// First message of every connection: who the client is, and its token.
    IdentityToken {
        identity: String,
        token: String,
    },
    /// A subscription's queries and their rows as of `offset`.
    SubscribeApplied {
        request_id: u64,
        offset: u64,
        queries: Vec<AppliedQuery>,
    },
    UnsubscribeApplied {
        request_id: u64,
        query_id: u64,
    },
    /// One committed transaction: every changed query this client subscribes to.
    TransactionUpdate {
        offset: u64,
        timestamp_micros: u64,
        reducer: String,
        /// The caller's identity (64 hex digits; 32 bytes in MessagePack), shown to the
        /// database's owner and to the caller itself; empty for the server itself and for
        /// everyone else.
        caller: String,
        updates: Vec<QueryUpdate>,
    },
    /// Several committed transactions' updates in one frame, in offset order: each a
    /// `TransactionUpdate`. The server sends this where one batch of its transactions changed
    /// more than one of them for this client.
    TransactionUpdates {
        transactions: Vec<ServerMessage>,
    },
    /// A reducer call's outcome; sent after the TransactionUpdate of its transaction.
    ReducerResult {
        request_id: u64,
        status: Status,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offset: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    SubscriptionError {
        request_id: u64,
        error: String,
    },
    QueryResult {
        request_id: u64,
        offset: u64,
        columns: Vec<ColumnInfo>,
        rows: Vec<Row>,
    },
    /// A request that could not be read or answered (`request_id` when it was readable).
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<u64>,
        error: String,
    },
}

impl Serialize for ServerMessage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ServerMessage::TransactionUpdate { .. } | ServerMessage::TransactionUpdates { .. }
                if !s.is_human_readable() =>
            {
                positional::serialize(self, s)
            }
            _ => ServerMessage::serialize(self, s),
        }
    }
}

impl<'de> Deserialize<'de> for ServerMessage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ServerMessage, D::Error> {
        if d.is_human_readable() {
            ServerMessage::deserialize(d)
        } else {
            d.deserialize_any(positional::MessageVisitor)
        }
    }
}

impl ServerMessage {
    /// The request this message answers, if it answers one.
    pub fn request_id(&self) -> Option<u64> {
        match self {
            ServerMessage::SubscribeApplied { request_id, .. }
            | ServerMessage::UnsubscribeApplied { request_id, .. }
            | ServerMessage::ReducerResult { request_id, .. }
            | ServerMessage::SubscriptionError { request_id, .. }
            | ServerMessage::QueryResult { request_id, .. } => Some(*request_id),
            ServerMessage::Error { request_id, .. } => *request_id,
            ServerMessage::IdentityToken { .. }
            | ServerMessage::TransactionUpdate { .. }
            | ServerMessage::TransactionUpdates { .. } => None,
        }
    }
}

/// A row: values in column order.
pub type Row = Vec<Value>;

/// A value on the wire. JSON cannot tell text from hex-encoded bytes, nor an integral REAL
/// from an INTEGER: `Value::typed` settles both from the column's type.
#[derive(Clone, Debug, PartialEq, PartialOrd)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Real(f64),
    Text(String),
    Bytes(Vec<u8>),
}

impl Value {
    /// This value as a column of type `ty` holds it.
    pub fn typed(self, ty: &str) -> Result<Value, String> {
        Ok(match (self, ty) {
            (Value::Text(s), "BYTES") => Value::Bytes(hex::decode(&s).map_err(|e| format!("bad hex {s:?}: {e}"))?),
            (Value::Int(i), "REAL") => Value::Real(i as f64),
            (Value::UInt(u), "REAL") => Value::Real(u as f64),
            (Value::UInt(u), "INTEGER") => Value::Int(i64::try_from(u).map_err(|_| format!("{u} is past INTEGER"))?),
            (Value::Int(i), "UNSIGNED") => Value::UInt(u64::try_from(i).map_err(|_| format!("{i} is not UNSIGNED"))?),
            (v, _) => v,
        })
    }

    /// The value as JSON (bytes as hex), as the JSON encoding and reducer arguments take it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("values are JSON")
    }
}

impl fmt::Display for Value {
    /// As a console shows it: NULL, true/false, numbers, text as is, bytes as hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::UInt(u) => write!(f, "{u}"),
            Value::Real(r) => write!(f, "{r}"),
            Value::Text(s) => f.write_str(s),
            Value::Bytes(b) => f.write_str(&hex::encode(b)),
        }
    }
}

/// Types every value of `rows` by its column.
pub fn typed_rows(rows: Vec<Row>, columns: &[ColumnInfo]) -> Result<Vec<Row>, String> {
    rows.into_iter()
        .map(|row| {
            if row.len() != columns.len() {
                return Err(format!("a row has {} values for {} columns", row.len(), columns.len()));
            }
            row.into_iter().zip(columns).map(|(v, c)| v.typed(&c.ty)).collect()
        })
        .collect()
}

/// A value borrowed, serialized as `Value` is: for whoever holds values in another form (the
/// server writes its engine's rows with it, making no `Value` on the way).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ValueRef<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Real(f64),
    Text(&'a str),
    Bytes(&'a [u8]),
}

impl Value {
    /// This value, borrowed.
    pub fn as_value_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Null => ValueRef::Null,
            Value::Bool(b) => ValueRef::Bool(*b),
            Value::Int(i) => ValueRef::Int(*i),
            Value::UInt(u) => ValueRef::UInt(*u),
            Value::Real(r) => ValueRef::Real(*r),
            Value::Text(t) => ValueRef::Text(t),
            Value::Bytes(b) => ValueRef::Bytes(b),
        }
    }
}

impl From<ValueRef<'_>> for Value {
    fn from(v: ValueRef<'_>) -> Value {
        match v {
            ValueRef::Null => Value::Null,
            ValueRef::Bool(b) => Value::Bool(b),
            ValueRef::Int(i) => Value::Int(i),
            ValueRef::UInt(u) => Value::UInt(u),
            ValueRef::Real(r) => Value::Real(r),
            ValueRef::Text(t) => Value::Text(t.to_string()),
            ValueRef::Bytes(b) => Value::Bytes(b.to_vec()),
        }
    }
}

impl Serialize for ValueRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            ValueRef::Null => s.serialize_unit(),
            ValueRef::Bool(b) => s.serialize_bool(b),
            ValueRef::Int(i) => s.serialize_i64(i),
            ValueRef::UInt(u) => s.serialize_u64(u),
            ValueRef::Real(r) => s.serialize_f64(r),
            ValueRef::Text(t) => s.serialize_str(t),
            ValueRef::Bytes(b) if s.is_human_readable() => s.serialize_str(&hex::encode(b)),
            ValueRef::Bytes(b) => s.serialize_bytes(b),
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_value_ref().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("null, a boolean, a number, a string or bytes")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i))
    }
    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Value, E> {
        Ok(i64::try_from(u).map_or(Value::UInt(u), Value::Int))
    }
    fn visit_f64<E: de::Error>(self, r: f64) -> Result<Value, E> {
        Ok(Value::Real(r))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        Ok(Value::Text(s.to_string()))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        Ok(Value::Text(s))
    }
    fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(b.to_vec()))
    }
    fn visit_byte_buf<E: de::Error>(self, b: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Bytes(b))
    }
}
