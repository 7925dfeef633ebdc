//! Rows: a compact, canonical byte encoding of a sequence of values.
//!
//! Rows are what the dataflows sort, hash, compare and clone millions of times, so they are
//! bytes: equality, hashing and ordering are `memcmp`, and a row of up to 29 encoded bytes
//! (four small integers take 8 to 16) lives inline with no allocation; longer rows share one
//! reference-counted buffer. A row made from values also records how many there are, so
//! checking a row's arity (done for every row of every transaction) need not walk it. The
//! order is the bytes' order — total and consistent with equality, not SQL's; semantic
//! comparisons decode values (the planner's `expr::sql_cmp`).
//!
//! Encoding per value: a tag byte, then NULL / FALSE / TRUE: nothing; INTEGER: zigzag LEB128;
//! UNSIGNED: LEB128; REAL: 8 little-endian bytes (-0.0 stored as 0.0); TEXT and BYTES: LEB128
//! length and the bytes.

use crate::columns::Columns;
use crate::types::Value;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use smallvec::SmallVec;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Decoded values of a row, inline for up to eight columns.
pub type Values = SmallVec<[Value; 8]>;

const INLINE: usize = 29;

/// `cols` of a row whose values were not counted when it was made (or that has 255 or more).
const UNCOUNTED: u8 = u8::MAX;

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const INT: u8 = 3;
const UINT: u8 = 4;
const REAL: u8 = 5;
const TEXT: u8 = 6;
const BYTES: u8 = 7;

#[derive(Clone)]
enum Repr {
    Inline { len: u8, cols: u8, buf: [u8; INLINE] },
    Heap { cols: u8, bytes: Arc<[u8]> },
}

/// An immutable row of values.
#[derive(Clone)]
pub struct Row(Repr);

impl Row {
    /// Encodes values into a row.
    pub fn new(values: Vec<Value>) -> Row {
        Row::from_values(&values)
    }

    /// Encodes values into a row.
    pub fn from_values(values: &[Value]) -> Row {
        let mut buf: SmallVec<[u8; 64]> = SmallVec::new();
        for v in values {
            encode(v, &mut buf);
        }
        Row::from_bytes(&buf, Some(values.len()))
    }

    /// The row with no values.
    pub fn empty() -> Row {
        Row(Repr::Inline { len: 0, cols: 0, buf: [0; INLINE] })
    }

    /// The row of encoded `bytes`, holding `cols` values where that is known.
    fn from_bytes(bytes: &[u8], cols: Option<usize>) -> Row {
        let cols = cols.and_then(|c| u8::try_from(c).ok()).unwrap_or(UNCOUNTED);
        if bytes.len() <= INLINE {
            let mut buf = [0u8; INLINE];
            buf[..bytes.len()].copy_from_slice(bytes);
            Row(Repr::Inline { len: bytes.len() as u8, cols, buf })
        } else {
            Row(Repr::Heap { cols, bytes: Arc::from(bytes) })
        }
    }

    fn cols(&self) -> u8 {
        match &self.0 {
            Repr::Inline { cols, .. } | Repr::Heap { cols, .. } => *cols,
        }
    }

