//! The HTTP server's answers to bad requests, over a real socket to a real `sluice start`:
//! each gets a clear error with a 4xx status, leaves nothing behind, and the server keeps
//! serving.

mod common;

use serde_json::Value;
use std::time::Duration;

fn post(url: &str, body: &[u8]) -> (u16, Value) {
    match ureq::post(url).timeout(Duration::from_secs(20)).send_bytes(body) {
        Ok(r) => (r.status(), r.into_json().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or(Value::Null)),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn bad_requests_get_clear_errors_and_the_server_keeps_serving() {
    let data = std::env::temp_dir().join(format!("sluice-server-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let (mut child, base) = common::start_server(&data);
    let error = |(code, body): (u16, Value)| (code, body["error"].as_str().unwrap_or_default().to_string());

    let (code, msg) = error(post(&format!("{base}/v1/database/junk"), b"not wasm"));
    assert_eq!(code, 400);
    assert!(msg.contains("does not compile"), "{msg}");
    assert!(!data.join("junk").exists(), "a failed publish leaves no database behind");
    let (code, msg) = error(post(&format!("{base}/v1/database/game"), sluice::demo::GAME_WASM));
    assert_eq!((code, msg.contains("clear=true")), (409, true), "{msg}");
    let (code, msg) = error(post(&format!("{base}/v1/database/nope/call/x"), b"[]"));
    assert_eq!((code, msg.as_str()), (404, "no database named nope"));
    let (code, msg) = error(post(&format!("{base}/v1/database/game/call/join"), b"[1, 2, 3]"));
    assert_eq!(code, 400);
    assert!(msg.contains("argument"), "{msg}");
    let (code, msg) = error(post(&format!("{base}/v1/database/game/sql"), b"SELECT nope FROM player"));
    assert_eq!(code, 400);
    assert!(msg.contains("nope"), "{msg}");
    let (code, msg) = error(post(&format!("{base}/v1/database/game/sql?as_of=99999999"), b"SELECT 1"));
    assert_eq!(code, 400);
    assert!(msg.contains("past the last transaction"), "{msg}");
    let (code, msg) = error(post(&format!("{base}/v1/database/game/sql?as_of=yesterday"), b"SELECT 1"));
    assert_eq!(code, 400);
    assert!(msg.contains("neither an offset nor a time"), "{msg}");
    // Still serving.
    let (code, body) = post(&format!("{base}/v1/database/game/sql"), b"SELECT COUNT(*) FROM team");
    assert_eq!((code, body["rows"][0][0].as_i64()), (200, Some(2)));
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&data);
}
