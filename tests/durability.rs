//! Durable databases: the bank survives clean restarts and recoveries that replay the log
//! after a snapshot; every past offset reads back as it was; a damaged snapshot falls back
//! to an older one; and the durable demo, SIGKILLed at random moments while it runs, always
//! restarts with every transaction it had acknowledged (printed) and nothing half-applied.
//! Creating a database is all or nothing: one cut off (by SIGKILL, at any moment) leaves no
//! database, and creating it again starts afresh.

mod common;

use rand::{Rng, SeedableRng};
use sluice::module_db::ModuleDb;
use sluice_planner::Row;
use sluice_runtime::snapshot::TableState;
use sluice_runtime::storage::{self, AsOf};
use sluice_runtime::{CommitMeta, Durability, LogConfig, StorageConfig};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-durability-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn config(snapshot_every: u64) -> StorageConfig {
    StorageConfig {
        log: LogConfig { durability: Durability::Full, segment_bytes: 64 << 10 },
        snapshot_every,
        keep_snapshots: None,
    }
}

fn meta(t: u64) -> CommitMeta {
    CommitMeta { timestamp_micros: 1_000_000 + t, caller: "cafe".into(), ..CommitMeta::default() }
}

fn tables(db: &ModuleDb) -> Vec<TableState> {
    db.host().datastore().tables_state().into_iter().map(TableState::sorted).collect()
}

/// The sum of accounts' balances (column 2: id, branch_id, balance).
fn balance_sum(rows: &[Row]) -> i64 {
    rows.iter().map(|r| r.get(2).as_i128().unwrap() as i64).sum()
}

