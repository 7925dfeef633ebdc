//! The transaction messages in MessagePack (`sluice.msgpack.v2`): arrays whose first element
//! is the message's type as a small integer, then its fields in order, with no field names.
//! A busy subscriber receives little else, and as maps more than half of each transaction's bytes
//! were names and the caller's identity written as 64 hex digits:
//!
//! - `TransactionUpdate`: `[0, offset, timestamp_micros, reducer, caller, updates]`, where
//!   `caller` is the identity's 32 bytes as bin (nil for the server itself) and each update
//!   is `[query_id, inserts, deletes]`;
//! - `TransactionUpdates`: `[1, transactions]`, each transaction a `TransactionUpdate` array.
//!
//! Every other message stays a map tagged by `"type"`, so a reader tells the two apart by the
//! value's kind.

use super::{QueryUpdate, Row, ServerMessage};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{self, SerializeTuple};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The first element of a positional `TransactionUpdate`.
pub const TRANSACTION_UPDATE: u8 = 0;
/// The first element of a positional `TransactionUpdates`.
pub const TRANSACTION_UPDATES: u8 = 1;

/// Writes a transaction message positionally; any other message is an error.
pub fn serialize<S: Serializer>(message: &ServerMessage, s: S) -> Result<S::Ok, S::Error> {
    match message {
        ServerMessage::TransactionUpdate { offset, timestamp_micros, reducer, caller, updates } => {
            let mut t = s.serialize_tuple(6)?;
            t.serialize_element(&TRANSACTION_UPDATE)?;
            t.serialize_element(offset)?;
            t.serialize_element(timestamp_micros)?;
            t.serialize_element(reducer)?;
            t.serialize_element(&Caller(caller))?;
            t.serialize_element(&Updates(updates))?;
            t.end()
        }
        ServerMessage::TransactionUpdates { transactions } => {
            only_updates(transactions).map_err(ser::Error::custom)?;
            let mut t = s.serialize_tuple(2)?;
            t.serialize_element(&TRANSACTION_UPDATES)?;
            t.serialize_element(transactions)?;
            t.end()
        }
        other => Err(ser::Error::custom(format!("{other:?} has no positional form"))),
    }
}

/// Refuses a TransactionUpdates holding anything but TransactionUpdates.
fn only_updates(transactions: &[ServerMessage]) -> Result<(), String> {
    match transactions.iter().find(|t| !matches!(t, ServerMessage::TransactionUpdate { .. })) {
        Some(other) => Err(format!("a TransactionUpdates holds {other:?}")),
        None => Ok(()),
    }
}

/// A caller's identity: 64 hex digits, as bin; the server's (empty), as nil.
struct Caller<'a>(&'a str);

impl Serialize for Caller<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match caller_bytes(self.0)
            .map_err(|e| ser::Error::custom(format!("the caller {:?} is not 64 hex digits: {e}", self.0)))?
        {
            Some(identity) => s.serialize_bytes(&identity),
            None => s.serialize_none(),
        }
    }
}

/// A caller as the protocol sends it in MessagePack: its identity's 32 bytes, or none for the
/// server itself (an empty caller).
pub fn caller_bytes(caller: &str) -> Result<Option<[u8; 32]>, hex::FromHexError> {
    if caller.is_empty() {
        return Ok(None);
    }
    let mut identity = [0u8; 32];
    hex::decode_to_slice(caller, &mut identity)?;
    Ok(Some(identity))
}

struct Updates<'a>(&'a [QueryUpdate]);

impl Serialize for Updates<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|u| (u.query_id, &u.inserts, &u.deletes)))
    }
}

/// Reads a server message of either form: a map through the derived, tagged form, an array
/// positionally.
pub struct MessageVisitor;

