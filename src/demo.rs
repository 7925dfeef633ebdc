//! The demo: examples/game compiled to wasm and embedded in the binary (demo/game.wasm, kept
//! in step with its source by tests/demo.rs), and `sluice demo`, which runs it in real time —
//! its scheduled tick moves the bots and scores the goal — and prints live subscriptions'
//! deltas as each transaction commits.

use crate::module_db::ModuleDb;
use anyhow::Result;
use sluice_planner::Row;
use sluice_runtime::storage;
use sluice_runtime::{CommitMeta, Durability, Host, HostConfig, Lifecycle, LogConfig, StorageConfig};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The game module, built by `sluice build examples/game`.
pub const GAME_WASM: &[u8] = include_bytes!("../demo/game.wasm");

/// The bank module, built by `sluice build examples/bank`: `sluice bench transfer`'s workload.
pub const BANK_WASM: &[u8] = include_bytes!("../demo/bank.wasm");

/// What `sluice demo` subscribes to: a join with an aggregate, and a top-k.
pub const QUERIES: [&str; 2] = [
    "SELECT t.name, COUNT(*) AS players, SUM(p.score) AS score FROM player p JOIN team t ON p.team_id = t.id \
     GROUP BY t.name",
    "SELECT p.name, p.score, pos.x, pos.y FROM player p JOIN position pos ON pos.player_id = p.id \
     ORDER BY p.score DESC, p.id LIMIT 3",
];

/// Microseconds since the Unix epoch.
pub fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

fn show(row: &Row) -> String {
    let cells: Vec<String> = row.values().iter().map(|v| v.to_string()).collect();
    format!("({})", cells.join(", "))
}

/// Standard output that notices when its reader has gone (`sluice demo | head`).
#[derive(Default)]
struct Out {
    gone: bool,
}

impl Out {
    fn line(&mut self, text: &str) -> Result<()> {
        if self.gone {
            return Ok(());
        }
        match writeln!(std::io::stdout(), "{text}") {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => self.gone = true,
            other => other?,
        }
        Ok(())
    }
}

/// Loads the demo (in memory, or kept in `data_dir/game`: created with `init`, or recovered),
/// then runs its schedule in real time for `seconds` (forever if `None`), printing each
/// subscription's initial rows and then its deltas per offset once they are durable.
pub fn run(seconds: Option<u64>, extra_bots: u64, data_dir: Option<&Path>, durability: Durability) -> Result<()> {
    let meta = || CommitMeta { timestamp_micros: now_micros(), ..CommitMeta::default() };
    let mut out = Out::default();
    let mut committed = Vec::new();
    // The same data directory as a server's: the lock keeps the two from sharing it.
    let _lock = data_dir.map(sluice_runtime::DirLock::acquire).transpose()?;
    let mut db = match data_dir.map(|d| d.join("game")) {
        Some(dir) => {
            let config = StorageConfig {
                log: LogConfig { durability, ..LogConfig::default() },
                // Its tick would grow the log for ever: two snapshots and the log after them.
                keep_snapshots: Some(2),
                ..StorageConfig::default()
            };
            if storage::exists(&dir) {
                let (db, report) = ModuleDb::open(&dir, 1, config)?;
                out.line(&format!(
                    "recovered {}: snapshot at offset {}, {} transactions replayed",
                    dir.display(),
                    report.snapshot,
                    report.replayed
                ))?;
                if let Some((file, at, reason)) = report.torn {
                    out.line(&format!("cut off a torn tail: {}, byte {at}: {reason}", file.display()))?;
                }
                db
            } else {
                out.line(&format!("created {}", dir.display()))?;
                ModuleDb::create(&dir, GAME_WASM, 1, config, meta(), &[])?
            }
        }
        None => ModuleDb::new(Host::load(GAME_WASM, HostConfig::default())?, 1)?,
    };
    let mut subs = Vec::new();
    for sql in QUERIES {
        let sub = db.subscribe(sql)?;
        out.line(&format!("subscribed: {sql}"))?;
        for r in &sub.initial {
            out.line(&format!("  {}", show(r)))?;
        }
        subs.push(sub.query);
    }
    // In memory, `init` runs after subscribing, so its rows show as deltas.
    if data_dir.is_none() {
        committed.push(db.lifecycle(Lifecycle::Init, meta()).expect("the game has init")?);
    }
    if extra_bots > 0 {
        committed.push(db.call("spawn_bots", &format!("[{extra_bots}]"), meta())?);
    }
    let deadline = seconds.map(|s| Instant::now() + Duration::from_secs(s));
    loop {
        if let Some((last, _)) = committed.last() {
            db.wait_durable(last.offset)?;
        }
        for (tx, deltas) in committed.drain(..) {
            for d in deltas {
                let q = subs.iter().position(|q| *q == d.query).map_or(0, |i| i + 1);
                let mut line = format!("offset {} {} q{q}:", tx.offset, tx.meta.reducer);
                for r in &d.deletes {
                    line += &format!(" -{}", show(r));
                }
                for r in &d.inserts {
                    line += &format!(" +{}", show(r));
                }
                out.line(&line)?;
            }
        }
        // Stop at the deadline, or cleanly once whoever reads the output has gone.
        if out.gone || deadline.is_some_and(|d| Instant::now() >= d) {
            return db.close(now_micros());
        }
        let next = db.next_scheduled().unwrap_or(u64::MAX);
        let wait = next.saturating_sub(now_micros()).min(100_000);
        std::thread::sleep(Duration::from_micros(wait));
        for (run, deltas) in db.run_scheduled(now_micros()) {
            if let Some(e) = run.error {
                eprintln!("{e}");
            }
            committed.push((run.tx, deltas));
        }
    }
}
