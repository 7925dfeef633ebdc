//! Rows from untrusted bytes (a module's host calls hand the host encoded rows): random bytes
//! and valid encodings cut short or with a byte changed either decode to values whose
//! encoding is canonical, or are refused; none panics.

use rand::{Rng, SeedableRng};
use sluice_data::{Row, Value};

#[test]
fn untrusted_row_bytes_decode_canonically_or_are_refused() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(29);
    let samples: Vec<Row> = vec![
        Row::from_values(&[Value::Int(-5), Value::text("hello"), Value::Null]),
        Row::from_values(&[Value::UInt(u64::MAX), Value::Real(1.5), Value::Bool(true)]),
        Row::from_values(&[Value::Bytes(vec![0, 1, 2, 255].into()), Value::Int(i64::MIN), Value::text("")]),
    ];
    let mut decoded = 0;
    for round in 0..100_000 {
        let bytes: Vec<u8> = if round % 2 == 0 {
            (0..rng.random_range(0..24)).map(|_| rng.random()).collect()
        } else {
            let mut b = samples[rng.random_range(0..samples.len())].as_bytes().to_vec();
            let at = rng.random_range(0..b.len());
            if rng.random_bool(0.5) {
                b.truncate(at);
            } else {
                b[at] = rng.random();
            }
            b
        };
        if let Some(values) = Row::decode_untrusted(&bytes) {
            let again = Row::from_values(&values);
            assert_eq!(Row::decode_untrusted(again.as_bytes()).as_deref(), Some(&values[..]), "{bytes:?}");
            decoded += 1;
        }
    }
    assert!(decoded > 0, "some of the damaged rows are still rows");
}