    /// The encoded bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, buf, .. } => &buf[..*len as usize],
            Repr::Heap { bytes, .. } => bytes,
        }
    }

    /// Number of values: recorded when the row was made from values, else counted from the
    /// tags without decoding.
    #[inline]
    pub fn len(&self) -> usize {
        match self.cols() {
            UNCOUNTED => count_values(self.as_bytes()),
            cols => cols as usize,
        }
    }

    /// Whether any value is NULL where `check` is true (read from the tags, not decoded).
    pub fn null_where(&self, check: &[bool]) -> bool {
        null_where(self.as_bytes(), check)
    }

    pub fn is_empty(&self) -> bool {
        self.as_bytes().is_empty()
    }

    /// The encoded bytes of the values at `cols` (all of them for none): borrowed where the
    /// columns are a prefix, as primary keys usually are.
    pub fn columns_bytes(&self, cols: &[usize]) -> Cow<'_, [u8]> {
        let bytes = self.as_bytes();
        if cols.is_empty() {
            return Cow::Borrowed(bytes);
        }
        if cols.iter().enumerate().all(|(i, &c)| i == c) {
            let mut pos = 0;
            for _ in cols {
                if pos < bytes.len() {
                    skip(bytes, &mut pos);
                }
            }
            return Cow::Borrowed(&bytes[..pos]);
        }
        Cow::Owned(self.project(cols).as_bytes().to_vec())
    }

    /// Decodes every value.
    #[inline]
    pub fn values(&self) -> Values {
        self.iter().collect()
    }

    /// The row's columns for evaluating expressions: in place, or decoded once.
    #[inline]
    pub fn reader(&self, in_place: bool) -> RowReader<'_> {
        self.as_row_ref().reader(in_place)
    }

    /// Decodes the values one by one.
    #[inline]
    pub fn iter(&self) -> RowIter<'_> {
        RowIter { bytes: self.as_bytes(), pos: 0 }
    }

    /// The i-th value (NULL past the end), decoding only it.
    #[inline]
    pub fn get(&self, i: usize) -> Value {
        column_at(self.as_bytes(), i)
    }

    /// The row borrowed as a `RowRef`.
    #[inline]
    pub fn as_row_ref(&self) -> RowRef<'_> {
        RowRef(self.as_bytes())
    }

    /// This row followed by `other`'s values.
    #[inline]
    pub fn concat(&self, other: &Row) -> Row {
        self.as_row_ref().concat(other.as_row_ref())
    }

    /// The values at `cols`, in that order (NULL for a column past the end).
    pub fn project(&self, cols: &[usize]) -> Row {
        let bytes = self.as_bytes();
        let mut buf: SmallVec<[u8; 64]> = SmallVec::new();
        if cols.windows(2).all(|w| w[0] < w[1]) {
            // Ascending columns: one walk, stopping at the last one wanted.
            let (mut pos, mut at) = (0, 0);
            for &c in cols {
                while at < c && pos < bytes.len() {
                    skip(bytes, &mut pos);
                    at += 1;
                }
                if pos < bytes.len() {
                    let start = pos;
                    skip(bytes, &mut pos);
                    at += 1;
                    buf.extend_from_slice(&bytes[start..pos]);
                } else {
                    buf.push(NULL);
                }
            }
            return Row::from_bytes(&buf, Some(cols.len()));
        }
        let spans = self.spans();
        for &c in cols {
            match spans.get(c) {
                Some(&(s, e)) => buf.extend_from_slice(&bytes[s..e]),
                None => buf.push(NULL),
            }
        }
        Row::from_bytes(&buf, Some(cols.len()))
    }

    /// The first `n` values.
    pub fn prefix(&self, n: usize) -> Row {
        let spans = self.spans();
        let end = if n == 0 { 0 } else { spans.get(n - 1).map_or(self.as_bytes().len(), |s| s.1) };
        Row::from_bytes(&self.as_bytes()[..end], Some(n.min(spans.len())))
    }

    /// Byte spans of each encoded value.
    fn spans(&self) -> SmallVec<[(usize, usize); 8]> {
        let bytes = self.as_bytes();
        let mut out = SmallVec::new();
        let mut pos = 0;
        while pos < bytes.len() {
            let start = pos;
            skip(bytes, &mut pos);
            out.push((start, pos));
        }
        out
    }

    /// Decodes bytes that came from outside (a module, the network): `None` unless they are a
    /// well-formed encoding. Re-encoding the values gives the canonical row.
    pub fn decode_untrusted(bytes: &[u8]) -> Option<Values> {
        Row::validate(bytes).then(|| Row::from_bytes(bytes, None).values())
    }

    /// Checks that bytes are a well-formed encoding (for rows arriving from elsewhere).
    fn validate(bytes: &[u8]) -> bool {
        let mut pos = 0;
        while pos < bytes.len() {
            if !try_skip(bytes, &mut pos) {
                return false;
            }
        }
        true
    }
}