impl<'de> Visitor<'de> for MessageVisitor {
    type Value = ServerMessage;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a server message: a map with a \"type\", or a transaction's array")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ServerMessage, A::Error> {
        ServerMessage::deserialize(de::value::MapAccessDeserializer::new(map))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ServerMessage, A::Error> {
        let message = match element::<u8, A>(&mut seq, "its type")? {
            TRANSACTION_UPDATE => ServerMessage::TransactionUpdate {
                offset: element(&mut seq, "offset")?,
                timestamp_micros: element(&mut seq, "timestamp_micros")?,
                reducer: element(&mut seq, "reducer")?,
                caller: seq.next_element_seed(CallerSeed)?.ok_or_else(|| missing("caller"))?,
                updates: element::<Vec<Update>, A>(&mut seq, "updates")?.into_iter().map(|u| u.0).collect(),
            },
            TRANSACTION_UPDATES => {
                let transactions: Vec<ServerMessage> = element(&mut seq, "transactions")?;
                only_updates(&transactions).map_err(de::Error::custom)?;
                ServerMessage::TransactionUpdates { transactions }
            }
            other => return Err(de::Error::custom(format!("no message is positional with type {other}"))),
        };
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom("a transaction message with more elements than its fields"));
        }
        Ok(message)
    }
}

fn missing<E: de::Error>(field: &str) -> E {
    E::custom(format!("a transaction message ends before its {field}"))
}

fn element<'de, T: Deserialize<'de>, A: SeqAccess<'de>>(seq: &mut A, field: &str) -> Result<T, A::Error> {
    seq.next_element()?.ok_or_else(|| missing(field))
}

/// A positional `[query_id, inserts, deletes]`.
struct Update(QueryUpdate);

impl<'de> Deserialize<'de> for Update {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Update, D::Error> {
        let (query_id, inserts, deletes): (u64, Vec<Row>, Vec<Row>) = Deserialize::deserialize(d)?;
        Ok(Update(QueryUpdate { query_id, inserts, deletes }))
    }
}

/// Reads a caller as the protocol's `String`: bin of 32 bytes as hex, nil as empty.
struct CallerSeed;

