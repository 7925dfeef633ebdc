//! The adversarial suite: what an attacker or a careless operator did to a real `sluice
//! start` (issue 29's reproductions), each answered with a clear error and nothing lost —
//! the process alive, the files whole, nobody's private data shown to another.

mod common;

use serde_json::json;
use sluice_client::{Client, ClientError, Config, Encoding, Http, Value};
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn refused(r: Result<impl std::fmt::Debug, ClientError>) -> String {
    match r {
        Err(ClientError::Refused(m) | ClientError::Reducer(m) | ClientError::Connect(m)) => m,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn data_dir(name: &str) -> PathBuf {
    let data = std::env::temp_dir().join(format!("sluice-hostile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    data
}

fn stop(mut child: std::process::Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

fn chain(first: &str, op: &str, term: impl Fn(usize) -> String, n: usize) -> String {
    let mut s = String::from(first);
    for i in 0..n {
        s.push_str(op);
        s.push_str(&term(i));
    }
    s
}

#[test]
fn deep_sql_from_anyone_gets_an_error_or_its_answer_and_the_server_lives() {
    let data = data_dir("deep");
    let (child, base) = common::start_server(&data);
    let anonymous = Http::new(&base, None);
    // 6,000 alternatives plan and answer as their range does.
    let ors = chain("SELECT id FROM player WHERE id = 0", " OR ", |i| format!("id = {}", i + 1), 6000);
    let mut got = anonymous.query("game", &ors, None).unwrap().rows;
    let mut want = anonymous.query("game", "SELECT id FROM player WHERE id <= 6000", None).unwrap().rows;
    let key = |r: &Vec<Value>| format!("{r:?}");
    got.sort_by_key(key);
    want.sort_by_key(key);
    assert!(!want.is_empty());
    assert_eq!(got, want);
    let ands =
        chain("SELECT COUNT(*) FROM player WHERE id <> -1", " AND ", |i| format!("id <> {}", i + 100_000), 10_000);
    assert_eq!(anonymous.query("game", &ands, None).unwrap().rows.len(), 1);
    for sql in [
        chain("SELECT 1", " + ", |_| "1".into(), 50_000),
        chain("SELECT name FROM player WHERE name = 'a'", " || ", |_| "'a'".into(), 30_000),
        chain("SELECT id FROM player WHERE id = 0", " = ", |_| "0".into(), 20_000),
        chain("SELECT 1", " UNION ", |i| format!("SELECT {i}"), 20_000),
    ] {
        let m = refused(anonymous.query("game", &sql, None));
        assert!(m.contains("nests too deeply") && m.contains("(HTTP 400)"), "{}", &m[..m.len().min(300)]);
    }
    let m = refused(anonymous.query("game", &format!("SELECT {}1{}", "(".repeat(100_000), ")".repeat(100_000)), None));
    assert!(m.contains("nests too deeply"), "{m}");
    // Over WebSocket too, in both encodings, and the connection goes on.
    for encoding in [Encoding::Json, Encoding::MessagePack] {
        let mut config = Config::new(&base, "game");
        config.encoding = encoding;
        let mut c = Client::connect(config).unwrap();
        let deep = chain("SELECT id FROM player WHERE id = 0", " + ", |_| "0".into(), 40_000);
        assert!(refused(c.subscribe(&[&deep])).contains("nests too deeply"));
        assert!(refused(c.query(&deep)).contains("nests too deeply"));
        let (_, applied) = c.subscribe(&[&ors]).unwrap();
        assert_eq!(applied[0].rows.len(), want.len());
    }
    // A frame nested 200,000 deep (arguments in MessagePack) is refused, not recursed into.
    {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        use tokio_tungstenite::tungstenite::Message;
        let url = format!("{}/v1/database/game/subscribe", base.replace("http://", "ws://"));
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert("Sec-WebSocket-Protocol", "sluice.msgpack.v2".parse().unwrap());
        let (mut ws, _) = tokio_tungstenite::tungstenite::connect(request).unwrap();
        let mut frame = vec![0x82, 0xa4];
        frame.extend_from_slice(b"type");
        frame.push(0xa0 | 11);
        frame.extend_from_slice(b"CallReducer");
        frame.push(0xa4);
        frame.extend_from_slice(b"args");
        frame.extend(std::iter::repeat_n(0x91, 200_000));
        frame.push(0xc0);
        ws.send(Message::Binary(frame.into())).unwrap();
        let refusal = (0..10).find_map(|_| match ws.read().unwrap() {
            Message::Binary(b) => {
                let text = String::from_utf8_lossy(&b).into_owned();
                text.contains("depth").then_some(text)
            }
            _ => None,
        });
        assert!(refusal.is_some(), "the frame was refused, saying why");
    }
    assert_eq!(anonymous.query("game", "SELECT COUNT(*) FROM team", None).unwrap().rows[0][0], Value::Int(2));
    stop(child);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn two_publishes_of_a_new_name_at_once_leave_one_whole_database() {
    let data = data_dir("race");
    let (child, base) = common::start_server(&data);
    let anonymous = Http::new(&base, None);
    let publishers: Vec<(String, Http)> = (0..2)
        .map(|_| {
            let (identity, token) = anonymous.new_identity().unwrap();
            (identity, Http::new(&base, Some(token)))
        })
        .collect();
    let mut winners = Vec::new();
    for round in 0..6 {
        let name = format!("new{round}");
        let barrier = std::sync::Barrier::new(2);
        let outcomes: Vec<Result<serde_json::Value, ClientError>> = std::thread::scope(|s| {
            let handles: Vec<_> = publishers
                .iter()
                .map(|(_, http)| {
                    let (barrier, name) = (&barrier, &name);
                    s.spawn(move || {
                        barrier.wait();
                        http.publish(name, sluice::demo::GAME_WASM, false)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let created: Vec<usize> = (0..2).filter(|&i| outcomes[i].is_ok()).collect();
        assert_eq!(created.len(), 1, "round {round}: exactly one creates: {outcomes:?}");
        let winner = created[0];
        assert_eq!(outcomes[winner].as_ref().unwrap()["outcome"], "created");
        let loser = outcomes[1 - winner].as_ref().unwrap_err().to_string();
        assert!(
            (loser.contains("is being published or deleted by another request") && loser.contains("(HTTP 409)"))
                || loser.contains("only the owner of"),
            "round {round}: {loser}"
        );
        publishers[winner].1.call(&name, "join", &json!(["winner", 1])).unwrap();
        winners.push((name, publishers[winner].0.clone()));
    }
    // After a crash and a restart every database is whole, and its owner's.
    stop(child);
    let (child, base) = common::start_server(&data);
    let anonymous = Http::new(&base, None);
    for (name, owner) in &winners {
        assert_eq!(anonymous.describe(name).unwrap()["owner"], json!(owner), "{name}");
        let players = anonymous.query(name, "SELECT name FROM player WHERE NOT bot", None).unwrap();
        assert_eq!(players.rows, vec![vec![Value::Text("winner".into())]], "{name}");
    }
    stop(child);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn a_second_server_on_a_data_directory_is_refused_before_it_touches_a_file() {
    let data = data_dir("lock");
    let (first, base) = common::start_server(&data);
    let (_, token) = Http::new(&base, None).new_identity().unwrap();
    let me = Http::new(&base, Some(token));
    me.publish("mine", sluice::demo::GAME_WASM, false).unwrap();
    me.call("mine", "join", &json!(["before", 1])).unwrap();
    let port = base.rsplit(':').next().unwrap();
    // Once on a free port, once on the first server's (whose bind would fail too).
    for listen in ["127.0.0.1:0".to_string(), format!("127.0.0.1:{port}")] {
        let second = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["start", "--data-dir", data.to_str().unwrap(), "--listen", &listen])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert!(!second.status.success());
        let stderr = String::from_utf8_lossy(&second.stderr);
        assert!(stderr.contains(&format!("is in use by another sluice process (pid {})", first.id())), "{stderr}");
        assert!(stderr.contains(data.to_str().unwrap()), "{stderr}");
    }
    let lock = std::fs::read_to_string(data.join("LOCK")).unwrap();
    assert_eq!(lock.trim(), first.id().to_string(), "the holder is still named");
    let (_, other_token) = Http::new(&base, None).new_identity().unwrap();
    Http::new(&base, Some(other_token)).call("mine", "join", &json!(["after", 2])).unwrap();
    stop(first);
    // Only one server wrote: every log reads back in order (two writers interleave offsets).
    for name in ["game", "mine"] {
        let verify = Command::new(env!("CARGO_BIN_EXE_sluice")).args(["verify"]).arg(data.join(name)).output().unwrap();
        assert!(verify.status.success(), "{name}: {}", String::from_utf8_lossy(&verify.stdout));
    }
    // The lock goes with the process, SIGKILL included: the next server starts.
    let (child, base) = common::start_server(&data);
    let players = Http::new(&base, None).query("mine", "SELECT COUNT(*) FROM player WHERE NOT bot", None).unwrap();
    assert_eq!(players.rows[0][0], Value::Int(2));
    stop(child);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn the_log_shows_callers_and_arguments_only_to_the_owner() {
    let data = data_dir("log");
    let (child, base) = common::start_server(&data);
    let anonymous = Http::new(&base, None);
    let (my_identity, token) = anonymous.new_identity().unwrap();
    let (other_identity, other_token) = anonymous.new_identity().unwrap();
    let (me, other) = (Http::new(&base, Some(token.clone())), Http::new(&base, Some(other_token.clone())));
    let owner_sees = other_identity.clone();
    me.publish("mine", sluice::demo::GAME_WASM, false).unwrap();
    let offset = me.call("mine", "join", &json!(["the owner's call", 1])).unwrap();
    let record = |who: &Http| who.logs("mine", offset - 1, 1).unwrap().remove(0);
    let mine = record(&me);
    assert_eq!(mine["reducer"], "join");
    assert_eq!(mine["caller"], json!(my_identity));
    assert!(mine["args"].to_string().contains("the owner's call"), "{mine}");
    for who in [&other, &anonymous] {
        let theirs = record(who);
        assert_eq!(theirs["offset"], json!(offset));
        assert_eq!(theirs["reducer"], "join");
        assert!(theirs["caller"].is_null() && theirs["args"].is_null(), "{theirs}");
        // The public table's change is still there for anyone to see.
        assert!(theirs["changes"].to_string().contains("player"), "{theirs}");
    }
    // So do subscribers' updates (in both encodings): the owner and the caller see who called,
    // anyone else sees no caller, as for the server's own transactions.
    let watch = |token: Option<String>, encoding: Encoding| {
        let mut config = Config::new(&base, "mine");
        (config.token, config.encoding) = (token, encoding);
        let mut client = Client::connect(config).unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = std::sync::Arc::clone(&seen);
        client.on_transaction(move |t| log.lock().unwrap().push((t.offset, t.caller.clone())));
        client.subscribe(&["SELECT name FROM player"]).unwrap();
        (client, seen)
    };
    let watchers = [
        (watch(Some(token), Encoding::Json), owner_sees),
        (watch(Some(other_token), Encoding::MessagePack), other_identity),
        (watch(None, Encoding::Json), String::new()),
        (watch(None, Encoding::MessagePack), String::new()),
    ];
    let called = other.call("mine", "join", &json!(["someone else's call", 2])).unwrap();
    for ((client, seen), shown) in &watchers {
        assert!(client.wait_until(std::time::Duration::from_secs(10), |at, _| at >= called));
        assert_eq!(seen.lock().unwrap().last(), Some(&(called, shown.clone())));
    }
    // A page is bounded whatever the limit asked.
    let page = ureq::get(&format!("{base}/v1/database/game/log?after=0&limit=1000000000")).call().unwrap();
    let page: serde_json::Value = page.into_json().unwrap();
    assert!(page.as_array().unwrap().len() <= 1000);
    stop(child);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn without_the_demo_the_server_starts_empty() {
    let data = data_dir("no-demo");
    let (child, base) = common::start_server_with(&data, &["--listen", "127.0.0.1:0", "--no-demo"]);
    assert_eq!(Http::new(&base, None).list().unwrap(), json!([]));
    assert!(!data.join("game").exists());
    stop(child);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn sigterm_shuts_down_cleanly_like_ctrl_c() {
    let data = data_dir("sigterm");
    let (mut child, base) = common::start_server(&data);
    let offset = Http::new(&base, None).call("game", "join", &json!(["before the end", 1])).unwrap();
    // SAFETY: kill(2) on the child's pid, a process this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) }, 0);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    // A clean shutdown leaves a snapshot at its last offset, past the call.
    let snapshots = sluice_runtime::snapshot::list(&data.join("game").join("snapshots")).unwrap();
    let newest = snapshots.last().map(|(offset, _)| *offset).unwrap();
    assert!(newest >= offset, "{snapshots:?} after offset {offset}");
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn a_query_past_its_budget_is_stopped_and_reducers_go_on() {
    let data = data_dir("budget");
    let (child, base) = common::start_server_with(
        &data,
        &["--listen", "127.0.0.1:0", "--query-row-limit", "1000", "--query-time-limit", "60s"],
    );
    let anonymous = Http::new(&base, None);
    // A 4-way cross join of the game's players: tens of thousands of rows, past the limit.
    let cross = "SELECT a.id, b.id, c.id, d.id FROM player a, player b, player c, player d";
    let m = refused(anonymous.query("game", cross, None));
    assert!(m.contains("row limit") && m.contains("(HTTP 400)"), "{m}");
    let mut c = Client::connect(Config::new(&base, "game")).unwrap();
    assert!(refused(c.subscribe(&[cross])).contains("row limit"));
    // The database went on serving: calls, queries and subscriptions within the limits.
    c.call("join", json!(["still here", 1])).unwrap();
    let (_, applied) = c.subscribe(&["SELECT name FROM player WHERE identity = :sender"]).unwrap();
    assert_eq!(applied[0].rows, vec![vec![Value::Text("still here".into())]]);
    stop(child);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn a_damaged_database_is_unavailable_and_the_others_start() {
    let data = data_dir("damaged");
    let (child, base) = common::start_server(&data);
    let (identity, token) = Http::new(&base, None).new_identity().unwrap();
    let me = Http::new(&base, Some(token.clone()));
    me.publish("mine", sluice::demo::GAME_WASM, false).unwrap();
    me.call("mine", "join", &json!(["me", 1])).unwrap();
    stop(child);
    // A flipped bit in the first record of mine's log, with records after it: damage in the
    // middle, which recovery refuses rather than guess at.
    let (_, segment) = sluice_runtime::commitlog::segments(&data.join("mine").join("log")).unwrap().remove(0);
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = sluice_runtime::commitlog::HEADER as usize + sluice_runtime::commitlog::FRAME as usize + 2;
    bytes[at] ^= 0x10;
    std::fs::write(&segment, &bytes).unwrap();
    let (child, base) = common::start_server(&data);
    let anonymous = Http::new(&base, None);
    assert_eq!(anonymous.query("game", "SELECT COUNT(*) FROM team", None).unwrap().rows[0][0], Value::Int(2));
    let listed = anonymous.list().unwrap();
    let mine = listed.as_array().unwrap().iter().find(|d| d["name"] == "mine").unwrap().clone();
    assert_eq!(mine["owner"], json!(identity));
    assert!(mine["unavailable"].as_str().unwrap().contains("checksum"), "{mine}");
    let m = refused(anonymous.query("mine", "SELECT 1", None));
    assert!(m.contains("database mine is unavailable") && m.contains("(HTTP 503)"), "{m}");
    let me = Http::new(&base, Some(token));
    let m = refused(me.publish("mine", sluice::demo::GAME_WASM, false));
    assert!(m.contains("(HTTP 503)"), "{m}");
    // The owner's way out is refused while the server holds the directory ...
    let repair = || {
        Command::new(env!("CARGO_BIN_EXE_sluice")).args(["verify", "--repair"]).arg(data.join("mine")).output().unwrap()
    };
    let busy = repair();
    assert!(
        !busy.status.success() && String::from_utf8_lossy(&busy.stderr).contains("in use by another sluice process")
    );
    stop(child);
    assert_eq!(std::fs::read(&segment).unwrap(), bytes, "its files are left as they were");
    // ... and then cuts the log at the damage, keeping a copy, and says what is lost.
    let repaired = repair();
    let said = String::from_utf8_lossy(&repaired.stdout);
    assert!(repaired.status.success(), "{said}");
    assert!(
        said.contains("the damaged files are kept in") && said.contains("every transaction after offset 0 is lost"),
        "{said}"
    );
    let kept: Vec<_> = std::fs::read_dir(data.join("mine"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("damaged-"))
        .collect();
    assert_eq!(std::fs::read(kept[0].path().join("log").join(segment.file_name().unwrap())).unwrap(), bytes);
    let (child, base) = common::start_server(&data);
    let teams = Http::new(&base, None).query("mine", "SELECT COUNT(*) FROM team", None).unwrap();
    assert_eq!(teams.rows[0][0], Value::Int(0), "back as of offset 0: its init is lost with the rest");
    stop(child);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn the_module_log_is_kept_bounded_and_shown_to_the_owner() {
    let Some(chat) = common::build_module("examples/chat") else { return };
    let data = data_dir("module-log");
    let (child, base) = common::start_server(&data);
    let anonymous = Http::new(&base, None);
    let (_, token) = anonymous.new_identity().unwrap();
    let me = Http::new(&base, Some(token.clone()));
    me.publish("chat", &std::fs::read(chat).unwrap(), false).unwrap();
    let mut config = Config::new(&base, "chat");
    config.token = Some(token);
    let mut c = Client::connect(config).unwrap();
    for i in 0..3 {
        c.call("set_name", json!([format!("name {i}")])).unwrap();
    }
    let lines = me.module_logs("chat", 0).unwrap();
    let messages: Vec<&str> = lines.iter().map(|l| l["message"].as_str().unwrap()).collect();
    assert_eq!(messages.len(), 3, "{lines:?}");
    assert!(messages[2].ends_with("is now called name 2"), "{messages:?}");
    assert_eq!(lines[2]["reducer"], "set_name");
    assert_eq!(lines[2]["level"], "info");
    let after = lines[1]["seq"].as_u64().unwrap();
    assert_eq!(me.module_logs("chat", after).unwrap().len(), 1);
    let m = refused(anonymous.module_logs("chat", 0));
    assert!(m.contains("needs the owner's token"), "{m}");
    stop(child);
    let _ = std::fs::remove_dir_all(&data);
}

/// `wasm` with a custom section of `extra` bytes: a larger module that loads the same.
fn padded(wasm: &[u8], extra: usize) -> Vec<u8> {
    let mut out = wasm.to_vec();
    out.push(0);
    let mut len = (extra + 2) as u64;
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        out.push(if len == 0 { byte } else { byte | 0x80 });
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(&[1, b'x']);
    out.extend(std::iter::repeat_n(0u8, extra));
    out
}

#[test]
fn modules_have_a_limit_of_their_own_and_a_clear_refusal() {
    let data = data_dir("module-size");
    let (child, base) = common::start_server_with(&data, &["--listen", "127.0.0.1:0", "--max-module-bytes", "3000000"]);
    let (_, token) = Http::new(&base, None).new_identity().unwrap();
    let me = Http::new(&base, Some(token));
    // Past the 1 MiB of other requests, within the module limit.
    let big = padded(sluice::demo::GAME_WASM, 1_500_000);
    assert_eq!(me.publish("big", &big, false).unwrap()["outcome"], "created");
    let huge = padded(sluice::demo::GAME_WASM, 3_000_000);
    let m = refused(me.publish("huge", &huge, false));
    assert_eq!(m, format!("module too large ({} bytes, limit 3000000)", huge.len()));
    // The same from the command line, and from the server to a client that sends anyway.
    let file = data.join("huge.wasm");
    std::fs::write(&file, &huge).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["publish", "huge", "--wasm", file.to_str().unwrap(), "--server", &base])
        .env("SLUICE_CONFIG", data.join("config.json"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("module too large"), "{stderr}");
    let request = format!("POST /v1/database/huge HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", huge.len());
    let mut socket = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    use std::io::{Read, Write};
    socket.write_all(request.as_bytes()).unwrap();
    let mut answer = [0; 12];
    socket.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.1 413");
    assert!(!data.join("huge").exists());
    // Bytes that are no module are named for what they are, once.
    let m = refused(me.publish("junk", b"# not a module\n", false));
    assert_eq!(m.matches("not a WebAssembly module: it is text").count(), 1, "{m}");
    stop(child);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn clients_that_do_not_read_are_closed_at_a_server_wide_bound() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;
    let data = data_dir("send-total");
    let args = ["--listen", "127.0.0.1:0", "--in-memory", "--max-queued-bytes", "100000000"];
    let (child, base) =
        common::start_server_with(&data, &[&args[..], &["--max-total-queued-bytes", "300000"]].concat());
    // Two thousand more bots: every tick moves them all, a large frame to each subscriber.
    Http::new(&base, None).call("game", "spawn_bots", &json!([2000])).unwrap();
    let url = format!("{}/v1/database/game/subscribe", base.replace("http://", "ws://"));
    let silent: Vec<_> = (0..4)
        .map(|_| {
            let mut request = url.clone().into_client_request().unwrap();
            request.headers_mut().insert("Sec-WebSocket-Protocol", "sluice.json.v1".parse().unwrap());
            // A small receive buffer, so what the client does not read waits in the server.
            let stream = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
            let small: libc::c_int = 4096;
            // SAFETY: setsockopt on a socket this test owns, with a c_int option of its size.
            let set = unsafe {
                use std::os::fd::AsRawFd;
                libc::setsockopt(
                    stream.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUF,
                    (&small as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            assert_eq!(set, 0);
            stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
            let (mut ws, _) = tokio_tungstenite::tungstenite::client(request, stream).unwrap();
            let subscribe = json!({"type": "Subscribe", "request_id": 1, "queries": ["SELECT * FROM position"]});
            ws.send(Message::Text(subscribe.to_string().into())).unwrap();
            ws
        })
        .collect();
    // Each alone stays far within its own bound (100 MB, a minute of frames); together they
    // pass the server's within seconds, and are closed. (A client that reads nothing cannot
    // be told why: the close frame waits behind what it did not read.)
    let metric = |name: &str| {
        let metrics = ureq::get(&format!("{base}/metrics")).call().unwrap().into_string().unwrap();
        metrics.lines().find_map(|l| l.strip_prefix(name)).unwrap().trim().parse::<usize>().unwrap()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while metric("sluice_clients{database=\"game\"}") != 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(metric("sluice_clients{database=\"game\"}"), 0, "the silent clients were closed");
    while metric("sluice_server_send_queue_bytes") != 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(metric("sluice_server_send_queue_bytes"), 0, "what was queued for them left the server-wide gauge");
    drop(silent);
    let mut c = Client::connect(Config::new(&base, "game")).unwrap();
    assert!(c.subscribe(&["SELECT * FROM world"]).is_ok());
    stop(child);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn control_plane_changes_at_once_then_a_crash_leave_every_database_whole_or_absent() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let data = data_dir("control");
    let (child, base) = common::start_server(&data);
    let (_, token) = Http::new(&base, None).new_identity().unwrap();
    let names = ["a", "b", "c"];
    let stop_ops = AtomicBool::new(false);
    let outcomes = std::sync::Mutex::new(std::collections::BTreeMap::<String, usize>::new());
    std::thread::scope(|s| {
        for worker in 0..6u64 {
            let (base, token, stop_ops, outcomes) = (&base, &token, &stop_ops, &outcomes);
            s.spawn(move || {
                use rand::{Rng, SeedableRng};
                let mut rng = rand::rngs::StdRng::seed_from_u64(worker);
                let owner = Http::new(base, Some(token.clone()));
                for _ in 0..400 {
                    if stop_ops.load(Ordering::Relaxed) {
                        break;
                    }
                    let name = names[rng.random_range(0..names.len())];
                    let (op, result) = match rng.random_range(0..6) {
                        0 => ("publish", owner.publish(name, sluice::demo::GAME_WASM, false).map(drop)),
                        1 => ("replace", owner.publish(name, sluice::demo::GAME_WASM, true).map(drop)),
                        2 => ("delete", owner.delete(name).map(drop)),
                        3 => ("call", owner.call(name, "spawn_bots", &json!([1])).map(drop)),
                        4 => ("query", owner.query(name, "SELECT COUNT(*) FROM player", None).map(drop)),
                        _ => {
                            let mut config = Config::new(base, name);
                            config.token = Some(token.clone());
                            (
                                "subscribe",
                                Client::connect(config)
                                    .and_then(|mut c| c.subscribe(&["SELECT * FROM team"]).map(drop)),
                            )
                        }
                    };
                    let outcome = format!("{op}: {}", if result.is_ok() { "ok" } else { "refused" });
                    *outcomes.lock().unwrap().entry(outcome).or_default() += 1;
                }
            });
        }
        // SIGKILL in the middle of it all, once each kind of change has happened.
        let happened = || {
            let seen = outcomes.lock().unwrap();
            ["publish: ok", "delete: ok", "call: ok"].iter().all(|op| seen.contains_key(*op))
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !happened() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
        stop(child);
        stop_ops.store(true, Ordering::Relaxed);
    });
    let outcomes = outcomes.into_inner().unwrap();
    for op in ["publish: ok", "delete: ok", "call: ok"] {
        assert!(outcomes.get(op).is_some_and(|n| *n > 0), "{op} never happened: {outcomes:?}");
    }
    // Every database is whole or absent: it opens, its init's rows are there, its files
    // verify; nothing else is left in the data directory.
    let (child, base) = common::start_server(&data);
    let anonymous = Http::new(&base, None);
    let listed = anonymous.list().unwrap();
    assert!(listed.as_array().unwrap().iter().all(|d| d["unavailable"].is_null()), "{listed}");
    for name in names {
        match anonymous.query(name, "SELECT COUNT(*) FROM team", None) {
            Ok(teams) => {
                assert_eq!(teams.rows[0][0], Value::Int(2), "{name}");
                let verify =
                    Command::new(env!("CARGO_BIN_EXE_sluice")).arg("verify").arg(data.join(name)).output().unwrap();
                assert!(verify.status.success(), "{name}: {}", String::from_utf8_lossy(&verify.stdout));
            }
            Err(e) => assert!(e.to_string().contains("no database named"), "{name}: {e}"),
        }
    }
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            assert!(sluice_runtime::storage::exists(&path), "a leftover: {}", path.display());
        }
    }
    stop(child);
    let _ = std::fs::remove_dir_all(&data);
}

/// `sluice start` with its data directory on a tmpfs of `megabytes` of its own, mounted in a
/// mount namespace of the server's alone (`unshare`, which needs no privilege where user
/// namespaces are allowed): the test fills that file system up and frees it again through
/// `/proc/PID/root`. Returns the process, its base URL and the mount point as the test sees it.
fn start_on_small_disk(mount: &std::path::Path, megabytes: usize) -> (std::process::Child, String, PathBuf) {
    std::fs::create_dir_all(mount).unwrap();
    let script = r#"mount -t tmpfs -o size="$2"m sluice-test "$1" && exec "$3" start --data-dir "$1/data" --listen 127.0.0.1:0 --no-demo"#;
    let mut command = Command::new("unshare");
    command
        .args(["--user", "--map-root-user", "--mount", "sh", "-c", script, "sh"])
        .arg(mount)
        .arg(megabytes.to_string())
        .arg(env!("CARGO_BIN_EXE_sluice"))
        .stderr(Stdio::inherit());
    let (child, url) = common::spawn_server(command);
    let seen = PathBuf::from(format!("/proc/{}/root", child.id())).join(mount.strip_prefix("/").unwrap());
    (child, url, seen)
}

/// Fills the file system holding `dir` with one file, to the last byte it takes.
fn fill(dir: &std::path::Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    for chunk in [1 << 20, 4096, 1] {
        while file.write_all(&vec![7u8; chunk]).is_ok() {}
    }
    path
}

#[test]
fn a_full_disk_refuses_writes_keeps_reads_and_writes_resume_once_there_is_room() {
    let mount = data_dir("full-disk");
    let (child, base, disk) = start_on_small_disk(&mount, 24);
    let (_, token) = Http::new(&base, None).new_identity().unwrap();
    let me = Http::new(&base, Some(token));
    me.publish("g", sluice::demo::GAME_WASM, false).unwrap();
    let bots = |http: &Http| match &http.query("g", "SELECT COUNT(*) FROM player WHERE bot", None).unwrap().rows[0][0] {
        Value::Int(n) => *n,
        other => panic!("a count, not {other:?}"),
    };
    let mut acknowledged = bots(&me);
    let mut watcher = Client::connect(Config::new(&base, "g")).unwrap();
    watcher.subscribe(&["SELECT name FROM player"]).unwrap();
    let filler = fill(&disk);
    // Each call adds a bot; the tick writes ten times a second too. Sooner or later one of
    // them does not fit, and from then on writes are refused with the reason.
    let mut refusal = None;
    for _ in 0..10_000 {
        match me.call("g", "spawn_bots", &json!([1])) {
            Ok(_) => acknowledged += 1,
            Err(e) => {
                refusal = Some(refused(Err::<(), _>(e)));
                break;
            }
        }
    }
    // Unavailable, not a bad request: asking again later may succeed.
    let refusal = refusal.expect("a write fails on a full disk");
    assert!(refusal.contains("No space left on device") && refusal.contains("(HTTP 503)"), "{refusal}");
    let again = refused(me.call("g", "spawn_bots", &json!([1])));
    assert!(again.contains("refuses writes") && again.contains("No space left on device"), "{again}");
    assert!(again.contains("(HTTP 503)"), "{again}");
    let dml = refused(me.sql("g", "DELETE FROM player WHERE bot", None));
    assert!(dml.contains("refuses writes") && dml.contains("(HTTP 503)"), "{dml}");
    // Reads go on, over HTTP and WebSocket, and see exactly what was acknowledged; the
    // subscriber of the state that was given up is told so.
    assert_eq!(bots(&me), acknowledged);
    assert_eq!(bots(&Http::new(&base, None)), acknowledged);
    assert!(watcher.wait_until(std::time::Duration::from_secs(10), |_, closed| closed.is_some()));
    let closed = watcher.closed().unwrap();
    assert!(closed.contains("went back to its last durable transaction"), "{closed}");
    let mut reader = Client::connect(Config::new(&base, "g")).unwrap();
    let (_, applied) = reader.subscribe(&["SELECT COUNT(*) FROM player WHERE bot"]).unwrap();
    assert_eq!(applied[0].rows[0][0], Value::Int(acknowledged));
    let metric = |name: &str| {
        let metrics = ureq::get(&format!("{base}/metrics")).call().unwrap().into_string().unwrap();
        metrics.lines().find_map(|l| l.strip_prefix(name)).unwrap().trim().parse::<u64>().unwrap()
    };
    assert_eq!(metric("sluice_refusing_writes{database=\"g\"}"), 1);
    let durable = metric("sluice_durable_offset{database=\"g\"}");
    let logged = me.logs("g", durable.saturating_sub(5), 1000).unwrap();
    assert_eq!(logged.last().unwrap()["offset"], json!(durable), "the log ends at the last durable transaction");
    // Still full a while later: still refused (the log is tried again, and fails again).
    std::thread::sleep(sluice::module_db::PROBE_EVERY);
    assert!(refused(me.call("g", "spawn_bots", &json!([1]))).contains("refuses writes"));
    // Room again: writes resume by themselves, and the subscriber sees them.
    std::fs::remove_file(&filler).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let offset = loop {
        match me.call("g", "spawn_bots", &json!([1])) {
            Ok(offset) => break offset,
            Err(e) if std::time::Instant::now() < deadline => {
                assert!(refused(Err::<(), _>(e)).contains("refuses writes"))
            }
            Err(e) => panic!("writes did not resume: {e:?}"),
        }
    };
    acknowledged += 1;
    assert!(reader.wait_until(std::time::Duration::from_secs(10), |at, _| at >= offset));
    assert_eq!(metric("sluice_refusing_writes{database=\"g\"}"), 0);
    assert!(metric("sluice_durable_offset{database=\"g\"}") >= offset);
    assert_eq!(reader.rows("SELECT COUNT(*) FROM player WHERE bot").unwrap()[0][0], Value::Int(acknowledged));
    // The files hold every acknowledged write and nothing refused: a copy taken with the server
    // stopped where it stood (as a crash leaves the files) recovers to the same count.
    let copy = data_dir("full-disk-copy");
    // SAFETY: stopping a child process this test started.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGSTOP) }, 0);
    let copied = Command::new("cp").arg("-a").arg(disk.join("data")).arg(&copy).status().unwrap();
    assert!(copied.success());
    stop(child);
    let (child, base) = common::start_server_with(&copy, &["--listen", "127.0.0.1:0", "--no-demo"]);
    assert_eq!(bots(&Http::new(&base, None)), acknowledged);
    stop(child);
    let _ = std::fs::remove_dir_all(&copy);
    let _ = std::fs::remove_dir_all(&mount);
}

#[test]
fn a_live_query_that_overflows_is_ended_with_the_reason_and_the_others_go_on() {
    let data = data_dir("overflow");
    let (child, base) = common::start_server_with(&data, &["--listen", "127.0.0.1:0", "--in-memory"]);
    let (_, token) = Http::new(&base, None).new_identity().unwrap();
    let me = Http::new(&base, Some(token));
    me.publish("g", sluice::demo::GAME_WASM, false).unwrap();
    let doomed_sql = "SELECT id, score * 4611686018427387904 FROM player WHERE bot";
    let mut doomed = Client::connect(Config::new(&base, "g")).unwrap();
    doomed.subscribe(&[doomed_sql]).unwrap();
    let mut fine = Client::connect(Config::new(&base, "g")).unwrap();
    fine.subscribe(&["SELECT id, score FROM player WHERE bot"]).unwrap();
    // Doubling 2^62 passes the INTEGER range: the query cannot show its rows any more.
    let offset = match me.sql("g", "UPDATE player SET score = 2 WHERE bot", None).unwrap() {
        sluice_client::SqlResult::Changed { offset, .. } => offset,
        other => panic!("{other:?}"),
    };
    assert!(doomed.wait_until(std::time::Duration::from_secs(10), |_, closed| closed.is_some()));
    let closed = doomed.closed().unwrap();
    assert!(closed.contains("ended: integer overflow"), "{closed}");
    assert!(fine.wait_until(std::time::Duration::from_secs(10), |at, _| at >= offset));
    let scores = fine.rows("SELECT id, score FROM player WHERE bot").unwrap();
    assert!(!scores.is_empty() && scores.iter().all(|r| r[1] == Value::Int(2)), "{scores:?}");
    assert!(fine.closed().is_none());
    // Asked again it is refused, over HTTP and WebSocket, with the same reason.
    let m = refused(me.query("g", doomed_sql, None));
    assert!(m.contains("integer overflow") && m.contains("(HTTP 400)"), "{m}");
    let m = refused(fine.subscribe(&[doomed_sql]));
    assert!(m.contains("integer overflow"), "{m}");
    assert!(fine.closed().is_none());
    stop(child);
    let _ = std::fs::remove_dir_all(&data);
}

/// Random bytes of a random length, often short.
fn random_bytes(rng: &mut impl rand::Rng) -> Vec<u8> {
    let len = [0, 1, 8, 64, 1024][rng.random_range(0..5)];
    (0..rng.random_range(0..=len)).map(|_| rng.random()).collect()
}

/// A random piece of what an endpoint expects, or of something else: names, numbers, SQL
/// fragments, JSON, path tricks.
fn random_token(rng: &mut impl rand::Rng) -> String {
    const PIECES: &[&str] = &[
        "game",
        "g",
        "..",
        "%2e%2e",
        "%00",
        "SELECT",
        "*",
        "FROM",
        "player",
        "WHERE",
        "(",
        ")",
        "'",
        "\"",
        "-1",
        "18446744073709551616",
        "9223372036854775807",
        "NaN",
        "[",
        "]",
        "{",
        "}",
        ",",
        ":",
        "null",
        "true",
        "é",
        "\u{202e}",
        " ",
        "/",
        "?",
        "&",
        "=",
        ";",
        "--",
        "UNION",
        "JOIN",
        "1",
        "0x",
        "join",
        "tick",
        "spawn_bots",
    ];
    let n = rng.random_range(0..6);
    (0..n).map(|_| PIECES[rng.random_range(0..PIECES.len())]).collect::<Vec<_>>().join(" ")
}

#[test]
fn random_requests_to_every_endpoint_and_random_frames_get_answers_never_a_crash() {
    use rand::{Rng, SeedableRng};
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};
    let data = data_dir("random-requests");
    let (mut child, base) = common::start_server_with(&data, &["--listen", "127.0.0.1:0", "--in-memory"]);
    let (_, token) = Http::new(&base, None).new_identity().unwrap();
    Http::new(&base, Some(token.clone())).publish("mine", sluice::demo::GAME_WASM, false).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(29);
    // A connection each: the server closes one whose body it did not read, as HTTP allows.
    let agent = ureq::AgentBuilder::new().timeout(std::time::Duration::from_secs(30)).max_idle_connections(0).build();
    let (mut requests, mut refused) = (0, 0);
    for _ in 0..1500 {
        let name = ["game", "mine", "nope", ""][rng.random_range(0..4)].to_string();
        let name = if rng.random_ratio(1, 5) { urlencode(&random_token(&mut rng)) } else { name };
        let query =
            format!("after={}&limit={}&as_of={}", random_token(&mut rng), rng.random::<i64>(), random_token(&mut rng));
        let query = urlencode_query(&query);
        let (method, path) = match rng.random_range(0..11) {
            0 => ("POST", "/v1/identity".to_string()),
            1 => ("GET", "/v1/limits".to_string()),
            2 => ("GET", "/v1/database".to_string()),
            3 => ("POST", format!("/v1/database/{name}?clear={}", rng.random_bool(0.5))),
            4 => ("DELETE", format!("/v1/database/{name}")),
            5 => ("GET", format!("/v1/database/{name}/schema")),
            6 => ("POST", format!("/v1/database/{name}/call/{}", urlencode(&random_token(&mut rng)))),
            7 => ("POST", format!("/v1/database/{name}/sql?{query}")),
            8 => ("GET", format!("/v1/database/{name}/log?{query}")),
            9 => ("GET", format!("/v1/database/{name}/logs?{query}")),
            _ => ("GET", "/metrics".to_string()),
        };
        let mut request = agent.request(method, &format!("{base}{path}"));
        // What an HTTP client can send in a header: printable ASCII.
        let header = |s: String| s.chars().filter(|c| (' '..='~').contains(c)).collect::<String>();
        match rng.random_range(0..4) {
            0 => request = request.set("Authorization", &format!("Bearer {token}")),
            1 => request = request.set("Authorization", &header(format!("Bearer {}", random_token(&mut rng)))),
            2 => {
                request = request.set("Authorization", &header(String::from_utf8_lossy(&random_bytes(&mut rng)).into()))
            }
            _ => {}
        }
        let body = match rng.random_range(0..3) {
            0 => random_bytes(&mut rng),
            1 => random_token(&mut rng).into_bytes(),
            _ => json!([random_token(&mut rng), rng.random::<i64>(), {"x": random_token(&mut rng)}])
                .to_string()
                .into_bytes(),
        };
        let status = match request.send_bytes(&body) {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(code, _)) => code,
            Err(e) => panic!("{method} {path}: no answer: {e}"),
        };
        assert!(status < 500, "{method} {path}: {status}");
        requests += 1;
        refused += usize::from(status >= 400);
    }
    // WebSocket frames in both encodings: random bytes as text and binary, and messages that
    // look right with random contents. Each gets an answer or a close, never a dead server.
    let url = format!("{}/v1/database/game/subscribe", base.replace("http://", "ws://"));
    let mut frames = 0;
    for protocol in ["sluice.json.v1", "sluice.msgpack.v2"] {
        let until = frames + 400;
        while frames < until {
            let mut request = url.clone().into_client_request().unwrap();
            request.headers_mut().insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
            let stream = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
            stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
            let (mut ws, _) = tokio_tungstenite::tungstenite::client(request, stream).unwrap();
            let _identity = ws.read().unwrap();
            for _ in 0..100 {
                let kind = ["Subscribe", "Unsubscribe", "CallReducer", "OneOffQuery", "Nope"][rng.random_range(0..5)];
                let looks_right = json!({
                    "type": kind,
                    "request_id": rng.random::<u64>(),
                    "queries": [random_token(&mut rng)],
                    "query_id": rng.random::<u64>(),
                    "reducer": random_token(&mut rng),
                    "args": [random_token(&mut rng), rng.random::<i64>()],
                    "sql": random_token(&mut rng),
                });
                let message = match rng.random_range(0..4) {
                    0 => Message::Binary(random_bytes(&mut rng).into()),
                    1 => Message::Text(String::from_utf8_lossy(&random_bytes(&mut rng)).into_owned().into()),
                    2 => Message::Text(looks_right.to_string().into()),
                    _ => Message::Binary(rmp_serde::to_vec_named(&looks_right).unwrap().into()),
                };
                frames += 1;
                if ws.send(message).is_err() {
                    break; // closed, with its reason (read below)
                }
            }
            // Whatever came back reads as frames, up to a close or a quiet second.
            ws.get_mut().set_read_timeout(Some(std::time::Duration::from_millis(300))).unwrap();
            while let Ok(m) = ws.read() {
                if m.is_close() {
                    break;
                }
            }
        }
    }
    assert!(child.try_wait().unwrap().is_none(), "the server is alive");
    let anonymous = Http::new(&base, None);
    assert_eq!(anonymous.query("game", "SELECT COUNT(*) FROM team", None).unwrap().rows[0][0], Value::Int(2));
    // The owner's token was among the random ones, so `mine` may have been deleted; if not, it serves.
    if anonymous.list().unwrap().as_array().unwrap().iter().any(|d| d["name"] == "mine") {
        assert!(anonymous.query("mine", "SELECT COUNT(*) FROM team", None).is_ok());
    }
    eprintln!("{requests} random HTTP requests ({refused} refused) and {frames} random WebSocket frames");
    assert!(refused > requests / 2 && refused < requests, "both outcomes are reached: {refused} of {requests}");
    stop(child);
    let _ = std::fs::remove_dir_all(&data);
}

/// Percent-encodes everything but letters and digits, for a path segment.
fn urlencode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// Percent-encodes the values of `k=v&…`.
fn urlencode_query(q: &str) -> String {
    q.split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => format!("{k}={}", urlencode(v)),
            None => urlencode(kv),
        })
        .collect::<Vec<_>>()
        .join("&")
}
