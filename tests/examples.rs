//! The game and chat examples, built with the SDK and run by the host: lifecycle reducers,
//! schedule tables (a repeating tick, one-off deliveries), multi-column index ranges and
//! paged iteration, with subscriptions — a 3-way join, a GROUP BY aggregate, a top-k —
//! fed by every commit record and checked against SQLite at every offset.
//!
//! Needs a wasm toolchain, as tests/module_build.rs does.

mod common;

use common::{load, Live, Norm};
use rand::{Rng, SeedableRng};
use sluice_planner::{Row, Value};
use sluice_runtime::{CommitMeta, Host, Lifecycle, ReducerError, TxRecord};

/// A Unix time in microseconds to start the clock at.
const T0: u64 = 1_790_000_000_000_000;
/// The game module's constants (examples/game/src/lib.rs).
const TICK: u64 = 100_000;
const BOTS: u64 = 12;
const GOAL: i64 = 8;
const WORLD: i64 = 32;

/// Caller `k` as a hex identity.
fn who(k: u64) -> String {
    format!("{k:064x}")
}

fn meta(now: u64, caller: &str) -> CommitMeta {
    CommitMeta { timestamp_micros: now, caller: caller.into(), ..CommitMeta::default() }
}

/// The game module's bot step (examples/game/src/lib.rs, `bot_step`).
fn bot_step(n: u64, player_id: u64) -> (i64, i64) {
    let h = (n ^ player_id.wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    ((h >> 40) as i64 % 3 - 1, (h >> 20) as i64 % 3 - 1)
}

/// A row's values by column position.
fn ints(row: &Row) -> Vec<i128> {
    row.values()
        .iter()
        .map(|v| match v {
            Value::Int(i) => *i as i128,
            Value::UInt(u) => *u as i128,
            Value::Bool(b) => *b as i128,
            _ => 0,
        })
        .collect()
}

/// Checks a tick's transaction: it counted one tick, every bot took its step (and nothing
/// else moved), and exactly the players in the goal after the moves scored a point.
fn check_tick(tx: &TxRecord, tick: u64, live: &Live) {
    let table = |name: &str| tx.changes.iter().find(|c| c.table == name);
    let world = table("world").expect("the tick counted");
    assert_eq!(ints(&world.inserts[0])[1], tick as i128);
    let bots = live.mirror.query("SELECT id FROM player WHERE bot");
    let mut expected_moves: Vec<u64> = bots
        .iter()
        .map(|r| match r[0] {
            Norm::Int(id) => id as u64,
            _ => unreachable!(),
        })
        .filter(|id| bot_step(tick, *id) != (0, 0))
        .collect();
    expected_moves.sort();
    let mut moved: Vec<u64> =
        table("position").map_or(vec![], |c| c.inserts.iter().map(|r| ints(r)[0] as u64).collect());
    moved.sort();
    assert_eq!(moved, expected_moves, "tick {tick}: the bots that moved");
    if let Some(c) = table("position") {
        for (old, new) in c.deletes.iter().zip(&c.inserts) {
            let (o, n) = (ints(old), ints(new));
            let (dx, dy) = bot_step(tick, o[0] as u64);
            assert_eq!(
                (n[1], n[2]),
                ((o[1] + dx as i128).rem_euclid(WORLD as i128), (o[2] + dy as i128).rem_euclid(WORLD as i128))
            );
        }
    }
    let in_goal = live.mirror.int(&format!("SELECT COUNT(*) FROM position WHERE x < {GOAL} AND y < {GOAL}"));
    let scored = table("player").map_or(0, |c| c.inserts.len());
    assert_eq!(scored as i64, in_goal, "tick {tick}: players in the goal score");
}

#[test]
fn the_game_example_ticks_on_schedule_and_feeds_a_join_an_aggregate_and_a_top_k() {
    let Some(mut host) = load("examples/game") else { return };
    let queries = [
        "SELECT p.name, t.name, pos.x, pos.y FROM player p JOIN team t ON p.team_id = t.id \
         JOIN position pos ON pos.player_id = p.id WHERE pos.x < 16",
        "SELECT team_id, COUNT(*), SUM(score) FROM player GROUP BY team_id",
        "SELECT id, name, score FROM player ORDER BY score DESC, id LIMIT 3",
    ];
    let mut live = Live::new(&host, &queries);
    let names: Vec<(&str, Option<Lifecycle>)> =
        host.description().reducers.iter().map(|r| (r.name.as_str(), r.lifecycle)).collect();
    assert!(names.contains(&("init", Some(Lifecycle::Init))));
    assert!(names.contains(&("connected", Some(Lifecycle::ClientConnected))));

    let init = host.init(meta(T0, "")).expect("the game has init").unwrap();
    live.commit(&init);
    assert_eq!(live.mirror.int("SELECT COUNT(*) FROM player WHERE bot"), BOTS as i64);
    assert_eq!(host.next_scheduled(), Some(T0 + TICK));
    // Lifecycle reducers are not for clients.
    let err = host.call("connected", "[]", meta(T0, &who(1))).unwrap_err();
    assert_eq!(err, ReducerError::Lifecycle { reducer: "connected".into(), role: Lifecycle::ClientConnected });
    // Nor are scheduled ones: a client's call would bring a schedule row of its own making.
    let row = format!(r#"[[1, {}, {TICK}]]"#, T0 + TICK);
    let err = host.call("tick", &row, meta(T0, &who(1))).unwrap_err();
    assert_eq!(err, ReducerError::Scheduled { reducer: "tick".into(), table: "tick_timer".into() });

    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let (mut now, mut ticks, mut next_tick) = (T0, 0u64, T0 + TICK);
    for step in 0..300 {
        now += rng.random_range(1..30_000);
        let k = rng.random_range(1..=5u64);
        let offset = host.datastore().offset();
        // Bots arrive twice, 150 at a time: the tick then pages through hundreds of players.
        let choice = if step == 10 || step == 20 { 10 } else { rng.random_range(0..10) };
        let outcome = match choice {
            0 => host.call("join", &format!(r#"["p{k}", {}]"#, rng.random_range(1..=3)), meta(now, &who(k))),
            1 => host.call("leave", "[]", meta(now, &who(k))),
            2 => host.lifecycle(Lifecycle::ClientConnected, meta(now, &who(k))).unwrap(),
            3 => host.lifecycle(Lifecycle::ClientDisconnected, meta(now, &who(k))).unwrap(),
            10 => host.call("spawn_bots", "[150]", meta(now, "")),
            _ => {
                let (dx, dy) = (rng.random_range(-6..=6), rng.random_range(-6..=6));
                host.call("move_by", &format!("[{dx}, {dy}]"), meta(now, &who(k)))
            }
        };
        match outcome {
            Ok(tx) => live.commit(&tx),
            Err(e) => {
                assert!(matches!(e, ReducerError::Failed { .. }), "step {step}: {e}");
                assert_eq!(host.datastore().offset(), offset, "a failed call takes no offset");
            }
        }
        // The clock passes the tick's time: it runs once, as one transaction.
        let runs = host.run_scheduled(now);
        if now >= next_tick {
            assert_eq!(runs.len(), 1, "step {step}: one tick is due");
            let run = &runs[0];
            assert_eq!((run.reducer.as_str(), &run.error), ("tick", &None));
            ticks += 1;
            live.commit(&run.tx);
            check_tick(&run.tx, ticks, &live);
            next_tick = if next_tick + TICK > now { next_tick + TICK } else { now + TICK };
        } else {
            assert!(runs.is_empty(), "step {step}: no tick is due");
        }
        assert_eq!(host.next_scheduled(), Some(next_tick));
    }
    assert!(ticks > 20, "{ticks} ticks ran");
    assert_eq!(live.mirror.int("SELECT tick FROM world"), ticks as i64);
    // The game moved and scored: more than the initial bots, some of them in the top 3.
    assert!(live.mirror.int("SELECT COUNT(*) FROM player WHERE bot") > 300);
    assert_eq!(live.rows(2).len(), 3);
    // A missed run is not made up: after a long pause one tick runs, and the next is a
    // tick's time later.
    now += 50 * TICK;
    let runs = host.run_scheduled(now);
    assert_eq!(runs.len(), 1);
    live.commit(&runs[0].tx);
    assert_eq!(host.next_scheduled(), Some(now + TICK));
}

/// Chat: users appear when they connect, name themselves and send messages; messages sent
/// later wait in a schedule table and are delivered once, when due — or dropped, with the
/// reason, if delivery fails.
#[test]
fn the_chat_example_keeps_users_and_messages_and_delivers_later() {
    let Some(mut host) = load("examples/chat") else { return };
    let queries = [
        "SELECT u.name, m.text FROM message m JOIN \"user\" u ON u.identity = m.sender",
        "SELECT online, COUNT(*) FROM \"user\" GROUP BY online",
    ];
    let mut live = Live::new(&host, &queries);
    assert!(host.init(meta(T0, "")).is_none(), "chat has no init reducer");
    let (ada, bob, eve) = (who(1), who(2), who(3));
    let clock = std::cell::Cell::new(T0);
    let ok = |host: &mut Host, live: &mut Live, r: &str, args: &str, caller: &str| {
        clock.set(clock.get() + 10);
        let now = clock.get();
        let tx = match r {
            "connect" => host.lifecycle(Lifecycle::ClientConnected, meta(now, caller)).unwrap(),
            "disconnect" => host.lifecycle(Lifecycle::ClientDisconnected, meta(now, caller)).unwrap(),
            _ => host.call(r, args, meta(now, caller)),
        };
        live.commit(&tx.unwrap_or_else(|e| panic!("{r}{args}: {e}")));
    };
    ok(&mut host, &mut live, "connect", "", &ada);
    ok(&mut host, &mut live, "connect", "", &bob);
    ok(&mut host, &mut live, "set_name", r#"["ada"]"#, &ada);
    ok(&mut host, &mut live, "send_message", r#"["hello"]"#, &ada);
    ok(&mut host, &mut live, "send_message", r#"["hi ada"]"#, &bob);
    ok(&mut host, &mut live, "set_name", r#"{"name": "bob"}"#, &bob);
    let fail = |host: &mut Host, r: &str, args: &str, caller: &str| match host.call(r, args, meta(T0, caller)) {
        Err(ReducerError::Failed { message, .. }) => message,
        other => panic!("{r}{args} should fail: {other:?}"),
    };
    assert_eq!(fail(&mut host, "set_name", r#"["  "]"#, &ada), "a name has 1 to 32 characters and is not blank");
    assert_eq!(fail(&mut host, "send_message", r#"["psst"]"#, &eve), "only connected users send messages");
    assert!(matches!(host.call("set_name", "[7]", meta(T0, &ada)), Err(ReducerError::BadArguments(_))));
    assert_eq!(
        live.rows(0),
        vec![
            vec![Norm::Text("ada".into()), Norm::Text("hello".into())],
            vec![Norm::Text("bob".into()), Norm::Text("hi ada".into())],
        ]
    );

    // Two deliveries: bob's blank one falls due first and fails; ada's follows.
    let sent_at = clock.get() + 10;
    ok(&mut host, &mut live, "send_later", r#"["later, all", 5000]"#, &ada);
    ok(&mut host, &mut live, "send_later", r#"[" ", 3000]"#, &bob);
    assert_eq!(live.mirror.int("SELECT COUNT(*) FROM outbox"), 2);
    // A client may not deliver a row of its own making (a message "from" anyone).
    let err = host.call("deliver", "[]", meta(clock.get(), &ada)).unwrap_err();
    assert_eq!(err, ReducerError::Scheduled { reducer: "deliver".into(), table: "outbox".into() });
    assert_eq!(host.next_scheduled(), Some(sent_at + 10 + 3000));
    assert!(host.run_scheduled(sent_at + 2000).is_empty(), "nothing is due yet");
    let runs = host.run_scheduled(sent_at + 6000);
    assert_eq!(runs.len(), 2);
    assert!(matches!(&runs[0].error, Some(ReducerError::Failed { message, .. }) if message.contains("blank")));
    assert_eq!(runs[1].error, None);
    for run in &runs {
        assert_eq!(run.reducer, "deliver");
        live.commit(&run.tx);
    }
    // The failed delivery's transaction only consumed its row.
    assert_eq!(runs[0].tx.changes.len(), 1);
    assert_eq!(runs[0].tx.changes[0].table, "outbox");
    assert_eq!(live.mirror.int("SELECT COUNT(*) FROM outbox"), 0, "one-off rows run once");
    assert_eq!(live.mirror.int("SELECT COUNT(*) FROM message WHERE text = 'later, all'"), 1);
    assert_eq!(host.next_scheduled(), None);

    ok(&mut host, &mut live, "disconnect", "", &ada);
    assert_eq!(live.rows(1), vec![vec![Norm::Int(0), Norm::Int(1)], vec![Norm::Int(1), Norm::Int(1)]]);
}
