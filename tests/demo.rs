//! The modules compiled into the binary (demo/game.wasm, demo/bank.wasm) are examples/game and
//! examples/bank as their sources stand: the same description and, call for call, the same
//! commit records. And `sluice demo` runs the game: init, then ticks in real time, with live
//! deltas printed.
//!
//! Refresh an embedded module with `cargo run -- build examples/game` (or bank) and copying
//! examples/game/target-wasm/wasm32-unknown-unknown/release/game.wasm to demo/.

mod common;

use sluice::demo::{BANK_WASM, GAME_WASM};
use sluice_runtime::{CommitMeta, Host, HostConfig, Lifecycle, TxRecord};

/// A scripted session: init, players joining and moving, bots added, ticks.
fn session(host: &mut Host) -> Vec<TxRecord> {
    let t0 = 1_790_000_000_000_000u64;
    let meta =
        |t: u64, caller: &str| CommitMeta { timestamp_micros: t0 + t, caller: caller.into(), ..Default::default() };
    let mut out = vec![host.lifecycle(Lifecycle::Init, meta(0, "")).unwrap().unwrap()];
    out.push(host.call("join", r#"["ann", 1]"#, meta(1, "aa")).unwrap());
    out.push(host.call("join", r#"["bo", 2]"#, meta(2, "bb")).unwrap());
    out.push(host.call("spawn_bots", "[40]", meta(3, "")).unwrap());
    for i in 0..30u64 {
        out.push(host.call("move_by", "[-3, -2]", meta(10 + i, "aa")).unwrap());
        out.extend(host.run_scheduled(t0 + i * 100_000).into_iter().map(|r| r.tx));
    }
    out.push(host.lifecycle(Lifecycle::ClientDisconnected, meta(4_000_000, "bb")).unwrap().unwrap());
    out
}

#[test]
fn the_embedded_demo_is_the_game_example_as_built_from_source() {
    let Some(wasm) = common::build_module("examples/game") else { return };
    let mut built = Host::load(&std::fs::read(wasm).unwrap(), HostConfig::default()).unwrap();
    let mut embedded = Host::load(GAME_WASM, HostConfig::default()).expect("the embedded demo loads");
    assert_eq!(embedded.description(), built.description(), "demo/game.wasm is stale: rebuild it");
    let (a, b) = (session(&mut embedded), session(&mut built));
    assert!(a.len() > 50 && a.iter().filter(|tx| tx.meta.reducer == "tick").count() >= 29);
    assert_eq!(a, b, "demo/game.wasm behaves differently from examples/game: rebuild it");
}

#[test]
fn the_embedded_bank_is_the_bank_example_as_built_from_source() {
    let Some(wasm) = common::build_module("examples/bank") else { return };
    let mut built = Host::load(&std::fs::read(wasm).unwrap(), HostConfig::default()).unwrap();
    let mut embedded = Host::load(BANK_WASM, HostConfig::default()).expect("the embedded bank loads");
    assert_eq!(embedded.description(), built.description(), "demo/bank.wasm is stale: rebuild it");
    let session = |host: &mut Host| -> Vec<TxRecord> {
        let mut out = vec![host.call("seed_range", "[1, 300]", CommitMeta::default()).unwrap()];
        for i in 0..50u64 {
            let args = format!("[{}, {}, {}]", i * 7 % 300 + 1, i * 13 % 300 + 1, i * 31 % 700);
            out.extend(host.call("transfer", &args, CommitMeta::default()));
        }
        out
    };
    let (a, b) = (session(&mut embedded), session(&mut built));
    assert!(a.len() > 40 && a[0].changes.len() == 3, "seeded accounts, branches and regions");
    assert_eq!(a, b, "demo/bank.wasm behaves differently from examples/bank: rebuild it");
}

#[test]
fn sluice_demo_streams_live_deltas() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["demo", "--seconds", "1", "--bots", "20"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().any(|l| l.starts_with("offset 1 init q1: ")), "{text}");
    // Ten ticks a second, each moving bots into or out of the top 3.
    let ticks = text.lines().filter(|l| l.contains(" tick q2: ")).count();
    assert!(ticks >= 5, "{ticks} ticks in a second:\n{text}");
}

#[test]
fn sluice_demo_stops_cleanly_when_its_reader_goes() {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["demo", "--seconds", "5"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap(); // then dropped, like `| head -1`
    assert!(first.starts_with("subscribed: "), "{first}");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
