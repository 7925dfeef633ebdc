//! The transaction timestamps of a server message, read from its MessagePack bytes. The
//! load generator's dashboards time each transaction's update and nothing else; walking past
//! the rows without decoding them (no string checked, nothing allocated) is what lets its one
//! thread keep up with 100 dashboards. Decoding them with serde, even into ignored fields,
//! took two thirds of that thread (UTF-8 checks of every string a fifth). Dashboards that
//! watch the same queries are sent the same frame, so the last few frames read are kept
//! (`Recent`): one equal to them is compared, not walked again.

use anyhow::{bail, Context, Result};
use rmp::Marker;
use sluice_client::protocol::positional::{TRANSACTION_UPDATE, TRANSACTION_UPDATES};

/// Appends to `out` the `timestamp_micros` of a TransactionUpdate, or of each transaction of
/// a TransactionUpdates, in order (both positional, `sluice.msgpack.v2`); other messages add
/// nothing.
pub fn read(bytes: &[u8], out: &mut Vec<u64>) -> Result<()> {
    let mut r = Reader { bytes, pos: 0 };
    r.message(out, true).context("reading a server message's timestamps")?;
    if r.pos != bytes.len() {
        bail!("{} bytes after the message", bytes.len() - r.pos);
    }
    Ok(())
}

/// How many frames `Recent` keeps.
const RECENT: usize = 4;

/// The frames read last, with their timestamps.
#[derive(Default)]
pub struct Recent {
    frames: std::collections::VecDeque<(Vec<u8>, Vec<u64>)>,
}

