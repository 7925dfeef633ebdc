//! A subscriber's frames under a burst of reducer calls, against a real `sluice start`: the
//! transactions of one executor batch that change its queries reach it as one
//! `TransactionUpdates` frame (one `TransactionUpdate` where only one did), every transaction
//! exactly once and in offset order, and the Rust client's cache follows them to the server's
//! answer.

mod common;

use serde_json::{json, Value};
use sluice_client::{Client, Config, Encoding};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{connect, Message};

type Socket = tokio_tungstenite::tungstenite::WebSocket<
    tokio_tungstenite::tungstenite::stream::MaybeTlsStream<std::net::TcpStream>,
>;

/// A JSON WebSocket connection to the game database, past its IdentityToken.
fn open(base: &str) -> Socket {
    let url = format!("{}/v1/database/game/subscribe", base.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", "sluice.json.v1".parse().unwrap());
    let (mut ws, _) = connect(request).unwrap();
    assert_eq!(read(&mut ws)["type"], "IdentityToken");
    ws
}

/// The next message.
fn read(ws: &mut Socket) -> Value {
    loop {
        match ws.read().unwrap() {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => continue,
        }
    }
}

/// The one count a `SELECT COUNT(*)` update's rows hold.
fn count(rows: &Value) -> Option<i64> {
    rows.as_array()?.first()?.as_array()?.first()?.as_i64()
}

#[test]
fn a_batch_of_transactions_reaches_a_subscriber_in_one_frame_in_offset_order() {
    const CALLS: usize = 300;
    const QUERY: &str = "SELECT COUNT(*) FROM player";
    let data = std::env::temp_dir().join(format!("sluice-fanout-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let (mut child, base) = common::start_server(&data);

    let mut watcher = open(&base);
    watcher
        .send(Message::Text(json!({"type": "Subscribe", "request_id": 1, "queries": [QUERY]}).to_string().into()))
        .unwrap();
    let applied = read(&mut watcher);
    assert_eq!(applied["type"], "SubscribeApplied", "{applied}");
    let mut players = count(&applied["queries"][0]["rows"]).unwrap();
    let mut offset = applied["offset"].as_u64().unwrap();
    let mut client = Client::connect(Config { encoding: Encoding::MessagePack, ..Config::new(&base, "game") }).unwrap();
    client.subscribe(&[QUERY]).unwrap();

    // One connection sends every call before reading any answer, so calls queue behind each
    // other's group commit and the executor runs them in batches.
    let mut caller = open(&base);
    for i in 0..CALLS {
        let call = json!({"type": "CallReducer", "request_id": i, "reducer": "spawn_bots", "args": [1]});
        caller.write(Message::Text(call.to_string().into())).unwrap();
    }
    caller.flush().unwrap();
    let mut committed = BTreeSet::new();
    while committed.len() < CALLS {
        let answer = read(&mut caller);
        assert_eq!(answer["status"], "committed", "{answer}");
        committed.insert(answer["offset"].as_u64().unwrap());
    }

    // Every call's transaction arrives once, in offset order, each adding one player.
    let (mut seen, mut frames, mut batched, mut largest) = (BTreeSet::new(), 0, 0, 0);
    while seen.len() < CALLS {
        let frame = read(&mut watcher);
        frames += 1;
        let transactions = match frame["type"].as_str() {
            Some("TransactionUpdate") => vec![frame],
            Some("TransactionUpdates") => {
                let all = frame["transactions"].as_array().unwrap().clone();
                assert!(all.len() >= 2, "a TransactionUpdates holds several: {all:?}");
                (batched, largest) = (batched + 1, largest.max(all.len()));
                all
            }
            other => panic!("unexpected {other:?}: {frame}"),
        };
        for tx in transactions {
            assert_eq!(tx["type"], "TransactionUpdate", "{tx}");
            let at = tx["offset"].as_u64().unwrap();
            assert!(at > offset, "offset {at} after {offset}");
            offset = at;
            assert!(committed.contains(&at), "transaction {at} is one of the calls: {tx}");
            assert_eq!(tx["reducer"], "spawn_bots");
            let update = &tx["updates"][0];
            assert_eq!(count(&update["deletes"]), Some(players), "{tx}");
            assert_eq!(count(&update["inserts"]), Some(players + 1), "{tx}");
            players += 1;
            seen.insert(at);
        }
    }
    eprintln!("{CALLS} transactions in {frames} frames: {batched} TransactionUpdates, the largest of {largest}");
    assert_eq!(seen, committed);
    assert!(batched > 0, "{CALLS} queued calls never shared a frame ({frames} frames)");
    assert!(frames < CALLS, "{frames} frames for {CALLS} transactions, the largest holding {largest}");

    // The Rust client applied the batches too: its cache is the server's answer.
    let last = *committed.last().unwrap();
    assert!(client.wait_until(Duration::from_secs(10), |at, _| at >= last), "the client reached {last}");
    let rows = client.rows(QUERY).unwrap();
    assert_eq!(rows, vec![vec![sluice_client::Value::Int(players)]]);
    assert_eq!(client.query(QUERY).unwrap().rows, rows);
    assert!(client.errors().is_empty(), "{:?}", client.errors());
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&data);
}
