//! Bad input and unauthorised operations against a real `sluice start` over real sockets: each
//! gets a clear error (a 4xx status over HTTP, an Error or a close reason over WebSocket),
//! loses nothing, and the connection (where sensible) and the server keep serving. Also
//! ownership (republish keeping data, delete), metrics, and a client too slow to keep up.

mod common;

use serde_json::json;
use sluice_client::protocol::ClientMessage;
use sluice_client::{Client, ClientError, Config, Encoding, Http};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

fn refused(r: Result<impl std::fmt::Debug, ClientError>) -> String {
    match r {
        Err(ClientError::Refused(m) | ClientError::Reducer(m) | ClientError::Connect(m)) => m,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn connect(base: &str, token: Option<String>, encoding: Encoding) -> Result<Client, ClientError> {
    let mut config = Config::new(base, "game");
    (config.token, config.encoding) = (token, encoding);
    Client::connect(config)
}

/// Sends `request` as it is on a new connection; the start of the answer.
fn raw_request(base: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let mut socket = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    socket.write_all(request.as_bytes()).unwrap();
    let mut answer = [0; 64];
    let n = socket.read(&mut answer).unwrap();
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

#[test]
fn http_errors_ownership_and_metrics() {
    let data = std::env::temp_dir().join(format!("sluice-server-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let (mut child, base) = common::start_server(&data);
    let anonymous = Http::new(&base, None);
    let (_, token) = anonymous.new_identity().unwrap();
    let (_, other_token) = anonymous.new_identity().unwrap();
    let (me, other) = (Http::new(&base, Some(token)), Http::new(&base, Some(other_token)));
    let wasm = sluice::demo::GAME_WASM;

    let m = refused(anonymous.publish("mine", wasm, false));
    assert!(m.contains("publishing needs a token") && m.ends_with("(HTTP 401)"), "{m}");
    let forged = Http::new(&base, Some(format!("{}.00", "ab".repeat(32))));
    assert!(refused(forged.publish("mine", wasm, false)).contains("does not match (HTTP 401)"));
    // A bad token is refused even where no token is needed, never taken as anonymous.
    assert!(refused(forged.list()).contains("does not match (HTTP 401)"));
    assert!(refused(forged.describe("game")).contains("does not match (HTTP 401)"));
    assert_eq!(anonymous.describe("game").unwrap()["name"], "game");
    let m = refused(me.publish("junk", b"not wasm", false));
    assert!(m.contains("does not compile") && m.contains("400"), "{m}");
    assert!(!data.join("junk").exists(), "a failed publish leaves no database behind");
    assert!(refused(me.publish("bad name", wasm, false)).contains("bad database name"));
    assert!(refused(me.publish("game", wasm, false)).contains("published by the server: nobody may republish"));

    // Ownership: the publisher republishes (keeping the data) and deletes; nobody else may.
    assert_eq!(me.publish("mine", wasm, false).unwrap()["outcome"], "created");
    let offset = me.call("mine", "join", &json!(["owner", 1])).unwrap();
    assert!(refused(other.publish("mine", wasm, false)).contains("only the owner of mine may republish it"));
    assert_eq!(me.publish("mine", wasm, false).unwrap()["outcome"], "updated");
    let players = me.query("mine", "SELECT name FROM player WHERE NOT bot", None).unwrap();
    assert_eq!(players.rows, vec![vec![sluice_client::Value::Text("owner".into())]], "republishing kept the data");
    assert!(players.offset >= offset);
    assert!(refused(other.query("mine", "SELECT * FROM tick_timer", None)).contains("private"));
    // The log shows others no private row: init's tick_timer row is the owner's to see.
    let init = |who: &Http| who.logs("mine", 0, 1).unwrap().remove(0);
    let (mine, theirs) = (init(&me), init(&other));
    assert_eq!(mine["reducer"], "init");
    assert_eq!(theirs["rows"].as_u64().unwrap() + 1, mine["rows"].as_u64().unwrap(), "one row is private");
    assert!(mine.to_string().contains("tick_timer") && !theirs.to_string().contains("tick_timer"), "{theirs}");
    assert_eq!(me.query("mine", "SELECT COUNT(*) FROM tick_timer", None).unwrap().rows.len(), 1, "the owner reads it");
    assert!(refused(other.query("mine", "SELECT 1", Some("1"))).contains("403"));
    assert_eq!(me.query("mine", "SELECT COUNT(*) FROM team", Some("1")).unwrap().offset, 1);
    if let Some(bank) = common::build_module("examples/bank") {
        let m = refused(me.publish("mine", &std::fs::read(bank).unwrap(), false));
        assert!(m.contains("incompatible schema: table account is new"), "{m}");
        assert_eq!(me.query("mine", "SELECT COUNT(*) FROM team", None).unwrap().rows.len(), 1, "still the game");
    }
    assert!(refused(other.delete("mine")).contains("only the owner of mine may delete it (HTTP 403)"));
    assert_eq!(me.describe("mine").unwrap()["tables"].as_array().unwrap().len(), 5);
    me.delete("mine").unwrap();
    assert!(refused(me.describe("mine")).contains("no database named mine (HTTP 404)"));
    assert!(!data.join("mine").exists(), "deleting removes the files");

    // Bad requests to a live database.
    assert!(refused(me.call("nope", "x", &json!([]))).contains("404"));
    assert!(refused(me.call("game", "nope", &json!([]))).contains("nope"));
    assert!(refused(me.call("game", "join", &json!([1, 2, 3]))).contains("argument"));
    assert!(refused(me.call("game", "join", &json!(["x", "one"]))).contains("expected an unsigned 64-bit integer"));
    assert!(refused(me.query("game", "SELECT nope FROM player", None)).contains("nope"));
    assert!(refused(me.query("game", "SELEC 1", None)).contains("syntax error"));
    // A body declared past the limit is refused before any of it is read. (A client still
    // writing it may see its connection reset instead, so the request goes by hand.)
    let huge = format!("POST /v1/database/game/sql HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", 2 << 20);
    assert!(raw_request(&base, &huge).starts_with("HTTP/1.1 413"), "an oversized body is refused");
    // A module has a limit of its own (16 MiB by default), held the same way.
    let huge = format!("POST /v1/database/huge HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", 32 << 20);
    assert!(raw_request(&base, &huge).starts_with("HTTP/1.1 413"), "an oversized module is refused");
    // Still serving, and counting.
    assert_eq!(me.query("game", "SELECT COUNT(*) FROM team", None).unwrap().rows[0][0], sluice_client::Value::Int(2));
    let metrics = ureq::get(&format!("{base}/metrics")).call().unwrap().into_string().unwrap();
    assert!(metrics.contains("sluice_transactions_total{database=\"game\"}"), "{metrics}");
    assert!(metrics.contains("sluice_reducer_calls_total{database=\"game\",outcome=\"failed\"} 3"), "{metrics}");
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn websocket_errors_leave_the_connection_and_server_serving() {
    let data = std::env::temp_dir().join(format!("sluice-ws-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let (mut child, base) =
        common::start_server_with(&data, &["--listen", "127.0.0.1:0", "--max-message-bytes", "65536"]);
    assert!(refused(connect(&base, Some("nonsense".into()), Encoding::Json).map(|_| ())).contains("401"));
    for encoding in [Encoding::Json, Encoding::MessagePack] {
        let mut c = connect(&base, None, encoding).unwrap();
        assert_eq!(c.identity().len(), 64);
        // The token names the same identity next time.
        let again = connect(&base, Some(c.token().to_string()), encoding).unwrap();
        assert_eq!(again.identity(), c.identity());
        assert!(refused(c.call("nope", json!([]))).contains("nope"));
        assert!(refused(c.call("join", json!(["x", "one"]))).contains("expected an unsigned 64-bit integer"));
        assert!(refused(c.subscribe(&["SELECT nope FROM player"])).contains("nope"));
        assert!(refused(c.subscribe(&["SELECT * FROM player", "SELECT * FROM tick_timer"])).contains("private"));
        assert!(c.rows("SELECT * FROM player").is_none(), "a failed subscription subscribes none of its queries");
        assert!(refused(c.query("SELECT FROM")).contains("syntax error"));
        // Malformed frames: an Error, and the connection goes on.
        c.send_raw(Message::Text("not a message".into())).unwrap();
        c.send_raw(Message::Binary(vec![0xc1, 0x00].into())).unwrap();
        let call = c.call("join", json!(["me", 1])).unwrap();
        assert!(call > 0);
        let errors = c.errors();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors.iter().any(|e| e.contains("malformed message") || e.contains("this connection speaks")),
            "{errors:?}"
        );
        let (offset, applied) = c.subscribe(&["SELECT name FROM player WHERE identity = :sender"]).unwrap();
        assert!(offset >= call);
        assert_eq!(applied[0].rows, vec![vec![sluice_client::Value::Text("me".into())]]);
        // An oversized message closes the connection with the reason; the server lives on.
        c.send(&ClientMessage::OneOffQuery { request_id: 99, sql: "x".repeat(100_000) }).unwrap();
        assert!(c.wait_until(Duration::from_secs(10), |_, closed| closed.is_some()));
        assert!(c.closed().unwrap().contains("cannot read the message"), "{:?}", c.closed());
        assert_eq!(connect(&base, None, encoding).unwrap().query("SELECT COUNT(*) FROM team").unwrap().rows.len(), 1);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn a_client_too_slow_to_read_is_closed_and_memory_stays_bounded() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let data = std::env::temp_dir().join(format!("sluice-slow-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let (mut child, base) =
        common::start_server_with(&data, &["--listen", "127.0.0.1:0", "--max-queued-bytes", "4096", "--in-memory"]);
    // Two thousand more bots: every tick (ten a second) moves them all.
    Http::new(&base, None).call("game", "spawn_bots", &json!([2000])).unwrap();
    let url = format!("{}/v1/database/game/subscribe", base.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", "sluice.json.v1".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::tungstenite::connect(request).unwrap();
    let subscribe =
        json!({"type": "Subscribe", "request_id": 1, "queries": ["SELECT * FROM position", "SELECT * FROM world"]});
    ws.send(Message::Text(subscribe.to_string().into())).unwrap();
    // Read nothing while the tick moves twelve bots ten times a second.
    std::thread::sleep(Duration::from_secs(5));
    let mut frames = 0;
    let reason = loop {
        match ws.read() {
            Ok(Message::Close(Some(c))) => break c.reason.to_string(),
            Ok(_) => frames += 1,
            Err(e) => break format!("{e}"),
        }
    };
    assert!(reason.contains("too slow"), "closed with {reason:?} after {frames} frames");
    // What was queued for it leaves the send-queue gauge once it is gone.
    let gauge = "sluice_send_queue_bytes{database=\"game\"} ";
    let queued = || {
        let metrics = ureq::get(&format!("{base}/metrics")).call().unwrap().into_string().unwrap();
        let line = metrics.lines().find(|l| l.starts_with(gauge)).map(str::to_string);
        line.unwrap_or_else(|| panic!("no {gauge}in {metrics}"))[gauge.len()..].parse::<usize>().unwrap()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while queued() != 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(queued(), 0, "nothing is left queued for a closed client");
    // The server goes on serving others.
    let mut c = connect(&base, None, Encoding::Json).unwrap();
    assert!(c.subscribe(&["SELECT * FROM world"]).is_ok());
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&data);
}

/// The owner's INSERT, UPDATE and DELETE over `/sql`: each statement is one transaction whose
/// result is exactly SQLite's for the same statement on the state before it, and subscribers
/// receive it. Anyone else's DML, DDL, and a statement breaking a constraint are refused and
/// change nothing.
#[test]
fn owner_dml_matches_sqlite() {
    use sluice_client::SqlResult;
    let data = std::env::temp_dir().join(format!("sluice-dml-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let (mut child, base) = common::start_server(&data);
    let anonymous = Http::new(&base, None);
    let (_, token) = anonymous.new_identity().unwrap();
    let (_, other_token) = anonymous.new_identity().unwrap();
    let (me, other) = (Http::new(&base, Some(token.clone())), Http::new(&base, Some(other_token)));
    me.publish("mine", sluice::demo::GAME_WASM, false).unwrap();
    me.call("mine", "spawn_bots", &json!([12])).unwrap();
    let watched = [
        "SELECT p.name, t.name FROM player p JOIN team t ON p.team_id = t.id",
        "SELECT team_id, COUNT(*) FROM player GROUP BY team_id",
    ];
    let mut config = Config::new(&base, "mine");
    config.token = Some(token);
    let mut client = Client::connect(config).unwrap();
    client.subscribe(&watched).unwrap();

    let host = sluice_runtime::Host::load(sluice::demo::GAME_WASM, sluice_runtime::HostConfig::default()).unwrap();
    let mirror = common::Mirror::new(host.datastore().defs());
    let tables = ["team", "player", "position", "world"];
    let state =
        |table: &str, at: u64| me.query("mine", &format!("SELECT * FROM {table}"), Some(&at.to_string())).unwrap().rows;
    let statements = [
        "INSERT INTO team VALUES (3, 'green')",
        "UPDATE player SET team_id = 3, name = name || '+' WHERE id % 3 = 0",
        "INSERT INTO team SELECT id + 10, name || ' reserve' FROM team WHERE id < 3",
        "DELETE FROM player WHERE id % 4 = 1",
        "UPDATE player SET score = score / 2 - 7 WHERE NOT bot OR score >= 0",
        "UPDATE team SET id = id + 1 WHERE id >= 11",
    ];
    for sql in statements {
        let Ok(SqlResult::Changed { rows, offset }) = me.sql("mine", sql, None) else { panic!("{sql} did not run") };
        // SQLite runs the statement on the state the server's ran on: the one before its offset.
        for table in tables {
            mirror.reload(table, &state(table, offset - 1));
        }
        assert_eq!(mirror.conn.execute(sql, []).unwrap() as u64, rows, "{sql}: rows changed");
        for table in tables {
            let server = common::norm_wire_rows(&state(table, offset));
            assert_eq!(server, mirror.query(&format!("SELECT * FROM {table}")), "{sql}: table {table}");
        }
        // The subscriber's caches hold the statement's effect (the tick changes neither query):
        // a one-off query's answer comes after every update before it.
        assert!(client.query("SELECT 1").unwrap().offset >= offset);
        for q in watched {
            assert_eq!(common::norm_wire_rows(&client.rows(q).unwrap()), mirror.query(q), "{sql}: {q}");
        }
    }

    // Refusals change nothing.
    let teams = || common::norm_wire_rows(&me.query("mine", "SELECT * FROM team", None).unwrap().rows);
    let before = teams();
    assert!(refused(other.sql("mine", "DELETE FROM team", None)).contains("only the database's owner may run INSERT"));
    assert!(refused(anonymous.sql("mine", "INSERT INTO team VALUES (9, 'x')", None)).contains("owner"));
    assert!(refused(me.sql("mine", "CREATE TABLE x (a INT)", None)).contains("the module declares the tables"));
    assert!(refused(me.sql("mine", "INSERT INTO team VALUES (1, 'dup')", None)).contains("duplicate primary key"));
    assert!(refused(me.sql("mine", "UPDATE team SET name = NULL", None)).contains("NOT NULL"));
    assert!(refused(me.sql("mine", "DELETE FROM nope", None)).contains("nope"));
    assert_eq!(teams(), before, "refused statements changed nothing");
    let Ok(SqlResult::Changed { rows: 0, .. }) = me.sql("mine", "UPDATE team SET name = 'x' WHERE id = 99", None)
    else {
        panic!("a statement matching no row changes none")
    };
    // Each statement commits on its own: the first of these stays when the second fails.
    assert!(refused(me.sql("mine", "INSERT INTO team VALUES (20, 'a'); INSERT INTO team VALUES (1, 'b')", None))
        .contains("duplicate primary key"));
    assert_eq!(me.query("mine", "SELECT name FROM team WHERE id = 20", None).unwrap().rows.len(), 1);
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&data);
}