impl Recent {
    /// As `read`: the timestamps of a frame equal to one kept are copied, any other frame is
    /// read (and kept, in place of the oldest, when it reads).
    pub fn read(&mut self, bytes: &[u8], out: &mut Vec<u64>) -> Result<()> {
        if let Some((_, stamps)) = self.frames.iter().find(|(kept, _)| kept.as_slice() == bytes) {
            out.extend_from_slice(stamps);
            return Ok(());
        }
        let from = out.len();
        read(bytes, out)?;
        if self.frames.len() == RECENT {
            self.frames.pop_front();
        }
        self.frames.push_back((bytes.to_vec(), out[from..].to_vec()));
        Ok(())
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.bytes.len()).context("the message is cut short")?;
        let taken = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(taken)
    }

    fn marker(&mut self) -> Result<Marker> {
        Ok(Marker::from_u8(self.take(1)?[0]))
    }

    /// A big-endian unsigned integer of `n` bytes (at most 8).
    fn be(&mut self, n: usize) -> Result<u64> {
        Ok(self.take(n)?.iter().fold(0, |acc, b| acc << 8 | u64::from(*b)))
    }

    fn length(&mut self, n: usize) -> Result<usize> {
        Ok(self.be(n)? as usize)
    }

    /// A message: a positional TransactionUpdate gives its timestamp and, where `nested`, a
    /// TransactionUpdates each of its transactions'. Other messages are maps, stepped over:
    /// only transactions have timestamps.
    fn message(&mut self, out: &mut Vec<u64>, nested: bool) -> Result<()> {
        let first = *self.bytes.get(self.pos).context("the message is cut short")?;
        if nested && matches!(Marker::from_u8(first), Marker::FixMap(_) | Marker::Map16 | Marker::Map32) {
            return self.skip();
        }
        const UPDATE: u64 = TRANSACTION_UPDATE as u64;
        const UPDATES: u64 = TRANSACTION_UPDATES as u64;
        let elements = self.array()?;
        match (self.unsigned()?, elements) {
            (UPDATE, 6) => {
                self.unsigned()?;
                out.push(self.unsigned()?);
                for _ in 0..3 {
                    self.skip()?;
                }
            }
            (UPDATES, 2) if nested => {
                for _ in 0..self.array()? {
                    self.message(out, false)?;
                }
            }
            (kind, n) => bail!("no transaction message has {n} elements and type {kind}"),
        }
        Ok(())
    }

    fn unsigned(&mut self) -> Result<u64> {
        match self.marker()? {
            Marker::FixPos(n) => Ok(u64::from(n)),
            Marker::U8 => self.be(1),
            Marker::U16 => self.be(2),
            Marker::U32 => self.be(4),
            Marker::U64 => self.be(8),
            m => bail!("expected an unsigned integer, not {m:?}"),
        }
    }

    fn array(&mut self) -> Result<usize> {
        match self.marker()? {
            Marker::FixArray(n) => Ok(n as usize),
            Marker::Array16 => self.length(2),
            Marker::Array32 => self.length(4),
            m => bail!("expected an array, not {m:?}"),
        }
    }

    /// Steps over one value of any kind. Nesting needs no stack: an array or a map only adds
    /// its elements to the count of values still to step over.
    fn skip(&mut self) -> Result<()> {
        let mut values = 1usize;
        while values > 0 {
            values -= 1;
            // What rows are mostly made of, read straight from the byte: fixints, nil,
            // booleans, short strings, small arrays and maps.
            let byte = *self.bytes.get(self.pos).context("the message is cut short")?;
            self.pos += 1;
            match byte {
                0x00..=0x7f | 0xc0 | 0xc2 | 0xc3 | 0xe0..=0xff => continue,
                0xa0..=0xbf => {
                    self.pos += usize::from(byte & 0x1f);
                    if self.pos > self.bytes.len() {
                        bail!("the message is cut short");
                    }
                    continue;
                }
                0x90..=0x9f => {
                    values += usize::from(byte & 0x0f);
                    continue;
                }
                0x80..=0x8f => {
                    values += 2 * usize::from(byte & 0x0f);
                    continue;
                }
                _ => {}
            }
            // Bytes to step over, and values within (of an array or a map).
            let (bytes, within) = match Marker::from_u8(byte) {
                Marker::FixPos(_)
                | Marker::FixNeg(_)
                | Marker::Null
                | Marker::True
                | Marker::False
                | Marker::FixStr(_)
                | Marker::FixArray(_)
                | Marker::FixMap(_) => unreachable!("one-byte kinds are stepped over above"),
                Marker::U8 | Marker::I8 => (1, 0),
                Marker::U16 | Marker::I16 | Marker::FixExt1 => (2, 0),
                Marker::FixExt2 => (3, 0),
                Marker::U32 | Marker::I32 | Marker::F32 => (4, 0),
                Marker::FixExt4 => (5, 0),
                Marker::U64 | Marker::I64 | Marker::F64 => (8, 0),
                Marker::FixExt8 => (9, 0),
                Marker::FixExt16 => (17, 0),
                Marker::Str8 | Marker::Bin8 => (self.length(1)?, 0),
                Marker::Str16 | Marker::Bin16 => (self.length(2)?, 0),
                Marker::Str32 | Marker::Bin32 => (self.length(4)?, 0),
                Marker::Ext8 => (self.length(1)? + 1, 0),
                Marker::Ext16 => (self.length(2)? + 1, 0),
                Marker::Ext32 => (self.length(4)? + 1, 0),
                Marker::Array16 => (0, self.length(2)?),
                Marker::Array32 => (0, self.length(4)?),
                Marker::Map16 => (0, 2 * self.length(2)?),
                Marker::Map32 => (0, 2 * self.length(4)?),
                Marker::Reserved => bail!("a reserved MessagePack marker"),
            };
            self.take(bytes)?;
            values += within;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_client::protocol::{Encoding, QueryUpdate, ServerMessage, Status, Value};

    fn update(offset: u64, timestamp_micros: u64) -> ServerMessage {
        let row = |i: i64| {
            vec![Value::Int(i), Value::Text(format!("é{i}")), Value::Real(0.5), Value::Null, Value::Bytes(vec![0, 1])]
        };
        ServerMessage::TransactionUpdate {
            offset,
            timestamp_micros,
            reducer: "transfer".into(),
            caller: "ab".repeat(32),
            updates: vec![QueryUpdate { query_id: 3, inserts: (0..40).map(row).collect(), deletes: vec![row(-7)] }],
        }
    }

    fn stamps(message: &ServerMessage) -> Result<Vec<u64>> {
        let mut out = Vec::new();
        read(&Encoding::MessagePack.encode(message), &mut out)?;
        Ok(out)
    }

    #[test]
    fn reads_each_transactions_timestamp_in_order() {
        assert_eq!(stamps(&update(9, 1_700_000_000_123_456)).unwrap(), [1_700_000_000_123_456]);
        let batch =
            ServerMessage::TransactionUpdates { transactions: vec![update(1, 5), update(2, 300), update(3, 1 << 40)] };
        assert_eq!(stamps(&batch).unwrap(), [5, 300, 1 << 40]);
        let answer =
            ServerMessage::ReducerResult { request_id: 4, status: Status::Committed, offset: Some(8), error: None };
        assert_eq!(stamps(&answer).unwrap(), Vec::<u64>::new());
    }

    #[test]
    fn refuses_a_cut_or_padded_message() {
        let bytes = Encoding::MessagePack.encode(&update(1, 77));
        let mut out = Vec::new();
        for cut in 0..bytes.len() {
            assert!(read(&bytes[..cut], &mut out).is_err(), "cut at {cut}");
        }
        let mut padded = bytes.clone();
        padded.push(0xc0);
        assert!(read(&padded, &mut out).is_err());
        assert!(read(&[0xc1], &mut out).is_err());
    }

    #[test]
    fn steps_over_deep_nesting_without_recursion_and_refuses_a_short_array() {
        // [0, 1, 42, "r", nil, [[[…nil…]]]], nested far deeper than a stack allows.
        let depth = 100_000;
        let mut bytes = vec![0x96, 0, 1, 42, 0xa1, b'r', 0xc0];
        bytes.extend(std::iter::repeat_n(0x91, depth));
        bytes.push(0xc0);
        let mut out = Vec::new();
        read(&bytes, &mut out).unwrap();
        assert_eq!(out, [42]);
        // An array that claims more elements than follow.
        let short = [0x96, 0, 1, 42, 0xa1, b'r', 0xc0, 0xdc, 0xff, 0xff, 0xc0];
        assert!(read(&short, &mut out).is_err());
        // A map is stepped over, but a transaction array of the wrong shape is refused.
        let mut none: Vec<u64> = Vec::new();
        read(&[0x81, 0xa1, b'x', 0x91, 0x91, 0xc0], &mut none).unwrap();
        assert!(none.is_empty());
        assert!(read(&[0x95, 0, 1, 42, 0xa1, b'r', 0xc0], &mut out).is_err());
        assert!(read(&[0x92, 1, 0x91, 0x92, 1, 0x90], &mut out).is_err(), "transactions nested twice");
    }

    #[test]
    fn recent_frames_give_their_own_timestamps_and_bad_ones_stay_errors() {
        let frames: Vec<Vec<u8>> = (0..7).map(|i| Encoding::MessagePack.encode(&update(i, 1000 + i))).collect();
        let mut recent = Recent::default();
        // Each frame several times, interleaved, more frames than are kept.
        for round in 0..3 {
            for (i, f) in frames.iter().enumerate().rev().chain(frames.iter().enumerate()) {
                let mut out = vec![round];
                recent.read(f, &mut out).unwrap();
                assert_eq!(out, [round, 1000 + i as u64]);
            }
        }
        let mut cut = frames[6].clone();
        cut.pop();
        assert!(recent.read(&cut, &mut Vec::new()).is_err());
        assert!(recent.read(&cut, &mut Vec::new()).is_err(), "a bad frame is never kept");
    }
}
