//! Server messages as frames. A transaction's update is assembled from per-query pieces: each
//! query's delta is encoded once per encoding and shared by every subscriber, and whole frames
//! are shared by every client with the same set of changed queries. Where one batch of
//! transactions changed several for a client, their updates go in one `TransactionUpdates`
//! frame.

use axum::extract::ws::{Message, Utf8Bytes};
use bytes::Bytes;
use serde::ser::{Serialize, SerializeSeq, Serializer};
use sluice_client::protocol::{ColumnInfo, Encoding, ServerMessage, ValueRef};
use sluice_ivm::{QueryDelta, QueryId};
use sluice_planner::{DataType, Row, Value};
use sluice_runtime::TxRecord;
use std::collections::HashMap;

/// A message as one frame of its encoding.
pub fn frame(encoding: Encoding, message: &ServerMessage) -> Message {
    into_frame(encoding, encoding.encode(message))
}

fn into_frame(encoding: Encoding, bytes: Vec<u8>) -> Message {
    match encoding {
        Encoding::Json => Message::Text(Utf8Bytes::try_from(bytes).expect("JSON is UTF-8")),
        Encoding::MessagePack => Message::Binary(Bytes::from(bytes)),
    }
}

/// An engine value as the protocol carries it.
pub fn protocol_value(v: &Value) -> sluice_client::Value {
    wire_value(v).into()
}

/// An engine value as the protocol writes it, borrowed.
fn wire_value(v: &Value) -> ValueRef<'_> {
    match v {
        Value::Null => ValueRef::Null,
        Value::Bool(b) => ValueRef::Bool(*b),
        Value::Int(i) => ValueRef::Int(*i),
        Value::UInt(u) => ValueRef::UInt(*u),
        Value::Real(r) => ValueRef::Real(*r),
        Value::Text(t) => ValueRef::Text(t),
        Value::Bytes(b) => ValueRef::Bytes(b),
    }
}

/// Engine rows as protocol rows.
pub fn protocol_rows(rows: &[Row]) -> Vec<sluice_client::Row> {
    rows.iter().map(|r| r.values().iter().map(protocol_value).collect()).collect()
}

/// A query's delta as the protocol's `QueryUpdate` serializes (the same fields, the same
/// bytes in either encoding), written straight from the engine's rows: no protocol row, no
/// copy of a string is made on the way.
#[derive(serde::Serialize)]
struct WireUpdate<'a> {
    query_id: u64,
    inserts: WireRows<'a>,
    deletes: WireRows<'a>,
}

struct WireRows<'a>(&'a [Row]);

impl Serialize for WireRows<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(WireRow))
    }
}

struct WireRow<'a>(&'a Row);

impl Serialize for WireRow<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for v in self.0.iter() {
            seq.serialize_element(&wire_value(&v))?;
        }
        seq.end()
    }
}

/// Column names and types as the protocol states them.
pub fn columns(columns: &[(String, DataType)]) -> Vec<ColumnInfo> {
    columns.iter().map(|(name, ty)| ColumnInfo { name: name.clone(), ty: ty.name().to_string() }).collect()
}

/// The frames of a batch of committed transactions (in commit order), built as clients need
/// them.
pub struct BatchFrames<'a> {
    txs: Vec<TxFrames<'a>>,
}

impl<'a> BatchFrames<'a> {
    pub fn new(committed: &'a [(TxRecord, Vec<QueryDelta>)]) -> BatchFrames<'a> {
        BatchFrames { txs: committed.iter().map(|(tx, deltas)| TxFrames::new(tx, deltas)).collect() }
    }

    /// The frame for a client watching `watched` (sorted): the TransactionUpdate of the one
    /// transaction that changed any of them, or the TransactionUpdates of all that did; `None`
    /// where none did.
    pub fn frame(&mut self, encoding: Encoding, watched: &[QueryId]) -> Option<Message> {
        let mut touched: Vec<(usize, Vec<QueryId>)> = Vec::new();
        for (i, tx) in self.txs.iter().enumerate() {
            let queries: Vec<QueryId> = watched.iter().copied().filter(|q| tx.deltas.contains_key(q)).collect();
            if !queries.is_empty() {
                touched.push((i, queries));
            }
        }
        if touched.len() <= 1 {
            return touched.pop().map(|(i, queries)| self.txs[i].frame(encoding, queries));
        }
        let updates: Vec<Message> =
            touched.into_iter().map(|(i, queries)| self.txs[i].frame(encoding, queries)).collect();
        let bodies: Vec<&[u8]> = updates.iter().map(frame_bytes).collect();
        let bytes = match encoding {
            Encoding::Json => json_list(br#"{"type":"TransactionUpdates","transactions":["#.to_vec(), &bodies),
            Encoding::MessagePack => {
                use rmp::encode::{write_array_len, write_map_len, write_str};
                let mut out = Vec::new();
                write_map_len(&mut out, 2).expect("writes to a Vec");
                write_str(&mut out, "type").expect("writes to a Vec");
                write_str(&mut out, "TransactionUpdates").expect("writes to a Vec");
                write_str(&mut out, "transactions").expect("writes to a Vec");
                write_array_len(&mut out, bodies.len() as u32).expect("writes to a Vec");
                bodies.iter().for_each(|b| out.extend_from_slice(b));
                out
            }
        };
        Some(into_frame(encoding, bytes))
    }
}

/// `head` (a JSON object up to an open list) followed by `items`, comma-separated, and the
/// list's and object's ends.
fn json_list(mut head: Vec<u8>, items: &[&[u8]]) -> Vec<u8> {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            head.push(b',');
        }
        head.extend_from_slice(item);
    }
    head.extend_from_slice(b"]}");
    head
}