/// A row borrowed from encoded bytes held elsewhere (an arrangement's byte slab): compared as
/// its bytes, like `Row`, and made a `Row` where one is needed.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RowRef<'a>(&'a [u8]);

impl<'a> RowRef<'a> {
    /// The row encoded in `bytes`, which must be a `Row`'s bytes (`Row::as_bytes`).
    pub fn from_row_bytes(bytes: &'a [u8]) -> RowRef<'a> {
        RowRef(bytes)
    }

    /// The encoded bytes.
    pub fn as_bytes(self) -> &'a [u8] {
        self.0
    }

    /// Whether any value is NULL where `check` is true (as `Row::null_where`).
    pub fn null_where(self, check: &[bool]) -> bool {
        null_where(self.0, check)
    }

    /// An owned copy (inline, without allocating, up to 29 bytes); its values are counted
    /// only if asked for.
    pub fn to_row(self) -> Row {
        Row::from_bytes(self.0, None)
    }

    /// This row followed by `other`'s values.
    #[inline]
    pub fn concat(self, other: RowRef<'_>) -> Row {
        let (a, b) = (self.0, other.0);
        if a.len() + b.len() <= INLINE {
            let mut buf = [0u8; INLINE];
            buf[..a.len()].copy_from_slice(a);
            buf[a.len()..a.len() + b.len()].copy_from_slice(b);
            return Row(Repr::Inline { len: (a.len() + b.len()) as u8, cols: UNCOUNTED, buf });
        }
        let mut v = Vec::with_capacity(a.len() + b.len());
        v.extend_from_slice(a);
        v.extend_from_slice(b);
        Row(Repr::Heap { cols: UNCOUNTED, bytes: Arc::from(v) })
    }

    /// Whether the i-th value is a REAL, read without decoding it.
    #[inline]
    pub fn is_real_at(self, i: usize) -> bool {
        seek(self.0, i).is_some_and(|pos| self.0[pos] == REAL)
    }

    /// The i-th value as an integer where it is an INTEGER or NULL (NULL past the end), the
    /// values before it skipped; `Other` for any other type, left undecoded.
    #[inline]
    pub fn int_at(self, i: usize) -> IntColumn {
        let b = self.0;
        let Some(mut pos) = seek(b, i) else { return IntColumn::Null };
        match b[pos] {
            NULL => IntColumn::Null,
            INT => {
                pos += 1;
                IntColumn::Int(unzigzag(get_varint(b, &mut pos)))
            }
            _ => IntColumn::Other,
        }
    }

    /// The row's columns for evaluating expressions: in place, or decoded once.
    #[inline]
    pub fn reader(self, in_place: bool) -> RowReader<'a> {
        if in_place {
            RowReader::InPlace(self.0)
        } else {
            RowReader::Decoded(RowIter { bytes: self.0, pos: 0 }.collect())
        }
    }
}

impl Columns for Row {
    #[inline]
    fn column(&self, i: usize) -> Value {
        column_at(self.as_bytes(), i)
    }
}

impl Columns for RowRef<'_> {
    #[inline]
    fn column(&self, i: usize) -> Value {
        column_at(self.0, i)
    }
}

/// A column as `RowRef::int_at` reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntColumn {
    Int(i64),
    Null,
    /// A value of another type.
    Other,
}

/// A row's columns for evaluating expressions: read in place, or decoded once up front
/// (cheaper when the expressions read many columns; see `expr::reads_in_place`).
pub enum RowReader<'a> {
    InPlace(&'a [u8]),
    Decoded(Values),
}

impl Columns for RowReader<'_> {
    #[inline]
    fn column(&self, i: usize) -> Value {
        match self {
            RowReader::InPlace(bytes) => column_at(bytes, i),
            RowReader::Decoded(values) => values.get(i).cloned().unwrap_or(Value::Null),
        }
    }
}

/// The i-th value of an encoded row (NULL past the end): the values before it skipped, not
/// decoded.
#[inline]
fn column_at(bytes: &[u8], i: usize) -> Value {
    match seek(bytes, i) {
        Some(mut pos) => decode(bytes, &mut pos),
        None => Value::Null,
    }
}