impl<'de> DeserializeSeed<'de> for CallerSeed {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CallerSeed {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a caller: 32 bytes, or nil for the server")
    }
    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        Ok(String::new())
    }
    fn visit_none<E: de::Error>(self) -> Result<String, E> {
        Ok(String::new())
    }
    fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<String, E> {
        match b.len() {
            32 => Ok(hex::encode(b)),
            n => Err(E::custom(format!("a caller of {n} bytes, not 32"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Encoding, Status, Value};
    use super::*;

    fn update(caller: &str) -> ServerMessage {
        ServerMessage::TransactionUpdate {
            offset: 70_000,
            timestamp_micros: 1_764_000_000_000_000,
            reducer: "transfer".into(),
            caller: caller.into(),
            updates: vec![QueryUpdate {
                query_id: 3,
                inserts: vec![vec![Value::Int(-1), Value::Text("a".into()), Value::Bytes(vec![1, 2])]],
                deletes: vec![vec![Value::Null, Value::Real(0.5), Value::Bool(true)]],
            }],
        }
    }

    fn identity() -> String {
        "ab".repeat(32)
    }

    #[test]
    fn transaction_messages_are_arrays_that_read_back() {
        let many = ServerMessage::TransactionUpdates { transactions: vec![update(&identity()), update("")] };
        for message in [update(&identity()), update(""), many] {
            let bytes = Encoding::MessagePack.encode(&message);
            assert!(matches!(rmp::Marker::from_u8(bytes[0]), rmp::Marker::FixArray(_)), "{message:?}");
            assert_eq!(Encoding::MessagePack.decode::<ServerMessage>(&bytes), Ok(message));
        }
    }

    /// The bytes are the documented layout: tag, fields in order, the caller as 32 bytes (nil
    /// for the server); other messages are still maps.
    #[test]
    fn a_transaction_update_is_its_fields_in_order() {
        let layout = |caller: &[u8]| {
            let mut expected = vec![0x96, 0x00, 0xce, 0x00, 0x01, 0x11, 0x70, 0xcf];
            expected.extend_from_slice(&1_764_000_000_000_000u64.to_be_bytes());
            expected.extend_from_slice(b"\xa8transfer");
            expected.extend_from_slice(caller);
            expected.extend_from_slice(b"\x91\x93\x03\x91\x93\xff\xa1a\xc4\x02\x01\x02\x91\x93\xc0\xcb");
            expected.extend_from_slice(&0.5f64.to_be_bytes());
            expected.push(0xc3);
            expected
        };
        let bin = [&[0xc4, 0x20][..], &[0xab; 32]].concat();
        assert_eq!(Encoding::MessagePack.encode(&update(&identity())), layout(&bin));
        assert_eq!(Encoding::MessagePack.encode(&update("")), layout(&[0xc0]));
        let result =
            ServerMessage::ReducerResult { request_id: 1, status: Status::Committed, offset: Some(2), error: None };
        let bytes = Encoding::MessagePack.encode(&result);
        assert!(matches!(rmp::Marker::from_u8(bytes[0]), rmp::Marker::FixMap(4)));
        assert_eq!(Encoding::MessagePack.decode::<ServerMessage>(&bytes), Ok(result));
    }

    #[test]
    fn a_malformed_transaction_array_is_an_error_naming_it() {
        use rmp::encode::{write_array_len, write_bin, write_nil, write_str, write_uint};
        let bad = |write: &dyn Fn(&mut Vec<u8>)| {
            let mut bytes = Vec::new();
            write(&mut bytes);
            Encoding::MessagePack.decode::<ServerMessage>(&bytes).unwrap_err()
        };
        // A TransactionUpdate's array up to its caller, which `caller` writes.
        let head = |out: &mut Vec<u8>, elements: u32, caller: &dyn Fn(&mut Vec<u8>)| {
            write_array_len(out, elements).unwrap();
            for n in [0, 1, 2] {
                write_uint(out, n).unwrap();
            }
            write_str(out, "r").unwrap();
            caller(out);
            write_array_len(out, 0).unwrap();
        };
        let nil = |out: &mut Vec<u8>| write_nil(out).unwrap();
        let error = bad(&|o| {
            write_array_len(o, 1).unwrap();
            write_uint(o, 9).unwrap();
        });
        assert!(error.contains("type 9"), "{error}");
        let error = bad(&|o| {
            write_array_len(o, 2).unwrap();
            write_uint(o, 0).unwrap();
            write_uint(o, 1).unwrap();
        });
        assert!(error.contains("timestamp_micros"), "{error}");
        let error = bad(&|o| head(o, 6, &|o| write_bin(o, &[1; 5]).unwrap()));
        assert!(error.contains("5 bytes"), "{error}");
        let error = bad(&|o| head(o, 6, &|o| write_str(o, "ab").unwrap()));
        assert!(error.contains("a caller"), "{error}");
        let error = bad(&|o| {
            head(o, 7, &nil);
            nil(o);
        });
        assert!(error.contains("more elements"), "{error}");
        let error = bad(&|o| {
            write_array_len(o, 2).unwrap();
            write_uint(o, 1).unwrap();
            write_array_len(o, 1).unwrap();
            write_array_len(o, 2).unwrap();
            write_uint(o, 1).unwrap();
            write_array_len(o, 0).unwrap();
        });
        assert!(error.contains("TransactionUpdates holds"), "{error}");
        // A caller that is not an identity is refused on the way out too.
        let mut message = update("xyz");
        let error = rmp_serde::to_vec(&message).unwrap_err().to_string();
        assert!(error.contains("64 hex digits"), "{error}");
        message = ServerMessage::TransactionUpdates { transactions: vec![message] };
        assert!(rmp_serde::to_vec(&message).is_err());
    }
}