/// A frame's payload.
fn frame_bytes(m: &Message) -> &[u8] {
    match m {
        Message::Text(t) => t.as_bytes(),
        Message::Binary(b) => b,
        _ => unreachable!("update frames are text or binary"),
    }
}

/// The frames of one committed transaction, built as clients need them.
struct TxFrames<'a> {
    tx: &'a TxRecord,
    deltas: HashMap<QueryId, &'a QueryDelta>,
    pieces: HashMap<(QueryId, Encoding), Vec<u8>>,
    frames: HashMap<(Encoding, Vec<QueryId>), Message>,
}

impl<'a> TxFrames<'a> {
    fn new(tx: &'a TxRecord, deltas: &'a [QueryDelta]) -> TxFrames<'a> {
        let deltas = deltas.iter().map(|d| (d.query, d)).collect();
        TxFrames { tx, deltas, pieces: HashMap::new(), frames: HashMap::new() }
    }

    /// The TransactionUpdate frame for a client subscribed to `queries` (sorted, each
    /// changed by this transaction).
    fn frame(&mut self, encoding: Encoding, queries: Vec<QueryId>) -> Message {
        if let Some(f) = self.frames.get(&(encoding, queries.clone())) {
            return f.clone();
        }
        for q in &queries {
            let delta = self.deltas[q];
            self.pieces.entry((*q, encoding)).or_insert_with(|| {
                encoding.encode(&WireUpdate {
                    query_id: q.0,
                    inserts: WireRows(&delta.inserts),
                    deletes: WireRows(&delta.deletes),
                })
            });
        }
        let pieces: Vec<&[u8]> = queries.iter().map(|q| self.pieces[&(*q, encoding)].as_slice()).collect();
        let bytes = match encoding {
            Encoding::Json => self.json(&pieces),
            Encoding::MessagePack => self.msgpack(&pieces),
        };
        let f = into_frame(encoding, bytes);
        self.frames.insert((encoding, queries), f.clone());
        f
    }

    fn json(&self, pieces: &[&[u8]]) -> Vec<u8> {
        let meta = &self.tx.meta;
        let head = format!(
            r#"{{"type":"TransactionUpdate","offset":{},"timestamp_micros":{},"reducer":{},"caller":{},"updates":["#,
            self.tx.offset,
            meta.timestamp_micros,
            serde_json::to_string(&meta.reducer).expect("a string"),
            serde_json::to_string(&meta.caller).expect("a string"),
        );
        json_list(head.into_bytes(), pieces)
    }

    fn msgpack(&self, pieces: &[&[u8]]) -> Vec<u8> {
        use rmp::encode::{write_array_len, write_map_len, write_str, write_uint};
        let meta = &self.tx.meta;
        let mut out = Vec::new();
        let w = &mut out;
        write_map_len(w, 6).expect("writes to a Vec");
        write_str(w, "type").expect("writes to a Vec");
        write_str(w, "TransactionUpdate").expect("writes to a Vec");
        write_str(w, "offset").expect("writes to a Vec");
        write_uint(w, self.tx.offset).expect("writes to a Vec");
        write_str(w, "timestamp_micros").expect("writes to a Vec");
        write_uint(w, meta.timestamp_micros).expect("writes to a Vec");
        write_str(w, "reducer").expect("writes to a Vec");
        write_str(w, &meta.reducer).expect("writes to a Vec");
        write_str(w, "caller").expect("writes to a Vec");
        write_str(w, &meta.caller).expect("writes to a Vec");
        write_str(w, "updates").expect("writes to a Vec");
        write_array_len(w, pieces.len() as u32).expect("writes to a Vec");
        for p in pieces {
            out.extend_from_slice(p);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    use sluice_client::protocol::QueryUpdate;

    fn value(rng: &mut SmallRng) -> Value {
        match rng.random_range(0..8) {
            0 => Value::Null,
            1 => Value::Bool(rng.random()),
            2 => Value::Int(rng.random_range(-300..300)),
            3 => Value::Int(rng.random()),
            4 => Value::UInt(rng.random()),
            5 => Value::Real([0.5, -0.0, 1e300, f64::NAN, f64::INFINITY][rng.random_range(0..5)]),
            6 => Value::Text(
                ["", "é\"\\\n\u{1F600}", "plain"][rng.random_range(0..3)].repeat(rng.random_range(1..40)).into(),
            ),
            _ => Value::Bytes((0..rng.random_range(0..300)).map(|_| rng.random()).collect::<Vec<u8>>().into()),
        }
    }

    #[test]
    fn a_delta_is_written_from_engine_rows_as_the_protocol_encodes_it() {
        let mut rng = SmallRng::seed_from_u64(7);
        for _ in 0..200 {
            let rows = |rng: &mut SmallRng| -> Vec<Row> {
                (0..rng.random_range(0..20))
                    .map(|_| Row::new((0..rng.random_range(0..8)).map(|_| value(rng)).collect()))
                    .collect()
            };
            let (inserts, deletes) = (rows(&mut rng), rows(&mut rng));
            let query_id = rng.random();
            let expected = QueryUpdate { query_id, inserts: protocol_rows(&inserts), deletes: protocol_rows(&deletes) };
            let written = WireUpdate { query_id, inserts: WireRows(&inserts), deletes: WireRows(&deletes) };
            for encoding in [Encoding::Json, Encoding::MessagePack] {
                assert_eq!(encoding.encode(&written), encoding.encode(&expected), "{encoding:?}");
            }
        }
    }
}