/// Where the i-th value of an encoded row starts (`None` past the end), the values before it
/// skipped.
#[inline]
fn seek(bytes: &[u8], i: usize) -> Option<usize> {
    let mut pos = 0;
    for _ in 0..i {
        if pos >= bytes.len() {
            return None;
        }
        skip(bytes, &mut pos);
    }
    (pos < bytes.len()).then_some(pos)
}

/// An INTEGER from its zigzag encoding.
#[inline]
fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

impl PartialEq<&Row> for RowRef<'_> {
    fn eq(&self, other: &&Row) -> bool {
        self.0 == other.as_bytes()
    }
}

impl fmt::Debug for RowRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_row().fmt(f)
    }
}

/// Number of values in an encoded row, counted from the tags.
fn count_values(bytes: &[u8]) -> usize {
    let (mut pos, mut n) = (0, 0);
    while pos < bytes.len() {
        skip(bytes, &mut pos);
        n += 1;
    }
    n
}

/// Whether any value of an encoded row is NULL where `check` is true (read from the tags).
fn null_where(bytes: &[u8], check: &[bool]) -> bool {
    let mut pos = 0;
    for &c in check {
        if pos >= bytes.len() {
            return false;
        }
        if c && bytes[pos] == NULL {
            return true;
        }
        skip(bytes, &mut pos);
    }
    false
}

/// Decoding iterator over a row's values.
pub struct RowIter<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Iterator for RowIter<'_> {
    type Item = Value;

    #[inline]
    fn next(&mut self) -> Option<Value> {
        (self.pos < self.bytes.len()).then(|| decode(self.bytes, &mut self.pos))
    }
}

#[inline]
fn put_varint(mut x: u64, out: &mut SmallVec<[u8; 64]>) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

#[inline]
fn get_varint(b: &[u8], pos: &mut usize) -> u64 {
    let mut x = 0u64;
    let mut shift = 0;
    loop {
        let byte = b[*pos];
        *pos += 1;
        x |= ((byte & 0x7f) as u64) << shift;
        if byte < 0x80 {
            return x;
        }
        shift += 7;
    }
}

fn encode(v: &Value, out: &mut SmallVec<[u8; 64]>) {
    match v {
        Value::Null => out.push(NULL),
        Value::Bool(false) => out.push(FALSE),
        Value::Bool(true) => out.push(TRUE),
        Value::Int(i) => {
            out.push(INT);
            put_varint(((*i << 1) ^ (*i >> 63)) as u64, out);
        }
        Value::UInt(u) => {
            out.push(UINT);
            put_varint(*u, out);
        }
        Value::Real(r) => {
            out.push(REAL);
            let r = if *r == 0.0 { 0.0 } else { *r };
            out.extend_from_slice(&r.to_le_bytes());
        }
        Value::Text(s) => {
            out.push(TEXT);
            put_varint(s.len() as u64, out);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Bytes(b) => {
            out.push(BYTES);
            put_varint(b.len() as u64, out);
            out.extend_from_slice(b);
        }
    }
}

#[inline]
fn decode(b: &[u8], pos: &mut usize) -> Value {
    let tag = b[*pos];
    *pos += 1;
    match tag {
        INT => Value::Int(unzigzag(get_varint(b, pos))),
        NULL => Value::Null,
        FALSE => Value::Bool(false),
        TRUE => Value::Bool(true),
        UINT => Value::UInt(get_varint(b, pos)),
        REAL => {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[*pos..*pos + 8]);
            *pos += 8;
            Value::Real(f64::from_le_bytes(a))
        }
        TEXT | BYTES => {
            let n = get_varint(b, pos) as usize;
            let data = &b[*pos..*pos + n];
            *pos += n;
            if tag == TEXT {
                Value::Text(Arc::from(std::str::from_utf8(data).expect("rows hold valid UTF-8")))
            } else {
                Value::Bytes(Arc::from(data))
            }
        }
        _ => unreachable!("rows are built only by `encode` or validated"),
    }
}

