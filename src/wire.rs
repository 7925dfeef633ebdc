//! Server messages as frames. A batch's update frame is written straight from the engine's
//! deltas into one buffer: each query's delta in a transaction is encoded once per encoding
//! and copied into every frame that holds it, and the frame is built once per group of
//! clients watching the same queries. Where one batch of transactions changed several for a
//! client, their updates go in one `TransactionUpdates` frame.

use axum::extract::ws::{Message, Utf8Bytes};
use bytes::Bytes;
use serde::ser::{Serialize, SerializeSeq, Serializer};
use sluice_client::protocol::{positional, ColumnInfo, Encoding, ServerMessage, ValueRef};
use sluice_ivm::{QueryDelta, QueryId};
use sluice_planner::{DataType, Row, Value};
use sluice_runtime::TxRecord;
use std::collections::HashMap;
use std::io::Write;
use std::ops::Range;

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
/// them: each query's delta in a transaction is encoded once per encoding, and every frame is
/// written into one buffer, sized for it before the first byte.
pub struct BatchFrames<'a> {
    committed: &'a [(TxRecord, Vec<QueryDelta>)],
    /// Where each (transaction, query, encoding)'s encoded delta lies in `pieces`.
    encoded: HashMap<(usize, QueryId, Encoding), Range<usize>>,
    pieces: Vec<u8>,
}

impl<'a> BatchFrames<'a> {
    pub fn new(committed: &'a [(TxRecord, Vec<QueryDelta>)]) -> BatchFrames<'a> {
        BatchFrames { committed, encoded: HashMap::new(), pieces: Vec::new() }
    }

    /// The frame for a client watching `watched` (sorted): the TransactionUpdate of the one
    /// transaction that changed any of them, or the TransactionUpdates of all that did; `None`
    /// where none did. Each shows its caller only as `viewer` may see it.
    pub fn frame(&mut self, encoding: Encoding, watched: &[QueryId], viewer: Viewer<'_>) -> Option<Message> {
        // Each transaction that changed a watched query, with the pieces of those queries.
        let mut touched: Vec<(usize, Vec<Range<usize>>)> = Vec::new();
        for (i, (_, deltas)) in self.committed.iter().enumerate() {
            let mut changed: Vec<&QueryDelta> =
                deltas.iter().filter(|d| watched.binary_search(&d.query).is_ok()).collect();
            if !changed.is_empty() {
                changed.sort_unstable_by_key(|d| d.query);
                touched.push((i, changed.into_iter().map(|d| self.piece(i, d, encoding)).collect()));
            }
        }
        let many = match touched.len() {
            0 => return None,
            n => n > 1,
        };
        let size = touched.iter().flat_map(|(_, p)| p).map(|r| r.len() + 1).sum::<usize>();
        let mut out = Vec::with_capacity(size + touched.len() * TX_HEAD + TX_HEAD);
        if many {
            match encoding {
                Encoding::Json => out.extend_from_slice(br#"{"type":"TransactionUpdates","transactions":["#),
                Encoding::MessagePack => {
                    use rmp::encode::{write_array_len, write_pfix};
                    write_array_len(&mut out, 2).expect("writes to a Vec");
                    write_pfix(&mut out, positional::TRANSACTION_UPDATES).expect("writes to a Vec");
                    write_array_len(&mut out, touched.len() as u32).expect("writes to a Vec");
                }
            }
        }
        for (k, (i, pieces)) in touched.iter().enumerate() {
            if encoding == Encoding::Json && k > 0 {
                out.push(b',');
            }
            let tx = &self.committed[*i].0;
            let caller = viewer.sees(&tx.meta.caller);
            match encoding {
                Encoding::Json => json_head(tx, caller, &mut out),
                Encoding::MessagePack => msgpack_head(tx, caller, pieces.len(), &mut out),
            }
            for (n, piece) in pieces.iter().enumerate() {
                if encoding == Encoding::Json && n > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(&self.pieces[piece.clone()]);
            }
            if encoding == Encoding::Json {
                out.extend_from_slice(b"]}");
            }
        }
        if many && encoding == Encoding::Json {
            out.extend_from_slice(b"]}");
        }
        Some(into_frame(encoding, out))
    }

    /// Where transaction `i`'s delta `d` lies in `pieces`, encoded there on first use.
    fn piece(&mut self, i: usize, d: &QueryDelta, encoding: Encoding) -> Range<usize> {
        let pieces = &mut self.pieces;
        self.encoded
            .entry((i, d.query, encoding))
            .or_insert_with(|| {
                let start = pieces.len();
                let update =
                    WireUpdate { query_id: d.query.0, inserts: WireRows(&d.inserts), deletes: WireRows(&d.deletes) };
                match encoding {
                    Encoding::Json => serde_json::to_writer(&mut *pieces, &update).expect("deltas encode as JSON"),
                    Encoding::MessagePack => {
                        rmp_serde::encode::write(pieces, &update).expect("deltas encode as MessagePack")
                    }
                }
                start..pieces.len()
            })
            .clone()
    }
}

/// Bytes reserved for a TransactionUpdate's fields besides its updates (a 64-digit caller,
/// a short reducer name and the field names fit).
const TX_HEAD: usize = 192;

/// Whom a frame is for, which decides whose calls it names: like the log's callers, a
/// transaction's caller is the database owner's to see, and the caller's own; anyone else
/// sees it as the server's (empty).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Viewer<'a> {
    Owner,
    /// A client that is not the owner, by its identity's hex.
    Client(&'a str),
}

impl Viewer<'_> {
    /// The caller this viewer is shown for a transaction called by `caller`.
    pub fn sees<'c>(&self, caller: &'c str) -> &'c str {
        match self {
            Viewer::Client(me) if *me != caller => "",
            _ => caller,
        }
    }
}

