//! The row encoding shared with the host: per value a tag byte, then NULL / FALSE / TRUE:
//! nothing; INTEGER: zigzag LEB128; UNSIGNED: LEB128; REAL: 8 little-endian bytes; TEXT and
//! BYTES: LEB128 length and the bytes. `Column` maps Rust types to it.

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const INT: u8 = 3;
const UINT: u8 = 4;
const REAL: u8 = 5;
const TEXT: u8 = 6;
const BYTES: u8 = 7;

fn leb(mut x: u64, out: &mut Vec<u8>) {
    loop {
        let b = (x & 0x7f) as u8;
        x >>= 7;
        if x == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// Reads values off an encoded row.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, pos: 0 }
    }

    fn byte(&mut self) -> u8 {
        let b = self.bytes.get(self.pos).copied().unwrap_or(NULL);
        self.pos += 1;
        b
    }

    fn leb(&mut self) -> u64 {
        let (mut x, mut shift) = (0u64, 0u32);
        loop {
            let b = self.byte();
            if shift < 64 {
                x |= ((b & 0x7f) as u64) << shift;
            }
            if b & 0x80 == 0 {
                return x;
            }
            shift += 7;
        }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let end = (self.pos + n).min(self.bytes.len());
        let s = &self.bytes[self.pos.min(end)..end];
        self.pos = end;
        s
    }

    /// The next value's tag, without consuming it.
    pub fn peek_null(&self) -> bool {
        self.bytes.get(self.pos).is_none_or(|b| *b == NULL)
    }
}

/// A Rust type stored in a column (or passed as a reducer argument).
pub trait Column: Sized {
    /// The type name in module descriptions.
    const TYPE: &'static str;
    /// Whether the column may hold NULL (`Option<T>`).
    const NULLABLE: bool = false;
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(r: &mut Reader<'_>) -> Self;
}

impl Column for bool {
    const TYPE: &'static str = "bool";
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(if *self { TRUE } else { FALSE });
    }
    fn decode(r: &mut Reader<'_>) -> Self {
        r.byte() == TRUE
    }
}

impl Column for i64 {
    const TYPE: &'static str = "i64";
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(INT);
        leb(((*self << 1) ^ (*self >> 63)) as u64, out);
    }
    fn decode(r: &mut Reader<'_>) -> Self {
        r.byte();
        let z = r.leb();
        ((z >> 1) as i64) ^ -((z & 1) as i64)
    }
}

impl Column for u64 {
    const TYPE: &'static str = "u64";
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(UINT);
        leb(*self, out);
    }
    fn decode(r: &mut Reader<'_>) -> Self {
        r.byte();
        r.leb()
    }
}

impl Column for f64 {
    const TYPE: &'static str = "f64";
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(REAL);
        let v = if *self == 0.0 { 0.0 } else { *self };
        out.extend_from_slice(&v.to_le_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> Self {
        r.byte();
        let mut b = [0u8; 8];
        b.copy_from_slice(r.take(8));
        f64::from_le_bytes(b)
    }
}

impl Column for String {
    const TYPE: &'static str = "string";
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(TEXT);
        leb(self.len() as u64, out);
        out.extend_from_slice(self.as_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> Self {
        r.byte();
        let n = r.leb() as usize;
        String::from_utf8_lossy(r.take(n)).into_owned()
    }
}

impl Column for Vec<u8> {
    const TYPE: &'static str = "bytes";
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(BYTES);
        leb(self.len() as u64, out);
        out.extend_from_slice(self);
    }
    fn decode(r: &mut Reader<'_>) -> Self {
        r.byte();
        let n = r.leb() as usize;
        r.take(n).to_vec()
    }
}

impl<T: Column> Column for Option<T> {
    const TYPE: &'static str = T::TYPE;
    const NULLABLE: bool = true;
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Some(v) => v.encode(out),
            None => out.push(NULL),
        }
    }
    fn decode(r: &mut Reader<'_>) -> Self {
        if r.peek_null() {
            r.byte();
            None
        } else {
            Some(T::decode(r))
        }
    }
}

/// A key of an index: one column's value, or a tuple for an index over several columns
/// (a prefix of whose values is a prefix key).
pub trait IndexKey {
    fn encode_key(&self, out: &mut Vec<u8>);
}

impl<T: Column> IndexKey for T {
    fn encode_key(&self, out: &mut Vec<u8>) {
        self.encode(out)
    }
}

macro_rules! tuple_keys {
    ($(($($t:ident $i:tt),+)),+) => {$(
        impl<$($t: Column),+> IndexKey for ($($t,)+) {
            fn encode_key(&self, out: &mut Vec<u8>) {
                $(self.$i.encode(out);)+
            }
        }
    )+};
}

tuple_keys!((A 0, B 1), (A 0, B 1, C 2), (A 0, B 1, C 2, D 3));

/// Encodes a key.
pub fn key<K: IndexKey>(k: &K) -> Vec<u8> {
    let mut out = Vec::new();
    k.encode_key(&mut out);
    out
}

/// A reducer parameter: one column value, or a whole table row (as a scheduled reducer
/// receives its schedule row), which takes one field per column.
pub trait Param: Sized {
    /// The JSON descriptions of the parameter's fields, the first named `name`.
    fn fields(name: &str) -> Vec<String>;
    fn decode_param(r: &mut Reader<'_>) -> Self;
}

impl<T: Column> Param for T {
    fn fields(name: &str) -> Vec<String> {
        vec![field(name, T::TYPE, T::NULLABLE)]
    }
    fn decode_param(r: &mut Reader<'_>) -> Self {
        T::decode(r)
    }
}

/// A column's or parameter's JSON description.
pub fn field(name: &str, ty: &str, nullable: bool) -> String {
    format!("{{\"name\":\"{name}\",\"type\":\"{ty}\",\"nullable\":{nullable}}}")
}
