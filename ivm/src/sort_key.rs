//! ORDER BY keys as bytes: a row's sort values encoded so that `memcmp` on two keys orders
//! them exactly as ORDER BY does, ties included.
//!
//! The top-k keeps large ordered maps of these keys, so a key is a short byte string compared
//! without decoding. Each value is self-delimiting, which makes the concatenation of several
//! keys — and of a key and anything after it — order like the tuple of them, lets DESC invert
//! a value's bytes, and lets `len` find where a key ends. The order encoded:
//! - NULL first or last as the key says (one byte, not inverted by DESC);
//! - numbers — BOOLEAN as 0 / 1, INTEGER, UNSIGNED and REAL — by exact numeric value, so
//!   `1`, `1.0` and TRUE encode alike and an integer beyond 2^53 stays apart from its
//!   nearest reals, as `expr::sql_cmp` compares them; -0.0 is 0.0;
//! - then NaN (every NaN alike);
//! - then TEXT, bytewise; then BYTES, bytewise.
//!
//! A number is the order-preserving bits of the greatest `f64` at most it, big-endian without
//! their trailing zero bytes (small integers take one to four), escaped as TEXT is; then
//! `0x00` when the number is that `f64` exactly, or `0x01` and its distance above it (below
//! 2^12 for any 64-bit integer) when it is not. TEXT and BYTES escape `0x00` as `0x00 0xFF`
//! and end with `0x00 0x00`; dropping trailing zeros keeps the order, since a shorter string
//! sorts first.

use sluice_planner::{Columns, SortKey, Value};
use smallvec::SmallVec;

/// The sort values of one row, encoded (inline up to 40 bytes: room for a short row after them).
pub type SortBytes = SmallVec<[u8; 40]>;

const NULL_FIRST: u8 = 0x00;
const NULL_LAST: u8 = 0xFF;
const NUMBER: u8 = 0x10;
const NAN: u8 = 0x20;
const TEXT: u8 = 0x30;
const BYTES: u8 = 0x40;

/// Encodes the values `order` names from `row`.
pub fn encode<C: Columns + ?Sized>(order: &[SortKey], row: &C) -> SortBytes {
    let mut out = SortBytes::new();
    for k in order {
        push(&mut out, &row.column(k.column), k.desc, k.nulls_first);
    }
    out
}

/// The length of the key `order` encoded at the start of `bytes`.
pub fn len(order: &[SortKey], bytes: &[u8]) -> usize {
    let mut pos = 0;
    for k in order {
        let flip = if k.desc { 0xFF } else { 0 };
        let tag = bytes[pos];
        pos += 1;
        if tag == NULL_FIRST || tag == NULL_LAST {
            continue;
        }
        match tag ^ flip {
            NUMBER => {
                pos = escaped_end(bytes, pos, flip);
                pos += if bytes[pos] ^ flip == 0 { 1 } else { 3 };
            }
            NAN => {}
            _ => pos = escaped_end(bytes, pos, flip),
        }
    }
    pos
}

/// Where the escaped string starting at `pos` ends, past its terminator.
fn escaped_end(bytes: &[u8], mut pos: usize, flip: u8) -> usize {
    loop {
        let b = bytes[pos] ^ flip;
        pos += 1;
        if b == 0 {
            pos += 1;
            if bytes[pos - 1] ^ flip == 0 {
                return pos;
            }
        }
    }
}

/// Appends one value's encoding.
fn push(out: &mut SortBytes, v: &Value, desc: bool, nulls_first: bool) {
    let start = out.len();
    match v {
        Value::Null => {
            out.push(if nulls_first { NULL_FIRST } else { NULL_LAST });
            return;
        }
        Value::Bool(b) => integer(out, *b as i128),
        Value::Int(i) => integer(out, *i as i128),
        Value::UInt(u) => integer(out, *u as i128),
        Value::Real(r) if r.is_nan() => out.push(NAN),
        Value::Real(r) => real(out, *r, None),
        Value::Text(s) => escaped(out, TEXT, s.as_bytes()),
        Value::Bytes(b) => escaped(out, BYTES, b),
    }
    if desc {
        for b in &mut out[start..] {
            *b = !*b;
        }
    }
}

/// An integer: the greatest `f64` at most it, and how far above that it lies.
fn integer(out: &mut SortBytes, n: i128) {
    let near = n as f64;
    let below = if near as i128 > n { near.next_down() } else { near };
    let gap = n - below as i128;
    real(out, below, (gap > 0).then_some(gap as u16));
}

/// A number as the `f64` at or below it and, if it is not that `f64`, the gap above it.
fn real(out: &mut SortBytes, r: f64, gap: Option<u16>) {
    let bits = if r == 0.0 { 0.0f64 } else { r }.to_bits();
    let ordered = if bits >> 63 == 1 { !bits } else { bits | 1 << 63 };
    let bytes = ordered.to_be_bytes();
    let used = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    escaped(out, NUMBER, &bytes[..used]);
    match gap {
        None => out.push(0),
        Some(g) => {
            out.push(1);
            out.extend_from_slice(&g.to_be_bytes());
        }
    }
}

