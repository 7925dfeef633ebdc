//! Crash recovery of a real server process: clients transfer money through `sluice start`
//! over HTTP on 127.0.0.1 while the process is SIGKILLed at a random moment, then it is
//! restarted — 20 times. After every restart each acknowledged transfer is in the log at the
//! offset it was acknowledged with (same reducer, same arguments), nothing unacknowledged is
//! half-applied (the sum of balances never changes, now or at any past offset), and the
//! server keeps serving.

mod common;

use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

const ACCOUNTS: u64 = 50;

/// The publisher's token (signed with the key in the data directory, so it outlives restarts).
static TOKEN: OnceLock<String> = OnceLock::new();

fn post(url: &str, body: &[u8]) -> Result<Value, (u16, String)> {
    let auth = format!("Bearer {}", TOKEN.get().expect("a token"));
    match ureq::post(url).set("Authorization", &auth).timeout(Duration::from_secs(20)).send_bytes(body) {
        Ok(r) => Ok(r.into_json().unwrap()),
        Err(ureq::Error::Status(code, r)) => Err((code, r.into_string().unwrap_or_default())),
        Err(e) => Err((0, e.to_string())),
    }
}

/// The whole log as its owner reads it (arguments are the owner's), a page at a time.
fn log(base: &str) -> Vec<Value> {
    let auth = format!("Bearer {}", TOKEN.get().expect("a token"));
    let (mut all, mut after) = (Vec::new(), 0);
    loop {
        let url = format!("{base}/v1/database/bank/log?after={after}&limit=1000");
        let page: Value = ureq::get(&url)
            .set("Authorization", &auth)
            .timeout(Duration::from_secs(20))
            .call()
            .unwrap()
            .into_json()
            .unwrap();
        let page = page.as_array().unwrap().clone();
        let Some(last) = page.last() else { return all };
        after = last["offset"].as_u64().unwrap();
        all.extend(page);
    }
}

fn sum_and_count(base: &str, as_of: Option<u64>) -> (i64, i64) {
    let q = as_of.map_or(String::new(), |o| format!("?as_of={o}"));
    let r = post(&format!("{base}/v1/database/bank/sql{q}"), b"SELECT SUM(balance), COUNT(*) FROM account").unwrap();
    (r["rows"][0][0].as_i64().unwrap(), r["rows"][0][1].as_i64().unwrap())
}

#[test]
fn acknowledged_transfers_survive_sigkill_and_money_is_conserved() {
    let Some(wasm) = common::build_module("examples/bank") else { return };
    let wasm = std::fs::read(wasm).unwrap();
    let data = std::env::temp_dir().join(format!("sluice-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let (mut server, mut base) = common::start_server(&data);
    let (_, token) = sluice_client::Http::new(&base, None).new_identity().unwrap();
    TOKEN.set(token).unwrap();
    post(&format!("{base}/v1/database/bank"), &wasm).unwrap();
    post(&format!("{base}/v1/database/bank/call/seed"), format!("[{ACCOUNTS}]").as_bytes()).unwrap();
    let total = ACCOUNTS as i64 * 1000;
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    // Every acknowledged transfer: offset -> arguments.
    let mut acknowledged: BTreeMap<u64, String> = BTreeMap::new();
    for cycle in 0..20 {
        let stop = Arc::new(AtomicBool::new(false));
        let acks = Arc::new(Mutex::new(Vec::new()));
        let clients: Vec<_> = (0..4)
            .map(|c| {
                let (stop, acks, url) =
                    (Arc::clone(&stop), Arc::clone(&acks), format!("{base}/v1/database/bank/call/transfer"));
                let mut rng = rand::rngs::StdRng::seed_from_u64(cycle * 10 + c);
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let (from, to) = (rng.random_range(1..=ACCOUNTS), rng.random_range(1..=ACCOUNTS));
                        let args = format!("[{from}, {to}, {}]", rng.random_range(0..400));
                        match post(&url, args.as_bytes()) {
                            Ok(r) => acks.lock().unwrap().push((r["offset"].as_u64().unwrap(), args)),
                            Err((400, _)) => {} // an overdraft: refused, nothing written
                            Err(_) => return,   // the server is gone
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.random_range(100..700)));
        server.kill().unwrap(); // SIGKILL
        server.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().unwrap();
        }
        let acks = std::mem::take(&mut *acks.lock().unwrap());
        assert!(cycle > 0 || !acks.is_empty(), "the clients got transfers through");
        acknowledged.extend(acks);
        (server, base) = common::start_server(&data);
        // Every acknowledged transfer is in the log, at its offset, as it was sent.
        let logged: BTreeMap<u64, (String, String)> = log(&base)
            .iter()
            .map(|r| {
                let s = |k: &str| r[k].as_str().unwrap().to_string();
                (r["offset"].as_u64().unwrap(), (s("reducer"), s("args")))
            })
            .collect();
        for (offset, args) in &acknowledged {
            assert_eq!(
                logged.get(offset),
                Some(&("transfer".to_string(), args.clone())),
                "cycle {cycle}: offset {offset}"
            );
        }
        // Nothing half-applied: the money is all there, now and at a past offset.
        assert_eq!(sum_and_count(&base, None), (total, ACCOUNTS as i64), "cycle {cycle}");
        let last = *logged.keys().last().unwrap();
        let past = rng.random_range(2..=last);
        assert_eq!(sum_and_count(&base, Some(past)), (total, ACCOUNTS as i64), "cycle {cycle}, as of {past}");
    }
    assert!(acknowledged.len() > 100, "{} transfers acknowledged", acknowledged.len());
    server.kill().unwrap();
    server.wait().unwrap();
    let _ = std::fs::remove_dir_all(&data);
}
