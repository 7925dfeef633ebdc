//! End to end over real sockets: a real `sluice start` process serving the demo game, and
//! clients of the Rust client crate (JSON and MessagePack) subscribed to different queries —
//! a filter, a 3-way join, a GROUP BY, a top-k, a `:sender` query — while players call
//! reducers and the game's tick runs. Midway the server is SIGKILLed and restarted; the
//! clients reconnect and resubscribe. Afterwards every client's cache, replayed from what it
//! received, must equal SQLite's answer over the commit log at every offset it vouched for.

mod common;

use common::{norm_wire_rows, Mirror, Norm};
use rand::{Rng, SeedableRng};
use serde_json::json;
use sluice_client::{Client, ClientError, Config, Encoding, Row};
use sluice_runtime::{Host, HostConfig, TxRecord};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const QUERIES: [&str; 6] = [
    "SELECT id, name, score FROM player WHERE score >= 2",
    "SELECT p.name, t.name AS team, q.x, q.y FROM player p JOIN team t ON t.id = p.team_id \
     JOIN position q ON q.player_id = p.id",
    "SELECT team_id, COUNT(*) AS n, SUM(score) AS total FROM player GROUP BY team_id",
    "SELECT id, score FROM player ORDER BY score DESC, id LIMIT 5",
    "SELECT name, score, online FROM player WHERE identity = :sender",
    "SELECT player_id, x, y FROM position WHERE x < 8 AND y < 8",
];

/// What a client received, in the order it applied it.
#[derive(Debug)]
enum Event {
    /// A subscription applied (at first, and after each reconnect): every query's rows.
    Initial(Vec<(String, Vec<Row>)>),
    /// One transaction's changes.
    Tx(Vec<(String, Vec<Row>, Vec<Row>)>),
    /// An answer at this offset: everything before it has been received.
    Complete,
}

type Log = Arc<Mutex<Vec<(u64, Event)>>>;

struct Player {
    client: Client,
    queries: Vec<&'static str>,
    log: Log,
    joined: bool,
}

impl Player {
    fn connect(base: &str, encoding: Encoding, queries: Vec<&'static str>) -> Player {
        let mut config = Config::new(base, "game");
        config.encoding = encoding;
        let client = Client::connect(config).unwrap();
        let log: Log = Arc::default();
        let l = Arc::clone(&log);
        client.on_transaction(move |tx| l.lock().unwrap().push((tx.offset, Event::Tx(tx.updates.clone()))));
        let mut p = Player { client, queries, log, joined: false };
        let (offset, applied) = p.client.subscribe(&p.queries).unwrap();
        p.initial(offset, applied);
        p
    }

    fn initial(&self, offset: u64, applied: Vec<sluice_client::protocol::AppliedQuery>) {
        let rows = applied.into_iter().map(|q| (q.sql, q.rows)).collect();
        self.log.lock().unwrap().push((offset, Event::Initial(rows)));
    }

    /// One step of play; `Err` when the connection is gone.
    fn step(&mut self, rng: &mut impl Rng, plays: bool) -> Result<(), ClientError> {
        if plays {
            let outcome = if !self.joined {
                self.client.call("join", json!([format!("p{}", rng.random_range(0..1000)), rng.random_range(1..=2)]))
            } else if rng.random_ratio(1, 15) {
                self.client.call("leave", json!([]))
            } else {
                self.client.call("move_by", json!([rng.random_range(-2..=2), rng.random_range(-2..=2)]))
            };
            match outcome {
                Ok(_) => self.joined = !self.joined || rng.random_ratio(14, 15),
                Err(ClientError::Reducer(e)) if e.contains("already in the game") => self.joined = true,
                Err(ClientError::Reducer(e)) if e.contains("join the game first") => self.joined = false,
                Err(e) => return Err(e),
            }
        }
        let answer = self.client.query("SELECT tick FROM world")?;
        self.log.lock().unwrap().push((answer.offset, Event::Complete));
        Ok(())
    }
}