#[test]
fn the_bank_survives_restarts_and_reads_back_every_past_offset() {
    let Some(wasm) = common::build_module("examples/bank") else { return };
    let wasm = std::fs::read(wasm).unwrap();
    let dir = tempdir("bank");
    let mut db = ModuleDb::create(&dir, &wasm, 1, config(40), meta(0), &[]).unwrap();
    db.call("seed", "[50]", meta(1)).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    // The state at every offset, to compare with what the files give back.
    let mut states: BTreeMap<u64, Vec<TableState>> = BTreeMap::new();
    let sql = "SELECT COUNT(*), SUM(balance) FROM account";
    for round in 0..3 {
        for i in 0..70u64 {
            let (from, to, amount) = (rng.random_range(1..=50), rng.random_range(1..=50), rng.random_range(0..300));
            let args = format!("[{from}, {to}, {amount}]");
            // Some transfers fail (overdraft): no offset, nothing logged.
            if let Ok((tx, _)) = db.call("transfer", &args, meta(100 * round + i + 2)) {
                states.insert(tx.offset, tables(&db));
            }
        }
        let last = *states.keys().last().unwrap();
        db.wait_durable(last).unwrap();
        let before = tables(&db);
        let live = db.subscribe(sql).unwrap().initial;
        // Round 0 and 2 shut down cleanly (a snapshot at the end); round 1 just stops, so the
        // next start replays the log after the last periodic snapshot.
        if round == 1 {
            drop(db);
        } else {
            db.close(2_000_000).unwrap();
        }
        let (reopened, report) = ModuleDb::open(&dir, 1, config(40)).unwrap();
        db = reopened;
        assert_eq!(report.snapshot + report.replayed, last, "round {round}: {report:?}");
        assert_eq!(round == 1, report.replayed > 0, "round {round}: {report:?}");
        assert_eq!(tables(&db), before, "round {round}");
        assert_eq!(db.subscribe(sql).unwrap().initial, live, "a subscription after the restart sees the same");
        assert_eq!(balance_sum(&before[0].rows), 50 * 1000, "money is neither made nor lost");
    }
    // Every past offset reads back as it was, by offset and by time.
    let report = storage::verify(&dir).unwrap();
    assert!(report.ok() && report.snapshots.len() >= 4, "{report:?}");
    for (&offset, state) in states.iter().step_by(7) {
        let past = storage::as_of(&dir, AsOf::Offset(offset)).unwrap();
        assert_eq!(past.offset(), offset);
        let past: Vec<TableState> = past.tables_state().into_iter().map(TableState::sorted).collect();
        assert_eq!(&past, state, "as of {offset}");
    }
    let mut times = Vec::new();
    storage::history(&dir, 0, |r| {
        times.push((r.offset, r.meta.timestamp_micros));
        true
    })
    .unwrap();
    let (offset, time) = times[times.len() / 2];
    assert_eq!(storage::as_of(&dir, AsOf::Time(time)).unwrap().offset(), offset);
    let last = *states.keys().last().unwrap();
    assert!(matches!(storage::as_of(&dir, AsOf::Offset(last + 1)), Err(storage::StorageError::Future { .. })));
    drop(db);
    // A damaged newest snapshot is passed over: the older one plus the log give the same state.
    let snaps = sluice_runtime::snapshot::list(&dir.join("snapshots")).unwrap();
    let (_, newest) = snaps.last().unwrap();
    let mut bytes = std::fs::read(newest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(newest, bytes).unwrap();
    let (db, report) = ModuleDb::open(&dir, 1, config(40)).unwrap();
    assert_eq!(report.skipped.len(), 1, "{report:?}");
    assert!(report.replayed > 0);
    assert_eq!(&tables(&db), states.values().last().unwrap());
    let verify = storage::verify(&dir).unwrap();
    assert_eq!(verify.bad_snapshots.len(), 1);
    assert!(verify.ok(), "an older snapshot still serves: {verify:?}");
    drop(db);
    // Damage in the middle of the log that recovery needs refuses start-up, naming the file
    // and byte; `verify` reports it.
    let segments = sluice_runtime::commitlog::segments(&dir.join("log")).unwrap();
    let (_, first) = &segments[0];
    let mut bytes = std::fs::read(first).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(first, bytes).unwrap();
    let err = ModuleDb::open(&dir, 1, config(40)).err().expect("start-up refused").to_string();
    assert!(err.contains(&first.display().to_string()) && err.contains("byte"), "{err}");
    let verify = storage::verify(&dir).unwrap();
    assert!(!verify.ok() && verify.damage.is_some(), "{verify:?}");
    let out = Command::new(env!("CARGO_BIN_EXE_sluice")).args(["verify", dir.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("DAMAGED"));
}

#[test]
fn a_creation_cut_off_leaves_no_database_and_the_next_creation_starts_afresh() {
    let wasm = sluice::demo::GAME_WASM;
    let data = tempdir("cut-off");
    let dir = data.join("bank");
    // Begun but never finished: the snapshot at offset 0 is written, `init` never logged.
    let begun = storage::Storage::create(&dir, wasm, Default::default(), config(40)).unwrap();
    drop(begun);
    assert!(dir.join("snapshots").is_dir());
    assert!(!storage::exists(&dir) && storage::cut_off(&dir));
    assert!(storage::databases(&data).unwrap().is_empty());
    let err = ModuleDb::open(&dir, 1, config(40)).err().expect("no database to open").to_string();
    assert!(err.contains("cut off"), "{err}");
    let verify = run_sluice(&["verify", data.to_str().unwrap()]);
    assert!(verify.contains("no database") && !verify.contains("DAMAGED"), "{verify}");
    // Created again over the leftover: a whole database, with its `init` and the files given.
    let db = ModuleDb::create(&dir, wasm, 1, config(40), meta(0), &[("note", b"kept")]).unwrap();
    drop(db);
    assert!(storage::exists(&dir) && !storage::cut_off(&dir));
    assert_eq!(std::fs::read(dir.join("note")).unwrap(), b"kept");
    let (db, report) = ModuleDb::open(&dir, 1, config(40)).unwrap();
    assert_eq!(report.replayed, 1, "init, logged once: {report:?}");
    drop(db);
    // A server starting over a data directory removes what a cut-off creation left and does
    // not list it.
    let begun = storage::Storage::create(&data.join("half"), wasm, Default::default(), config(40)).unwrap();
    drop(begun);
    let (mut server, base) = common::start_server(&data);
    let listed: serde_json::Value = ureq::get(&format!("{base}/v1/database")).call().unwrap().into_json().unwrap();
    let names: Vec<&str> = listed.as_array().unwrap().iter().filter_map(|d| d["name"].as_str()).collect();
    assert!(names.contains(&"bank") && !names.contains(&"half"), "{listed}");
    assert!(!data.join("half").exists());
    server.kill().unwrap();
    server.wait().unwrap();
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn the_durable_demo_killed_while_it_creates_its_database_leaves_none_or_a_whole_one() {
    let data = tempdir("create-kill");
    let data = data.to_str().unwrap().to_string();
    let demo = |seconds: Option<&str>| {
        let mut args = vec!["demo", "--data-dir", &data, "--bots", "30"];
        args.extend(seconds.map(|s| ["--seconds", s]).into_iter().flatten());
        Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let (mut created, mut cut) = (0, 0);
    // SIGKILL while the module loads (the first 0.2 s or so after the demo says it creates
    // the database, in a debug build), then at moments from when the database's files appear
    // until `init` is durable and the bots are spawned.
    let snapshots = Path::new(&data).join("game").join("snapshots");
    for step in 0..12u64 {
        let _ = std::fs::remove_dir_all(&data);
        let mut child = demo(None);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("the demo printed").unwrap();
        assert!(first.starts_with("created"), "{first}");
        if step < 3 {
            std::thread::sleep(Duration::from_millis(step * 50));
        } else {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !snapshots.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_micros(200));
            }
            std::thread::sleep(Duration::from_millis((step - 3) * (step - 3)));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // Killed before it made the database's directory (the data directory holds just its
        // lock then), there is nothing to verify.
        if Path::new(&data).join("game").exists() {
            let verify = run_sluice(&["verify", &data]);
            assert!(!verify.contains("DAMAGED"), "step {step}: {verify}");
        }
        if storage::exists(&Path::new(&data).join("game")) {
            created += 1;
            let out = run_sluice(&["sql", "game", "SELECT COUNT(*) FROM player", "--data-dir", &data, "--json"]);
            let players = count(&out);
            assert!(players == 12 || players == 42, "step {step}: init whole, the bots whole or not at all: {players}");
        } else {
            cut += 1;
            // Started again, the demo creates the database afresh over what was left.
            let mut again = demo(Some("0"));
            let first = BufReader::new(again.stdout.take().unwrap()).lines().next().unwrap().unwrap();
            assert!(first.starts_with("created"), "step {step}: {first}");
            assert!(again.wait().unwrap().success());
            let verify = run_sluice(&["verify", &data]);
            assert!(verify.contains(": ok"), "step {step}: {verify}");
        }
    }
    assert!(created > 0 && cut > 0, "the kills fell both inside and after the creation: {created} created, {cut} cut");
    let _ = std::fs::remove_dir_all(Path::new(&data));
}

#[test]
fn a_damaged_newest_snapshot_never_rolls_the_module_back() {
    let dir = std::env::temp_dir().join(format!("sluice-durability-module-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let game = sluice::demo::GAME_WASM;
    let mut db = ModuleDb::create(&dir, game, 1, config(0), meta(0), &[]).unwrap();
    db.call("join", r#"["before", 1]"#, meta(1)).unwrap();
    // The same module with a custom section appended: other bytes, the same tables.
    let mut newer = game.to_vec();
    newer.extend_from_slice(&[0, 8, 7]);
    newer.extend_from_slice(b"version");
    db.republish(&newer, 2_000_000).unwrap();
    db.call("join", r#"["after", 2]"#, CommitMeta { caller: "beef".into(), ..meta(3) }).unwrap();
    drop(db);
    // Every snapshot but the first (made with the old module) is damaged.
    let snaps = sluice_runtime::snapshot::list(&dir.join("snapshots")).unwrap();
    assert!(snaps.len() >= 2, "{snaps:?}");
    for (_, path) in &snaps[1..] {
        let mut bytes = std::fs::read(path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x40;
        std::fs::write(path, bytes).unwrap();
    }
    let (db, report) = ModuleDb::open(&dir, 1, config(0)).unwrap();
    assert_eq!(report.snapshot, 0, "recovered from the first snapshot: {report:?}");
    assert_eq!(report.skipped.len(), snaps.len() - 1);
    assert_eq!(db.stored_module(), Some(&newer[..]), "the republished module runs, not the snapshot's");
    assert!(report.replayed >= 2, "both calls replayed from the log: {report:?}");
    drop(db);
    // A damaged newest module refuses start-up rather than run an older one.
    let modules = sluice_runtime::commitlog::numbered_files(&dir.join("modules"), ".wasm").unwrap();
    let (_, newest) = modules.last().unwrap();
    let mut bytes = std::fs::read(newest).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    std::fs::write(newest, bytes).unwrap();
    let err = ModuleDb::open(&dir, 1, config(0)).err().expect("start-up refused").to_string();
    assert!(err.contains(&newest.display().to_string()) && err.contains("checksum"), "{err}");
    let verify = storage::verify(&dir).unwrap();
    assert!(!verify.ok(), "verify and start-up agree: {verify:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn keeping_two_snapshots_bounds_the_files_and_recovery_still_falls_back() {
    let dir = std::env::temp_dir().join(format!("sluice-durability-keep-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = || StorageConfig {
        log: LogConfig { durability: Durability::Full, segment_bytes: 2048 },
        snapshot_every: 25,
        keep_snapshots: Some(2),
    };
    let mut db = ModuleDb::create(&dir, sluice::demo::GAME_WASM, 1, config(), meta(0), &[]).unwrap();
    for t in 1..=300 {
        db.call("spawn_bots", "[1]", meta(t)).unwrap();
    }
    let state = tables(&db);
    // Closed, not dropped: a dropped database's last snapshot (and its pruning) may still be
    // under way in the background.
    db.close(2_000_000).unwrap();
    let snaps = sluice_runtime::snapshot::list(&dir.join("snapshots")).unwrap();
    assert_eq!(snaps.len(), 2, "{snaps:?}");
    let segments = sluice_runtime::commitlog::segments(&dir.join("log")).unwrap();
    assert!(segments[0].0 > 1, "the oldest segments are gone: {segments:?}");
    assert!(segments[0].0 <= snaps[0].0 + 1, "the log from the oldest kept snapshot on is kept: {segments:?}");
    // The newest snapshot damaged, recovery falls back on the other and the log after it.
    let mut bytes = std::fs::read(&snaps[1].1).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&snaps[1].1, bytes).unwrap();
    let (db, report) = ModuleDb::open(&dir, 1, config()).unwrap();
    assert_eq!(report.snapshot, snaps[0].0, "{report:?}");
    assert_eq!(tables(&db), state);
    db.close(3_000_000).unwrap();
    // What is no longer kept says so.
    let e = storage::as_of(&dir, AsOf::Offset(1)).err().expect("refused").to_string();
    assert!(e.contains("before the history this database keeps"), "{e}");
    assert!(storage::as_of(&dir, AsOf::Offset(snaps[0].0)).is_ok(), "the oldest kept snapshot reads back");
    assert!(storage::verify(&dir).unwrap().bad_snapshots.len() <= 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The recovered offset a durable demo reports when it starts ("recovered DIR: snapshot at
/// offset X, Y transactions replayed"), or 0 for a new database.
fn recovered_offset(line: &str) -> Option<u64> {
    let rest = line.strip_prefix("recovered ")?;
    let nums: Vec<u64> = rest.split(|c: char| !c.is_ascii_digit()).filter_map(|s| s.parse().ok()).collect();
    Some(nums[nums.len() - 2] + nums[nums.len() - 1])
}

/// The number a `sluice sql … --json` of one `SELECT COUNT(*)` printed.
fn count(out: &str) -> u64 {
    let row: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    row.as_object().unwrap().values().next().unwrap().as_u64().unwrap()
}

fn run_sluice(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice")).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "sluice {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_durable_demo_killed_at_random_moments_keeps_everything_it_acknowledged() {
    let dir = tempdir("crash");
    let data = dir.to_str().unwrap().to_string();
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut acknowledged = 0u64;
    let mut restarts = 0;
    let cycles = 20;
    for cycle in 0..cycles {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["demo", "--data-dir", &data, "--bots", "30"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        // Read its output on a thread: the offsets it printed (each printed only once durable).
        let (opened, has_opened) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut start = None;
            let mut printed = 0u64;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = opened.send(());
                if let Some(o) = recovered_offset(&line) {
                    start = Some(o);
                }
                if let Some(o) = line.strip_prefix("offset ").and_then(|s| s.split(' ').next()?.parse::<u64>().ok()) {
                    printed = printed.max(o);
                }
            }
            (start, printed)
        });
        // Every fourth run dies while it may still be starting or recovering; the others live
        // a while after opening the database, however slow the machine is to start them.
        let lifetime = if cycle % 4 == 3 {
            Duration::from_millis(rng.random_range(0..150))
        } else {
            let _ = has_opened.recv_timeout(Duration::from_secs(30));
            Duration::from_millis(rng.random_range(150..900))
        };
        let deadline = Instant::now() + lifetime;
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        // SIGKILL: no chance to flush or snapshot.
        child.kill().unwrap();
        child.wait().unwrap();
        let (start, printed) = reader.join().unwrap();
        // A run killed before it finished recovering reports nothing; that is a crash too.
        if let Some(start) = start {
            assert!(start >= acknowledged, "cycle {cycle}: recovered offset {start} < acknowledged {acknowledged}");
            restarts += 1;
        }
        acknowledged = acknowledged.max(printed);
        // Killed before its database was created (its data directory then holds just its
        // lock, or a creation cut off), there is no database to verify yet.
        if storage::exists(&Path::new(&data).join("game")) {
            let verify = run_sluice(&["verify", &data]);
            assert!(verify.contains(": ok"), "cycle {cycle}: {verify}");
        }
    }
    assert!(acknowledged > 20, "the demo made progress: {acknowledged}");
    // Nothing half-applied: the game's invariants hold in the recovered state, at the end and
    // at a past offset.
    for as_of in [None, Some(acknowledged / 2)] {
        let mut args = vec!["sql", "game", "SELECT COUNT(*) FROM player", "--data-dir", &data, "--json"];
        let at = as_of.map(|o| o.to_string());
        if let Some(a) = &at {
            args.extend(["--as-of", a]);
        }
        let out = run_sluice(&args);
        // 12 players from init, 30 bots added by each start of the demo.
        let players = count(&out);
        assert!(players >= 12 && (players - 12).is_multiple_of(30), "{players} players as of {as_of:?}");
        let positions = run_sluice(&["sql", "game", "SELECT COUNT(*) FROM position", "--data-dir", &data, "--json"]);
        let joined = run_sluice(&[
            "sql",
            "game",
            "SELECT COUNT(*) FROM player p JOIN position q ON q.player_id = p.id",
            "--data-dir",
            &data,
            "--json",
        ]);
        assert_eq!(count(&positions), count(&joined), "every position has its player");
    }
    assert!(restarts >= cycles / 2, "only {restarts} of {cycles} runs got as far as recovering");
    let _ = std::fs::remove_dir_all(Path::new(&data));
}