/// TEXT or BYTES: the tag, the bytes with `0x00` escaped, and a terminator.
fn escaped(out: &mut SortBytes, tag: u8, bytes: &[u8]) {
    out.push(tag);
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use sluice_planner::expr::sql_cmp;
    use std::cmp::Ordering;
    use std::sync::Arc;

    /// ORDER BY's comparison of two values, written out on the values themselves.
    fn order_by(a: &Value, b: &Value, desc: bool, nulls_first: bool) -> Ordering {
        let o = match (a.is_null(), b.is_null()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return if nulls_first { Ordering::Less } else { Ordering::Greater },
            (false, true) => return if nulls_first { Ordering::Greater } else { Ordering::Less },
            (false, false) => (rank(a).cmp(&rank(b))).then_with(|| match (a, b) {
                (Value::Real(x), Value::Real(y)) if x.is_nan() && y.is_nan() => Ordering::Equal,
                _ => sql_cmp(a, b).expect("same-rank values compare"),
            }),
        };
        if desc {
            o.reverse()
        } else {
            o
        }
    }

    /// Numbers, NaN, TEXT, BYTES.
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Real(r) if r.is_nan() => 2,
            Value::Text(_) => 3,
            Value::Bytes(_) => 4,
            _ => 1,
        }
    }

    fn key(v: &Value, desc: bool, nulls_first: bool) -> SortBytes {
        encode(&[SortKey { column: 0, desc, nulls_first }], &[v.clone()][..])
    }

    /// A random value, edge cases of every type often.
    fn value(rng: &mut StdRng) -> Value {
        const INTS: [i64; 10] =
            [0, 1, -1, 2, i64::MAX, i64::MIN, (1 << 53) + 1, -(1 << 53) - 1, 1 << 62, (1 << 62) + 3];
        const UINTS: [u64; 5] = [u64::MAX, u64::MAX - 1, 1 << 63, (1 << 63) + 1, 1 << 53];
        const REALS: [f64; 16] = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            2.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -f64::NAN,
            9007199254740992.0,
            4611686018427387904.0,
            18446744073709551616.0,
            -9223372036854775808.0,
            f64::MAX,
            f64::MIN_POSITIVE,
        ];
        let pick = |rng: &mut StdRng, bytes: &[u8]| {
            (0..rng.random_range(0..4)).map(|_| bytes[rng.random_range(0..bytes.len())]).collect::<Vec<u8>>()
        };
        match rng.random_range(0..11) {
            0 => Value::Null,
            1 => Value::Bool(rng.random()),
            2 => Value::Int(rng.random()),
            3 => Value::Int(INTS[rng.random_range(0..INTS.len())]),
            4 => Value::UInt(rng.random()),
            5 => Value::UInt(UINTS[rng.random_range(0..UINTS.len())]),
            6 => Value::Real(f64::from_bits(rng.random())),
            7 => Value::Real(REALS[rng.random_range(0..REALS.len())]),
            8 => Value::Int(INTS[rng.random_range(0..4)]),
            9 => Value::Text(Arc::from(String::from_utf8(pick(rng, b"a\0b")).expect("ascii"))),
            _ => Value::Bytes(Arc::from(pick(rng, &[0, 1, 0xFF]))),
        }
    }

    #[test]
    fn bytes_order_as_order_by() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..200_000 {
            let (a, b) = (value(&mut rng), value(&mut rng));
            let (desc, nulls_first) = (rng.random(), rng.random());
            let (ka, kb) = (key(&a, desc, nulls_first), key(&b, desc, nulls_first));
            assert_eq!(ka.cmp(&kb), order_by(&a, &b, desc, nulls_first), "{a:?} vs {b:?}, desc {desc}");
        }
    }

    #[test]
    fn keys_order_as_tuples() {
        let mut rng = StdRng::seed_from_u64(8);
        for _ in 0..100_000 {
            let [a, b, c, d] = [(); 4].map(|_| value(&mut rng));
            let desc = rng.random();
            let order = [
                SortKey { column: 0, desc, nulls_first: false },
                SortKey { column: 1, desc: false, nulls_first: true },
            ];
            let (ka, kb) = (encode(&order, &[a.clone(), b.clone()][..]), encode(&order, &[c.clone(), d.clone()][..]));
            let tuple = order_by(&a, &c, desc, false).then(order_by(&b, &d, false, true));
            assert_eq!(ka.cmp(&kb), tuple, "({a:?}, {b:?}) vs ({c:?}, {d:?})");
            // `len` finds the key's end, whatever follows it.
            let mut followed = ka.clone();
            followed.extend_from_slice(&[0, 0xFF, 0, 1]);
            assert_eq!(len(&order, &followed), ka.len(), "({a:?}, {b:?})");
        }
    }

    #[test]
    fn integers_beyond_f64_stay_between_their_reals() {
        let k = |v: Value| key(&v, false, false);
        let n = (1i64 << 53) + 1;
        assert!(k(Value::Real((1i64 << 53) as f64)) < k(Value::Int(n)));
        assert!(k(Value::Int(n)) < k(Value::Real(((1i64 << 53) + 2) as f64)));
        assert_eq!(k(Value::Int(1 << 53)), k(Value::Real((1i64 << 53) as f64)));
        assert!(k(Value::UInt(u64::MAX)) < k(Value::Real(18446744073709551616.0)));
        assert_eq!(k(Value::Bool(true)), k(Value::UInt(1)));
        assert_eq!(k(Value::Real(-0.0)), k(Value::Int(0)));
        // Small integers drop the trailing zero bytes of their f64 bits: 1000 is C0 8F 40.
        assert_eq!(&k(Value::Int(1000))[..], &[NUMBER, 0xC0, 0x8F, 0x40, 0, 0, 0]);
    }
}