/// Advances past one value of a well-formed row (no validation).
#[inline]
fn skip(b: &[u8], pos: &mut usize) {
    let tag = b[*pos];
    *pos += 1;
    match tag {
        INT | UINT => *pos += varint_len(&b[*pos..]),
        REAL => *pos += 8,
        TEXT | BYTES => {
            let n = get_varint(b, pos) as usize;
            *pos += n;
        }
        _ => {}
    }
}

/// Length of the well-formed LEB128 varint `b` starts with: up to its first byte with the top
/// bit clear, found a word at a time where eight bytes remain (no branch per byte).
#[inline]
fn varint_len(b: &[u8]) -> usize {
    if let Some(word) = b.first_chunk::<8>() {
        let ends = !u64::from_le_bytes(*word) & 0x8080_8080_8080_8080;
        if ends != 0 {
            return ends.trailing_zeros() as usize / 8 + 1;
        }
    }
    let mut n = 0;
    while b[n] >= 0x80 {
        n += 1;
    }
    n + 1
}

/// Advances past one encoded value; false if the bytes are malformed.
fn try_skip(b: &[u8], pos: &mut usize) -> bool {
    let Some(&tag) = b.get(*pos) else { return false };
    *pos += 1;
    let varint = |pos: &mut usize| -> Option<u64> {
        let mut x = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *b.get(*pos)?;
            *pos += 1;
            x |= ((byte & 0x7f) as u64) << shift;
            if byte < 0x80 {
                return Some(x);
            }
        }
        None
    };
    match tag {
        NULL | FALSE | TRUE => true,
        INT | UINT => varint(pos).is_some(),
        REAL => {
            *pos += 8;
            *pos <= b.len()
        }
        TEXT | BYTES => match varint(pos) {
            Some(n) => {
                let end = pos.saturating_add(n as usize);
                let ok = end <= b.len() && (tag == BYTES || std::str::from_utf8(&b[*pos..end]).is_ok());
                *pos = end;
                ok
            }
            None => false,
        },
        _ => false,
    }
}

impl PartialEq for Row {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            // Zero-padded: equal buffers and lengths are equal bytes.
            (Repr::Inline { len: la, buf: a, .. }, Repr::Inline { len: lb, buf: b, .. }) => la == lb && a == b,
            _ => self.as_bytes() == other.as_bytes(),
        }
    }
}
impl Eq for Row {}

impl PartialOrd for Row {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Row {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        match (&self.0, &other.0) {
            // Inline buffers are zero-padded, so comparing them whole (a word at a time) and
            // then the lengths is the byte slices' order: where one row is a prefix of the
            // other, the longer one's next bytes are >= the padding, and equal only if zero.
            (Repr::Inline { len: la, buf: a, .. }, Repr::Inline { len: lb, buf: b, .. }) => {
                let word = |buf: &[u8; INLINE], i: usize| {
                    let mut w = [0u8; 8];
                    let end = (i + 8).min(INLINE);
                    w[..end - i].copy_from_slice(&buf[i..end]);
                    u64::from_be_bytes(w)
                };
                for i in (0..INLINE).step_by(8) {
                    match word(a, i).cmp(&word(b, i)) {
                        Ordering::Equal if (i + 8) < (*la).max(*lb) as usize => continue,
                        Ordering::Equal => break,
                        o => return o,
                    }
                }
                la.cmp(lb)
            }
            _ => self.as_bytes().cmp(other.as_bytes()),
        }
    }
}

impl Hash for Row {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.as_bytes());
    }
}

impl fmt::Debug for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl From<Vec<Value>> for Row {
    fn from(v: Vec<Value>) -> Row {
        Row::new(v)
    }
}

impl FromIterator<Value> for Row {
    fn from_iter<I: IntoIterator<Item = Value>>(iter: I) -> Row {
        let mut buf: SmallVec<[u8; 64]> = SmallVec::new();
        let mut cols = 0;
        for v in iter {
            encode(&v, &mut buf);
            cols += 1;
        }
        Row::from_bytes(&buf, Some(cols))
    }
}