/// Replays one client's events against SQLite over the commit log: at every offset from an
/// applied subscription up to the last answer before the next one, the cache must equal
/// SQLite's answer.
fn check(name: &str, identity: &str, mut events: Vec<(u64, Event)>, log: &[TxRecord], mirror: &Mirror) -> usize {
    events.sort_by_key(|(o, _)| *o); // stable: each offset's events stay in received order
                                     // The offsets each client vouched for: from an Initial to the last Complete after it.
    let mut spans: Vec<(u64, u64)> = Vec::new();
    for (o, e) in &events {
        match e {
            Event::Initial(_) => spans.push((*o, 0)),
            Event::Complete => {
                if let Some(s) = spans.last_mut() {
                    s.1 = *o;
                }
            }
            Event::Tx(_) => {}
        }
    }
    let vouched = |o: u64| spans.iter().any(|(a, b)| (*a..=*b).contains(&o));
    let mut caches: Vec<(String, Vec<Vec<Norm>>)> = Vec::new();
    let mut next = events.into_iter().peekable();
    let mut checked = 0;
    for tx in log {
        mirror.apply(tx);
        while let Some((_, e)) = next.next_if(|(o, _)| *o == tx.offset) {
            match e {
                Event::Initial(rows) => {
                    caches = rows.iter().map(|(sql, rows)| (sql.clone(), norm_wire_rows(rows))).collect();
                }
                Event::Tx(updates) => {
                    for (sql, inserts, deletes) in updates {
                        let cache = &mut caches.iter_mut().find(|(s, _)| *s == sql).expect("a subscribed query").1;
                        for d in norm_wire_rows(&deletes) {
                            let at = cache.iter().position(|r| *r == d);
                            cache.remove(
                                at.unwrap_or_else(|| panic!("{name}: offset {}: deleted {d:?} not held", tx.offset)),
                            );
                        }
                        cache.extend(norm_wire_rows(&inserts));
                        cache.sort_by(|a, b| a.partial_cmp(b).unwrap());
                    }
                }
                Event::Complete => {}
            }
        }
        if vouched(tx.offset) {
            for (sql, cache) in &caches {
                let oracle = mirror.query(&sql.replace(":sender", &format!("X'{identity}'")));
                assert_eq!(cache, &oracle, "{name}, offset {}: {sql}", tx.offset);
                checked += 1;
            }
        }
    }
    assert!(next.peek().is_none(), "{name}: events past the log: {:?}", next.peek());
    checked
}

#[test]
fn clients_caches_equal_sqlite_at_every_offset_across_a_server_restart() {
    let data = std::env::temp_dir().join(format!("sluice-network-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let (mut server, base) = common::start_server(&data);
    let port = base.rsplit(':').next().unwrap().to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let down = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..8u64)
        .map(|i| {
            let (base, stop, down) = (base.clone(), Arc::clone(&stop), Arc::clone(&down));
            std::thread::spawn(move || {
                let encoding = if i % 2 == 0 { Encoding::Json } else { Encoding::MessagePack };
                // Six players with a query and their own row; two observers of everything.
                let plays = i < 6;
                let queries =
                    if plays { vec![QUERIES[i as usize % 4], QUERIES[4], QUERIES[5]] } else { QUERIES.to_vec() };
                let mut p = Player::connect(&base, encoding, queries);
                let mut rng = rand::rngs::StdRng::seed_from_u64(i);
                while !stop.load(Ordering::Relaxed) {
                    if p.step(&mut rng, plays).is_err() {
                        while !down.load(Ordering::Relaxed) {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        let (offset, applied) = p.client.reconnect().expect("reconnects to the restarted server");
                        p.initial(offset, applied);
                    }
                    std::thread::sleep(Duration::from_millis(15));
                }
                p.step(&mut rng, false).unwrap();
                let identity = p.client.identity().to_string();
                drop(p.client);
                (i, identity, Arc::try_unwrap(p.log).unwrap().into_inner().unwrap())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    server.kill().unwrap(); // SIGKILL, mid-run
    server.wait().unwrap();
    down.store(true, Ordering::Relaxed);
    let (mut server, _) = common::start_server_with(&data, &["--listen", &format!("127.0.0.1:{port}")]);
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let received: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();

    let mut log = Vec::new();
    sluice_runtime::storage::history(&data.join("game"), 0, |r| {
        log.push(r);
        true
    })
    .unwrap();
    let host = Host::load(sluice::demo::GAME_WASM, HostConfig::default()).unwrap();
    let mut checked = 0;
    for (i, identity, events) in received {
        let restarts = events.iter().filter(|(_, e)| matches!(e, Event::Initial(_))).count();
        assert_eq!(restarts, 2, "client {i} subscribed, then resubscribed after the restart");
        let mirror = Mirror::new(host.datastore().defs());
        checked += check(&format!("client {i}"), &identity, events, &log, &mirror);
    }
    eprintln!("{} transactions, {checked} comparisons", log.len());
    assert!(log.len() > 100 && checked > 1000, "{} transactions, {checked} comparisons", log.len());
    server.kill().unwrap();
    server.wait().unwrap();
    let _ = std::fs::remove_dir_all(&data);
}
