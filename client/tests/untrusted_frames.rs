//! The protocol's decoders on untrusted bytes, as a server reads every client's frames: random
//! bytes, valid messages cut short or with a byte changed, and deeply nested arguments, in
//! both encodings. Each decodes or is refused with a reason; none panics, and what decodes
//! encodes again to a message that decodes to the same.

use rand::{Rng, SeedableRng};
use sluice_client::protocol::{ClientMessage, Encoding};

fn valid_messages() -> Vec<ClientMessage> {
    vec![
        ClientMessage::Subscribe { request_id: 1, queries: vec!["SELECT * FROM t WHERE x = 1".into()] },
        ClientMessage::Unsubscribe { request_id: 2, query_id: 7 },
        ClientMessage::CallReducer {
            request_id: 3,
            reducer: "transfer".into(),
            args: serde_json::json!([1, -2, "three", [4, 5], {"six": null}]),
        },
        ClientMessage::OneOffQuery { request_id: 4, sql: "SELECT 1".into() },
    ]
}

/// Decodes `bytes`; if that succeeds, the message survives a round trip.
fn check(encoding: Encoding, bytes: &[u8]) -> bool {
    match encoding.decode::<ClientMessage>(bytes) {
        Ok(message) => {
            let again = encoding.encode(&message);
            assert_eq!(encoding.decode::<ClientMessage>(&again).as_ref(), Ok(&message));
            true
        }
        Err(reason) => {
            assert!(!reason.is_empty());
            false
        }
    }
}

#[test]
fn random_and_damaged_frames_decode_or_are_refused_without_panicking() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(29);
    let mut tried = 0;
    for encoding in [Encoding::Json, Encoding::MessagePack] {
        let valid: Vec<Vec<u8>> = valid_messages().iter().map(|m| encoding.encode(m)).collect();
        for bytes in &valid {
            assert!(check(encoding, bytes));
        }
        for _ in 0..20_000 {
            let len = rng.random_range(0..64);
            let noise: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            check(encoding, &noise);
            let mut damaged = valid[rng.random_range(0..valid.len())].clone();
            match rng.random_range(0..3) {
                0 => damaged.truncate(rng.random_range(0..damaged.len())),
                1 => {
                    let at = rng.random_range(0..damaged.len());
                    damaged[at] = rng.random();
                }
                _ => {
                    let at = rng.random_range(0..damaged.len());
                    damaged.insert(at, rng.random());
                }
            }
            check(encoding, &damaged);
            tried += 2;
        }
    }
    assert_eq!(tried, 80_000);
}

#[test]
fn deeply_nested_arguments_are_refused_not_a_stack_overflow() {
    for depth in [100, 10_000, 200_000] {
        let json = format!(
            r#"{{"type": "CallReducer", "request_id": 1, "reducer": "r", "args": {}{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let decoded = Encoding::Json.decode::<ClientMessage>(json.as_bytes());
        assert_eq!(decoded.is_ok(), depth < 128, "depth {depth}");
        // MessagePack: fixarray of one element, nested.
        let mut msgpack = vec![0x84];
        for (key, value) in [("type", None), ("request_id", Some(1u8)), ("reducer", None)] {
            msgpack.push(0xa0 | key.len() as u8);
            msgpack.extend_from_slice(key.as_bytes());
            match (key, value) {
                ("type", _) => {
                    msgpack.push(0xa0 | 11);
                    msgpack.extend_from_slice(b"CallReducer");
                }
                (_, Some(n)) => msgpack.push(n),
                _ => msgpack.extend_from_slice(&[0xa1, b'r']),
            }
        }
        msgpack.push(0xa4);
        msgpack.extend_from_slice(b"args");
        msgpack.extend(std::iter::repeat_n(0x91, depth));
        msgpack.push(0xc0);
        let decoded = Encoding::MessagePack.decode::<ClientMessage>(&msgpack);
        assert_eq!(decoded.is_ok(), depth < 128, "depth {depth}");
    }
}