/// A TransactionUpdate in JSON up to its open list of updates.
fn json_head(tx: &TxRecord, caller: &str, out: &mut Vec<u8>) {
    let meta = &tx.meta;
    write!(
        out,
        r#"{{"type":"TransactionUpdate","offset":{},"timestamp_micros":{},"reducer":"#,
        tx.offset, meta.timestamp_micros
    )
    .expect("writes to a Vec");
    serde_json::to_writer(&mut *out, &meta.reducer).expect("a string");
    out.extend_from_slice(br#","caller":"#);
    serde_json::to_writer(&mut *out, caller).expect("a string");
    out.extend_from_slice(br#","updates":["#);
}

/// A positional TransactionUpdate in MessagePack up to its array of `updates` updates.
fn msgpack_head(tx: &TxRecord, caller: &str, updates: usize, out: &mut Vec<u8>) {
    use rmp::encode::{write_array_len, write_bin, write_nil, write_pfix, write_str, write_uint};
    let meta = &tx.meta;
    write_array_len(out, 6).expect("writes to a Vec");
    write_pfix(out, positional::TRANSACTION_UPDATE).expect("writes to a Vec");
    write_uint(out, tx.offset).expect("writes to a Vec");
    write_uint(out, meta.timestamp_micros).expect("writes to a Vec");
    write_str(out, &meta.reducer).expect("writes to a Vec");
    match positional::caller_bytes(caller).expect("a caller is an identity's hex (sessions::meta)") {
        Some(identity) => write_bin(out, &identity).expect("writes to a Vec"),
        // The server's own transactions (scheduled reducers, lifecycle) have no caller.
        None => write_nil(out).expect("writes to a Vec"),
    }
    write_array_len(out, updates as u32).expect("writes to a Vec");
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    use sluice_client::protocol::QueryUpdate;
    use sluice_runtime::CommitMeta;

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

    /// The frames of a random batch for random sets of watched queries are the protocol's
    /// `TransactionUpdate(s)` messages, byte for byte, in both encodings.
    #[test]
    fn a_batch_frame_is_the_protocols_message() {
        let mut rng = SmallRng::seed_from_u64(11);
        let rows = |rng: &mut SmallRng| -> Vec<Row> {
            (0..rng.random_range(0..4))
                .map(|_| Row::new((0..rng.random_range(0..4)).map(|_| value(rng)).collect()))
                .collect()
        };
        for _ in 0..300 {
            let committed: Vec<(TxRecord, Vec<QueryDelta>)> = (0..rng.random_range(1..6u64))
                .map(|offset| {
                    let meta = CommitMeta {
                        timestamp_micros: rng.random(),
                        reducer: ["transfer", "sql", "é\"q"][rng.random_range(0..3)].to_string(),
                        caller: ["", &"0a".repeat(32)][rng.random_range(0..2)].to_string(),
                        ..CommitMeta::default()
                    };
                    let mut queries: Vec<u64> = (0..6).filter(|_| rng.random_bool(0.4)).collect();
                    queries.reverse();
                    let deltas = queries
                        .into_iter()
                        .map(|q| QueryDelta {
                            query: QueryId(q),
                            offset,
                            inserts: rows(&mut rng),
                            deletes: rows(&mut rng),
                        })
                        .collect();
                    (TxRecord { offset, meta, changes: Vec::new() }, deltas)
                })
                .collect();
            let mut frames = BatchFrames::new(&committed);
            for _ in 0..3 {
                let watched: Vec<QueryId> = (0..6).filter(|_| rng.random_bool(0.5)).map(QueryId).collect();
                let mut expected: Vec<ServerMessage> = committed
                    .iter()
                    .filter_map(|(tx, deltas)| {
                        let mut updates: Vec<&QueryDelta> =
                            deltas.iter().filter(|d| watched.contains(&d.query)).collect();
                        updates.sort_by_key(|d| d.query);
                        (!updates.is_empty()).then(|| ServerMessage::TransactionUpdate {
                            offset: tx.offset,
                            timestamp_micros: tx.meta.timestamp_micros,
                            reducer: tx.meta.reducer.clone(),
                            caller: tx.meta.caller.clone(),
                            updates: updates
                                .into_iter()
                                .map(|d| QueryUpdate {
                                    query_id: d.query.0,
                                    inserts: protocol_rows(&d.inserts),
                                    deletes: protocol_rows(&d.deletes),
                                })
                                .collect(),
                        })
                    })
                    .collect();
                let expected = match expected.len() {
                    0 => None,
                    1 => expected.pop(),
                    _ => Some(ServerMessage::TransactionUpdates { transactions: expected }),
                };
                let (mine, theirs) = ("0a".repeat(32), "0b".repeat(32));
                for viewer in [Viewer::Owner, Viewer::Client(&mine), Viewer::Client(&theirs)] {
                    let shown = |m: &ServerMessage| match m.clone() {
                        ServerMessage::TransactionUpdate { offset, timestamp_micros, reducer, caller, updates } => {
                            let caller = viewer.sees(&caller).to_string();
                            ServerMessage::TransactionUpdate { offset, timestamp_micros, reducer, caller, updates }
                        }
                        other => other,
                    };
                    let expected = expected.as_ref().map(|m| match m {
                        ServerMessage::TransactionUpdates { transactions } => {
                            ServerMessage::TransactionUpdates { transactions: transactions.iter().map(shown).collect() }
                        }
                        single => shown(single),
                    });
                    for encoding in [Encoding::Json, Encoding::MessagePack] {
                        let got = frames.frame(encoding, &watched, viewer);
                        let want = expected.as_ref().map(|m| encoding.encode(m));
                        assert_eq!(
                            got.as_ref().map(|f| f.clone().into_data().to_vec()),
                            want,
                            "{encoding:?} {viewer:?}"
                        );
                    }
                }
            }
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
