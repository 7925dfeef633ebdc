//! A module's database runs queued reducer calls as a batch (one engine step for all their
//! transactions, as the server's executor does): call for call, the same commits, the same
//! deltas at the same offsets and the same refusals as calling them one at a time.

use rand::{Rng, SeedableRng};
use sluice::demo::BANK_WASM;
use sluice::module_db::ModuleDb;
use sluice_runtime::{CommitMeta, Host, HostConfig};

const QUERIES: [&str; 4] = [
    "SELECT branch_id, COUNT(*), SUM(balance) FROM account GROUP BY branch_id",
    "SELECT id, balance FROM account ORDER BY balance DESC, id LIMIT 10",
    "SELECT a.id, b.id, r.id FROM account a JOIN branch b ON a.branch_id = b.id \
     JOIN region r ON b.region_id = r.id WHERE a.balance >= 1050",
    "SELECT COUNT(*) FROM account WHERE balance < 900",
];

fn bank() -> ModuleDb {
    let mut db = ModuleDb::new(Host::load(BANK_WASM, HostConfig::default()).unwrap(), 1).unwrap();
    db.call("seed", "[200]", CommitMeta::default()).unwrap();
    for q in QUERIES {
        db.subscribe(q).unwrap();
    }
    db
}

fn meta(i: u64) -> CommitMeta {
    CommitMeta { timestamp_micros: 1_000 + i, caller: format!("{:02x}", i % 7), ..CommitMeta::default() }
}

#[test]
fn reducer_calls_in_a_batch_commit_and_deliver_exactly_as_one_at_a_time() {
    let (mut single, mut batched) = (bank(), bank());
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    // Transfers (some refused for funds), a few to unknown accounts, bad arguments and an
    // unknown reducer among them.
    let calls: Vec<(String, String)> = (0..600u64)
        .map(|i| match i % 97 {
            13 => ("no_such_reducer".into(), "[]".into()),
            41 => ("transfer".into(), "[1, 2]".into()),
            _ => {
                let (from, to) = (rng.random_range(1..=205u64), rng.random_range(1..=205u64));
                ("transfer".into(), format!("[{from}, {to}, {}]", rng.random_range(0..900)))
            }
        })
        .collect();
    let mut one_at_a_time = Vec::new();
    for (i, (reducer, args)) in calls.iter().enumerate() {
        one_at_a_time.push(single.call(reducer, args, meta(i as u64)).map_err(|e| e.to_string()));
    }
    let mut in_batches = Vec::new();
    let mut i = 0;
    while i < calls.len() {
        let n = rng.random_range(1..=64).min(calls.len() - i);
        let batch = (i..i + n).map(|k| (calls[k].0.as_str(), calls[k].1.as_str(), meta(k as u64)));
        in_batches.extend(batched.call_batch(batch).into_iter().map(|(r, _)| r.map_err(|e| e.to_string())));
        i += n;
    }
    assert_eq!(in_batches.len(), one_at_a_time.len());
    let mut refused = 0;
    let mut deltas = 0;
    for (k, (a, b)) in one_at_a_time.iter().zip(&in_batches).enumerate() {
        assert_eq!(a, b, "call {k}: {:?}", calls[k]);
        match a {
            Ok((_, d)) => deltas += d.len(),
            Err(_) => refused += 1,
        }
    }
    assert!(refused >= 12, "refusals were exercised: {refused}");
    assert!(deltas > 500, "the calls changed the queries: {deltas} deltas");
    // And the states agree afterwards, for a new subscriber too.
    for q in QUERIES {
        let (a, b) = (single.subscribe(q).unwrap(), batched.subscribe(q).unwrap());
        assert_eq!((a.offset, a.initial), (b.offset, b.initial), "{q}");
    }
}