impl Serialize for Row {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.as_bytes())
    }
}

impl<'de> Deserialize<'de> for Row {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Row, D::Error> {
        let bytes: Vec<u8> = serde::de::Deserialize::deserialize(d)?;
        if !Row::validate(&bytes) {
            return Err(serde::de::Error::custom("malformed row encoding"));
        }
        Ok(Row::from_bytes(&bytes, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Value> {
        vec![
            Value::Null,
            Value::Bool(true),
            Value::Int(-3),
            Value::Int(i64::MIN),
            Value::UInt(u64::MAX),
            Value::Real(-0.0),
            Value::Real(2.5),
            Value::text("héllo"),
            Value::Bytes(Arc::from(&b"\x00\xff"[..])),
            Value::text(""),
        ]
    }

    #[test]
    fn values_round_trip_and_rows_compare_by_value() {
        let r = Row::new(sample());
        let back: Vec<Value> = r.iter().collect();
        assert_eq!(back, sample());
        assert_eq!(r.len(), 10);
        assert_eq!(r.get(2), Value::Int(-3));
        assert_eq!(
            r.project(&[9, 8, 7]).values().to_vec(),
            vec![sample()[9].clone(), sample()[8].clone(), sample()[7].clone()]
        );
        assert_eq!(&*r.columns_bytes(&[]), r.as_bytes());
        assert_eq!(&*r.columns_bytes(&[0, 1, 2]), r.prefix(3).as_bytes());
        assert_eq!(&*r.columns_bytes(&[7, 2]), r.project(&[7, 2]).as_bytes());
        assert!(r.null_where(&[true]));
        assert!(!r.null_where(&[false, true, true, true, true, true, true, true, true, true]));
        assert!(Row::new(vec![Value::text("x"), Value::Null]).null_where(&[false, true]));
        assert_eq!(Row::new(vec![Value::Real(-0.0)]), Row::new(vec![Value::Real(0.0)]));
        assert_ne!(Row::new(vec![Value::Int(1)]), Row::new(vec![Value::Int(2)]));
    }

    #[test]
    fn int_at_reads_integers_and_nulls_only() {
        let r = Row::new(sample());
        for (i, v) in sample().into_iter().enumerate().chain([(10, Value::Null), (11, Value::Null)]) {
            let want = match v {
                Value::Int(x) => IntColumn::Int(x),
                Value::Null => IntColumn::Null,
                _ => IntColumn::Other,
            };
            assert_eq!(r.as_row_ref().int_at(i), want, "column {i}");
        }
        assert_eq!(Row::new(vec![Value::Int(i64::MAX)]).as_row_ref().int_at(0), IntColumn::Int(i64::MAX));
    }

    #[test]
    fn order_and_equality_are_the_byte_order() {
        // Rows of every length around the word boundaries, with zero bytes where padding
        // would be (INTEGER 0 encodes as tag 3 then 0x00), inline and on the heap.
        let mut rows = vec![Row::empty()];
        for n in 0..12 {
            for v in [0i64, 1, -1, 64, 300, i64::MAX] {
                rows.push(Row::new(vec![Value::Int(0); n].into_iter().chain([Value::Int(v)]).collect()));
                rows.push(Row::new(vec![Value::Null; n].into_iter().chain([Value::Int(v)]).collect()));
            }
            rows.push(Row::new(vec![Value::text(&"a".repeat(n * 3))]));
            rows.push(Row::new(vec![Value::Bytes(Arc::from(vec![0u8; n * 3]))]));
        }
        for a in &rows {
            for b in &rows {
                assert_eq!(a.cmp(b), a.as_bytes().cmp(b.as_bytes()), "{a:?} vs {b:?}");
                assert_eq!(a == b, a.as_bytes() == b.as_bytes(), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn small_rows_are_inline_and_concat_project_prefix_work() {
        let a = Row::new(vec![Value::Int(1), Value::Int(1_000_000)]);
        assert!(matches!(a.0, Repr::Inline { .. }));
        let b = Row::new(vec![Value::text("a long text value that does not fit inline")]);
        assert!(matches!(b.0, Repr::Heap { .. }));
        let c = a.concat(&b);
        assert_eq!(c.values().to_vec(), vec![Value::Int(1), Value::Int(1_000_000), b.get(0)]);
        assert_eq!(c.project(&[2, 0]).values().to_vec(), vec![b.get(0), Value::Int(1)]);
        assert_eq!(c.project(&[0, 2, 5]).values().to_vec(), vec![Value::Int(1), b.get(0), Value::Null]);
        assert_eq!(c.project(&[1, 2]), c.project(&[2, 1]).project(&[1, 0]));
        assert_eq!(c.prefix(2), a);
        assert_eq!(c.prefix(0), Row::empty());
        assert_eq!(std::mem::size_of::<Row>(), 32);
    }

    #[test]
    fn columns_read_in_place_are_the_decoded_values() {
        let values = sample();
        let row = Row::new(values.clone());
        let (in_place, decoded) = (row.reader(true), row.reader(false));
        for (i, v) in values.iter().enumerate() {
            assert_eq!(&row.get(i), v, "column {i}");
            assert_eq!(&in_place.column(i), v, "column {i} in place");
            assert_eq!(&decoded.column(i), v, "column {i} decoded");
        }
        for past in [values.len(), values.len() + 3] {
            assert_eq!(row.get(past), Value::Null);
            assert_eq!(in_place.column(past), Value::Null);
            assert_eq!(decoded.column(past), Value::Null);
        }
    }

    #[test]
    fn len_is_the_number_of_values_however_the_row_was_made() {
        let values = sample();
        let row = Row::new(values.clone());
        let wide = Row::new(vec![Value::Int(7); 300]);
        let made: Vec<(Row, usize)> = vec![
            (row.clone(), values.len()),
            (row.as_row_ref().to_row(), values.len()),
            (row.project(&[3, 0, 99]), 3),
            (row.project(&[0, 3, 99]), 3),
            (row.prefix(2), 2),
            (row.prefix(values.len() + 5), values.len()),
            (row.concat(&row), 2 * values.len()),
            (values.iter().cloned().collect(), values.len()),
            (rmp_serde::from_slice(&rmp_serde::to_vec(&row).unwrap()).unwrap(), values.len()),
            (Row::empty(), 0),
            (wide.clone(), 300),
            (wide.as_row_ref().to_row(), 300),
        ];
        for (r, n) in made {
            assert_eq!(r.len(), n, "{r:?}");
            assert_eq!(r.len(), count_values(r.as_bytes()), "{r:?}");
            // Whether the count was recorded does not change equality, order or hash.
            let same = Row::from_values(&r.values());
            assert!(r == same && r.cmp(&same) == Ordering::Equal, "{r:?}");
            let state = std::hash::RandomState::new();
            assert_eq!(
                std::hash::BuildHasher::hash_one(&state, &r),
                std::hash::BuildHasher::hash_one(&state, &same),
                "{r:?}"
            );
        }
    }

    #[test]
    fn varint_lengths_are_read_word_at_a_time_or_byte_by_byte() {
        for v in [0u64, 1, 127, 128, 300, 1 << 20, 1 << 35, 1 << 49, 1 << 56, u64::MAX] {
            let mut enc = SmallVec::new();
            put_varint(v, &mut enc);
            // Alone (fewer than eight bytes for most), and followed by more bytes.
            assert_eq!(varint_len(&enc), enc.len(), "{v}");
            let mut padded = enc.to_vec();
            padded.extend([0x80, 0x81, 0, 5, 6, 7, 8, 9, 10]);
            assert_eq!(varint_len(&padded), enc.len(), "{v} followed by more");
        }
    }

    #[test]
    fn malformed_bytes_are_refused() {
        assert!(Row::validate(Row::new(sample()).as_bytes()));
        assert!(!Row::validate(&[TEXT, 5, b'a']));
        assert!(!Row::validate(&[99]));
        assert!(!Row::validate(&[REAL, 1, 2]));
    }
}
