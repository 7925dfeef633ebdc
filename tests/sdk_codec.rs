//! The SDK's row codec and the engine's `Row` encoding agree byte for byte, in both
//! directions, for every column type (the ABI depends on it).

use sluice_planner::{Row, Value};
use sluice_sdk::{Column, Identity, Reader};
use std::sync::Arc;

fn sdk_bytes(f: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    f(&mut out);
    out
}

#[test]
fn sdk_encoding_is_the_row_encoding() {
    let ints = [0i64, 1, -1, 63, -64, 64, 300, -301, i64::MAX, i64::MIN];
    for i in ints {
        assert_eq!(sdk_bytes(|o| i.encode(o)), Row::new(vec![Value::Int(i)]).as_bytes(), "{i}");
        assert_eq!(i64::decode(&mut Reader::new(Row::new(vec![Value::Int(i)]).as_bytes())), i);
    }
    for u in [0u64, 127, 128, u64::MAX] {
        assert_eq!(sdk_bytes(|o| u.encode(o)), Row::new(vec![Value::UInt(u)]).as_bytes(), "{u}");
        assert_eq!(u64::decode(&mut Reader::new(Row::new(vec![Value::UInt(u)]).as_bytes())), u);
    }
    for f in [0.0f64, -0.0, 1.5, -2.25e300, f64::MIN_POSITIVE] {
        assert_eq!(sdk_bytes(|o| f.encode(o)), Row::new(vec![Value::Real(f)]).as_bytes(), "{f}");
    }
    for b in [true, false] {
        assert_eq!(sdk_bytes(|o| b.encode(o)), Row::new(vec![Value::Bool(b)]).as_bytes());
    }
    let s = "héllo, a string long enough to need a longer length prefix? no, but unicode".to_string();
    assert_eq!(sdk_bytes(|o| s.encode(o)), Row::new(vec![Value::text(&s)]).as_bytes());
    let bytes = vec![0u8, 255, 7];
    assert_eq!(sdk_bytes(|o| bytes.encode(o)), Row::new(vec![Value::Bytes(Arc::from(bytes.clone()))]).as_bytes());
    let none: Option<i64> = None;
    assert_eq!(sdk_bytes(|o| none.encode(o)), Row::new(vec![Value::Null]).as_bytes());
    assert_eq!(sdk_bytes(|o| Some(5i64).encode(o)), Row::new(vec![Value::Int(5)]).as_bytes());

    // A whole row, decoded by the engine's untrusted-input decoder.
    let row = sdk_bytes(|o| {
        7u64.encode(o);
        None::<String>.encode(o);
        (-3i64).encode(o);
        "x".to_string().encode(o);
        Identity([9; 32]).encode(o);
    });
    let values = Row::decode_untrusted(&row).expect("well-formed").to_vec();
    assert_eq!(
        values,
        vec![Value::UInt(7), Value::Null, Value::Int(-3), Value::text("x"), Value::Bytes(Arc::from(vec![9u8; 32]))]
    );
    let mut r = Reader::new(&row);
    assert_eq!(
        (u64::decode(&mut r), Option::<String>::decode(&mut r), i64::decode(&mut r), String::decode(&mut r)),
        (7, None, -3, "x".to_string())
    );
    assert_eq!(Identity::decode(&mut r), Identity([9; 32]));
}
